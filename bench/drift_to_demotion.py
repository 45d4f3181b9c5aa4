#!/usr/bin/env python3
"""Drift to demotion: how long a host admitted to production keeps its place after its
configuration breaks (root logins over ssh turned on in its tree), for the three ways to run
membership control, against a real grid, a real agent (halodev.launchers.AgentProcess scanning
a prepared tree), real ansible-playbook and real ansible-rulebook:

  rulebook+now        the bench requests a scan right after the drift (a drift detector, or the
                      lower bound): scan -> scan_completed event -> rulebook -> demote.yml
  scheduled+rulebook  the production group has scan_interval S; the grid's scheduled scan
                      finds the drift; the rulebook reacts to its scan_completed event
  scheduled+cron      the same scheduled scan; `demote.yml -e halo_rescan=false` runs every M s
                      (a cron job or an AWX schedule) and judges the latest finished scan

    .venv/bin/python bench/drift_to_demotion.py [--scan-interval 30] [--cron-interval 30] [--reps 3]

Each repetition: the host is clean and in production; the drift happens at a random phase of
the scan schedule (the cron schedule gets a random phase too), the repetitions' phases one in
each n-th of the interval; the time until the API shows the server in the staging group is
split into: waiting for the scan (drift -> scan created), the scan (created ->
completed: delivery by long-poll, the agent's scan, analysis), pickup (scan completed -> the
demote playbook's process starts: the rulebook's event poll and ansible-runner, or the next
cron tick; 0 when a cron run already starting read the scan) and the playbook (its start, or
the scan's completion when later -> the move seen by the API). Between repetitions the
file is repaired, the host rescanned clean and put back in production. Prints figures (min /
median / max), asserts nothing.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

import benchlib  # noqa: E402
from halodev import trees  # noqa: E402
from halodev.launchers import AgentProcess, GridProcess  # noqa: E402
from halodev.launchers import kill_group  # noqa: E402

REPO = benchlib.REPO
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")
ANSIBLE_RULEBOOK = str(BIN / "ansible-rulebook")
STAGING, PRODUCTION = "ProdWebDirty", "ProdWebClean"
CLEAN_LINE, DRIFT_LINE = "PermitRootLogin prohibit-password", "PermitRootLogin yes"
PARTS = ("wait_scan", "scan", "pickup", "playbook")
COMBOS = ("rulebook+now", "scheduled+rulebook", "scheduled+cron")


def playbook_env(url, key_id, secret):
    env = dict(os.environ)
    env.update(HALO_API_HOST=url, HALO_API_KEY=key_id, HALO_API_SECRET_KEY=secret,
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="False",
               PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    return env


# -- demote playbook processes, seen in /proc (the rulebook starts them through ansible-runner)
_BOOT = None


def process_start(pid):
    """POSIX start time of a process (10 ms resolution), None when gone (or a zombie that
    its parent has not reaped yet)."""
    global _BOOT
    if _BOOT is None:
        _BOOT = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
    try:
        fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            return None
        return _BOOT + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def parent(pid):
    try:
        return int(Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class PlaybookWatcher(threading.Thread):
    """Notes the start of every ansible-playbook process running the demote playbook."""

    def __init__(self, every=0.05):
        super().__init__(name="playbook-watcher", daemon=True)
        self.every, self.starts, self.seen = every, [], set()
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or int(entry.name) in self.seen:
                    continue
                try:
                    argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if any(a.endswith(b"ansible-playbook") for a in argv) and any(b"demote" in a for a in argv):
                    pid = int(entry.name)
                    self.seen.add(pid)
                    started = process_start(pid)
                    # ansible-playbook forks a worker per task, with its command line: not a start
                    if started is not None and parent(pid) not in self.seen:
                        self.starts.append(started)
            self.stopping.wait(self.every)

    def last_before(self, t):
        earlier = [s for s in self.starts if s <= t]
        return max(earlier) if earlier else None

    def running(self):
        return any(process_start(pid) is not None for pid in self.seen)


class Rulebook:
    """ansible-rulebook running cloudpassage.halo.membership_control, in its own process group."""

    def __init__(self, tmp, env):
        self.state_file = tmp / "halo_events.json"
        self.log_path = tmp / "rulebook.log"
        variables = tmp / "membership.yml"
        variables.write_text(yaml.safe_dump({"halo_staging_group": STAGING, "halo_production_group": PRODUCTION,
                                             "halo_events_state_file": str(self.state_file)}))
        inventory = tmp / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}))
        self.command = [ANSIBLE_RULEBOOK, "-r", "cloudpassage.halo.membership_control", "-i", str(inventory),
                        "--vars", str(variables)]
        self.env, self.cwd, self.proc = env, tmp, None

    def start(self):
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(self.cwd))
        # the source writes its cursor on its first read: from then on no event is missed
        while not self.state_file.exists():
            if self.proc.poll() is not None or time.monotonic() - started > 180:
                raise RuntimeError("ansible-rulebook did not start:\n" + self.log_path.read_text()[-4000:])
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self):
        if self.proc is not None:
            kill_group(self.proc, timeout=15)
        self.proc = None


class Cron(threading.Thread):
    """`demote.yml -e halo_rescan=false` every `interval` s from `first` on (start to start);
    a tick while the previous run is still going is skipped, as an AWX schedule without
    concurrent jobs does."""

    def __init__(self, interval, first, env, log_dir):
        super().__init__(name="cron", daemon=True)
        self.interval, self.first, self.env, self.log_dir = interval, first, env, log_dir
        self.runs, self.skipped = [], 0
        self.stopping = threading.Event()

    def run(self):
        tick, proc = self.first, None
        while not self.stopping.wait(max(0.0, tick - time.time())):
            if proc is not None and proc.poll() is None:
                self.skipped += 1
            else:
                log = open(self.log_dir / ("cron-%d.log" % len(self.runs)), "w")
                proc = subprocess.Popen([ANSIBLE_PLAYBOOK, str(REPO / "playbooks" / "demote.yml"),
                                         "-e", "halo_rescan=false"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT)
                log.close()
                self.runs.append((time.time(), proc))
            tick += self.interval
        if proc is not None:
            proc.wait()

    def durations(self):
        """Seconds from start to exit of the finished runs (the pipe-less poll cannot tell the
        exit time exactly: the log file's last write is taken)."""
        out = []
        for n, (started, proc) in enumerate(self.runs):
            if proc.poll() is not None:
                out.append(os.stat(self.log_dir / ("cron-%d.log" % n)).st_mtime - started)
        return out

    def stop(self):
        self.stopping.set()
        self.join()


class Lab:
    """A grid with the staging and production groups (the default Debian policy) and web1, a
    real agent scanning a compliant tree, admitted to production by the real admit.yml."""

    def __init__(self, tmp, args):
        self.tmp, self.args = tmp, args
        options = {"rate_limit": args.rate_limit}
        if args.sweep_interval:
            options["sweep_interval"] = args.sweep_interval
        self.grid = GridProcess(tmp / "grid", **options)
        self.agent = None

    def __enter__(self):
        self.grid.__enter__()
        key_id, secret = self.grid.create_api_key()
        self.env = playbook_env(self.grid.url, key_id, secret)
        self.api = benchlib.with_timeout(self.grid.api(rate_limit_retries=20), 60)
        policies = self.api.ok("GET", "/v2/policies", params={"module": "csm", "per_page": 100})["policies"]
        debian = next(p for p in policies if "Debian" in p["name"])
        self.group_ids = {name: self.api.create_group(name, tag=tag, policy_ids=[debian["id"]])["id"]
                          for name, tag in ((STAGING, "NewDirty"), (PRODUCTION, None))}
        root = self.tmp / "tree-web1"
        trees.make_compliant_tree(str(root))
        (root / "etc" / "hostname").write_text("web1\n")
        self.sshd = root / "etc" / "ssh" / "sshd_config"
        self.agent = AgentProcess(self.grid.url, self.grid.agent_key, root=root, state_dir=self.tmp / "state-web1",
                                  tag="NewDirty", server_label="web1").start()
        self.server_id = self.agent.wait_registered(self.api)["id"]
        return self

    def __exit__(self, *exc):
        if self.agent is not None:
            self.agent.stop()
        self.grid.__exit__(*exc)

    def admit(self):
        """The real admission (admit.yml): the host is scanned and promoted."""
        started = time.monotonic()
        out = subprocess.run([ANSIBLE_PLAYBOOK, str(REPO / "playbooks" / "admit.yml")], env=self.env,
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0 or self.group() != PRODUCTION:
            raise RuntimeError("admission failed (rc %s):\n%s" % (out.returncode, out.stdout[-3000:]))
        return time.monotonic() - started

    def group(self):
        return self.api.ok("GET", "/v1/servers/%s" % self.server_id)["server"]["group_name"]

    def set_scan_interval(self, seconds):
        self.api.ok("PUT", "/v1/groups/%s" % self.group_ids[PRODUCTION], {"group": {"scan_interval": seconds}})

    def scans(self):
        return self.api.ok("GET", "/v1/scans", params={"server_id": self.server_id, "per_page": 100,
                                                       "sort_by": "created_at.desc"})["scans"]

    def drift(self):
        self.sshd.write_text(self.sshd.read_text().replace(CLEAN_LINE, DRIFT_LINE))
        return time.time()

    def repair(self, watcher):
        """Back to the start: the file fixed, a clean scan, the host in production, no
        demotion still running. Returns the clean scan's creation time."""
        wait_no_demotion(watcher)
        self.sshd.write_text(self.sshd.read_text().replace(DRIFT_LINE, CLEAN_LINE))
        command = self.api.scan(self.server_id)
        result = self.api.wait_command(self.server_id, command["id"], timeout=120)
        scan = self.scans()[0]
        if result["status"] != "completed" or scan["status"] != "completed_clean":
            raise RuntimeError("the repaired host did not scan clean: %s" % json.dumps(scan))
        if self.group() != PRODUCTION:
            self.api.ok("PUT", "/v1/servers/%s" % self.server_id,
                        {"server": {"group_id": self.group_ids[PRODUCTION]}})
        return benchlib.parse_iso(scan["created_at"])

    def wait_demoted(self, timeout, poll=0.25):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.group() == STAGING:
                return time.time()
            time.sleep(poll)
        return None

    def detecting_scan(self, t0):
        """The first scan that finished after the drift and was not clean."""
        done = [s for s in self.scans() if s.get("completed_at") and s["status"] != "completed_clean"
                and benchlib.parse_iso(s["completed_at"]) >= t0]
        return min(done, key=lambda s: s["completed_at"]) if done else None


def strata(rng, n):
    """n random phases in [0, 1), one in each n-th, in random order: a few repetitions still
    cover the whole schedule."""
    order = list(range(n))
    rng.shuffle(order)
    return [(k + rng.random()) / n for k in order]


def one_rep(lab, watcher, combo, args, anchor, phase, cron=None):
    """One drift; returns its figures."""
    rep = {"combo": combo}
    if combo == "rulebook+now":
        t0 = lab.drift()
        lab.api.scan(lab.server_id)
    else:
        # the drift falls at a random point of the scan schedule (which starts at the clean scan)
        rep["phase"] = phase
        time.sleep(max(0.0, anchor + rep["phase"] * args.scan_interval - time.time()))
        t0 = lab.drift()
    demoted = lab.wait_demoted(args.scan_interval + args.cron_interval + 240)
    rep["total"] = None if demoted is None else demoted - t0
    scan = lab.detecting_scan(t0)
    if demoted is None or scan is None:
        rep["error"] = "not demoted" if demoted is None else "no scan found the drift"
        return rep
    created, completed = benchlib.parse_iso(scan["created_at"]), benchlib.parse_iso(scan["completed_at"])
    # the run that moved it: a cron run may have started before the scan completed (and read
    # the scans after); then pickup is 0 and "playbook" the rest of that run
    if cron is not None:  # the bench started these itself
        started = max([t for t, _ in cron.runs if t <= demoted], default=None)
    else:
        started = watcher.last_before(demoted)
    if started is None:
        rep["error"] = "no demote playbook seen starting"
        return rep
    rep.update(wait_scan=max(0.0, created - t0), scan=completed - max(created, t0),
               pickup=max(0.0, started - completed), playbook=demoted - max(started, completed))
    if scan.get("agent_started_at"):
        rep["delivery"] = benchlib.parse_iso(scan["agent_started_at"]) - created
    rep["load_average"] = os.getloadavg()[0]  # others' work on the 2 shared cores counts too
    return rep


def run_combo(lab, watcher, combo, args, rng, rulebook=None):
    reps, durations, runs, skipped, failed = [], [], 0, 0, 0
    lab.set_scan_interval(None if combo == "rulebook+now" else args.scan_interval)
    drift_phases, cron_phases = strata(rng, args.reps), strata(rng, args.reps)
    for i in range(args.reps):
        anchor = lab.repair(watcher)
        cron = None
        if combo == "scheduled+cron":
            # a cron schedule has its own phase; with one cron for all repetitions it would
            # stay locked to the scan schedule (the repair follows each demotion)
            first = time.time() + cron_phases[i] * args.cron_interval
            cron = Cron(args.cron_interval, first, lab.env, lab.tmp / ("cron-%d" % i))
            cron.log_dir.mkdir()
            cron.start()
        rep = {"combo": combo, "error": "interrupted"}
        try:
            rep = one_rep(lab, watcher, combo, args, anchor, drift_phases[i], cron)
        finally:
            if cron is not None:
                cron.stop()
                rep["cron_phase"] = cron_phases[i]
                durations += cron.durations()
                runs, skipped = runs + len(cron.runs), skipped + cron.skipped
                failed += sum(1 for _, proc in cron.runs if proc.returncode != 0)
        print_rep(i + 1, rep)
        reps.append(rep)
        if rulebook is not None and rulebook.proc.poll() is not None:
            print("  ansible-rulebook exited (rc %s)" % rulebook.proc.returncode, flush=True)
            break
    wait_no_demotion(watcher)
    if combo == "scheduled+cron":
        took = stats(durations)
        print("  cron: %d runs of demote.yml (start to exit min / median / max %s / %s / %s), %d skipped "
              "ticks (previous run still going), %d failed"
              % (runs, benchlib.fmt(took["min"]), benchlib.fmt(took["median"]), benchlib.fmt(took["max"]),
                 skipped, failed), flush=True)
    return reps


def wait_no_demotion(watcher, timeout=120):
    """Until no demote playbook runs (a demotion prints its summary after the move)."""
    deadline = time.monotonic() + timeout
    while watcher.running():
        if time.monotonic() > deadline:
            raise RuntimeError("a demote playbook is still running after %d s" % timeout)
        time.sleep(0.2)


def print_rep(n, rep):
    if rep.get("error"):
        print("  %-18s rep %d: %s (after %s)" % (rep["combo"], n, rep["error"], benchlib.fmt(rep.get("total"))),
              flush=True)
        return
    phase = " phase %.2f" % rep["phase"] if "phase" in rep else ""
    if "cron_phase" in rep:
        phase += ", cron phase %.2f" % rep["cron_phase"]
    print("  %-18s rep %d:%s total %s = wait for scan %s + scan %s (delivery %s) + pickup %s + playbook %s"
          " (load average %.1f)"
          % (rep["combo"], n, phase, benchlib.fmt(rep["total"]), benchlib.fmt(rep["wait_scan"]),
             benchlib.fmt(rep["scan"]), benchlib.fmt(rep.get("delivery")), benchlib.fmt(rep["pickup"]),
             benchlib.fmt(rep["playbook"]), rep["load_average"]), flush=True)


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return {"min": None, "median": None, "max": None, "count": 0}
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "count": len(values)}


def summarize(results):
    figures = {}
    for combo, reps in results.items():
        ok = [r for r in reps if not r.get("error")]
        figures[combo] = {"reps": reps, "failed": len(reps) - len(ok),
                          "total": stats([r["total"] for r in ok]),
                          **{part: stats([r[part] for r in ok]) for part in PARTS}}
    return figures


def print_table(figures, args):
    def mmm(s):
        if not s["count"]:
            return "-"
        return "%.1f / %.1f / %.1f" % (s["min"], s["median"], s["max"])

    header = ["combination", "drift -> demoted (min / median / max, s)"] + \
             ["%s (median)" % p.replace("_", " ") for p in PARTS] + ["reps"]
    rows = [header]
    for combo, f in figures.items():
        rows.append([combo, mmm(f["total"])] + [benchlib.fmt(f[p]["median"], digits=1) for p in PARTS]
                    + ["%d%s" % (f["total"]["count"], " (%d failed)" % f["failed"] if f["failed"] else "")])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    print("\nscan_interval S = %d s, cron every M = %d s, grid sweep every %s, rulebook source interval 5 s"
          % (args.scan_interval, args.cron_interval,
             "%g s" % args.sweep_interval if args.sweep_interval else "5 s (the default)"))
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan-interval", type=int, default=30,
                        help="the production group's scan_interval S (the grid's minimum is 10)")
    parser.add_argument("--cron-interval", type=int, default=30, help="M: demote.yml runs every M s")
    parser.add_argument("--reps", type=int, default=3, help="drifts per combination")
    parser.add_argument("--combos", nargs="+", choices=COMBOS, default=list(COMBOS))
    parser.add_argument("--sweep-interval", type=float, default=0.0,
                        help="the grid's --sweep-interval (0: its default, 5 s)")
    parser.add_argument("--seed", type=int, default=13, help="random phases of drift and cron")
    parser.add_argument("--rate-limit", type=int, default=benchlib.BENCH_RATE_LIMIT)
    parser.add_argument("--json", help="also write the figures to this file (bench/run_all.py reads it)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (grid, rulebook, cron logs)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    clock = benchlib.Stopwatch()
    results, figures_extra = {}, {}
    watcher = PlaybookWatcher()
    watcher.start()
    with benchlib.workdir(args.keep) as tmp, Lab(tmp, args) as lab:
        print("web1 admitted to %s by admit.yml in %.1f s" % (PRODUCTION, lab.admit()), flush=True)
        rulebook_combos = [c for c in args.combos if "rulebook" in c]
        if rulebook_combos:
            rulebook = Rulebook(tmp, lab.env)
            try:
                print("ansible-rulebook started (event source reading) in %.1f s" % rulebook.start(), flush=True)
                for combo in rulebook_combos:
                    results[combo] = run_combo(lab, watcher, combo, args, rng, rulebook)
            finally:
                rulebook.stop()
            resets = rulebook.log_path.read_text(errors="replace").count("cannot reach the Halo API")
            print("event source: %d poll(s) retried after 'cannot reach the Halo API'" % resets, flush=True)
            figures_extra["event_source_retries"] = resets
        if "scheduled+cron" in args.combos:
            results["scheduled+cron"] = run_combo(lab, watcher, "scheduled+cron", args, rng)
        lab.set_scan_interval(None)
    watcher.stopping.set()
    figures = summarize(results)
    figures.update(figures_extra)
    figures["settings"] = {"scan_interval": args.scan_interval, "cron_interval": args.cron_interval,
                           "sweep_interval": args.sweep_interval or None, "reps": args.reps}
    print_table({c: figures[c] for c in results}, args)
    print("(bench wall time %.0f s)" % clock())
    benchlib.write_json(args.json, figures)


if __name__ == "__main__":
    main()
