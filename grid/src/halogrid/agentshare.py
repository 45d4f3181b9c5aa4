"""Agents get their own share of the grid's worker threads.

Sync routes run in one pool of worker threads (db.WORKER_THREADS). A fleet that comes up
together (10,000 agents registering and reporting their firewall within a poll period) sends
more writes than SQLite's one write turn can take, and each waits for its turn in a worker
thread: the public API (listings, the admission's scans and moves) then waits for a thread
behind them, for minutes. Here agent requests other than the long-poll run at most
AGENT_REQUESTS at a time, and the long-polls' looks run on threads of their own
(POLL_LOOK_THREADS): whatever the agents send, the public API keeps the rest of the pool.
Agents waiting here only wait longer; they retry nothing.
"""
from __future__ import annotations

import asyncio
from typing import Optional

from starlette.types import ASGIApp, Receive, Scope, Send

from .db import POLL_LOOK_THREADS, WORKER_THREADS

AGENT_REQUESTS = WORKER_THREADS * 2 // 5  # of the worker threads, at most this many agents'
POLL_PATH = "/agent/v1/poll"


class AgentShare:
    """ASGI middleware: agent requests but the long-poll, AGENT_REQUESTS at a time."""

    def __init__(self, app: ASGIApp, limit: int = AGENT_REQUESTS) -> None:
        self.app = app
        self.limit = limit
        self._gate: Optional[asyncio.Semaphore] = None  # made on the serving loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/agent/") or path == POLL_PATH:
            await self.app(scope, receive, send)
            return
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.limit)
        async with self._gate:
            await self.app(scope, receive, send)
