"""Wake-up events for agents' long-polls (the only state that lives only in memory).

A waiting long-poll costs nothing but its entry here: it touches the database again only
when something wakes it. A change wakes only the polls whose answer it can change: a server
by its id (its commands, its own group), or every server of a group (that group's firewall
policy or a source group of it changed), see `fw.affected_groups`.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Dict, Iterable, Optional, Set


class Waiter:
    """One open long-poll: its event and the group it was last seen in."""

    __slots__ = ("server_id", "group_id", "event")

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id
        self.group_id: Optional[str] = None
        self.event = asyncio.Event()


class Notifier:
    """Waiters by server and by group; `notify*` may be called from any thread."""

    def __init__(self) -> None:
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._by_server: Dict[str, Set[Waiter]] = {}
        self._by_group: Dict[str, Set[Waiter]] = {}
        self._lock = threading.Lock()
        # a counter bumped by every group wake-up, and the value of each group's last one:
        # a poll that learns its group only from its transaction can tell whether the group
        # was woken while the transaction ran (see `set_group`)
        self._seq = 0
        self._group_seq: Dict[str, int] = {}
        self.woken = 0  # waiters woken so far (tests and benchmarks count them)

    # -- the long-poll's side (on the event loop) ----------------------------------------
    def register(self, server_id: str) -> Waiter:
        self.loop = asyncio.get_running_loop()
        w = Waiter(server_id)
        with self._lock:
            self._by_server.setdefault(server_id, set()).add(w)
        return w

    def mark(self) -> int:
        """Taken before a poll's transaction; given to `set_group` after it."""
        with self._lock:
            return self._seq

    def set_group(self, w: Waiter, group_id: str, since: int) -> None:
        """File `w` under the group its transaction read; set its event if that group was
        woken after `since` (the change may have been committed after the read)."""
        with self._lock:
            if w.group_id != group_id:
                self._drop(self._by_group, w.group_id, w)
                w.group_id = group_id
                self._by_group.setdefault(group_id, set()).add(w)
            if self._group_seq.get(group_id, 0) > since:
                w.event.set()

    def unregister(self, w: Waiter) -> None:
        with self._lock:
            self._drop(self._by_server, w.server_id, w)
            self._drop(self._by_group, w.group_id, w)

    @staticmethod
    def _drop(index: Dict[str, Set[Waiter]], key: Optional[str], w: Waiter) -> None:
        if key is None:
            return
        ws = index.get(key)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del index[key]

    def waiting(self, server_id: str) -> bool:
        """Whether a poll of the server has had its first look and waits (tests use it)."""
        with self._lock:
            return any(w.group_id is not None for w in self._by_server.get(server_id, ()))

    def polling(self) -> Set[str]:
        """Ids of the servers that have a long-poll open right now."""
        with self._lock:
            return set(self._by_server)

    # -- the side of changes (any thread, after the change is committed) -----------------
    def _set(self, waiters) -> None:
        for w in waiters:
            if not w.event.is_set():
                self.woken += 1
            w.event.set()

    def _dispatch(self, waiters) -> None:
        loop = self.loop
        if loop is None or not waiters or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._set, waiters)
        except RuntimeError:  # loop shutting down
            pass

    def notify(self, server_id: str) -> None:
        self.notify_many(servers=(server_id,))

    def notify_many(self, servers: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
        """Wake the polls of `servers` and of every server in `groups`."""
        waiters: Set[Waiter] = set()
        with self._lock:
            for sid in servers:
                waiters.update(self._by_server.get(sid, ()))
            groups = [g for g in groups if g]
            if groups:
                self._seq += 1
                for gid in groups:
                    self._group_seq[gid] = self._seq
                    waiters.update(self._by_group.get(gid, ()))
        self._dispatch(list(waiters))

    def notify_all(self) -> None:
        with self._lock:
            waiters = [w for ws in self._by_server.values() for w in ws]
        self._dispatch(waiters)
