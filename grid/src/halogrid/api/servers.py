"""/v1/servers, their commands, scans and latest results."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from typing_extensions import Annotated

from .. import fim, resolved_firewall
from ..common import (DB, RESULT_MODULES, SCAN_MODULES, CsvQuery, GridDep, HaloRoute, Paging,
                      Reader, Servers, Writer, answer_as_built, base_url, csv_param, get_by_id,
                      get_or_404, paginate, record_event, wake, wake_agents)
from ..deadlines import close_server_commands, queue_scan
from ..errors import NotFound, invalid
from ..models import SCAN_FINISHED, Command, Group, Scan, Server, utcnow
from ..schemas import (ERROR_RESPONSES, CommandResponse, LatestResult, ScanBody, ServerBody,
                       ServerList, ServerResponse)
from ..serialize import command_dict, scan_dict, server_dict, server_dicts

router = APIRouter(prefix="/v1/servers", tags=["servers"], route_class=HaloRoute,
                   responses=ERROR_RESPONSES)


@router.get("", response_model=ServerList)
def list_servers(request: Request, _p: Reader, db: DB, paging: Paging, filters: Servers,
                 group_id: Annotated[CsvQuery, Query(description="Comma list of group ids")
                                     ] = None):
    base = base_url(request)
    return answer_as_built(paginate(request, db, filters.query(csv_param(group_id)), "servers",
                                    None, paging,
                                    render_page=lambda rows: server_dicts(db, rows, base)))


@router.get("/{server_id}", response_model=ServerResponse)
def get_server(server_id: str, request: Request, _p: Reader, db: DB):
    s = get_or_404(db, Server, server_id, "server")
    return {"server": server_dict(db, s, base_url(request))}


@router.put("/{server_id}", status_code=204, response_class=Response)
def update_server(server_id: str, body: ServerBody, p: Writer, db: DB, grid: GridDep):
    s = get_or_404(db, Server, server_id, "server")
    old_group = s.group_id
    obj = body.server
    given = obj.model_fields_set
    if obj.retire is None and obj.group_id is None and "server_label" not in given:
        raise invalid("server", obj.model_dump(exclude_unset=True), "invalid",
                      "Nothing to change: give group_id, retire or server_label")
    if obj.group_id is not None:
        dest = db.get(Group, obj.group_id)
        if dest is None:
            raise invalid("group_id", obj.group_id, "invalid",
                          "No group with id %s" % obj.group_id)
        if s.state == "deactivated":
            raise invalid("group_id", obj.group_id, "invalid",
                          "Server %s is deactivated and cannot be moved" % s.id)
        if dest.id != s.group_id:
            src = db.get(Group, s.group_id)
            s.group_id = dest.id
            record_event(db, "server_moved", "Server moved",
                         "Server %s moved from %s to %s"
                         % (s.hostname, src.name if src else s.group_id, dest.name),
                         server=s, group=dest, actor=p.key_id)
    if "server_label" in given and obj.server_label != s.server_label:
        s.server_label = obj.server_label
        record_event(db, "server_modified", "Server modified",
                     "Server %s label set to %s" % (s.hostname, obj.server_label), server=s,
                     actor=p.key_id)
    if obj.retire and s.state != "deactivated":
        s.state = "deactivated"
        s.last_state_change = utcnow()
        record_event(db, "server_retired", "Server retired",
                     "Server %s was retired" % s.hostname, server=s, actor=p.key_id)
        # its agent is refused from now on (410): nobody will ever answer them
        close_server_commands(db, s, "server retired before the command finished")
    # the server itself (its group, or a 410 once retired), and the servers whose firewall
    # lists the members of its old or new group
    groups = set()
    if s.group_id != old_group or obj.retire:
        groups = resolved_firewall.affected_groups(db, source_groups={old_group, s.group_id})
    wake(db, grid, servers=[s.id], groups=groups)
    return Response(status_code=204)


@router.delete("/{server_id}", status_code=204, response_class=Response)
def delete_server(server_id: str, p: Writer, db: DB):
    s = get_or_404(db, Server, server_id, "server")
    if s.state != "deactivated":
        raise invalid("state", s.state, "invalid",
                      "Only deactivated servers can be deleted; retire server %s first" % s.id)
    s.state = "deleted"
    s.last_state_change = utcnow()
    record_event(db, "server_deleted", "Server deleted",
                 "Server %s was deleted" % s.hostname, server=s, actor=p.key_id)
    return Response(status_code=204)


@router.get("/{server_id}/commands/{command_id}", response_model=CommandResponse)
def get_command(server_id: str, command_id: str, request: Request, _p: Reader, db: DB):
    get_or_404(db, Server, server_id, "server")
    c = get_by_id(db, Command, command_id)
    if c is None or c.server_id != server_id:
        raise NotFound("command", command_id)
    return {"command": command_dict(c, base_url(request))}


@router.post("/{server_id}/scans", status_code=202, response_model=CommandResponse)
def start_scan(server_id: str, body: ScanBody, request: Request, p: Writer, db: DB,
               grid: GridDep):
    s = get_or_404(db, Server, server_id, "server")
    module = body.scan.module
    stored = SCAN_MODULES[module]
    if stored is None:
        raise invalid("module", module, "unsupported",
                      "Module %s is not run by this grid; supported: %s"
                      % (module, ", ".join(m for m, run in SCAN_MODULES.items() if run)))
    if s.state == "deactivated":
        raise invalid("server_id", s.id, "invalid",
                      "Server %s is deactivated and cannot be scanned" % s.id)
    cmd, _scan = queue_scan(db, s, stored, utcnow(), p.key_id,
                            "%s scan requested on server %s" % (stored, s.hostname))
    # fim: fails at once (fail closed) without a policy or an active baseline (fim.py)
    if stored != "fim" or fim.prepare_scan(db, s, cmd):
        wake_agents(db, grid, s.id)
    return {"command": command_dict(cmd, base_url(request))}


@router.get("/{server_id}/{module}", response_model=LatestResult)
def latest_result(server_id: str, module: str, request: Request, _p: Reader, db: DB):
    """The server's latest finished scan of `module` (sca/csm, svm/sva, fim, sam)."""
    if module not in RESULT_MODULES:
        raise NotFound("route", request.url.path, field="path")
    stored = RESULT_MODULES[module]
    base = base_url(request)
    s = get_or_404(db, Server, server_id, "server")
    scan = db.scalar(select(Scan).where(Scan.server_id == s.id, Scan.module == stored,
                                        Scan.status.in_(SCAN_FINISHED))
                     .order_by(Scan.completed_at.desc(), Scan.created_at.desc()).limit(1))
    if scan is None:
        raise NotFound("scan", s.id, field="server_id")
    return {"id": s.id, "url": "%s/v1/servers/%s" % (base, s.id), "hostname": s.hostname,
            "server_label": s.server_label, "state": s.state,
            "connecting_ip_address": s.connecting_ip_address,
            "group_id": s.group_id, "scan": scan_dict(db, scan, base)}
