"""When each server last contacted the grid, written in batches.

Every long-poll start is a contact. Writing it at once made each idle poll a write
transaction: on SQLite one writer at a time, so with thousands of agents the polls queued
for the write lock. Contacts are kept here and written once a second for all servers in one
statement; the missing-server sweep writes them first, so it never judges a server on a
contact still waiting here. A server that is missing is reactivated at once by the poll (a
write it needs anyway), not through this log.
"""
from __future__ import annotations

import datetime as _dt
import threading
from typing import Dict, Optional

from sqlalchemy import bindparam, or_
from sqlalchemy.orm import sessionmaker

from .db import transaction
from .models import Server, utcnow

FLUSH_EVERY = 1.0  # seconds: how stale a server's last_seen_at may be in the API


class ContactLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: Dict[str, _dt.datetime] = {}

    def seen(self, server_id: str, when: Optional[_dt.datetime] = None) -> None:
        when = when or utcnow()
        with self._lock:
            if when > self._latest.get(server_id, when - _dt.timedelta(1)):
                self._latest[server_id] = when

    def pending(self) -> int:
        with self._lock:
            return len(self._latest)

    def flush(self, factory: sessionmaker) -> int:
        """Write the contacts kept so far (one executemany); how many servers. Contacts of
        a failed write are kept for the next flush: a lost contact could mark a live server
        missing."""
        with self._lock:
            batch, self._latest = self._latest, {}
        if not batch:
            return 0
        table = Server.__table__
        # never move a contact back: a write path (a result, a reactivation) may have
        # recorded a later one already
        stmt = (table.update()
                .where(table.c.id == bindparam("server_id"))
                .where(or_(table.c.last_seen_at.is_(None),
                           table.c.last_seen_at < bindparam("seen_at")))
                .values(last_seen_at=bindparam("seen_at")))
        rows = [{"server_id": sid, "seen_at": when} for sid, when in sorted(batch.items())]
        try:
            with transaction(factory) as db:
                db.connection().execute(stmt, rows)
        except BaseException:
            for sid, when in batch.items():
                self.seen(sid, when)
            raise
        return len(rows)
