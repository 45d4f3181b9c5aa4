"""What agents report that the grid writes in batches, every FLUSH_EVERY seconds.

On SQLite one transaction writes at a time. With thousands of agents, reports that decide
nothing queued for that turn and made everything else wait behind them: every long-poll's
contact, every agent's firewall status after a change (10,000 at once when a fleet starts
or a group's policy changes), and every scan command's handout and start. They are kept
here and written by the grid's background round, each log in one transaction, so the
public API shows them up to FLUSH_EVERY seconds late.

What decides something is still written by the request itself: a scan's result (and with
it a start still waiting here, so the events keep their order), a missing server coming
back, a new firewall version. A log whose write fails keeps its entries for the next round.
The missing-server and deadline sweeps write the logs first, so they never judge a server
or a command on a report still waiting here.
"""
from __future__ import annotations

import datetime as _dt
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import bindparam, func, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker

from .common import event_fields, record_event
from .db import transaction
from .models import (COMMAND_UNSTARTED, SCAN_PENDING, SCAN_QUEUED, SCAN_RUNNING, Command, Event,
                     Group, Scan, Server, utcnow)

FLUSH_EVERY = 1.0  # seconds: how far the API may be behind what agents reported

# how many ids one statement names (SQLite's variable limit is far above)
_IDS_PER_STATEMENT = 500


def _rows_by_id(conn: Any, query: Any, id_column: Any, ids: List[str],
                lock: bool = False) -> Dict[str, Any]:
    """{id: row} of `query` (a select whose first column is `id_column`) for the (sorted)
    ids that exist, a few hundred ids per statement; `lock`: FOR UPDATE, in id order."""
    out = {}
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        stmt = (query.where(id_column.in_(ids[start:start + _IDS_PER_STATEMENT]))
                .order_by(id_column))
        for row in conn.execute(stmt.with_for_update() if lock else stmt):
            out[row[0]] = row
    return out


# what an event names of a server (hostname, group id and name), and its firewall status
_SERVER_FOR_EVENTS = (
    select(Server.id, Server.hostname, Server.group_id, Group.name.label("group_name"),
           Server.fw_status, Server.fw_status_version)
    .outerjoin(Group, Group.id == Server.group_id))


def _event(seq: int, at: _dt.datetime, type_: str, name: str, message: str, server: Any,
           critical: bool = False, object_id: Optional[str] = None) -> Dict[str, Any]:
    """The event row of an agent's report (`server`: a _SERVER_FOR_EVENTS row): its place
    among the others is when the report arrived, not when it was written."""
    return event_fields(type_, name, message, server_id=server.id,
                        server_hostname=server.hostname, group_id=server.group_id,
                        group_name=server.group_name, actor="agent", critical=critical,
                        object_id=object_id, seq=seq, created_at=at)


class _Log:
    """Entries kept under a lock and written by `_write(conn, batch)` in one transaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _take(self) -> Any:
        raise NotImplementedError

    def _give_back(self, batch: Any) -> None:
        raise NotImplementedError

    def _write(self, conn: Any, batch: Any) -> int:
        raise NotImplementedError

    def _written(self) -> None:
        """After a flush, written or given back (under the lock)."""

    def flush(self, factory: sessionmaker) -> int:
        """Write the entries kept so far; how many rows they were."""
        with self._lock:
            batch = self._take()
        if not batch:
            return 0
        try:
            with transaction(factory) as db:
                return self._write(db.connection(), batch)
        except BaseException:
            with self._lock:
                self._give_back(batch)
            raise
        finally:
            with self._lock:
                self._written()


class ContactLog(_Log):
    """When each server last contacted the grid (last_seen_at): every long-poll is one."""

    def __init__(self) -> None:
        super().__init__()
        self._latest: Dict[str, _dt.datetime] = {}

    def seen(self, server_id: str, when: Optional[_dt.datetime] = None) -> None:
        when = when or utcnow()
        with self._lock:
            if when > self._latest.get(server_id, when - _dt.timedelta(1)):
                self._latest[server_id] = when

    def pending(self) -> int:
        with self._lock:
            return len(self._latest)

    def _take(self) -> Dict[str, _dt.datetime]:
        batch, self._latest = self._latest, {}
        return batch

    def _give_back(self, batch: Dict[str, _dt.datetime]) -> None:
        # a lost contact could mark a live server missing
        for sid, when in batch.items():
            if when > self._latest.get(sid, when - _dt.timedelta(1)):
                self._latest[sid] = when

    def _write(self, conn: Any, batch: Dict[str, _dt.datetime]) -> int:
        table = Server.__table__
        # never move a contact back: a write path (a result, a reactivation) may have
        # recorded a later one already
        stmt = (table.update()
                .where(table.c.id == bindparam("server_id"))
                .where(or_(table.c.last_seen_at.is_(None),
                           table.c.last_seen_at < bindparam("seen_at")))
                .values(last_seen_at=bindparam("seen_at")))
        rows = [{"server_id": sid, "seen_at": when} for sid, when in sorted(batch.items())]
        conn.execute(stmt, rows)
        return len(rows)


@dataclass(frozen=True)
class FirewallReport:
    """One POST /agent/v1/firewall/status, as checked by its route."""
    server_id: str
    version: int
    status: str  # applied | failed
    message: Optional[str]
    seq: int  # time.time_ns() when it arrived
    at: _dt.datetime


class FirewallStatusLog(_Log):
    """What each agent last said of the firewall version it applied. Nothing decides on it:
    admission reads scans, and what an agent applies comes from the grid, not from this."""

    def __init__(self) -> None:
        super().__init__()
        self._reports: List[FirewallReport] = []  # in the order they arrived

    def report(self, server_id: str, version: int, status: str,
               message: Optional[str]) -> None:
        entry = FirewallReport(server_id, version, status, message, time.time_ns(), utcnow())
        with self._lock:
            self._reports.append(entry)

    def pending(self) -> int:
        with self._lock:
            return len(self._reports)

    def _take(self) -> List[FirewallReport]:
        batch, self._reports = self._reports, []
        return batch

    def _give_back(self, batch: List[FirewallReport]) -> None:
        self._reports[:0] = batch

    def _write(self, conn: Any, batch: List[FirewallReport]) -> int:
        """Each server's last report on its row, and an event for every report that changed
        its status or version (in the order they arrived, as when each was written alone).
        A server deleted since its report is skipped."""
        servers = _rows_by_id(conn, _SERVER_FOR_EVENTS, Server.id,
                              sorted({r.server_id for r in batch}))
        current = {sid: (row.fw_status, row.fw_status_version) for sid, row in servers.items()}
        events, last = [], {}
        for r in batch:
            if r.server_id not in servers:
                continue
            if current[r.server_id] != (r.status, r.version):
                current[r.server_id] = (r.status, r.version)
                failed = r.status == "failed"
                events.append(_event(
                    r.seq, r.at, "firewall_%s" % r.status, "Firewall policy %s" % r.status,
                    "Firewall version %d %s on server %s%s"
                    % (r.version, r.status, servers[r.server_id].hostname,
                       ": %s" % r.message if r.message and failed else ""),
                    servers[r.server_id], critical=failed))
            last[r.server_id] = r
        if last:
            table = Server.__table__
            conn.execute(table.update().where(table.c.id == bindparam("server_id"))
                         .values(fw_status=bindparam("status"),
                                 fw_status_version=bindparam("version"),
                                 fw_status_message=bindparam("message")),
                         # in id order, as the contacts: two writers never wait on each other
                         [{"server_id": r.server_id, "status": r.status, "version": r.version,
                           "message": r.message} for _sid, r in sorted(last.items())])
        if events:
            conn.execute(insert(Event), events)
        return len(last)


@dataclass(frozen=True)
class CommandProgress:
    """A command handed out by a poll (queued -> pending) or started by its agent."""
    command_id: str
    scan_id: Optional[str]
    started: bool
    seq: int
    at: _dt.datetime
    server_id: str
    name: str  # the command's module, for the scan_started event


class CommandProgressLog(_Log):
    """Scan commands handed out and started. Neither decides anything: an unstarted command
    (queued or pending) is handed out again at the next poll either way, and the deadline
    sweep writes this log before it looks."""

    def __init__(self) -> None:
        super().__init__()
        self._entries: Dict[str, CommandProgress] = {}  # by command id, in arrival order
        self._writing: Dict[str, CommandProgress] = {}  # taken by a flush not yet committed

    def handed_out(self, command_id: str, scan_id: Optional[str], server_id: str,
                   name: str) -> None:
        entry = CommandProgress(command_id, scan_id, False, time.time_ns(), utcnow(),
                                server_id, name)
        with self._lock:
            self._entries.setdefault(command_id, entry)  # a start logged already stays

    def started(self, command_id: str, scan_id: Optional[str], server_id: str,
                name: str) -> None:
        entry = CommandProgress(command_id, scan_id, True, time.time_ns(), utcnow(),
                                server_id, name)
        with self._lock:
            old = self._entries.pop(command_id, None)
            self._entries[command_id] = old if old is not None and old.started else entry

    def pending(self) -> int:
        with self._lock:
            return len(self._entries)

    def is_started(self, command_id: str) -> bool:
        """Whether the command's start waits here (a started command is never handed out
        again)."""
        with self._lock:
            entry = self._entries.get(command_id) or self._writing.get(command_id)
        return entry is not None and entry.started

    def take(self, command_id: str) -> Optional[CommandProgress]:
        """The entry of a command whose result is being written: it goes with the result."""
        with self._lock:
            return self._entries.pop(command_id, None)

    def give_back(self, entry: Optional[CommandProgress]) -> None:
        """An entry taken for a result that was not stored."""
        if entry is not None:
            with self._lock:
                self._give_back({entry.command_id: entry})

    def _take(self) -> Dict[str, CommandProgress]:
        batch, self._entries = self._entries, {}
        self._writing = batch  # still started for is_started until committed
        return batch

    def _written(self) -> None:
        self._writing = {}

    def _give_back(self, batch: Dict[str, CommandProgress]) -> None:
        for command_id, entry in batch.items():
            newer = self._entries.get(command_id)
            if newer is None or (entry.started and not newer.started):
                self._entries[command_id] = entry

    def _write(self, conn: Any, batch: Dict[str, CommandProgress]) -> int:
        """Only a command still unstarted moves on (one answered, failed by a deadline or
        closed by a retirement since is left alone); a start gets its scan_started event."""
        # the commands locked first, in id order (PostgreSQL; SQLite has one writer anyway):
        # a result being stored locks its command first too (_open_command), so neither
        # waits for a row the other holds
        status = {cid: row.status for cid, row in _rows_by_id(
            conn, select(Command.id, Command.status), Command.id, sorted(batch),
            lock=True).items()}
        handed = [e for e in batch.values() if not e.started and status.get(e.command_id) ==
                  "queued"]
        started = [e for e in batch.values() if e.started and status.get(e.command_id) in
                   COMMAND_UNSTARTED]
        commands, scans = Command.__table__, Scan.__table__
        for entries, new_status, scan_status, from_scan in (
                (handed, "pending", SCAN_PENDING, (SCAN_QUEUED,)),
                (started, "started", SCAN_RUNNING, (SCAN_QUEUED, SCAN_PENDING))):
            if not entries:
                continue
            # or_ of equalities: an IN list cannot go in an executemany
            conn.execute(commands.update()
                         .where(commands.c.id == bindparam("command_id"),
                                or_(*(commands.c.status == s for s in COMMAND_UNSTARTED)))
                         .values(status=new_status, updated_at=bindparam("at")),
                         [{"command_id": e.command_id, "at": e.at} for e in entries])
            with_scan = [{"scan_id": e.scan_id, "at": e.at} for e in entries if e.scan_id]
            if with_scan:
                values = {"status": scan_status}
                if new_status == "started":
                    values["agent_started_at"] = func.coalesce(scans.c.agent_started_at,
                                                               bindparam("at"))
                conn.execute(scans.update()
                             .where(scans.c.id == bindparam("scan_id"),
                                    or_(*(scans.c.status == s for s in from_scan)))
                             .values(**values), with_scan)
        if started:
            servers = _rows_by_id(conn, _SERVER_FOR_EVENTS, Server.id,
                                  sorted({e.server_id for e in started}))
            events = [_event(e.seq, e.at, "scan_started", "Scan started",
                             _started_message(e, servers[e.server_id].hostname),
                             servers[e.server_id], object_id=e.scan_id)
                      for e in started if e.server_id in servers]
            if events:
                conn.execute(insert(Event), events)
        return len(handed) + len(started)


def _started_message(entry: CommandProgress, hostname: str) -> str:
    return "%s scan started on server %s" % (entry.name, hostname)


def write_start(db: Session, entry: Optional[CommandProgress], server: Any,
                scan: Optional[Scan]) -> None:
    """The result route, in its own transaction: the command's start taken from the log
    (`CommandProgressLog.take`) goes in with it: its time on `scan`, and its event, which
    keeps its place before the result's. `server`: the caller's row (id, hostname, group_id)."""
    if entry is None or not entry.started:
        return
    if scan is not None and scan.agent_started_at is None:
        scan.agent_started_at = entry.at
    record_event(db, "scan_started", "Scan started", _started_message(entry, server.hostname),
                 server=server, actor="agent", object_id=entry.scan_id, seq=entry.seq,
                 created_at=entry.at)
