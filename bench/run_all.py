#!/usr/bin/env python3
"""`make bench`: the scale benchmarks at modest sizes, and one table of the figures
beside the targets. Each bench runs as its own process (bench/admission_scale.py,
bench/fleet_poll.py, bench/server_listing.py, bench/drift_to_demotion.py, ...) and hands its figures over as JSON.
Prints figures, asserts nothing.

    .venv/bin/python bench/run_all.py [--admission 100 300] [--fleet 2000] [--listing 10000]
                                      [--seed-limit 20] [--drift 30] [--postgresql]

The targets are for 1,000 workloads and 10,000 agents (`--admission 100 1000 --fleet 10000`);
at other sizes the table names the size each figure was measured at.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_bench(script, args, label):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, str(HERE / script), *args, "--json", out.name]
        print("\n== %s: %s" % (label, " ".join(command[1:])), flush=True)
        rc = subprocess.call(command)
        try:
            return json.loads(Path(out.name).read_text() or "null")
        except ValueError:
            print("%s failed (rc %s): no figures" % (script, rc))
            return None


def cell(value, unit="s", digits=1):
    if value is None:
        return "-"
    if unit == "ms":
        return "%.0f ms" % (value * 1000)
    if unit == "x":
        return "%.1fx" % value
    if unit == "":
        return ("%." + str(digits) + "f") % value if isinstance(value, float) else str(value)
    return ("%." + str(digits) + "f s") % value


def rows_for(admission, fleet):
    rows = []
    if admission:
        runs = admission["runs"]
        big = runs[-1]
        n = big["servers"]
        rows.append(("admission wall time (%d workloads%s)" % (n, "" if big["finished"] else ", NOT FINISHED"),
                     "< 60 s for 1,000", cell(big["wall_seconds"])))
        wrong = (None if big["failing_promoted"] is None
                 else big["failing_promoted"] + big["clean_kept"])
        rows.append(("  promoted / kept / wrong verdicts (%d)" % n, "%d / %d / 0" % (n // 2, n - n // 2),
                     "%s / %s / %s" % (big["promoted"], big["kept"], wrong)))
        for run in runs:
            seed = run.get("seed")
            if seed:
                rows.append(("playbook vs seed-style script (%d workloads)" % run["servers"], ">= 20x",
                             "%s (seed: %.2f s/server over %d)" % (cell(seed["estimated_for_n"] / run["wall_seconds"], "x"),
                                                                   seed["per_server"], seed["servers"])))
        for run in runs:
            rows.append(("API calls per workload (%d)" % run["servers"], "<= 4",
                         cell(run["calls_per_workload"], "", 2)))
        if admission.get("linearity"):
            lin = admission["linearity"]
            limit = 1.2 * lin["large"] / lin["small"]
            rows.append(("linearity t(%d)/t(%d)" % (lin["large"], lin["small"]),
                         "<= %.1f (12 for 1000/100)" % limit, cell(lin["ratio"], "", 2)))
        rows.append(("scan command creation -> delivery p99 (%d)" % n, "-", cell(big["delivery"]["p99"])))
        rows.append(("  machine load average during the playbook (2 cores)", "-", cell(big.get("load_average"), "", 1)))
    if fleet:
        n = fleet["agents"]
        rows.append(("command delivery p50 / p99 (%d agents polling)" % n, "p99 < 1 s",
                     "%s / %s" % (cell(fleet["delivery"]["p50"], "ms"), cell(fleet["delivery"]["p99"], "ms"))))
        rows.append(("  scans never delivered (%d agents)" % n, "0",
                     "%d of %d queued" % (fleet["undelivered"], fleet["queued"])))
        over = fleet["fleet"]["overshoot"]
        rows.append(("long-poll overshoot p50 / p99 (%d)" % n, "p99 < 100 ms",
                     "%s / %s" % (cell(over["p50"], "ms"), cell(over["p99"], "ms"))))
        rows.append(("failed polls (%d agents)" % n, "0",
                     "%d of %d" % (fleet["fleet"]["failed_polls"], fleet["fleet"]["polls"] + fleet["fleet"]["failed_polls"])))
        rows.append(("full listing of %d servers, idle / while polling" % n, "< 2 s for 10,000",
                     "%s / %s" % (cell(fleet["listing_idle"]["seconds"], "s", 2),
                                  cell(fleet["listing_polling"]["seconds"], "s", 2))))
        rows.append(("grid's open descriptors (%d agents)" % n, "-", str(fleet["grid_descriptors"])))
        rows.append(("grid CPU while %d agents poll (1.0 = one core)" % n, "-",
                     cell(fleet["cpu_share"]["grid"], "", 2)))
        rows.append(("  fleet processes' own event-loop lag p99 (%d)" % n, "small", cell(fleet["fleet"]["fleet_loop_lag"]["p99"], "ms")))
        rows.append(("  fleet processes' CPU (%d processes)" % fleet.get("fleet_processes", 1), "-",
                     cell(fleet["cpu_share"]["fleet_process"], "", 2)))
        rows.append(("  machine load average while %d agents poll" % n, "-", cell(fleet.get("load_average"), "", 1)))
    return rows


def drift_rows(drift, interval):
    rows = []
    for combo in ("rulebook+now", "scheduled+rulebook", "scheduled+cron"):
        total = ((drift or {}).get(combo) or {}).get("total") or {}
        if total.get("count"):
            rows.append(("drift -> demotion, %s (S = M = %d s), min / median / max" % (combo, interval), "-",
                         "%s / %s / %s" % (cell(total["min"]), cell(total["median"]), cell(total["max"]))))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admission", type=int, nargs="*", default=[100, 300], help="admission sizes")
    parser.add_argument("--fleet", type=int, default=2000, help="agents of the long-poll bench (0: skip)")
    parser.add_argument("--fleet-processes", type=int, default=2,
                        help="processes the simulated agents are spread over")
    parser.add_argument("--listing", type=int, default=10000,
                        help="servers of the listing bench (0: skip)")
    parser.add_argument("--seed-limit", type=int, default=20)
    parser.add_argument("--postgresql", action="store_true", help="also on PostgreSQL (a throw-away cluster)")
    parser.add_argument("--workers", type=int, default=1,
                        help="grid processes on PostgreSQL (halogrid serve --workers)")
    parser.add_argument("--poll-agents", type=int, default=500,
                        help="agents of the idle-poll cost bench (0: skip)")
    parser.add_argument("--fim-tree", default="/usr", help="tree of the FIM hashing bench ('': skip)")
    parser.add_argument("--drift", type=int, default=30,
                        help="scan and cron interval of bench/drift_to_demotion.py, on SQLite (0: skip)")
    args = parser.parse_args()
    databases = ["sqlite"] + (["postgresql"] if args.postgresql else [])
    results = {}
    for db in databases:
        extra = ["--postgresql"] if db == "postgresql" else []
        if db == "postgresql" and args.workers > 1:
            extra += ["--workers", str(args.workers)]
        admission = fleet = None
        if args.poll_agents:
            cost = run_bench("poll_cost.py", ["--agents", str(args.poll_agents), *extra],
                             "idle poll cost on %s" % db)
            if cost:
                results.setdefault(db, []).append((
                    "grid CPU per idle long-poll (10,000 agents at 30 s need 333/s)", "< 3 ms",
                    "%.2f ms" % cost["grid_cpu_ms_per_poll"]))
        if args.admission:
            admission = run_bench("admission_scale.py", ["--servers", *map(str, args.admission),
                                                         "--seed-limit", str(args.seed_limit), *extra],
                                  "admission on %s" % db)
        if args.listing:
            listing = run_bench("server_listing.py", ["--servers", str(args.listing), *extra],
                                "server listing on %s" % db)
            if listing:
                results.setdefault(db, []).append((
                    "full listing of %d servers through the API, no agents polling" % listing["servers"],
                    "< 2 s for 10,000", "%s (best %s)" % (cell(listing["median_seconds"], "s", 2),
                                                          cell(listing["best_seconds"], "s", 2))))
        if args.fleet:
            fleet = run_bench("fleet_poll.py", ["--agents", str(args.fleet), "--processes",
                                                str(args.fleet_processes), *extra], "fleet on %s" % db)
        results.setdefault(db, []).extend(rows_for(admission, fleet))
        if args.drift and db == "sqlite":  # waits on schedules, not on the database
            drift = run_bench("drift_to_demotion.py", ["--scan-interval", str(args.drift),
                                                       "--cron-interval", str(args.drift)], "drift to demotion")
            results[db] += drift_rows(drift, args.drift)

    if args.fim_tree:  # hashing does not touch the database: one figure, in the first column
        fim = run_bench("fim_hash_ratio.py", ["--tree", args.fim_tree, "--repeat", "1"], "fim hashing")
        if fim:
            results[databases[0]].append((
                "fim hashing of %s, throughput / find|xargs sha256sum's" % args.fim_tree, ">= 0.8x",
                cell(fim["fim"][0]["ratio"], "x")))

    # one table: figure, target, then a column per database
    labels = []
    for rows in results.values():
        for label, target, _ in rows:
            if (label, target) not in labels:
                labels.append((label, target))
    values = {db: {(label, target): value for label, target, value in rows} for db, rows in results.items()}
    header = ["figure", "target"] + databases
    table = [header] + [[label, target] + [values[db].get((label, target), "-") for db in databases]
                        for label, target in labels]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print()
    for i, row in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("\nWhat limits a missed target here: CPU. One grid process runs its Python on one core "
          "(its CPU figures near 1.0), and the simulated agents and ansible-playbook share the "
          "machine with it (load average above its cores). grid/README.md, \"What one process on "
          "SQLite carries\", has the figures and the way past it (PostgreSQL with --workers).")


if __name__ == "__main__":
    main()
