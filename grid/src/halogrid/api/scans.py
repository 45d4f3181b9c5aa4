"""/v1/scans: history, one scan, one finding."""
from __future__ import annotations


from typing import Union

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from typing_extensions import Annotated

from ..common import (DB, RESULT_MODULES, CsvQuery, HaloRoute, Paging, Reader, SortBy,
                      answer_as_built, base_url, csv_param, get_by_id, get_or_404, paginate,
                      parse_time, sort_order)
from ..errors import NotFound, invalid
from ..models import SCAN_STATUSES, FimFinding, Finding, Scan, SvmFinding
from ..schemas import (ERROR_RESPONSES, FimFindingResponse, FindingResponse, ScanList,
                       ScanResponse, SvmFindingResponse)
from ..serialize import finding_dict, scan_dict
from ..fim import finding_dict as fim_finding_dict
from ..svm import finding_dict as svm_finding_dict

router = APIRouter(prefix="/v1/scans", tags=["scans"], route_class=HaloRoute,
                   responses=ERROR_RESPONSES)


@router.get("", response_model=ScanList)
def list_scans(
    request: Request, _p: Reader, db: DB, paging: Paging,
    server_id: Annotated[CsvQuery, Query(description="Comma list of server ids")] = None,
    module: Annotated[CsvQuery, Query(description="Comma list of sca (csm), svm (sva), "
                                                  "fim, sam")] = None,
    status: Annotated[CsvQuery, Query(description="Comma list of " +
                                                  ", ".join(SCAN_STATUSES))] = None,
    since: Annotated[CsvQuery, Query(description="ISO 8601 date or time")] = None,
    until: Annotated[CsvQuery, Query(description="ISO 8601 date or time")] = None,
    sort_by: SortBy = "created_at.asc",
):
    base = base_url(request)
    stmt = select(Scan)
    ids = csv_param(server_id)
    if ids:
        stmt = stmt.where(Scan.server_id.in_(ids))
    mods = csv_param(module)
    if mods:
        unknown = [m for m in mods if m not in RESULT_MODULES]
        if unknown:
            raise invalid("module", module, "invalid",
                          "Unknown module %s; use %s" % (unknown[0], ", ".join(RESULT_MODULES)))
        stmt = stmt.where(Scan.module.in_({RESULT_MODULES[m] for m in mods}))
    statuses = csv_param(status)
    if statuses:
        unknown = [s for s in statuses if s not in SCAN_STATUSES]
        if unknown:
            raise invalid("status", status, "invalid",
                          "Unknown status %s; use %s" % (unknown[0], ", ".join(SCAN_STATUSES)))
        stmt = stmt.where(Scan.status.in_(statuses))
    t_since, t_until = parse_time(since, "since"), parse_time(until, "until")
    if t_since is not None:
        stmt = stmt.where(Scan.created_at >= t_since)
    if t_until is not None:
        stmt = stmt.where(Scan.created_at <= t_until)
    stmt = stmt.order_by(*sort_order(sort_by, Scan.created_at, Scan.id))
    return paginate(request, db, stmt, "scans",
                    lambda sc: scan_dict(db, sc, base, with_findings=False), paging)


@router.get("/{scan_id}", response_model=ScanResponse)
def get_scan(scan_id: str, request: Request, _p: Reader, db: DB):
    sc = get_or_404(db, Scan, scan_id, "scan")
    # read once per scanned server by every admission: its findings sent as built
    return answer_as_built({"scan": scan_dict(db, sc, base_url(request))})


@router.get("/{scan_id}/findings/{finding_id}",
            response_model=Union[FindingResponse, SvmFindingResponse, FimFindingResponse])
def get_finding(scan_id: str, finding_id: str, request: Request, _p: Reader, db: DB):
    sc = get_or_404(db, Scan, scan_id, "scan")
    if sc.module == "svm":  # one installed package (svm.py)
        sf = get_by_id(db, SvmFinding, finding_id)
        if sf is None or sf.scan_id != scan_id:
            raise NotFound("finding", finding_id)
        return dict(svm_finding_dict(sf, base_url(request)), scan_id=scan_id)
    if sc.module == "fim":  # one changed object (fim.py)
        ff = get_by_id(db, FimFinding, finding_id)
        if ff is None or ff.scan_id != scan_id:
            raise NotFound("finding", finding_id)
        return dict(fim_finding_dict(ff, base_url(request)), scan_id=scan_id)
    f = get_by_id(db, Finding, finding_id)
    if f is None or f.scan_id != scan_id:
        raise NotFound("finding", finding_id)
    out = finding_dict(f, base_url(request))
    out["scan_id"] = scan_id
    return out
