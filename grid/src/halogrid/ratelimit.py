"""In-memory counters: API calls per API key (Halo limits calls per minute) and failed
authentications per client address. Both are bounded: an attacker's made-up key ids or
addresses can never grow the grid's memory beyond a fixed number of entries.

The counters belong to one process. A grid of N processes (`halogrid serve --workers N`, or
grids on several machines behind one database) counts in each process on its own: a key may
make up to N x --rate-limit calls a window, an address N x --auth-fail-limit failed
authentications and N x --register-limit registrations. That is what an operator gets, said
plainly (grid/README.md, "Large fleets"), rather than a shared counter that would cost a
database write per API call; set the limits per process (for example --rate-limit divided
by N) where the total matters."""
from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from typing import Deque, List, Optional

# Entries kept at most; the least recently used one goes first. Per-key counters only ever
# hold keys that authenticated, so this bound is a safety net there.
MAX_ENTRIES = 4096


class RateLimiter:
    """A sliding window of calls per API key."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = MAX_ENTRIES) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._calls: "OrderedDict[str, Deque[float]]" = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._calls)

    def hit(self, key: str) -> Optional[int]:
        """Count one call; return None if allowed, else the seconds to wait."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            calls = self._calls.get(key)
            if calls is None:
                calls = self._calls[key] = deque()
                while len(self._calls) > self.max_keys:
                    self._calls.popitem(last=False)
            else:
                self._calls.move_to_end(key)
            while calls and calls[0] <= now - self.window:
                calls.popleft()
            if len(calls) >= self.limit:
                return max(1, math.ceil(calls[0] + self.window - now))
            calls.append(now)
            return None


def client_key(host: Optional[str]) -> str:
    """The counter key of a client address: an IPv6 client counts by its /64 (one host
    usually owns the whole /64), an IPv4-mapped address as IPv4."""
    if not host:
        return "-"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class FailureCounter:
    """Failed authentications per client address in a fixed window of `window` seconds.

    An address with `limit` failures in its window is refused (429) until the window ends,
    whatever key or token it presents: it can no longer guess, and the keys it guessed at keep
    working from everywhere else.
    """

    def __init__(self, limit: int, window: float = 60.0, max_entries: int = MAX_ENTRIES) -> None:
        self.limit = limit
        self.window = window
        self.max_entries = max_entries
        # address -> [window start (monotonic), failures in that window]
        self._entries: "OrderedDict[str, List[float]]" = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def blocked(self, host: Optional[str]) -> Optional[int]:
        """None if `host` may try to authenticate, else the seconds it has to wait."""
        if self.limit <= 0:
            return None
        key = client_key(host)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now - entry[0] >= self.window:
                del self._entries[key]
                return None
            if entry[1] >= self.limit:
                return max(1, math.ceil(entry[0] + self.window - now))
            return None

    def fail(self, host: Optional[str]) -> None:
        """Count one failed authentication of `host`."""
        if self.limit <= 0:
            return
        key = client_key(host)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or now - entry[0] >= self.window:
                self._entries[key] = [now, 1]
            else:
                entry[1] += 1
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
