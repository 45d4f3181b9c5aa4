"""/v1/scans: history, one scan, one finding."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from ..auth import Principal, api_reader
from ..common import base_url, csv_param, paginate, parse_time, tx
from ..errors import NotFound, invalid
from ..models import Finding, Scan
from ..serialize import finding_dict, scan_dict
from .util import get_or_404
from .servers import RESULT_MODULES

router = APIRouter()

SCAN_STATUSES = ("queued", "pending", "running", "completed_clean", "completed_with_errors",
                 "failed")


def sort_order(request, column, id_column):
    sort_by = request.query_params.get("sort_by", "created_at.asc")
    if sort_by not in ("created_at.asc", "created_at.desc", "created_at"):
        raise invalid("sort_by", sort_by, "invalid", "sort_by must be created_at.asc or "
                      "created_at.desc")
    if sort_by.endswith(".desc"):
        return (column.desc(), id_column.desc())
    return (column.asc(), id_column.asc())


@router.get("/v1/scans")
def list_scans(request: Request, _p: Principal = Depends(api_reader)):
    q = request.query_params
    base = base_url(request)
    stmt = select(Scan)
    ids = csv_param(q.get("server_id"))
    if ids:
        stmt = stmt.where(Scan.server_id.in_(ids))
    mods = csv_param(q.get("module"))
    if mods:
        unknown = [m for m in mods if m not in RESULT_MODULES]
        if unknown:
            raise invalid("module", q.get("module"), "invalid",
                          "Unknown module %s; use %s" % (unknown[0], ", ".join(RESULT_MODULES)))
        stmt = stmt.where(Scan.module.in_({RESULT_MODULES[m] for m in mods}))
    statuses = csv_param(q.get("status"))
    if statuses:
        unknown = [s for s in statuses if s not in SCAN_STATUSES]
        if unknown:
            raise invalid("status", q.get("status"), "invalid",
                          "Unknown status %s; use %s" % (unknown[0], ", ".join(SCAN_STATUSES)))
        stmt = stmt.where(Scan.status.in_(statuses))
    since = parse_time(q.get("since"), "since")
    until = parse_time(q.get("until"), "until")
    if since is not None:
        stmt = stmt.where(Scan.created_at >= since)
    if until is not None:
        stmt = stmt.where(Scan.created_at <= until)
    stmt = stmt.order_by(*sort_order(request, Scan.created_at, Scan.id))
    with tx(request) as db:
        return paginate(request, db, stmt, "scans",
                        lambda sc: scan_dict(db, sc, base, with_findings=False))


@router.get("/v1/scans/{scan_id}")
def get_scan(scan_id: str, request: Request, _p: Principal = Depends(api_reader)):
    with tx(request) as db:
        sc = get_or_404(db, Scan, scan_id, "scan")
        return {"scan": scan_dict(db, sc, base_url(request))}


@router.get("/v1/scans/{scan_id}/findings/{finding_id}")
def get_finding(scan_id: str, finding_id: str, request: Request,
                _p: Principal = Depends(api_reader)):
    with tx(request) as db:
        get_or_404(db, Scan, scan_id, "scan")
        f = db.get(Finding, finding_id)
        if f is None or f.scan_id != scan_id:
            raise NotFound("finding", finding_id)
        out = finding_dict(f, base_url(request))
        out["scan_id"] = scan_id
        return out
