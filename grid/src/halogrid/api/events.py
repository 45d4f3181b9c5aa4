"""/v1/events"""
from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from typing_extensions import Annotated

from ..auth import redact_event
from ..common import (DB, CsvQuery, HaloRoute, Paging, Reader, SortBy, base_url, csv_param,
                      get_or_404, paginate, parse_time, sort_order)
from ..models import Event
from ..schemas import ERROR_RESPONSES, EventList, EventResponse
from ..serialize import event_dict

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=HaloRoute,
                   responses=ERROR_RESPONSES)


@router.get("", response_model=EventList)
def list_events(
    request: Request, p: Reader, db: DB, paging: Paging,
    type: Annotated[CsvQuery, Query(description="Comma list of event types")] = None,
    server_id: Annotated[CsvQuery, Query(description="Comma list of server ids")] = None,
    group_id: Annotated[CsvQuery, Query(description="Comma list of group ids")] = None,
    since: Annotated[CsvQuery, Query(description="ISO 8601 date or time")] = None,
    until: Annotated[CsvQuery, Query(description="ISO 8601 date or time")] = None,
    critical: Annotated[Optional[bool], Query()] = None,
    sort_by: SortBy = "created_at.asc",
):
    base = base_url(request)
    stmt = select(Event)
    for value, col in ((type, Event.type), (server_id, Event.server_id),
                       (group_id, Event.group_id)):
        vals = csv_param(value)
        if vals:
            stmt = stmt.where(col.in_(vals))
    t_since, t_until = parse_time(since, "since"), parse_time(until, "until")
    if t_since is not None:
        stmt = stmt.where(Event.created_at >= t_since)
    if t_until is not None:
        stmt = stmt.where(Event.created_at <= t_until)
    if critical is not None:
        stmt = stmt.where(Event.critical.is_(critical))
    stmt = stmt.order_by(*sort_order(sort_by, Event.created_at, Event.seq))
    return paginate(request, db, stmt, "events",
                    lambda e: redact_event(event_dict(e, base), p), paging)


@router.get("/{event_id}", response_model=EventResponse)
def get_event(event_id: str, request: Request, p: Reader, db: DB):
    e = get_or_404(db, Event, event_id, "event")
    return {"event": redact_event(event_dict(e, base_url(request)), p)}
