"""/v1/events"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from ..auth import Principal, api_reader
from ..common import base_url, csv_param, paginate, parse_time, tx
from ..models import Event
from ..serialize import event_dict
from .scans import sort_order
from .util import get_or_404

router = APIRouter()


@router.get("/v1/events")
def list_events(request: Request, _p: Principal = Depends(api_reader)):
    q = request.query_params
    base = base_url(request)
    stmt = select(Event)
    for field, col in (("type", Event.type), ("server_id", Event.server_id),
                       ("group_id", Event.group_id)):
        vals = csv_param(q.get(field))
        if vals:
            stmt = stmt.where(col.in_(vals))
    since = parse_time(q.get("since"), "since")
    until = parse_time(q.get("until"), "until")
    if since is not None:
        stmt = stmt.where(Event.created_at >= since)
    if until is not None:
        stmt = stmt.where(Event.created_at <= until)
    crit = q.get("critical")
    if crit is not None and crit.lower() in ("true", "false"):
        stmt = stmt.where(Event.critical.is_(crit.lower() == "true"))
    stmt = stmt.order_by(*sort_order(request, Event.created_at, Event.seq))
    with tx(request) as db:
        return paginate(request, db, stmt, "events", lambda e: event_dict(e, base))


@router.get("/v1/events/{event_id}")
def get_event(event_id: str, request: Request, _p: Principal = Depends(api_reader)):
    with tx(request) as db:
        e = get_or_404(db, Event, event_id, "event")
        return {"event": event_dict(e, base_url(request))}
