"""Wake-up events for agents' long-polls (the only state that lives only in memory).

A waiting long-poll costs nothing but its entry here: it touches the database again only
when something wakes it. A change wakes only the polls whose answer it can change: a server
by its id (its commands, its own group), or every server of a group (that group's firewall
policy or a source group of it changed), see `resolved_firewall.affected_groups`.

Several grid processes on one PostgreSQL database (`halogrid serve --workers N`, or grids on
several machines) hold different polls: `PgWakeups` publishes every wake-up with `pg_notify`
and hands those of the other processes to this process's `Notifier`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

log = logging.getLogger("halogrid")


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
        self._everyone_seq = 0  # the counter's value at the last wake-up of every poll
        self.woken = 0  # waiters woken so far (tests and benchmarks count them)
        # called with (servers, groups, everyone) after each local wake-up: another process's
        # polls (PgWakeups.publish); None with one process
        self.publish: Optional[Callable[[List[str], List[str], bool], None]] = None

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

    def woken_since(self, group_id: str, since: int) -> bool:
        """Whether the group's polls (or every poll) were woken after `mark()` gave `since`."""
        with self._lock:
            return max(self._group_seq.get(group_id, 0), self._everyone_seq) > since

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
        """Wake the polls of `servers` and of every server in `groups` (also those held by
        the other processes of the grid)."""
        servers = [s for s in servers if s]
        groups = [g for g in groups if g]
        self.wake_local(servers, groups)
        if self.publish is not None and (servers or groups):
            self.publish(servers, groups, False)

    def notify_all(self) -> None:
        self.wake_all_local()
        if self.publish is not None:
            self.publish([], [], True)

    def wake_local(self, servers: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
        """Wake the polls of this process only (a wake-up from another process)."""
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

    def wake_all_local(self) -> None:
        # every open poll is filed by its server from its start: none can be missed
        with self._lock:
            self._seq += 1
            self._everyone_seq = self._seq
            waiters = [w for ws in self._by_server.values() for w in ws]
        self._dispatch(waiters)


# -- several processes on one PostgreSQL database ------------------------------------------

CHANNEL = "halogrid_wake"
# PostgreSQL refuses a payload of 8000 bytes or more; keep well below
MAX_PAYLOAD = 7900


def wake_payloads(origin: str, servers: List[str], groups: List[str], everyone: bool
                  ) -> Iterator[str]:
    """The NOTIFY payloads of one wake-up: JSON {"o": origin, "s": [server ids], "g": [group
    ids]} (or "a": 1 for everyone), split so that each stays under MAX_PAYLOAD bytes."""
    if everyone:
        yield json.dumps({"o": origin, "a": 1})
        return
    empty = len(json.dumps({"o": origin, "s": [], "g": []}))
    s: List[str] = []
    g: List[str] = []
    size = empty
    for key, ident in [("s", x) for x in servers] + [("g", x) for x in groups]:
        item = len(json.dumps(ident)) + 2  # the quoted id and a ", "
        if empty + item > MAX_PAYLOAD:
            continue  # no id of ours is that long: nobody to wake by it
        if size + item > MAX_PAYLOAD:
            yield json.dumps({"o": origin, "s": s, "g": g})
            s, g, size = [], [], empty
        (s if key == "s" else g).append(ident)
        size += item
    if s or g:
        yield json.dumps({"o": origin, "s": s, "g": g})


def parse_payload(payload: str) -> Optional[Tuple[str, List[str], List[str], bool]]:
    """(origin, servers, groups, everyone) of a payload, None if it is not one of ours."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("o"), str):
        return None
    servers = [x for x in data.get("s") or () if isinstance(x, str)]
    groups = [x for x in data.get("g") or () if isinstance(x, str)]
    return data["o"], servers, groups, bool(data.get("a"))


class PgWakeups:
    """Wake-ups shared by every grid process on one PostgreSQL database.

    Two connections of its own, outside the engine's pool, in autocommit mode: one LISTENs
    (a thread reads its notifications and wakes this process's polls), one sends (a thread
    takes the wake-ups from a queue, so that `notify_many` never waits for the database).
    Each payload names the process it came from: a process ignores its own (it has already
    woken its polls). A lost listening connection is opened again, and then every poll of
    the process is woken: a wake-up may have been missed meanwhile (a woken poll only
    re-reads its state)."""

    RETRY = (0.5, 1.0, 2.0, 5.0)  # seconds between attempts to connect again

    def __init__(self, notifier: Notifier, connect: Callable[[], Any]) -> None:
        self.notifier = notifier
        self.connect = connect  # -> a new psycopg connection in autocommit mode
        self.origin = uuid.uuid4().hex[:12]
        self._out: "queue.Queue[Optional[Tuple[List[str], List[str], bool]]]" = queue.Queue()
        self._stop = threading.Event()
        self.listening = threading.Event()
        self.received = 0  # notifications from other processes (tests count them)
        self._threads: List[threading.Thread] = []

    def start(self, ready_timeout: float = 10.0) -> bool:
        """Start both threads; True once the LISTEN is in place (polls answered from then on
        hear the other processes' changes)."""
        for target, name in ((self._listen, "halogrid-listen"), (self._send, "halogrid-notify")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self.notifier.publish = self.publish
        return self.listening.wait(ready_timeout)

    def stop(self, timeout: float = 3.0) -> None:
        self.notifier.publish = None
        self._stop.set()
        self._out.put(None)
        for t in self._threads:
            t.join(timeout)

    def publish(self, servers: List[str], groups: List[str], everyone: bool) -> None:
        self._out.put((list(servers), list(groups), everyone))

    # -- threads --------------------------------------------------------------------------
    def _pause(self, attempt: int) -> None:
        self._stop.wait(self.RETRY[min(attempt, len(self.RETRY) - 1)])

    def _listen(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                conn = self.connect()
            except Exception as exc:
                log.warning("wake-ups: cannot connect to listen (%s); retrying", exc)
                self._pause(attempt)
                attempt += 1
                continue
            try:
                conn.execute("LISTEN %s" % CHANNEL)
                if attempt:
                    # notifications sent while the connection was down are lost
                    self.notifier.wake_all_local()
                attempt = 0
                self.listening.set()
                while not self._stop.is_set():
                    for n in conn.notifies(timeout=1.0):
                        self._received(n.payload)
            except Exception as exc:
                if not self._stop.is_set():
                    log.warning("wake-ups: the listening connection failed (%s); reconnecting",
                                exc)
                    attempt += 1
            finally:
                self.listening.clear()
                try:
                    conn.close()
                except Exception:
                    pass
            if not self._stop.is_set():
                self._pause(attempt)

    def _received(self, payload: str) -> None:
        parsed = parse_payload(payload)
        if parsed is None:
            return
        origin, servers, groups, everyone = parsed
        if origin == self.origin:
            return
        self.received += 1
        if everyone:
            self.notifier.wake_all_local()
        else:
            self.notifier.wake_local(servers, groups)

    def _send(self) -> None:
        conn = None
        while True:
            item = self._out.get()
            if item is None:
                break
            # whatever queued meanwhile goes in the same round
            batch = [item]
            while True:
                try:
                    more = self._out.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._stop.set()
                    break
                batch.append(more)
            everyone = any(b[2] for b in batch)
            servers = list(dict.fromkeys(x for b in batch for x in b[0]))
            groups = list(dict.fromkeys(x for b in batch for x in b[1]))
            payloads = list(wake_payloads(self.origin, servers, groups, everyone))
            for attempt in range(2):  # once more on a fresh connection
                try:
                    if conn is None or conn.closed:
                        conn = self.connect()
                    for p in payloads:
                        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, p))
                    break
                except Exception as exc:
                    log.warning("wake-ups: cannot notify the other processes (%s)", exc)
                    try:
                        if conn is not None:
                            conn.close()
                    except Exception:
                        pass
                    conn = None
            if self._stop.is_set() and self._out.empty():
                break
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
