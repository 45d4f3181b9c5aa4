#!/usr/bin/env python3
"""Admission at scale: the REAL `ansible-playbook playbooks/admit.yml` against a real grid and
N simulated agents (bench/fleet.py) in the staging group, half of them clean.

For each size: a fresh grid (SQLite, or PostgreSQL with --postgresql / --db-url), groups
ProdWebDirty (tag NewDirty) and ProdWebClean with the default Debian policy, N agents
registered and long-polling; then the sequential seed-style script (bench/seed_style.py) on
the first --seed-limit servers (the promoted ones are moved back), then the playbook, its
calls counted by a reverse proxy in this process (the grid logs no request per API key).

    .venv/bin/python bench/admission_scale.py --servers 100 300 1000 [--postgresql] [--seed-limit 20]

Prints per size: wall time, servers promoted/kept (and any wrong verdict), API calls per
workload (and per endpoint), the time from a scan command's creation to its delivery, poll
overshoot and failed polls, the seed-style time per server extrapolated to N and the ratio;
then the linearity ratio (time of the largest size / time of the smallest). Asserts nothing.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

import benchlib  # noqa: E402
import seed_style  # noqa: E402
from fleet import Fleet, FleetThread, print_figures  # noqa: E402
from halodev.launchers import GridProcess  # noqa: E402

REPO = benchlib.REPO
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


def playbook_env(url, key_id, secret):
    """As tests/integration/playbook_env.py's Grid.env builds it."""
    env = dict(os.environ)
    env.update(HALO_API_HOST=url, HALO_API_KEY=key_id, HALO_API_SECRET_KEY=secret,
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="False")
    return env


def create_groups(api):
    policies = api.ok("GET", "/v2/policies", params={"module": "csm", "per_page": 100})["policies"]
    debian = next(p for p in policies if "Debian" in p["name"])
    return {name: api.create_group(name, tag=tag, policy_ids=[debian["id"]])["id"]
            for name, tag in (("ProdWebDirty", "NewDirty"), ("ProdWebClean", None))}


def wait_settled(fleet, timeout):
    """Until every agent has done its first poll and firewall sync (or timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = sum(1 for a in fleet.agents if a.firewall_version == -1)
        if not waiting:
            return True
        time.sleep(0.5)
    return False


def members(api, gid):
    servers, _ = benchlib.list_all(api, "/v1/servers", "servers", group_id=gid)
    return servers


def run_size(args, n):
    out = {"servers": n}
    with benchlib.workdir(args.keep) as tmp:
        db, out["db"] = benchlib.database_for(args, tmp)
        with GridProcess(tmp / "grid", db=db, **benchlib.grid_options(args)) as grid:
            key_id, secret = grid.create_api_key()
            api = benchlib.with_timeout(grid.api(rate_limit_retries=20))
            groups = create_groups(api)
            fleet = Fleet(grid.url, grid.agent_key, n, args.clean_fraction, tag="NewDirty", prefix="web",
                          scan_seconds=args.scan_seconds)
            runner = FleetThread(fleet).start()
            try:
                out["register_seconds"] = runner.call(fleet.register_all())
                runner.call(fleet.start_polling(ramp=min(30.0, n / 100.0)))
                if not wait_settled(fleet, 600):
                    print("warning: not every agent finished its first poll", flush=True)
                time.sleep(2)
                print("[%s, %d agents] registered in %.1f s, polling" % (out["db"], n, out["register_seconds"]),
                      flush=True)

                if args.seed_limit:
                    seed_key, seed_secret = grid.create_api_key()
                    seed = seed_style.admit(seed_style.Halo(grid.url, seed_key, seed_secret), "ProdWebDirty",
                                            "ProdWebClean", limit=min(args.seed_limit, n),
                                            poll_interval=args.seed_poll_interval)
                    seed["per_server"] = seed["seconds"] / max(1, seed["servers"])
                    seed["estimated_for_n"] = seed["per_server"] * n
                    out["seed"] = seed
                    print("  seed-style: %(servers)d servers one at a time in %(seconds).1f s "
                          "(%(per_server).2f s each), %(moved)d moved, %(kept)d kept, %(failed)d no verdict"
                          % seed, flush=True)
                    for server in members(api, groups["ProdWebClean"]):  # back to the start
                        api.ok("PUT", "/v1/servers/%s" % server["id"],
                               {"server": {"group_id": groups["ProdWebDirty"]}})
                    wait_settled(fleet, 60)
                    time.sleep(2)

                since = time.monotonic()
                report_path = tmp / "report.json"
                with benchlib.CountingProxy(grid.url) as proxy:
                    command = [ANSIBLE_PLAYBOOK, str(REPO / "playbooks" / "admit.yml"),
                               "-e", "halo_scan_timeout=%d" % args.scan_timeout,
                               "-e", "halo_report_json=%s" % report_path]
                    wall_start, started = time.time(), time.monotonic()
                    cpu_grid, cpu_fleet = benchlib.cpu_seconds(grid.proc.pid), benchlib.cpu_seconds()
                    log_path = tmp / "playbook.log"
                    with open(log_path, "w") as log:
                        proc = subprocess.Popen(command, env=playbook_env(proxy.url, key_id, secret),
                                                stdout=log, stderr=subprocess.STDOUT)
                        try:
                            rc = proc.wait(timeout=args.playbook_timeout)
                        except subprocess.TimeoutExpired:
                            proc.kill()
                            proc.wait()
                            rc = None
                    until = time.monotonic()
                    out["wall_seconds"] = until - started
                    out["load_average"] = os.getloadavg()[0]  # others' work on the machine counts too
                    out["cpu_share"] = {  # of one core, during the playbook
                        "grid": (benchlib.cpu_seconds(grid.proc.pid) - cpu_grid) / out["wall_seconds"],
                        "fleet_and_proxy": (benchlib.cpu_seconds() - cpu_fleet) / out["wall_seconds"]}
                    out["playbook_rc"] = rc
                    out["finished"] = rc is not None
                    out["api_calls"] = proxy.total()
                    out["api_calls_by_endpoint"] = dict(proxy.calls.most_common())
                    # when each kind of call ran, in seconds from the playbook's start: where
                    # the wall time goes (scan starts, reads of finished scans, moves)
                    out["api_spans"] = {k: [round(a - started, 2), round(b - started, 2)]
                                        for k, (a, b) in proxy.spans.items()}
                    # how long the grid took to answer each kind of call (p50 / p99 seconds)
                    out["api_latency"] = {k: benchlib.summary(v) for k, v in proxy.latencies.items()}
                    out["api_statuses"] = {str(k): v for k, v in proxy.statuses.items()}
                    out["api_client_gave_up"] = proxy.client_gone
                out["calls_per_workload"] = out["api_calls"] / n
                fleet_figures = fleet.figures(since, until)
                out["fleet"] = fleet_figures

                out.update(promoted=None, kept=None, failing_promoted=None, clean_kept=None,
                           report_counts=None, delivery=benchlib.summary([]), commands_created=None)
                try:
                    clean_ids = fleet.clean_ids
                    promoted = {s["id"] for s in members(api, groups["ProdWebClean"])}
                    out["promoted"] = len(promoted)
                    out["kept"] = len(members(api, groups["ProdWebDirty"]))
                    out["failing_promoted"] = len(promoted - clean_ids)
                    out["clean_kept"] = len(clean_ids - promoted)
                    try:
                        out["report_counts"] = json.loads(report_path.read_text())["counts"]
                    except (OSError, ValueError, KeyError):
                        out["report_counts"] = None

                    scans, _ = benchlib.list_all(api, "/v1/scans", "scans")
                    delays = []
                    for scan in scans:
                        handed = fleet.deliveries.get(scan.get("command_id"))
                        created = benchlib.parse_iso(scan["created_at"])
                        if handed is not None and created >= wall_start:
                            delays.append(handed - created)
                    out["delivery"] = benchlib.summary(delays)
                    out["commands_created"] = sum(1 for s in scans if benchlib.parse_iso(s["created_at"]) >= wall_start)
                except (requests.RequestException, AssertionError) as exc:
                    # a wedged grid: report what the playbook and the fleet saw
                    out["error"] = "reading the results failed: %s" % exc
                    print("  " + out["error"], flush=True)
                if rc not in (0, None) or args.show_log:
                    print(log_path.read_text()[-4000:])
            finally:
                runner.stop()
    print_run(out)
    return out


def print_run(out):
    rc = out["playbook_rc"]
    print("[%s, %d workloads] admit.yml: %.1f s%s (rc %s); promoted %s, kept %s (failing promoted %s, "
          "clean kept %s); report %s"
          % (out["db"], out["servers"], out["wall_seconds"], "" if out["finished"] else " NOT FINISHED",
             rc, out["promoted"], out["kept"], out["failing_promoted"], out["clean_kept"],
             json.dumps(out["report_counts"])), flush=True)
    print("  API calls: %d (%.2f per workload), statuses %s, answers the client had given up on: %d"
          % (out["api_calls"], out["calls_per_workload"], json.dumps(out["api_statuses"]),
             out["api_client_gave_up"]))
    spans = out.get("api_spans") or {}
    for endpoint, count in out["api_calls_by_endpoint"].items():
        span = spans.get(endpoint)
        latency = (out.get("api_latency") or {}).get(endpoint)
        print("    %6d  %-32s %-18s %s" % (count, endpoint, "at %.1f-%.1f s" % tuple(span) if span else "",
                                         "answered in p50 %s p99 %s" % (benchlib.fmt(latency["p50"]),
                                                                        benchlib.fmt(latency["p99"]))
                                         if latency else ""))
    d = out["delivery"]
    print("  scan commands created %s, delivered %d: creation -> delivery p50 %s p99 %s max %s"
          % (out["commands_created"], d["count"], benchlib.fmt(d["p50"]), benchlib.fmt(d["p99"]),
             benchlib.fmt(d["max"])))
    print_figures(out["fleet"], "  fleet during the playbook")
    print("  CPU during the playbook (1.0 = one core): grid %.2f, fleet and proxy %.2f; machine load average "
          "%.1f (%d cores)" % (out["cpu_share"]["grid"], out["cpu_share"]["fleet_and_proxy"],
                               out["load_average"], os.cpu_count()))
    seed = out.get("seed")
    if seed:
        print("  seed-style: %.2f s per server -> %.0f s for %d; playbook is %.1fx faster"
              % (seed["per_server"], seed["estimated_for_n"], out["servers"],
                 seed["estimated_for_n"] / out["wall_seconds"]), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, nargs="+", default=[100], help="sizes to run (default 100)")
    parser.add_argument("--clean-fraction", type=float, default=0.5)
    parser.add_argument("--scan-seconds", type=float, default=0.1, help="simulated scan time per agent")
    parser.add_argument("--scan-timeout", type=int, default=300, help="-e halo_scan_timeout (the playbook's default)")
    parser.add_argument("--playbook-timeout", type=float, default=1800, help="kill the playbook after this")
    parser.add_argument("--seed-limit", type=int, default=20,
                        help="servers the seed-style script admits one at a time (its time per server "
                             "is extrapolated to N); 0: skip it")
    parser.add_argument("--seed-poll-interval", type=float, default=1.0)
    parser.add_argument("--show-log", action="store_true", help="print the playbook's output")
    args = benchlib.parse_db_arguments(parser)
    benchlib.raise_nofile(max(args.servers) * 2 + 2048)
    runs = [run_size(args, n) for n in args.servers]
    figures = {"runs": runs}
    if len(runs) > 1:
        small, large = runs[0], runs[-1]
        figures["linearity"] = {"small": small["servers"], "large": large["servers"],
                                "ratio": large["wall_seconds"] / small["wall_seconds"],
                                "large_finished": large["finished"]}
        print("linearity: %d workloads took %.1fx the time of %d (%.1fx the work)"
              % (large["servers"], figures["linearity"]["ratio"], small["servers"],
                 large["servers"] / small["servers"]))
    benchlib.write_json(args.json, figures)


if __name__ == "__main__":
    main()
