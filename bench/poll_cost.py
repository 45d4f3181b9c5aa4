#!/usr/bin/env python3
"""What one idle long-poll costs the grid: N registered agents poll with ``wait=0`` (the
answer is "nothing for you", as at the end of every idle 30 s poll), K at a time, each poll on
a new connection as haloagent makes them, for a fixed time. Printed: polls per second and
the grid's CPU milliseconds per poll.

CPU time rather than wall time, so the figure holds on a busy machine: a fleet of F agents
polling every W seconds costs the grid F / W x (ms per poll) of CPU per second. 10,000 agents
at 30 s need about 333 polls a second, so one core carries them only below 3 ms per poll.
"""
from __future__ import annotations

import argparse
import asyncio
import time

import httpx

import benchlib
from halodev.launchers import GridProcess


async def _register(client, agent_key, i):
    ip = "198.18.%d.%d" % (i // 250, i % 250 + 1)
    body = {"hostname": "poll%05d" % i, "platform": "debian", "platform_version": "12",
            "interfaces": [{"name": "eth0", "ip": ip}], "primary_ip_address": ip}
    r = await client.post("/agent/v1/register", json=body, headers={"X-Daemon-Key": agent_key})
    r.raise_for_status()
    answer = r.json()
    return "Agent %s:%s" % (answer["server_id"], answer["agent_secret"])


async def _poller(url, credentials, seconds, counts, index, stride):
    deadline = time.monotonic() + seconds
    i = index
    # a new connection per poll, as haloagent (urllib) makes them
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(
            max_connections=1, max_keepalive_connections=0)) as client:
        while time.monotonic() < deadline:
            r = await client.get("/agent/v1/poll", params={"wait": 0, "firewall_version": 1},
                                 headers={"Authorization": credentials[i % len(credentials)]})
            counts["ok" if r.status_code == 200 else "failed"] += 1
            i += stride


async def _run(grid, args):
    async with httpx.AsyncClient(base_url=grid.url, timeout=60) as client:
        credentials = []
        for start in range(0, args.agents, 50):
            credentials += await asyncio.gather(*(
                _register(client, grid.agent_key, i)
                for i in range(start, min(start + 50, args.agents))))
    # one poll per agent first: its first poll records its firewall version (a write), the
    # pool is warm
    async with httpx.AsyncClient(base_url=grid.url, timeout=60) as client:
        for start in range(0, args.agents, 50):
            await asyncio.gather(*(
                client.get("/agent/v1/poll", params={"wait": 0, "firewall_version": -1},
                           headers={"Authorization": credential})
                for credential in credentials[start:start + 50]))
    counts = {"ok": 0, "failed": 0}
    cpu_before, started = benchlib.cpu_seconds(grid.proc.pid), time.monotonic()
    await asyncio.gather(*(_poller(grid.url, credentials, args.seconds, counts, k,
                                   args.concurrency) for k in range(args.concurrency)))
    elapsed = time.monotonic() - started
    cpu = benchlib.cpu_seconds(grid.proc.pid) - cpu_before
    polls = counts["ok"] + counts["failed"]
    return {"agents": args.agents, "polls": polls, "failed": counts["failed"],
            "polls_per_second": polls / elapsed, "grid_cpu_ms_per_poll": 1000 * cpu / max(polls, 1),
            "grid_cpu_share": cpu / elapsed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    args = benchlib.parse_db_arguments(parser)
    with benchlib.grid_database(args) as (tmp, db, label):
        with GridProcess(tmp / "grid", db=db, **benchlib.grid_options(args)) as grid:
            out = asyncio.run(_run(grid, args))
    out["db"] = label
    print("[%(db)s] %(agents)d agents, %(polls)d idle polls (%(failed)d failed): "
          "%(polls_per_second).0f polls/s, grid CPU %(grid_cpu_ms_per_poll).2f ms per poll "
          "(%(grid_cpu_share).2f of a core)" % out)
    print("  10,000 agents polling every 30 s would need %.2f cores of grid CPU"
          % (10000 / 30 * out["grid_cpu_ms_per_poll"] / 1000))
    benchlib.write_json(args.json, out)


if __name__ == "__main__":
    main()
