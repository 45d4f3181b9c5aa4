"""Deadlines of commands and scans, and the scans the grid starts by itself.

An agent killed mid-scan never reports, and a server that is retired or never polls again
never picks its commands up. A command (and its scan) open longer than `command_timeout`
seconds - queued/pending counted from its creation, started from its start - is failed with
the reason, and so are a retired server's open commands at once.

A group with a `scan_interval` gets a configuration scan queued on each member whose latest
one is older than that (schedule_scans); a member whose agent is missing gets the scan
recorded as failed with the reason instead. Both run in the grid's periodic sweep (app.py).
"""
from __future__ import annotations

import datetime as _dt
import logging
from typing import Callable, Iterable, List, Optional, Tuple

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from .common import record_event
from .models import (COMMAND_UNSTARTED, SCAN_FAILED, SCAN_OPEN, SCAN_QUEUED, Command, Group, Scan,
                     Server, new_id, utcnow)

log = logging.getLogger("halogrid")

OPEN_COMMANDS = ("queued", "pending", "started")


def fail_scan(db: Session, sc: Scan, reason: str, now: _dt.datetime,
              server: Optional[Server] = None) -> None:
    if sc.status not in SCAN_OPEN:
        return
    sc.status = SCAN_FAILED
    sc.result = reason
    sc.analysis_started_at = sc.analysis_started_at or now
    sc.analysis_completed_at = now
    sc.completed_at = now
    server = server or db.get(Server, sc.server_id)
    record_event(db, "scan_failed", "Scan failed", "%s scan failed on server %s: %s"
                 % (sc.module, server.hostname if server else sc.server_hostname, reason),
                 server=server, actor="grid", object_id=sc.id, critical=True)


def fail_command(db: Session, c: Command, reason: str, now: _dt.datetime,
                 server: Optional[Server] = None) -> None:
    """Close an open command (and its scan) as failed with `reason`."""
    if c.status not in OPEN_COMMANDS:
        return
    c.status = "failed"
    c.result = reason
    c.updated_at = now
    sc = db.get(Scan, c.scan_id) if c.scan_id else None
    if sc is not None:
        fail_scan(db, sc, reason, now, server)


def close_server_commands(db: Session, server: Server, reason: str) -> int:
    """Fail every open command of `server` (say it was retired); return how many."""
    now = utcnow()
    rows = db.scalars(select(Command).where(Command.server_id == server.id,
                                            Command.status.in_(OPEN_COMMANDS))
                      .order_by(Command.created_at)).all()
    for c in rows:
        fail_command(db, c, reason, now, server)
    return len(rows)


def sweep_deadlines(session: sessionmaker, timeout: float) -> int:
    """Fail commands and scans past their deadline; return how many commands and scans."""
    if timeout <= 0:
        return 0
    now = utcnow()
    cutoff = now - _dt.timedelta(seconds=timeout)
    n = 0
    with session() as db, db.begin():
        # SKIP LOCKED (PostgreSQL): a command an agent is answering right now is left to it
        rows = db.scalars(select(Command).where(or_(
            and_(Command.status.in_(COMMAND_UNSTARTED), Command.created_at < cutoff),
            and_(Command.status == "started", Command.updated_at < cutoff)))
            .order_by(Command.created_at).limit(500)
            .with_for_update(skip_locked=True)).all()
        for c in rows:
            if c.status == "started":
                reason = ("timed out: no result within %g s of the scan's start (was the "
                          "agent stopped mid-scan?)" % timeout)
            else:
                reason = ("timed out: the server's agent did not start the command within "
                          "%g s (is it running?)" % timeout)
            fail_command(db, c, reason, now)
            n += 1
        # a scan still open whose command is gone or closed has nobody left to finish it
        scans = db.scalars(select(Scan).where(Scan.status.in_(SCAN_OPEN),
                                              Scan.created_at < cutoff)
                           .order_by(Scan.created_at).limit(500)
                           .with_for_update(skip_locked=True)).all()
        for sc in scans:
            c = db.get(Command, sc.command_id) if sc.command_id else None
            if c is None or c.status not in OPEN_COMMANDS:
                fail_scan(db, sc, "timed out: the scan's command is %s"
                          % (c.status if c is not None else "gone"), now)
                n += 1
    if n:
        log.info("deadline sweep: %d command(s)/scan(s) failed after %g s", n, timeout)
    return n


# the module of the scheduled scan (what POST /v1/servers/{id}/scans stores for sca and csm)
SCHEDULED_MODULE = "sca"
SCHEDULE_BATCH = 500


def schedule_scans(session: sessionmaker, now: Optional[_dt.datetime] = None,
                   notify: Optional[Callable[[Iterable[str], Iterable[str]], None]] = None,
                   limit: int = SCHEDULE_BATCH) -> int:
    """Queue an sca scan on each active member of a group with a `scan_interval` whose latest
    sca scan (any origin, any outcome) was created longer than that ago and who has none
    open; a missing member gets it recorded as failed, with the reason. At most `limit` per
    round (the rest are still due next round). `notify(servers, groups)`
    wakes the long-polls of the servers once committed. Returns how many scans were recorded.
    """
    now = now or utcnow()
    woken: List[str] = []
    n = 0
    with session() as db, db.begin():
        # SKIP LOCKED (PostgreSQL): two grids on one database never schedule a group twice
        groups = db.scalars(select(Group).where(Group.scan_interval.is_not(None))
                            .order_by(Group.id).with_for_update(skip_locked=True)).all()
        for g in groups:
            if n >= limit:
                break
            cutoff = now - _dt.timedelta(seconds=g.scan_interval)
            recent = exists().where(Scan.server_id == Server.id,
                                    Scan.module == SCHEDULED_MODULE,
                                    or_(Scan.created_at > cutoff, Scan.status.in_(SCAN_OPEN)))
            due = db.scalars(select(Server).where(Server.group_id == g.id,
                                                  Server.state.in_(("active", "missing")),
                                                  ~recent)
                             .order_by(Server.created_at, Server.id).limit(limit - n)).all()
            for srv in due:
                _scheduled_scan(db, srv, g, now)
                if srv.state == "active":
                    woken.append(srv.id)
                n += 1
    if woken and notify is not None:
        notify(woken, ())
    if n:
        log.info("scan schedule: %d scan(s) recorded, %d queued", n, len(woken))
    return n


def queue_scan(db: Session, srv: Server, module: str, now: _dt.datetime, actor: str,
               message: str, group: Optional[Group] = None) -> Tuple[Command, Scan]:
    """A scan command for `srv`, queued, and its scan record, linked both ways (the command's
    scan_id from the start: halo_scan judges exactly that scan), with its scan_requested event."""
    # ids chosen here: both rows go in at the commit's one flush, already linked
    cmd = Command(id=new_id(), server_id=srv.id, name=module, status="queued", created_at=now,
                  updated_at=now, scan_id=new_id())
    sc = Scan(id=cmd.scan_id, server_id=srv.id, server_hostname=srv.hostname,
              group_id=srv.group_id, command_id=cmd.id, module=module, status=SCAN_QUEUED,
              created_at=now)
    db.add_all([cmd, sc])
    record_event(db, "scan_requested", "Scan requested", message, server=srv, group=group,
                 actor=actor, object_id=sc.id)
    return cmd, sc


def _scheduled_scan(db: Session, srv: Server, g: Group, now: _dt.datetime) -> None:
    cmd, _scan = queue_scan(db, srv, SCHEDULED_MODULE, now, "grid",
                            "%s scan requested on server %s (scheduled: every %d s in group %s)"
                            % (SCHEDULED_MODULE, srv.hostname, g.scan_interval, g.name), group=g)
    if srv.state != "active":
        # recorded, not skipped: whoever reads the server's latest scan sees why there is none
        fail_command(db, cmd, "not run: the server's agent is %s (last contact %sZ); the scan "
                     "scheduled every %d s by group %s could not start"
                     % (srv.state, srv.last_seen_at.isoformat(), g.scan_interval, g.name),
                     now, srv)
