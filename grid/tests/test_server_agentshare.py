"""Agents' share of the worker threads (agentshare.py): agent requests other than the
long-poll go through at most `limit` at a time; the public API and the long-poll never wait
for them."""
from __future__ import annotations

import asyncio
from typing import List

from halogrid.agentshare import AgentShare


def _scope(path: str) -> dict:
    return {"type": "http", "method": "POST", "path": path, "headers": []}


def test_agent_requests_take_at_most_their_share_and_the_rest_pass_by():
    async def run() -> None:
        inside: List[str] = []
        most = [0]
        release = asyncio.Event()

        async def app(scope, receive, send):
            inside.append(scope["path"])
            most[0] = max(most[0], sum(1 for p in inside if p.startswith("/agent/v1/commands")))
            if scope["path"].startswith("/agent/v1/commands"):
                await release.wait()
            inside.remove(scope["path"])

        share = AgentShare(app, limit=3)
        agents = [asyncio.ensure_future(share(_scope("/agent/v1/commands/%d/result" % i),
                                              None, None)) for i in range(10)]
        await asyncio.sleep(0.05)
        assert most[0] == 3  # three in, seven waiting at the gate
        # the public API and the long-poll are not held behind them
        await asyncio.wait_for(share(_scope("/v1/servers"), None, None), 1)
        await asyncio.wait_for(share(_scope("/agent/v1/poll"), None, None), 1)
        release.set()
        await asyncio.wait_for(asyncio.gather(*agents), 5)
        assert most[0] == 3 and inside == []

    asyncio.run(run())
