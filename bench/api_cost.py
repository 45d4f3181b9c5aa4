#!/usr/bin/env python3
"""What each public API call of an admission costs the grid: N registered servers, then
every call the admission role makes per workload (start a scan, read the scan, read the
server, move it), 10 at a time as halo_scan and halo_group_move make them, on one kept-alive
session each. For scale, the agent ping: the web framework alone, with no database.

    .venv/bin/python bench/api_cost.py [--servers 300] [--postgresql]

Prints the grid's CPU milliseconds per call and calls per second. CPU time rather than wall
time, so the figure holds on a busy machine: a grid process carries at most about 1000 / ms
calls a second on one core. Asserts nothing but that each call succeeds.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import requests

import benchlib
from halodev.launchers import GridProcess

WORKERS = 10  # halo_scan's and halo_group_move's max_workers default


def _measure(grid, label, call, items):
    cpu_before, started = benchlib.cpu_seconds(grid.proc.pid), time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(call, items))
    elapsed = time.monotonic() - started
    cpu = benchlib.cpu_seconds(grid.proc.pid) - cpu_before
    figure = {"calls": len(items), "grid_cpu_ms_per_call": 1000 * cpu / len(items),
              "calls_per_second": len(items) / elapsed}
    print("  %-34s %5d calls: grid CPU %5.2f ms each, %4.0f calls/s"
          % (label, len(items), figure["grid_cpu_ms_per_call"], figure["calls_per_second"]),
          flush=True)
    return figure


def _expect(response, status):
    assert response.status_code == status, (response.status_code, response.text[:300])
    return response


def run(grid, servers):
    session = requests.Session()
    ids = []
    for i in range(servers):
        r = _expect(session.post(grid.url + "/agent/v1/register", headers={"X-Daemon-Key": grid.agent_key},
                                 json={"hostname": "cost%04d" % i, "platform": "debian"}), 201)
        ids.append(r.json()["server_id"])
    api = grid.api(*grid.create_api_key())
    destination = api.create_group("ProdWebClean")["id"]
    api.authenticate()
    scans = {}

    def start_scan(server_id):
        r = _expect(api.request("POST", "/v1/servers/%s/scans" % server_id, json={"scan": {"module": "sca"}}), 202)
        scans[server_id] = r.json()["command"]["scan_id"]

    figures = {}
    for label, call in (
            ("POST /v1/servers/{id}/scans", start_scan),
            ("GET /v1/scans/{id}", lambda sid: _expect(api.request("GET", "/v1/scans/%s" % scans[sid]), 200)),
            ("GET /v1/servers/{id}", lambda sid: _expect(api.request("GET", "/v1/servers/%s" % sid), 200)),
            ("PUT /v1/servers/{id} (a move)", lambda sid: _expect(api.request(
                "PUT", "/v1/servers/%s" % sid, json={"server": {"group_id": destination}}), 204)),
            ("GET /agent/v1/ping (no database)", lambda sid: _expect(
                api.session.get(grid.url + "/agent/v1/ping"), 200))):
        figures[label] = _measure(grid, label, call, ids)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=300)
    args = benchlib.parse_db_arguments(parser)
    with benchlib.grid_database(args) as (tmp, db, label):
        with GridProcess(tmp / "grid", db=db, **benchlib.grid_options(args)) as grid:
            print("[%s] %d servers, %d calls at a time" % (label, args.servers, WORKERS), flush=True)
            figures = run(grid, args.servers)
    benchlib.write_json(args.json, {"db": label, "servers": args.servers, "calls": figures})


if __name__ == "__main__":
    main()
