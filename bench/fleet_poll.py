#!/usr/bin/env python3
"""A grid holding a large fleet: N registered simulated agents (bench/fleet.py) long-polling at
the real cadence (wait=30, their starts spread over one poll period), scans queued through the
public API for a sample of them, and full listings of all servers.

    .venv/bin/python bench/fleet_poll.py [--agents 2000] [--sample 100] [--postgresql]

Prints: registration time; a full listing of all servers through the public API (per_page
100, following pagination.next) before the agents poll and while they poll; for the queued
commands, the delay from creation (the command's created_at) to delivery p50/p99 and how many
never arrived; over the measuring window, poll latency, overshoot beyond `wait` (p50/p99) and
failed polls; and the grid's open descriptors. Asserts nothing.
"""

import argparse
import concurrent.futures
import os
import random
import threading
import time

import benchlib  # noqa: E402
from fleet import Fleet, FleetProcesses, FleetThread, print_figures  # noqa: E402
from halodev.launchers import GridProcess  # noqa: E402


def open_descriptors(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def queue_scans(grid, key, sample, start, rate, workers=8):
    """Start a scan on each agent of `sample`, `rate` a second from monotonic time `start`, on
    a few connections at once (as a client with a pool would): a slow answer delays no later
    command. Returns [(command id, wall time before the POST, created_at)], [POST latency]."""
    local = threading.local()

    def one(index_agent):
        index, agent = index_agent
        pause = start + index / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        if not hasattr(local, "api"):
            local.api = benchlib.with_timeout(grid.api(*key, rate_limit_retries=20))
        before, t0 = time.time(), time.monotonic()
        try:
            command = local.api.scan(agent.server_id)
        except Exception as exc:  # a timeout or an error answer: that command was never queued
            return None, time.monotonic() - t0, str(exc)
        return (command["id"], before, benchlib.parse_iso(command["created_at"])), time.monotonic() - t0, None

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, enumerate(sample)))
    failed = [error for _, _, error in results if error]
    if failed:
        print("  %d scans could not be queued, e.g. %s" % (len(failed), failed[0][:200]), flush=True)
    return [q for q, _, _ in results if q], [latency for _, latency, _ in results]


def timed_listing(api):
    started = time.monotonic()
    servers, pages = benchlib.list_all(api, "/v1/servers", "servers")
    return {"seconds": time.monotonic() - started, "servers": len(servers), "pages": pages}


def run(args):
    out = {"agents": args.agents}
    with benchlib.workdir(args.keep) as tmp:
        db, out["db"] = benchlib.database_for(args, tmp)
        # the fleet registers in bulk before any agent polls (10,000 take minutes), where a
        # real agent polls right after it registers: the missing-server sweep must not count
        # that wait
        with GridProcess(tmp / "grid", db=db, missing_after=1800,
                         **benchlib.grid_options(args)) as grid:
            key = grid.create_api_key()
            api = benchlib.with_timeout(grid.api(*key, rate_limit_retries=20))
            policies = api.ok("GET", "/v2/policies", params={"module": "csm", "per_page": 100})["policies"]
            debian = next(p for p in policies if "Debian" in p["name"])
            api.create_group("Fleet", tag="NewDirty", policy_ids=[debian["id"]])
            fleet_args = dict(clean_fraction=0.5, tag="NewDirty", prefix="node",
                              poll_wait=args.poll_wait, scan_seconds=args.scan_seconds)
            if args.processes > 1:
                fleet = FleetProcesses(grid.url, grid.agent_key, args.agents, args.processes, **fleet_args)
                register, start_polling, stop = fleet.register_all, fleet.start_polling, fleet.stop
                fleet_cpu = fleet.cpu_seconds
            else:
                fleet = Fleet(grid.url, grid.agent_key, args.agents, **fleet_args)
                runner = FleetThread(fleet).start()
                register, stop, fleet_cpu = lambda: runner.call(fleet.register_all()), runner.stop, benchlib.cpu_seconds

                def start_polling(ramp):
                    start_polling(ramp)
            try:
                out["register_seconds"] = register()
                print("[%s] %d agents registered in %.1f s" % (out["db"], args.agents, out["register_seconds"]),
                      flush=True)
                out["listing_idle"] = timed_listing(api)
                print("  listing before the agents poll: %(servers)d servers, %(pages)d pages, %(seconds).2f s"
                      % out["listing_idle"], flush=True)

                ramp = args.ramp if args.ramp is not None else args.poll_wait
                start_polling(ramp)
                settle = ramp + args.poll_wait + 5
                print("  agents polling; steady state in %.0f s" % settle, flush=True)
                time.sleep(settle)
                out["settled_first_poll"] = sum(1 for a in fleet.agents if a.firewall_version != -1)

                since = time.monotonic()
                cpu_grid, cpu_fleet = benchlib.cpu_seconds(grid.proc.pid), fleet_cpu()
                window_end = since + args.measure
                agents = [a for a in fleet.agents if a.server_id]
                sample = random.Random(1).sample(agents, min(args.sample, len(agents)))
                queued, post_latency = queue_scans(grid, key, sample, since, args.queue_rate)
                out["queue_post_latency"] = benchlib.summary(post_latency)
                out["queue_failed"] = len(sample) - len(queued)

                out["listing_polling"] = timed_listing(api)
                print("  listing while the agents poll: %(servers)d servers, %(pages)d pages, %(seconds).2f s"
                      % out["listing_polling"], flush=True)

                # every queued command has had a full poll period (plus slack) to arrive
                deadline = max(window_end, time.monotonic() + args.poll_wait + 5)
                while time.monotonic() < deadline:
                    delivered = fleet.deliveries
                    if all(cid in delivered for cid, _, _ in queued) and time.monotonic() >= window_end:
                        break
                    time.sleep(0.5)
                until = time.monotonic()
                out["load_average"] = os.getloadavg()[0]  # others' work on the machine counts too
                out["cpu_share"] = {  # of one core, over the window
                    "grid": (benchlib.cpu_seconds(grid.proc.pid) - cpu_grid) / (until - since),
                    "fleet_process": (fleet_cpu() - cpu_fleet) / (until - since)}
                out["grid_descriptors"] = open_descriptors(grid.proc.pid)
                out["fleet"] = fleet.figures(since, until)
                out["window_seconds"] = until - since
                delivered = fleet.deliveries
                delays = [delivered[cid] - created for cid, _, created in queued if cid in delivered]
                delays_bench = [delivered[cid] - before for cid, before, _ in queued if cid in delivered]
                out["delivery"] = benchlib.summary(delays)
                out["delivery_from_post"] = benchlib.summary(delays_bench)
                out["queued"] = len(queued)
                out["undelivered"] = len(queued) - len(delays)
            finally:
                stop()
    out["fleet_processes"] = args.processes
    print_run(out)
    return out


def print_run(out):
    d, p = out["delivery"], out["queue_post_latency"]
    print("[%s, %d agents] %d scans queued (POST p50 %s p99 %s): created -> delivered p50 %s p99 %s max %s, "
          "%d never delivered; %d could not be queued"
          % (out["db"], out["agents"], out["queued"], benchlib.fmt(p["p50"]), benchlib.fmt(p["p99"]),
             benchlib.fmt(d["p50"]), benchlib.fmt(d["p99"]), benchlib.fmt(d["max"]), out["undelivered"],
             out["queue_failed"]))
    print("  full listing: %.2f s idle, %.2f s while polling (%d servers, per_page 100)"
          % (out["listing_idle"]["seconds"], out["listing_polling"]["seconds"], out["listing_polling"]["servers"]))
    print_figures(out["fleet"], "  fleet over %.0f s" % out["window_seconds"])
    print("  grid's open descriptors: %s; CPU over the window (1.0 = one core): grid %.2f, the fleet's %d "
          "process(es) %.2f; "
          "machine load average %.1f (%d cores)"
          % (out["grid_descriptors"], out["cpu_share"]["grid"], out["fleet_processes"],
             out["cpu_share"]["fleet_process"],
             out["load_average"], os.cpu_count()), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=2000, help="simulated agents (the target is 10,000)")
    parser.add_argument("--sample", type=int, default=50, help="agents that get a scan queued")
    parser.add_argument("--queue-rate", type=float, default=5.0, help="scans queued per second")
    parser.add_argument("--poll-wait", type=int, default=30)
    parser.add_argument("--ramp", type=float, help="seconds over which the agents start (default: --poll-wait)")
    parser.add_argument("--measure", type=float, default=60.0, help="seconds of the measuring window")
    parser.add_argument("--scan-seconds", type=float, default=0.1)
    parser.add_argument("--processes", type=int, default=1,
                        help="simulator processes the agents are spread over (one Python process "
                             "cannot drive 10,000 agents on time)")
    args = benchlib.parse_db_arguments(parser)
    benchlib.raise_nofile(args.agents * 2 + 2048)
    benchlib.write_json(args.json, run(args))


if __name__ == "__main__":
    main()
