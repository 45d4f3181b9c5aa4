"""The grid <-> agent protocol (PROTOCOL.md): register, long-poll, commands, firewall, dist."""
from __future__ import annotations

import asyncio
import datetime as _dt
import math
import secrets
import threading
from typing import Any, Dict, List, Optional, Tuple

import anyio
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from .. import fim, resolved_firewall, svm
from ..agent_logs import write_start
from .. import agent_schemas as doc
# the bounds of a result (PROTOCOL.md) live with the protocol's models
from ..agent_schemas import (MAX_DEPTH, MAX_DETAIL_FIELDS, MAX_DETAILS, MAX_FINDINGS, MAX_ITEMS,
                             MAX_NAME, MAX_TEXT, POLICY_ID_MAX, TRUNCATED)
from ..auth import (agent_checked, agent_lookup, agent_row, agent_server, client_host,
                    hash_secret, secret_matches)
from ..common import answer_as_built, json_body, parse_time, record_event, tx
from ..db import default_group, get_setting, transaction
from ..errors import (ApiError, BadRequest, Conflict, PayloadTooLarge, RateLimited,
                      Unauthorized)
from ..models import (COMMAND_UNSTARTED, SCAN_FAILED,
                      Command, Finding, Group, Policy, Scan, Server, scan_outcome, utcnow)
from ..ratelimit import RateLimiter, client_key

router = APIRouter()

STR_FIELDS = ("hostname", "reported_fqdn", "server_label", "tag", "platform",
              "platform_version", "os_version", "kernel_name", "daemon_version",
              "primary_ip_address")


def _str(obj: Dict[str, Any], field: str) -> Optional[str]:
    val = obj.get(field)
    if val is None:
        return None
    if not isinstance(val, str):
        raise BadRequest("%s must be a string" % field)
    # the column's length (PostgreSQL refuses longer text: that was a 500)
    limit = getattr(Server.__table__.c[field].type, "length", None)
    if limit and len(val) > limit:
        raise BadRequest("%s must be at most %d characters" % (field, limit))
    return val


def host_address(value: Any, field: str) -> Optional[str]:
    """One host's IPv4 or IPv6 address in canonical form ("" or null: none), else 400.

    These addresses end up in other servers' firewalls (a group as a rule's source): a
    network, an unspecified or a multicast address there would match far more than this
    host, and a string that is no address would make the ruleset unloadable."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest("%s must be a string" % field)
    address = resolved_firewall.host_ip(value)
    if address is None or value != value.strip():
        raise BadRequest("%s must be the IPv4 or IPv6 address of one host (no network, "
                         "unspecified, multicast or zoned address): %r" % (field, value[:100]))
    return address


def _interfaces(obj: Dict[str, Any]) -> List[Dict[str, str]]:
    raw = obj.get("interfaces") or []
    if not isinstance(raw, list):
        raise BadRequest("interfaces must be a list of {name, ip}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise BadRequest("interfaces must be a list of {name, ip}")
        ip = host_address(item.get("ip"), "interfaces[%d].ip" % i)
        out.append({"name": str(item.get("name") or ""), "ip": ip or ""})
    return out


_limiter_lock = threading.Lock()


def _register_limiter(request: Request) -> RateLimiter:
    """Registrations per client address in each rate window (``--register-limit``): the
    daemon key is shared by every agent, so a leaked one must not flood the server list."""
    state = request.app.state
    limiter = getattr(state, "register_limiter", None)
    if limiter is None:
        with _limiter_lock:
            limiter = getattr(state, "register_limiter", None)
            if limiter is None:
                config = state.grid.config
                limiter = RateLimiter(getattr(config, "register_limit", 60), config.rate_window)
                state.register_limiter = limiter
    return limiter


def _record_duplicates(db: Session, srv: Server) -> None:
    """An event when a live server already has the new one's hostname or label: a host
    registering twice (a lost state file, a cloned image) or one posing as another."""
    same = [Server.hostname == srv.hostname]
    if srv.server_label:
        same.append(Server.server_label == srv.server_label)
    others = db.scalars(select(Server).where(
        Server.id != srv.id, Server.state.in_(resolved_firewall.LIVE_STATES), or_(*same))
        .order_by(Server.created_at).limit(5)).all()
    if not others:
        return
    described = ", ".join(
        "%s (%s, %s%s)" % (o.id, o.state, "hostname %s" % o.hostname if o.hostname == srv.hostname
                           else "label %s" % o.server_label,
                           ", from %s" % o.connecting_ip_address if o.connecting_ip_address else "")
        for o in others)
    record_event(db, "server_duplicate", "Duplicate server registered",
                 "Server %s (%s, from %s) registered with the hostname or label of: %s"
                 % (srv.hostname, srv.id, srv.connecting_ip_address or "?", described),
                 server=srv, actor="agent", critical=True)


def daemon_key_checked(request: Request) -> None:
    """Dependency of registration: the daemon key is checked before the body is read."""
    with transaction(request.app.state.grid.Session, read_only=True) as db:
        expected = get_setting(db, "agent_key") or ""
    if not secret_matches(request.headers.get("x-daemon-key", ""), expected):
        raise Unauthorized("invalid daemon key")


# parameters resolve in order: the key is checked before json_body reads the body
@router.post("/agent/v1/register", status_code=201, response_model=None,
             openapi_extra=doc.json_body(doc.AgentRegistration),
             responses={201: {"model": doc.AgentRegistered}, 400: {"model": doc.AgentError},
                        401: {"model": doc.AgentError}, 413: {"model": doc.AgentError}})
def register(request: Request, _key: None = Depends(daemon_key_checked),
             body: Any = Depends(json_body)):
    grid = request.app.state.grid
    with tx(request) as db:
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object describing the server")
        fields = {f: _str(body, f) for f in STR_FIELDS}
        if not fields["hostname"]:
            raise BadRequest("hostname is required")
        fields["primary_ip_address"] = host_address(fields["primary_ip_address"],
                                                    "primary_ip_address")
        interfaces = _interfaces(body)
        wait = _register_limiter(request).hit(client_key(client_host(request)))
        if wait is not None:
            raise RateLimited(wait)
        tag = fields["tag"]
        group = db.scalar(select(Group).where(Group.tag == tag)) if tag else None
        if group is None:
            group = default_group(db)
        secret = secrets.token_hex(24)
        now = utcnow()
        srv = Server(secret_hash=hash_secret(secret), group_id=group.id, state="active",
                     interfaces=interfaces, last_state_change=now, last_seen_at=now,
                     created_at=now,
                     connecting_ip_address=request.client.host if request.client else None,
                     **fields)
        if not srv.server_label:
            srv.server_label = None
        db.add(srv)
        db.flush()
        record_event(db, "server_registered", "Daemon registered",
                     "Server %s registered in group %s%s"
                     % (srv.hostname, group.name, " (tag %s)" % tag if tag else ""),
                     server=srv, group=group, actor="agent")
        _record_duplicates(db, srv)
        # its firewall version now, in this write: its first poll and firewall read only
        resolved_firewall.current(db, srv)
        out = {"server_id": srv.id, "agent_secret": secret, "group_id": group.id}
        # the servers whose firewall lists this group's members
        wake = resolved_firewall.affected_groups(db, source_groups=[group.id])
    grid.notifier.notify_many(groups=wake)
    return out


def _mark_seen(db: Session, srv: Server) -> bool:
    """Record contact; a missing server turns active again. True if it was reactivated."""
    now = utcnow()
    srv.last_seen_at = now
    if srv.state == "missing":
        srv.state = "active"
        srv.last_state_change = now
        record_event(db, "server_reactivated", "Server reactivated",
                     "Server %s is in contact again" % srv.hostname, server=srv, actor="agent")
        return True
    return False


# what the agent routes read of the calling server: a plain row, not an ORM object
_CALLER = agent_lookup(Server.hostname, Server.group_id, Server.platform,
                       Server.platform_version, Server.fw_version, Server.fw_hash)


def _record_contact(request: Request, row: Any, db: Optional[Session] = None) -> None:
    """The contact of a caller checked by agent_row: in the contact log (written once a
    second) while it is active, at once when it was missing (it turns active again: a
    write and an event), in `db` or else in a transaction of its own."""
    if row.state != "missing":
        request.app.state.grid.contacts.seen(row.id)
    elif db is not None:
        _mark_seen(db, db.get(Server, row.id))
    else:
        with tx(request) as own:
            _mark_seen(own, own.get(Server, row.id))


def _caller_in_contact(db: Session, request: Request) -> Any:
    """The calling agent's server as a row (agent_row with _CALLER), its contact
    recorded (_record_contact). An agent's write then holds SQLite's one write turn without
    loading and updating its server row."""
    row = agent_row(db, request, _CALLER)
    _record_contact(request, row, db)
    return row


def _policies_for(db: Session, group_id: str) -> List[Dict[str, Any]]:
    """The configuration policies a scan of the group's servers runs, as agents get them."""
    g = db.get(Group, group_id)
    out = []
    for pid in (g.policy_ids if g else None) or []:
        p = db.get(Policy, pid)
        if p is not None:
            pol = dict(p.body or {})
            pol.update({"id": p.id, "name": p.name})
            pol.setdefault("rules", [])
            out.append(pol)
    return out


# the idle look's one statement: with whether the server has a command not started yet
_POLL_LOOK = agent_lookup(
    Server.group_id, Server.fw_version, Server.fw_hash,
    select(Command.id).where(Command.server_id == Server.id,
                             Command.status.in_(COMMAND_UNSTARTED)).exists().label("has_unstarted"))


def _handed_out(db: Session, grid: Any, srv: Any) -> List[Dict[str, Any]]:
    """The server's commands not started yet, as a poll's answer carries them, each logged
    as handed out (agent_logs.py). A pending command is handed out again: an agent polls
    only when it has nothing left to run, so one it has not started never reached it (say
    the grid restarted while answering the poll that carried it)."""
    rows = db.execute(select(Command.id, Command.name, Command.scan_id).where(
        Command.server_id == srv.id,
        Command.status.in_(COMMAND_UNSTARTED)).order_by(Command.created_at)).all()
    commands, policies = [], None
    for c in rows:
        if grid.command_progress.is_started(c.id):  # the agent's now, if not written yet
            continue
        if c.name == "fim":  # what to walk and why (fim.py)
            commands.append(dict(fim.command_payload(db, c), id=c.id, name=c.name,
                                 policies=[]))
        else:
            if policies is None:
                policies = _policies_for(db, srv.group_id)
            commands.append({"id": c.id, "name": c.name, "policies": policies})
        grid.command_progress.handed_out(c.id, c.scan_id, srv.id, c.name)
    return commands


def _poll_check(request: Request, fw_version: Optional[int], since: int
                ) -> Tuple[Optional[Dict[str, Any]], str, int]:
    """One look at the database for a long-poll: (the answer if there is one now, the
    server's group, its firewall version). Hands out the server's open commands.

    A look reads one row (the credential, the state, the firewall version and whether a
    command waits) and the group's firewall digest, mostly from memory (GroupDigests), and
    the commands when one waits; the contact and the handouts go to the batched logs
    (agent_logs.py). Only a look with something to write now (a new firewall version, a
    missing server back) takes a write transaction. `since`: notifier.mark() before it."""
    grid = request.app.state.grid
    with transaction(grid.Session, read_only=True) as db:
        row = agent_row(db, request, _POLL_LOOK)
        version = grid.firewall_digests.unchanged_version(
            db, row.group_id, row.fw_version, row.fw_hash, since)
        if row.state == "active" and version is not None:
            grid.contacts.seen(row.id)
            commands = _handed_out(db, grid, row) if row.has_unstarted else []
            answer = None
            if commands or (fw_version is not None and fw_version != version):
                answer = {"commands": commands, "firewall_version": version}
            return answer, row.group_id, version
    with tx(request) as db:
        # a missing server turning active changes no firewall (missing servers stay in
        # their groups' sources): nobody to wake
        srv = _caller_in_contact(db, request)
        commands = _handed_out(db, grid, srv)
        version = grid.firewall_digests.unchanged_version(db, srv.group_id, srv.fw_version,
                                                          srv.fw_hash, since)
        if version is None:  # its answer changed: a new version (a write on its row)
            version, _policy = resolved_firewall.current(db, db.get(Server, srv.id))
        answer = None
        if commands or (fw_version is not None and fw_version != version):
            answer = {"commands": commands, "firewall_version": version}
        return answer, srv.group_id, version


def _claimed_server_id(request: Request) -> str:
    """The server id the credential names (checked by the poll's transaction)."""
    cred = request.headers.get("authorization", "")[6:].strip()
    return cred.partition(":")[0][:64]


@router.get("/agent/v1/poll", responses={
    200: {"model": doc.AgentPollAnswer}, 204: {"description": "the agent went away"},
    400: {"model": doc.AgentError}, 401: {"model": doc.AgentError}})
async def poll(request: Request):
    """Long-poll (PROTOCOL.md). The database is read when the poll starts and again only
    when a change that can alter this server's answer wakes it (notify.py): an idle poll
    costs one transaction however long it waits."""
    grid = request.app.state.grid
    q = request.query_params
    try:
        wait = float(q.get("wait", "0") or 0)
    except ValueError:
        raise BadRequest("wait must be a number of seconds")
    if not math.isfinite(wait):
        raise BadRequest("wait must be a number of seconds")
    wait = max(0.0, min(wait, grid.config.max_poll_wait))
    fwv_raw = q.get("firewall_version")
    fw_version: Optional[int] = None
    if fwv_raw not in (None, ""):
        try:
            fw_version = int(fwv_raw)
        except ValueError:
            raise BadRequest("firewall_version must be an integer")
    notifier = grid.notifier
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    # registered before the first look: a command queued after that look wakes this poll,
    # one queued before it is in the look's answer
    waiter = notifier.register(_claimed_server_id(request))
    try:
        while True:
            waiter.event.clear()
            since = notifier.mark()
            # on the looks' own threads, not the public API's (agentshare.py)
            answer, group_id, version = await anyio.to_thread.run_sync(
                _poll_check, request, fw_version, since, limiter=grid.poll_look_threads)
            if answer is not None:
                # as built: FastAPI's encoder walked every rule of every policy it carries
                return answer_as_built(answer)
            notifier.set_group(waiter, group_id, since)
            remaining = deadline - loop.time()
            if remaining > 0:
                try:
                    await asyncio.wait_for(waiter.event.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            if not waiter.event.is_set():
                # nothing that could change the answer happened since the last look; the
                # agent was connected all along, so its contact is now, not the poll's start
                grid.contacts.seen(waiter.server_id)
                return answer_as_built({"commands": [], "firewall_version": version})
            if await request.is_disconnected():
                return Response(status_code=204)
    finally:
        notifier.unregister(waiter)


def _open_command(db: Session, srv: Server, command_id: str, lock: bool = False) -> Command:
    """The server's own command, still open: an agent may neither touch another server's
    commands nor restart or re-answer a finished one. `lock` (a write): the command's row
    first (FOR UPDATE on PostgreSQL), before its scan, as agent_logs' writes lock them."""
    c = db.get(Command, command_id, with_for_update=lock)
    if c is None or c.server_id != srv.id:
        raise ApiError({"error": "no command %s for this server" % command_id}, 404)
    if c.status in ("completed", "failed"):
        raise Conflict("command %s is already %s" % (c.id, c.status))
    return c


@router.post("/agent/v1/commands/{command_id}/start", status_code=204)
def start_command(command_id: str, request: Request):
    """Checked now (404 / 409), written within a second (agent_logs.py), or with the
    command's result if that comes first."""
    grid = request.app.state.grid
    with transaction(grid.Session, read_only=True) as db:
        row = agent_row(db, request)
        c = _open_command(db, row, command_id)
        name, scan_id, status = c.name, c.scan_id, c.status
    _record_contact(request, row)
    if status != "started":
        grid.command_progress.started(command_id, scan_id, row.id, name)
    return Response(status_code=204)


FINDING_STATUSES = ("good", "bad", "indeterminate")


def _not_applicable(finding: Dict[str, Any]) -> bool:
    """A rule whose subject is absent (haloagent's applies_to): Halo's statuses carry it as
    a good finding whose every detail has scan_status ``not_applicable``."""
    details = finding.get("details") or []
    return bool(details) and all(isinstance(d, dict) and d.get("scan_status") == "not_applicable"
                                 for d in details)

def _too_much(what: str) -> PayloadTooLarge:
    return PayloadTooLarge("scan result too large: " + what)


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT - len(TRUNCATED)] + TRUNCATED


def _bounded(value: Any, where: str, depth: int = 0) -> Any:
    """A detail's value with long texts cut; 413 for one nested or wide beyond the limits."""
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth >= MAX_DEPTH:
        raise _too_much("%s is nested deeper than %d levels" % (where, MAX_DEPTH))
    limit = MAX_DETAIL_FIELDS if depth == 0 else MAX_ITEMS
    if len(value) > limit:
        raise _too_much("%s has %d items (at most %d)" % (where, len(value), limit))
    if isinstance(value, list):
        return [_bounded(v, "%s[%d]" % (where, i), depth + 1) for i, v in enumerate(value)]
    out = {}
    for k, v in value.items():  # JSON objects only: json_body made it
        if len(k) > MAX_NAME:
            raise _too_much("%s has a field name longer than %d characters"
                            % (where, MAX_NAME))
        out[k] = _bounded(v, "%s.%s" % (where, k), depth + 1)
    return out


def _findings(raw: Any) -> List[Dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("scan.findings must be a list")
    if len(raw) > MAX_FINDINGS:
        raise _too_much("scan.findings has %d findings (at most %d)"
                        % (len(raw), MAX_FINDINGS))
    out = []
    for i, f in enumerate(raw):
        if not isinstance(f, dict):
            raise BadRequest("scan.findings[%d] must be an object" % i)
        status = f.get("status")
        if status not in FINDING_STATUSES:
            raise BadRequest("scan.findings[%d].status must be one of %s"
                             % (i, ", ".join(FINDING_STATUSES)))
        details = f.get("details") or []
        if not isinstance(details, list):
            raise BadRequest("scan.findings[%d].details must be a list" % i)
        if len(details) > MAX_DETAILS:
            raise _too_much("scan.findings[%d].details has %d details (at most %d)"
                            % (i, len(details), MAX_DETAILS))
        for j, d in enumerate(details):
            if not isinstance(d, dict):
                raise BadRequest("scan.findings[%d].details[%d] must be an object" % (i, j))
        details = [_bounded(d, "scan.findings[%d].details[%d]" % (i, j))
                   for j, d in enumerate(details)]
        crit = f.get("critical", False)
        if not isinstance(crit, bool):
            raise BadRequest("scan.findings[%d].critical must be true or false" % i)
        rule_name = f.get("rule_name")
        policy_id = f.get("policy_id")
        if policy_id is not None and len(str(policy_id)) > POLICY_ID_MAX:
            raise BadRequest("scan.findings[%d].policy_id is longer than %d characters"
                             % (i, POLICY_ID_MAX))
        out.append({"rule_name": None if rule_name is None else _text(str(rule_name)),
                    "policy_id": None if policy_id is None else str(policy_id),
                    "critical": crit, "status": status, "details": details})
    return out


def _agent_time(scan: Dict[str, Any], field: str) -> Optional[_dt.datetime]:
    val = scan.get(field)
    if val is None:
        return None
    if not isinstance(val, str):
        raise BadRequest("scan.%s must be an ISO 8601 string" % field)
    try:
        return parse_time(val, field)
    except ApiError:
        raise BadRequest("scan.%s must be an ISO 8601 string" % field)


def _svm_packages(scan: Dict[str, Any]) -> List[Dict[str, Any]]:
    try:
        return svm.validate_packages(scan.get("packages"))
    except OverflowError as exc:
        raise _too_much(str(exc))
    except ValueError as exc:
        raise BadRequest(str(exc))


@router.post("/agent/v1/commands/{command_id}/fim_objects", status_code=204,
             openapi_extra=doc.json_body(doc.AgentFimObjects),
             responses={400: {"model": doc.AgentError}, 401: {"model": doc.AgentError},
                        404: {"model": doc.AgentError}, 409: {"model": doc.AgentError},
                        413: {"model": doc.AgentError}})
def fim_objects(command_id: str, request: Request, _agent: Any = Depends(agent_checked),
                body: Any = Depends(json_body)):
    """One chunk of a fim command's inventory (fim.py); 409 once the command is closed."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with objects")
    raw = body.get("objects")
    if isinstance(raw, list) and len(raw) > fim.MAX_OBJECTS:  # before looking at any
        raise PayloadTooLarge("fim objects too large: %d objects in one chunk (at most %d)"
                              % (len(raw), fim.MAX_OBJECTS))
    with tx(request) as db:
        srv = agent_server(db, request)
        _mark_seen(db, srv)
        c = _open_command(db, srv, command_id)
        rows = fim.validate_objects(raw, fim.command_rules(db, c))
        fim.store_objects(db, c, rows)
    return Response(status_code=204)


@router.post("/agent/v1/commands/{command_id}/result", status_code=204,
             openapi_extra=doc.json_body(doc.AgentCommandResult),
             responses={400: {"model": doc.AgentError}, 401: {"model": doc.AgentError},
                        413: {"model": doc.AgentError}})
def command_result(command_id: str, request: Request, _agent: Any = Depends(agent_checked),
                   body: Any = Depends(json_body)):
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with status and scan")
    status = body.get("status")
    if status not in ("completed", "failed"):
        raise BadRequest("status must be completed or failed")
    scan_obj = body.get("scan")
    if scan_obj is not None and not isinstance(scan_obj, dict):
        raise BadRequest("scan must be an object")
    scan_obj = scan_obj or {}
    findings = _findings(scan_obj.get("findings"))
    packages = _svm_packages(scan_obj)  # svm: the installed packages the grid matches
    started = _agent_time(scan_obj, "agent_started_at")
    completed = _agent_time(scan_obj, "agent_completed_at")
    reason = body.get("result")
    if reason is not None:
        reason = _text(reason if isinstance(reason, str) else str(reason))
    progress = request.app.state.grid.command_progress
    start = progress.take(command_id)  # written with the result (agent_logs.py)
    try:
        with tx(request) as db:
            srv = _caller_in_contact(db, request)
            c = _open_command(db, srv, command_id, lock=True)
            if c.name == "fim" and not c.scan_id:  # a fim baseline: no scan (fim.py)
                write_start(db, start, srv, None)
                fim.finish_baseline(db, srv, c, status, reason, scan_obj)
                return Response(status_code=204)
            if c.name == "fim":
                findings = []  # the grid makes a fim scan's findings, never the agent
            now = utcnow()
            c.status = status
            c.result = reason if status == "failed" else None
            c.updated_at = now
            sc = db.get(Scan, c.scan_id) if c.scan_id else None
            if sc is None:
                sc = Scan(server_id=srv.id, server_hostname=srv.hostname, group_id=srv.group_id,
                          command_id=c.id, module=c.name, created_at=c.created_at)
                db.add(sc)
                db.flush()
                c.scan_id = sc.id
            write_start(db, start, srv, sc)
            if findings:  # one multi-row INSERT, not one ORM object per finding
                db.execute(insert(Finding), [dict(f, scan_id=sc.id, position=pos)
                                             for pos, f in enumerate(findings)])
            crit = sum(1 for f in findings if f["status"] == "bad" and f["critical"])
            noncrit = sum(1 for f in findings if f["status"] == "bad" and not f["critical"])
            # a not-applicable finding (good, every detail scan_status "not_applicable") is
            # no evidence of a pass: not counted as ok
            ok = sum(1 for f in findings if f["status"] == "good" and not _not_applicable(f))
            if status == "failed":
                sc.status = SCAN_FAILED
            else:  # what the agent sent is findings; the status is the grid's
                sc.status = scan_outcome(any(f["status"] in ("bad", "indeterminate")
                                             for f in findings))
            sc.critical_findings_count, sc.non_critical_findings_count = crit, noncrit
            sc.ok_findings_count = ok
            sc.agent_started_at = started or sc.agent_started_at
            sc.agent_completed_at = completed or now
            sc.analysis_started_at, sc.analysis_completed_at, sc.completed_at = now, now, now
            sc.result = c.result
            sc.server_hostname = srv.hostname
            if c.name == "svm" and status == "completed":  # findings from the feed (svm.py)
                why = svm.apply_result(db, srv, sc, scan_obj, packages)
                if why:
                    status = c.status = sc.status = "failed"
                    reason = c.result = sc.result = why
                crit, noncrit = sc.critical_findings_count, sc.non_critical_findings_count
                ok = sc.ok_findings_count
            elif c.name == "fim":  # the diff against the baselines, in the database (fim.py)
                why = fim.apply_scan(db, srv, sc, c, scan_obj) if status == "completed" else None
                if status == "failed":
                    fim.discard_objects(db, c.id)
                if why:
                    fim.clear_findings(db, sc.id)
                    sc.critical_findings_count = sc.non_critical_findings_count = 0
                    sc.ok_findings_count = 0
                    status = c.status = sc.status = "failed"
                    reason = c.result = sc.result = why
                crit, noncrit = sc.critical_findings_count, sc.non_critical_findings_count
                ok = sc.ok_findings_count
            if status == "failed":
                record_event(db, "scan_failed", "Scan failed", "%s scan failed on server %s: %s"
                             % (c.name, srv.hostname, reason or "no reason given"), server=srv,
                             actor="agent", object_id=sc.id, critical=True)
            else:
                record_event(db, "scan_completed", "Scan completed",
                             "%s scan completed on server %s: %s (%d critical, %d non-critical "
                             "bad, %d ok)" % (c.name, srv.hostname, sc.status, crit, noncrit, ok),
                             server=srv, actor="agent", object_id=sc.id,
                             critical=bool(crit))
    except BaseException:
        progress.give_back(start)
        raise
    return Response(status_code=204)


@router.get("/agent/v1/firewall", responses={200: {"model": doc.AgentFirewall},
                                              401: {"model": doc.AgentError}})
def firewall(request: Request):
    grid = request.app.state.grid
    # mostly read only: the version the poll announced names this answer already
    with transaction(grid.Session, read_only=True) as db:
        row = agent_row(db, request, _CALLER)
        stored = resolved_firewall.stored_answer(db, row.group_id, row.fw_version, row.fw_hash)
        if row.state == "active" and stored is not None:
            grid.contacts.seen(row.id)
            return {"version": stored[0], "policy": stored[1]}
    with tx(request) as db:
        srv = agent_server(db, request)
        _mark_seen(db, srv)
        version, policy = resolved_firewall.current(db, srv)
        return {"version": version, "policy": policy}


FW_VERSION_MAX = 2 ** 31 - 1


@router.post("/agent/v1/firewall/status", status_code=204,
             openapi_extra=doc.json_body(doc.AgentFirewallStatus),
             responses={400: {"model": doc.AgentError}, 401: {"model": doc.AgentError}})
def firewall_status(request: Request, caller: Any = Depends(agent_checked),
                    body: Any = Depends(json_body)):
    """The agent's report on the firewall version it applied, written within a second
    with the other reports (agent_logs.py): one write turn each was the fleet's queue
    after every firewall change."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with version and status")
    version, status = body.get("version"), body.get("status")
    # a version the grid handed out: an Integer column (a larger one was a 500)
    if isinstance(version, bool) or not isinstance(version, int) or \
            not 0 <= version <= FW_VERSION_MAX:
        raise BadRequest("version must be an integer 0..%d" % FW_VERSION_MAX)
    if status not in ("applied", "failed"):
        raise BadRequest("status must be applied or failed")
    message = body.get("message")
    _record_contact(request, caller)
    request.app.state.grid.firewall_reports.report(
        caller.id, version, status, None if message is None else _text(str(message)))
    return Response(status_code=204)


@router.get("/agent/v1/dist/haloagent.pyz", response_class=Response, responses={
    200: {"content": {"application/zip": {}}}, 503: {"model": doc.AgentError}})
def dist(request: Request):
    from ..dist import agent_pyz
    data = agent_pyz()
    if data is None:
        raise ApiError({"error": "the haloagent package is not installed on this grid"}, 503)
    return Response(content=data, media_type="application/zip",
                    headers={"Content-Disposition": "attachment; filename=haloagent.pyz"})


@router.get("/agent/v1/ping", responses={200: {"model": doc.AgentPing}})
def ping():
    return {"status": "ok"}

