"""Deadlines of commands and scans: nothing stays open forever.

An agent killed mid-scan never reports, and a server that is retired or never polls again
never picks its commands up. A command (and its scan) open longer than `command_timeout`
seconds - queued/pending counted from its creation, started from its start - is failed with
the reason, and so are a retired server's open commands at once.
"""
from __future__ import annotations

import datetime as _dt
import logging
from typing import Optional

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from .common import record_event
from .models import Command, Scan, Server, utcnow

log = logging.getLogger("halogrid")

OPEN_COMMANDS = ("queued", "pending", "started")
OPEN_SCANS = ("queued", "pending", "running")


def fail_scan(db: Session, sc: Scan, reason: str, now: _dt.datetime,
              server: Optional[Server] = None) -> None:
    if sc.status not in OPEN_SCANS:
        return
    sc.status = "failed"
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
            and_(Command.status.in_(("queued", "pending")), Command.created_at < cutoff),
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
        scans = db.scalars(select(Scan).where(Scan.status.in_(OPEN_SCANS),
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
