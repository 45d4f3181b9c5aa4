"""Wake-up events for agents' long-polls (the only state that lives only in memory)."""
from __future__ import annotations

import asyncio
import threading
from typing import Dict, Optional, Set


class Notifier:
    """Per-server asyncio events; `notify*` may be called from any thread."""

    def __init__(self) -> None:
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._waiters: Dict[str, Set[asyncio.Event]] = {}
        self._lock = threading.Lock()

    def register(self, server_id: str) -> asyncio.Event:
        self.loop = asyncio.get_running_loop()
        ev = asyncio.Event()
        with self._lock:
            self._waiters.setdefault(server_id, set()).add(ev)
        return ev

    def unregister(self, server_id: str, ev: asyncio.Event) -> None:
        with self._lock:
            evs = self._waiters.get(server_id)
            if evs is not None:
                evs.discard(ev)
                if not evs:
                    del self._waiters[server_id]

    def polling(self) -> Set[str]:
        """Ids of the servers that have a long-poll open right now."""
        with self._lock:
            return set(self._waiters)

    def _set(self, events) -> None:
        for ev in events:
            ev.set()

    def _dispatch(self, events) -> None:
        loop = self.loop
        if loop is None or not events or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._set, events)
        except RuntimeError:  # loop shutting down
            pass

    def notify(self, server_id: str) -> None:
        with self._lock:
            events = list(self._waiters.get(server_id, ()))
        self._dispatch(events)

    def notify_all(self) -> None:
        with self._lock:
            events = [ev for evs in self._waiters.values() for ev in evs]
        self._dispatch(events)
