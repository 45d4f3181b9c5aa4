#!/usr/bin/env python3
"""A full listing of a large fleet through the public API: `GET /v1/servers?per_page=100`,
following `pagination.next` to the end, as the inventory plugin and the collection's modules
read it.

    .venv/bin/python bench/server_listing.py [--servers 10000] [--rounds 3] [--postgresql]

The servers are written straight into the grid's database (registering 10,000 agents through
the agent API takes minutes and is measured by bench/fleet_poll.py); the listing itself goes
through the grid's HTTP API with a real API key. Prints the best and the median of --rounds
full listings, per page, and the grid's CPU per page. Asserts nothing.
"""
from __future__ import annotations

import argparse
import datetime
import secrets
import statistics
import time

import benchlib
from halodev.launchers import GridProcess


def seed_servers(db_url_or_path, count):
    """`count` active servers in the default group, created one millisecond apart (the
    listing's order), written in one transaction."""
    from sqlalchemy import insert, select

    from halogrid.db import make_engine
    from halogrid.models import Group, Server

    engine = make_engine(db_url_or_path)
    start = datetime.datetime(2026, 1, 1)
    with engine.begin() as conn:
        group_id = conn.scalar(select(Group.id).order_by(Group.created_at).limit(1))
        rows = []
        for i in range(count):
            ip = "198.18.%d.%d" % (i // 250, i % 250 + 1)
            created = start + datetime.timedelta(milliseconds=i)
            rows.append({
                "id": secrets.token_hex(16), "secret_hash": "sha256$" + "0" * 64,
                "hostname": "list%05d" % i, "server_label": "list%05d" % i,
                "reported_fqdn": "list%05d.fleet.lab" % i, "platform": "debian",
                "platform_version": "12", "os_version": "6.1.0-18-amd64", "kernel_name": "Linux",
                "daemon_version": "0.1.0", "interfaces": [{"name": "eth0", "ip": ip}],
                "primary_ip_address": ip, "connecting_ip_address": "127.0.0.1",
                "group_id": group_id, "state": "active", "last_state_change": created,
                "last_seen_at": created, "created_at": created, "fw_version": 0})
        conn.execute(insert(Server), rows)
    engine.dispose()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    args = benchlib.parse_db_arguments(parser)
    with benchlib.grid_database(args) as (tmp, db, label):
        grid = GridProcess(tmp / "grid", db=db, **benchlib.grid_options(args))
        with grid:  # the first start makes the schema and the default group
            key = grid.create_api_key(read_only=True)
        seed_servers(db, args.servers)
        with grid:
            api = grid.api(*key)
            benchlib.list_all(api, "/v1/servers", "servers")  # warm: the pool, the caches
            times, cpu = [], []
            for _ in range(args.rounds):
                cpu_before, started = benchlib.cpu_seconds(grid.proc.pid), time.monotonic()
                servers, pages = benchlib.list_all(api, "/v1/servers", "servers")
                times.append(time.monotonic() - started)
                cpu.append(benchlib.cpu_seconds(grid.proc.pid) - cpu_before)
                assert len(servers) == args.servers, "listed %d of %d" % (len(servers), args.servers)
    out = {"db": label,
           "servers": args.servers, "pages": pages, "best_seconds": min(times),
           "median_seconds": statistics.median(times),
           "ms_per_page": 1000 * statistics.median(times) / pages,
           "grid_cpu_ms_per_page": 1000 * statistics.median(cpu) / pages}
    print("[%(db)s] full listing of %(servers)d servers (%(pages)d pages of 100): best %(best_seconds).2f s, "
          "median %(median_seconds).2f s; %(ms_per_page).1f ms per page, grid CPU %(grid_cpu_ms_per_page).1f ms "
          "per page" % out)
    benchlib.write_json(args.json, out)


if __name__ == "__main__":
    main()
