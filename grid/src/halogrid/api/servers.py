"""/v1/servers, their commands, scans and latest results."""
from __future__ import annotations

from typing import Any, List, Optional

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import false, select
from sqlalchemy.orm import Session

from ..auth import Principal, api_reader, api_writer
from ..common import (base_url, csv_param, json_body, opt_bool, opt_str, paginate,
                     record_event, top_object, tx)
from ..errors import NotFound, invalid
from ..models import Command, Group, Scan, Server, utcnow
from ..serialize import command_dict, scan_dict, server_dict
from .util import get_or_404

router = APIRouter()

SERVER_STATES = ("active", "missing", "deactivated")
# accepted in `state` filters: the SDK's migrate_servers asks for "...,retired" too
STATE_ALIASES = {"retired": "deactivated"}
# Halo module names -> the module the grid stores; None: known to Halo, not run by this grid
SCAN_MODULES = {"sca": "sca", "csm": "sca", "svm": None, "sva": None, "fim": None,
                "sam": None, "sv": None}
RESULT_MODULES = {"sca": "sca", "csm": "sca", "svm": "svm", "sva": "svm", "fim": "fim",
                  "sam": "sam"}
FINISHED = ("completed_clean", "completed_with_errors", "failed")


def render_server(db: Session, base: str):
    return lambda s: server_dict(db, s, base)


def server_query(request: Request, group_ids: Optional[List[str]] = None):
    q = request.query_params
    states = [STATE_ALIASES.get(st, st) for st in csv_param(q.get("state"))] or ["active"]
    for st in states:
        if st not in SERVER_STATES:
            raise invalid("state", q.get("state"), "invalid",
                          "state must be a comma list of %s" % ", ".join(SERVER_STATES))
    stmt = select(Server).where(Server.state.in_(states))
    gids = group_ids if group_ids is not None else csv_param(q.get("group_id"))
    if gids:
        stmt = stmt.where(Server.group_id.in_(gids))
    for field, col in (("platform", Server.platform), ("hostname", Server.hostname),
                       ("server_label", Server.server_label),
                       ("connecting_ip_address", Server.connecting_ip_address),
                       ("primary_ip_address", Server.primary_ip_address)):
        vals = csv_param(q.get(field))
        if vals:
            stmt = stmt.where(col.in_(vals))
    if q.get("cve") or q.get("kb"):
        # this grid runs no vulnerability scans: no server is known to have a CVE / miss a KB
        stmt = stmt.where(false())
    return stmt.order_by(Server.created_at, Server.id)


@router.get("/v1/servers")
def list_servers(request: Request, _p: Principal = Depends(api_reader)):
    base = base_url(request)
    with tx(request) as db:
        return paginate(request, db, server_query(request), "servers", render_server(db, base))


@router.get("/v1/servers/{server_id}")
def get_server(server_id: str, request: Request, _p: Principal = Depends(api_reader)):
    with tx(request) as db:
        s = get_or_404(db, Server, server_id, "server")
        return {"server": server_dict(db, s, base_url(request))}


@router.put("/v1/servers/{server_id}", status_code=204)
def update_server(server_id: str, request: Request, p: Principal = Depends(api_writer),
                  body: Any = Depends(json_body)):
    grid = request.app.state.grid
    with tx(request) as db:
        s = get_or_404(db, Server, server_id, "server")
        obj = top_object(body, "server")
        retire = opt_bool(obj, "retire")
        group_id = opt_str(obj, "group_id")
        label = opt_str(obj, "server_label") if "server_label" in obj else None
        if retire is None and group_id is None and "server_label" not in obj:
            raise invalid("server", obj, "invalid",
                          "Nothing to change: give group_id, retire or server_label")
        if group_id is not None:
            dest = db.get(Group, group_id)
            if dest is None:
                raise invalid("group_id", group_id, "invalid", "No group with id %s" % group_id)
            if s.state == "deactivated":
                raise invalid("group_id", group_id, "invalid",
                              "Server %s is deactivated and cannot be moved" % s.id)
            if dest.id != s.group_id:
                src = db.get(Group, s.group_id)
                s.group_id = dest.id
                record_event(db, "server_moved", "Server moved",
                             "Server %s moved from %s to %s"
                             % (s.hostname, src.name if src else s.group_id, dest.name),
                             server=s, group=dest, actor=p.key_id)
        if "server_label" in obj and label != s.server_label:
            s.server_label = label
            record_event(db, "server_modified", "Server modified",
                         "Server %s label set to %s" % (s.hostname, label), server=s,
                         actor=p.key_id)
        if retire and s.state != "deactivated":
            s.state = "deactivated"
            s.last_state_change = utcnow()
            record_event(db, "server_retired", "Server retired",
                         "Server %s was retired" % s.hostname, server=s, actor=p.key_id)
    grid.notifier.notify_all()
    return Response(status_code=204)


@router.delete("/v1/servers/{server_id}", status_code=204)
def delete_server(server_id: str, request: Request, p: Principal = Depends(api_writer)):
    with tx(request) as db:
        s = get_or_404(db, Server, server_id, "server")
        if s.state != "deactivated":
            raise invalid("state", s.state, "invalid",
                          "Only deactivated servers can be deleted; retire server %s first"
                          % s.id)
        s.state = "deleted"
        s.last_state_change = utcnow()
        record_event(db, "server_deleted", "Server deleted",
                     "Server %s was deleted" % s.hostname, server=s, actor=p.key_id)
    return Response(status_code=204)


@router.get("/v1/servers/{server_id}/commands/{command_id}")
def get_command(server_id: str, command_id: str, request: Request,
                _p: Principal = Depends(api_reader)):
    with tx(request) as db:
        get_or_404(db, Server, server_id, "server")
        c = db.get(Command, command_id)
        if c is None or c.server_id != server_id:
            raise NotFound("command", command_id)
        return {"command": command_dict(c, base_url(request))}


@router.post("/v1/servers/{server_id}/scans", status_code=202)
def start_scan(server_id: str, request: Request, p: Principal = Depends(api_writer),
               body: Any = Depends(json_body)):
    grid = request.app.state.grid
    with tx(request) as db:
        s = get_or_404(db, Server, server_id, "server")
        obj = top_object(body, "scan")
        module = opt_str(obj, "module", required=True)
        if module not in SCAN_MODULES:
            raise invalid("module", module, "invalid",
                          "Unknown scan module %s; Halo modules are %s"
                          % (module, ", ".join(SCAN_MODULES)))
        stored = SCAN_MODULES[module]
        if stored is None:
            raise invalid("module", module, "unsupported",
                          "Module %s is not run by this grid; supported: sca (alias csm)"
                          % module)
        if s.state == "deactivated":
            raise invalid("server_id", s.id, "invalid",
                          "Server %s is deactivated and cannot be scanned" % s.id)
        now = utcnow()
        cmd = Command(server_id=s.id, name=stored, status="queued", created_at=now,
                      updated_at=now)
        db.add(cmd)
        db.flush()
        scan = Scan(server_id=s.id, server_hostname=s.hostname, group_id=s.group_id,
                    command_id=cmd.id, module=stored, status="queued", created_at=now)
        db.add(scan)
        db.flush()
        cmd.scan_id = scan.id
        record_event(db, "scan_requested", "Scan requested",
                     "%s scan requested on server %s" % (stored, s.hostname), server=s,
                     actor=p.key_id, object_id=scan.id)
        out = {"command": command_dict(cmd, base_url(request))}
    grid.notifier.notify(server_id)
    return out


@router.get("/v1/servers/{server_id}/{module}")
def latest_result(server_id: str, module: str, request: Request,
                  _p: Principal = Depends(api_reader)):
    if module not in RESULT_MODULES:
        raise NotFound("route", request.url.path, field="path")
    stored = RESULT_MODULES[module]
    base = base_url(request)
    with tx(request) as db:
        s = get_or_404(db, Server, server_id, "server")
        scan = db.scalar(select(Scan).where(Scan.server_id == s.id, Scan.module == stored,
                                            Scan.status.in_(FINISHED))
                         .order_by(Scan.completed_at.desc(), Scan.created_at.desc()).limit(1))
        if scan is None:
            raise NotFound("scan", s.id, field="server_id")
        return {"id": s.id, "url": "%s/v1/servers/%s" % (base, s.id), "hostname": s.hostname,
                "server_label": s.server_label, "state": s.state,
                "connecting_ip_address": s.connecting_ip_address,
                "group_id": s.group_id, "scan": scan_dict(db, scan, base)}
