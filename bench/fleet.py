#!/usr/bin/env python3
"""A fleet of simulated agents in ONE asyncio process, speaking grid/PROTOCOL.md as haloagent does.

Each agent registers with the daemon key (tag NewDirty by default: it lands in the staging
group), then loops like ``haloagent run``: long-poll ``/agent/v1/poll?wait=30&firewall_version=N``
(``-1`` until it has seen a version, so its first poll answers at once); when the version
changes, ``GET /agent/v1/firewall`` and ``POST /agent/v1/firewall/status`` (applied); for each
command, ``start``, then (after ``scan_seconds``) the result. An ``sca``/``csm`` scan is answered
with findings built from the policies in the poll answer: a clean agent reports every active
rule good; a failing one reports one critical rule bad (the first), the rest good. A 401/410
on a poll registers the agent again; other failures back off as haloagent does (1 s doubling
to 120 s, with jitter). Each agent has its own httpx.AsyncClient and, as haloagent, opens a
connection per request.

Recorded per agent: every poll's latency and what it brought (commands, a firewall change,
or nothing: then latency - wait is the overshoot), failed polls with their reason, and the
wall-clock time each command was handed out (``deliveries``, by command id), which the
benchmarks compare with the command's ``created_at`` or with the time they queued it.

As a library (bench/admission_scale.py, bench/fleet_poll.py)::

    fleet = Fleet(grid_url, agent_key, count=1000, clean_fraction=0.5)
    runner = FleetThread(fleet).start()      # its own event loop in a thread
    runner.call(fleet.register_all())
    runner.call(fleet.start_polling(ramp=30))
    ...
    runner.stop()

Stand-alone, against a running grid (prints the figures every 30 s until Ctrl-C)::

    .venv/bin/python bench/fleet.py --grid http://127.0.0.1:8080 --agent-key KEY --agents 500
"""

import argparse
import asyncio
import importlib.util
import ipaddress
import json
import random
import ssl
import sys
import threading
import time
from datetime import datetime, timezone

# httpcore asks sniffio which event loop runs on every request; where sniffio is not installed,
# each failed import searches sys.path again (a quarter of the fleet's CPU at 2,000 agents).
# A None entry makes that ImportError immediate.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None
import httpx  # noqa: E402

import benchlib  # noqa: E402

SCAN_COMMANDS = ("sca", "csm")
FIRST_ADDRESS = ipaddress.ip_address("198.18.0.10")  # lab addresses only (198.18.0.0/15)


def _now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_bool(value, default=True):
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def _detail(check, good):
    """One plausible detail of a check, as haloagent writes it."""
    target = ""
    for field in ("config_file_path", "files", "folders", "packages", "processes", "ports"):
        if check.get(field):
            target = check[field] if isinstance(check[field], str) else ", ".join(map(str, check[field]))
            break
    expected = None
    for field in ("desired_value", "acls", "owned_by", "patterns"):
        if check.get(field) is not None:
            expected = check[field]
            break
    out = {"type": check.get("object_type"), "target": target, "expected": expected,
           "actual": expected if good else "simulated-bad-value",
           "status": "good" if good else "bad", "scan_status": "ok"}
    if check.get("config_item") is not None:
        out["config_key"] = check["config_item"]
    return out


def build_findings(policies, clean):
    """One finding per active rule with active checks, in policy order: all good when clean,
    else the first critical rule (the first rule if none is critical) bad."""
    rules = []
    for policy in policies:
        for rule in policy.get("rules") or []:
            if not _as_bool(rule.get("active")):
                continue
            checks = [c for c in rule.get("checks") or [] if _as_bool(c.get("active"))]
            if checks:
                rules.append((policy, rule, checks))
    bad_index = None
    if not clean and rules:
        bad_index = next((i for i, (_, rule, _) in enumerate(rules) if rule.get("critical")), 0)
    findings = []
    for index, (policy, rule, checks) in enumerate(rules):
        good = index != bad_index
        findings.append({"rule_name": rule.get("name", ""), "policy_id": policy.get("id"),
                         "critical": bool(rule.get("critical", False)),
                         "status": "good" if good else "bad",
                         "details": [_detail(c, good or i > 0) for i, c in enumerate(checks)]})
    return findings


class Backoff:
    """haloagent's: the n-th delay is in [d/2, d], d = min(cap, base * 2^n)."""

    def __init__(self, base=1.0, cap=120.0):
        self.base, self.cap, self.attempt = base, cap, 0

    def next_delay(self):
        ceiling = min(self.cap, self.base * 2 ** self.attempt)
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self):
        self.attempt = 0


class GridRefused(Exception):
    def __init__(self, status, text=""):
        super().__init__("HTTP %s %s" % (status, text[:200]))
        self.status = status


class SimAgent:
    def __init__(self, fleet, index, clean):
        self.fleet, self.index, self.clean = fleet, index, clean
        self.hostname = "%s%05d" % (fleet.prefix, index)
        self.ip = str(FIRST_ADDRESS + index)
        self.server_id = self.secret = None
        self.firewall_version = -1
        self.client = None
        # (monotonic start, latency s, outcome "commands" | "firewall" | "empty")
        self.polls = []
        self.failed_polls = []  # (monotonic time, reason)
        self.deliveries = []  # (command id, wall-clock time handed out)
        self.errors = []  # other calls that failed: (monotonic time, what)
        self.commands_done = 0

    # -- HTTP ---------------------------------------------------------------------------
    def _http(self):
        if self.client is None:
            self.client = httpx.AsyncClient(
                base_url=self.fleet.url, verify=self.fleet.ssl_context,
                timeout=httpx.Timeout(self.fleet.poll_wait + 30.0),
                # a new connection per request, as haloagent (urllib) makes them: a kept-alive
                # one races the grid's keep-alive timeout and fails a request now and then
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
                headers={"Accept": "application/json", "User-Agent": "haloagent-fleet-bench"})
        return self.client

    def _auth(self):
        return {"Authorization": "Agent %s:%s" % (self.server_id, self.secret)}

    async def _call(self, method, path, body=None, **kw):
        headers = kw.pop("headers", None) or self._auth()
        if body is not None:
            kw["json"] = body
        elif method != "GET":
            kw["content"] = b""  # an explicit Content-Length: 0, as haloagent sends
        r = await self._http().request(method, path, headers=headers, **kw)
        if r.status_code >= 300:
            raise GridRefused(r.status_code, r.text)
        return r.json() if r.content.strip() else None

    async def close(self):
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    # -- protocol -------------------------------------------------------------------------
    async def register(self):
        body = {"hostname": self.hostname, "reported_fqdn": self.hostname + ".fleet.lab",
                "server_label": self.hostname, "platform": "debian", "platform_version": "12",
                "os_version": "6.1.0-18-amd64", "kernel_name": "Linux", "daemon_version": "0.1.0",
                "interfaces": [{"name": "eth0", "ip": self.ip}], "primary_ip_address": self.ip}
        if self.fleet.tag:
            body["tag"] = self.fleet.tag
        answer = await self._call("POST", "/agent/v1/register", body,
                                  headers={"X-Daemon-Key": self.fleet.agent_key})
        self.server_id, self.secret = answer["server_id"], answer["agent_secret"]
        self.firewall_version = -1
        self.fleet.by_server[self.server_id] = self

    async def register_with_retry(self):
        backoff = Backoff()
        while not self.fleet.stopping:
            try:
                await self.register()
                return True
            except (httpx.HTTPError, GridRefused) as exc:
                self.errors.append((time.monotonic(), "register: %s" % exc))
                await asyncio.sleep(backoff.next_delay())
        return False

    async def run(self, start_delay=0.0):
        await asyncio.sleep(start_delay)
        backoff = Backoff()
        wait = self.fleet.poll_wait
        while not self.fleet.stopping:
            if self.server_id is None and not await self.register_with_retry():
                return
            started = time.monotonic()
            try:
                r = await self._http().get("/agent/v1/poll", headers=self._auth(),
                                           params={"wait": wait, "firewall_version": self.firewall_version})
            except httpx.HTTPError as exc:
                self.failed_polls.append((time.monotonic(), type(exc).__name__))
                await asyncio.sleep(backoff.next_delay())
                continue
            latency = time.monotonic() - started
            handed_out = time.time()
            if r.status_code in (401, 410):  # the grid no longer knows us: register again
                self.failed_polls.append((time.monotonic(), "HTTP %d" % r.status_code))
                self.server_id = None
                continue
            if r.status_code != 200:
                self.failed_polls.append((time.monotonic(), "HTTP %d" % r.status_code))
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            answer = r.json() if r.content.strip() else {}
            commands = answer.get("commands") or []
            version = answer.get("firewall_version")
            changed = version is not None and version != self.firewall_version
            self.polls.append((started, latency, "commands" if commands else "firewall" if changed else "empty"))
            for command in commands:
                self.deliveries.append((command["id"], handed_out))
                self.fleet.deliveries[command["id"]] = handed_out
            try:
                if changed:
                    if self.fleet.firewall:
                        await self.sync_firewall()
                    self.firewall_version = version
                for command in commands:
                    await self.run_command(command)
            except (httpx.HTTPError, GridRefused) as exc:
                self.errors.append((time.monotonic(), str(exc)))
                if isinstance(exc, GridRefused) and exc.status in (401, 410):
                    self.server_id = None

    async def sync_firewall(self):
        answer = await self._call("GET", "/agent/v1/firewall") or {}
        await self._call("POST", "/agent/v1/firewall/status",
                         {"version": answer.get("version"), "status": "applied", "message": ""})

    async def run_command(self, command):
        command_id, name = command["id"], command.get("name")
        await self._call("POST", "/agent/v1/commands/%s/start" % command_id)
        if name not in SCAN_COMMANDS:
            await self._send_result(command_id, {"status": "failed",
                                                 "result": "haloagent does not support command %r" % name})
            return
        started = _now_iso()
        if self.fleet.scan_seconds > 0:
            await asyncio.sleep(self.fleet.scan_seconds)
        findings = self.fleet.findings(command.get("policies") or [], self.clean)
        await self._send_result(command_id, {"status": "completed", "scan": {
            "module": "sca", "agent_started_at": started, "agent_completed_at": _now_iso(),
            "findings": findings}})
        self.commands_done += 1

    async def _send_result(self, command_id, result, attempts=5):
        backoff = Backoff(cap=8.0)
        for attempt in range(1, attempts + 1):
            try:
                await self._call("POST", "/agent/v1/commands/%s/result" % command_id, result)
                return
            except (httpx.HTTPError, GridRefused) as exc:
                retryable = not isinstance(exc, GridRefused) or exc.status >= 500
                if not retryable or attempt == attempts:
                    raise
                await asyncio.sleep(backoff.next_delay())


class Fleet:
    """`count` simulated agents; agent i is clean when it falls in the first `clean_fraction`
    of each run of agents (0.5: every other one)."""

    def __init__(self, url, agent_key, count, clean_fraction=0.5, tag="NewDirty", prefix="fleet",
                 poll_wait=30, scan_seconds=0.1, firewall=True, register_concurrency=16, first=0):
        self.url, self.agent_key, self.tag, self.prefix = url.rstrip("/"), agent_key, tag, prefix
        self.poll_wait, self.scan_seconds, self.firewall = poll_wait, scan_seconds, firewall
        self.register_concurrency = register_concurrency
        self.ssl_context = ssl.create_default_context()  # shared: one per client costs ~1 ms each
        # agents first .. first+count-1 of a fleet (FleetProcesses gives each process a slice)
        self.agents = [SimAgent(self, i, int((i + 1) * clean_fraction) > int(i * clean_fraction))
                       for i in range(first, first + count)]
        self.by_server = {}
        self.deliveries = {}  # command id -> wall-clock time handed out
        self.stopping = False
        self.tasks = []
        self.loop_lag = []  # (monotonic time, seconds late)
        self._findings_cache = {}

    def findings(self, policies, clean):
        key = (tuple((p.get("id"), len(p.get("rules") or [])) for p in policies), clean)
        if key not in self._findings_cache:
            self._findings_cache[key] = build_findings(policies, clean)
        return self._findings_cache[key]

    @property
    def clean_ids(self):
        return {a.server_id for a in self.agents if a.clean and a.server_id}

    async def register_all(self):
        """Register every agent (a few at a time); returns the seconds it took."""
        started = time.monotonic()
        gate = asyncio.Semaphore(self.register_concurrency)

        async def one(agent):
            async with gate:
                await agent.register_with_retry()

        await asyncio.gather(*(one(a) for a in self.agents if a.server_id is None))
        return time.monotonic() - started

    async def _watch_loop(self, every=0.1):
        """How late this process's event loop wakes up: when it is late, the fleet itself (not
        the grid) adds to the latencies measured."""
        while not self.stopping:
            before = time.monotonic()
            await asyncio.sleep(every)
            self.loop_lag.append((time.monotonic(), time.monotonic() - before - every))

    async def start_polling(self, ramp=0.0):
        """Start every agent's poll loop, the starts spread evenly over `ramp` seconds (a fleet's
        polls are spread over the poll period; all at once is a thundering herd)."""
        count = len(self.agents)
        self.tasks.append(asyncio.ensure_future(self._watch_loop()))
        for i, agent in enumerate(self.agents):
            delay = ramp * i / count if ramp else 0.0
            self.tasks.append(asyncio.ensure_future(agent.run(delay)))

    async def stop(self):
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
        await asyncio.gather(*(a.close() for a in self.agents), return_exceptions=True)

    # -- figures ----------------------------------------------------------------------------
    def figures(self, since=None, until=None):
        """Poll latencies, overshoot beyond `wait` of the polls that brought nothing, failed
        polls: the polls that ended between monotonic times `since` and `until`."""
        return summarize([self.raw_figures(since, until)])

    def raw_figures(self, since=None, until=None):
        """What `figures` summarises, as lists (the processes of FleetProcesses send theirs)."""
        since, until = since or 0.0, until or float("inf")
        latencies, overshoots, failures = [], [], {}
        for agent in self.agents:
            for started, latency, outcome in agent.polls:
                if since <= started + latency <= until:
                    latencies.append(latency)
                    if outcome == "empty":
                        overshoots.append(latency - self.poll_wait)
            for failed, reason in agent.failed_polls:
                if since <= failed <= until:
                    failures[reason] = failures.get(reason, 0) + 1
        errors = sum(1 for a in self.agents for t, _ in a.errors if since <= t <= until)
        lag = [late for t, late in self.loop_lag if since <= t <= until]
        return {"latencies": latencies, "overshoots": overshoots, "failures": failures,
                "errors": errors, "commands_done": sum(a.commands_done for a in self.agents),
                "lag": lag}


def summarize(raws):
    """One figures dict from the raw figures of one or more fleets."""
    latencies = [x for raw in raws for x in raw["latencies"]]
    overshoots = [x for raw in raws for x in raw["overshoots"]]
    failures = {}
    for raw in raws:
        for reason, n in raw["failures"].items():
            failures[reason] = failures.get(reason, 0) + n
    return {"polls": len(latencies), "poll_latency": benchlib.summary(latencies),
            "overshoot": benchlib.summary(overshoots), "failed_polls": sum(failures.values()),
            "failed_poll_reasons": failures, "other_errors": sum(raw["errors"] for raw in raws),
            "commands_done": sum(raw["commands_done"] for raw in raws),
            "fleet_loop_lag": benchlib.summary([x for raw in raws for x in raw["lag"]])}


class FleetThread:
    """Runs a Fleet's event loop in a thread of its own, so the caller can stay synchronous."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="fleet", daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self):
        self.thread.start()
        return self

    def call(self, coro, timeout=None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        try:
            self.call(self.fleet.stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


class AgentView:
    """What a caller of FleetProcesses reads of one agent living in another process."""

    __slots__ = ("server_id", "firewall_version", "clean")

    def __init__(self, server_id, firewall_version, clean):
        self.server_id, self.firewall_version, self.clean = server_id, firewall_version, clean


def _fleet_process(conn, fleet_kwargs):
    """A child of FleetProcesses: one Fleet slice on its own event loop, driven by messages
    (method name, args) on `conn`; each is answered with ("ok", result) or ("error", text)."""
    fleet = Fleet(**fleet_kwargs)
    runner = FleetThread(fleet).start()
    calls = {
        "register_all": lambda: runner.call(fleet.register_all()),
        "start_polling": lambda ramp: runner.call(fleet.start_polling(ramp=ramp)),
        "agents": lambda: [(a.server_id, a.firewall_version, a.clean) for a in fleet.agents],
        "deliveries": lambda: dict(fleet.deliveries),
        "raw_figures": lambda since, until: fleet.raw_figures(since, until),
        "cpu_seconds": benchlib.cpu_seconds,
    }
    try:
        while True:
            name, args = conn.recv()
            if name == "stop":
                break
            try:
                conn.send(("ok", calls[name](*args)))
            except Exception as exc:  # the parent raises it
                conn.send(("error", "%s: %s" % (type(exc).__name__, exc)))
    finally:
        runner.stop()
        conn.send(("ok", None))


class FleetProcesses:
    """A Fleet spread over `processes` processes (each its own event loop and slice of the
    agents): one Python process cannot drive 10,000 agents without its own lateness showing
    in the figures. Offers what the benches use of a Fleet: register_all, start_polling,
    agents, deliveries, figures, clean_ids, and stop (it runs its own loops: no FleetThread)."""

    def __init__(self, url, agent_key, count, processes=2, **fleet_kwargs):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no copy of the parent's threads or loop
        self.poll_wait = fleet_kwargs.get("poll_wait", 30)
        self.children = []
        for k in range(processes):
            first, end = count * k // processes, count * (k + 1) // processes
            parent, child = ctx.Pipe()
            kwargs = dict(fleet_kwargs, url=url, agent_key=agent_key, count=end - first, first=first)
            proc = ctx.Process(target=_fleet_process, args=(child, kwargs), daemon=True,
                               name="fleet-%d" % k)
            proc.start()
            self.children.append((proc, parent))

    def _all(self, name, *args):
        for _, conn in self.children:
            conn.send((name, args))
        results = []
        for _, conn in self.children:
            status, value = conn.recv()
            if status != "ok":
                raise RuntimeError("fleet process: %s" % value)
            results.append(value)
        return results

    def register_all(self):
        """Every process registers its slice at once; the seconds until all are done."""
        started = time.monotonic()
        self._all("register_all")
        return time.monotonic() - started

    def start_polling(self, ramp=0.0):
        self._all("start_polling", ramp)

    @property
    def agents(self):
        return [AgentView(*a) for part in self._all("agents") for a in part]

    @property
    def deliveries(self):
        out = {}
        for part in self._all("deliveries"):
            out.update(part)
        return out

    @property
    def clean_ids(self):
        return {a.server_id for a in self.agents if a.clean and a.server_id}

    def figures(self, since=None, until=None):
        return summarize(self._all("raw_figures", since, until))

    def cpu_seconds(self):
        """CPU seconds used so far by the fleet's processes."""
        return sum(self._all("cpu_seconds"))

    def stop(self):
        for proc, conn in self.children:
            try:
                conn.send(("stop", ()))
                conn.recv()
            except (OSError, EOFError):
                pass
            proc.join(30)
            if proc.is_alive():
                proc.kill()
        self.children = []


def print_figures(figures, title="fleet"):
    lat, over = figures["poll_latency"], figures["overshoot"]
    print("%s: %d polls, latency p50 %s p99 %s; overshoot (empty polls) p50 %s p99 %s max %s; "
          "failed polls %d %s; other errors %d; commands done %d; the fleet's own loop lag p99 %s"
          % (title, figures["polls"], benchlib.fmt(lat["p50"]), benchlib.fmt(lat["p99"]),
             benchlib.fmt(over["p50"], "ms"), benchlib.fmt(over["p99"], "ms"), benchlib.fmt(over["max"], "ms"),
             figures["failed_polls"], json.dumps(figures["failed_poll_reasons"]) if figures["failed_polls"] else "",
             figures["other_errors"], figures["commands_done"],
             benchlib.fmt(figures["fleet_loop_lag"]["p99"], "ms")), flush=True)


async def _main(args):
    fleet = Fleet(args.grid, args.agent_key, args.agents, args.clean_fraction, args.tag or None,
                  args.prefix, args.poll_wait, args.scan_seconds, not args.no_firewall)
    took = await fleet.register_all()
    print("%d agents registered in %.1f s" % (args.agents, took), flush=True)
    await fleet.start_polling(ramp=args.ramp)
    try:
        while True:
            since = time.monotonic()
            await asyncio.sleep(30)
            print_figures(fleet.figures(since), "last 30 s")
    finally:
        await fleet.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", required=True, help="the grid's URL")
    parser.add_argument("--agent-key", required=True, help="the daemon key (halogrid agent-key show)")
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--clean-fraction", type=float, default=0.5)
    parser.add_argument("--tag", default="NewDirty")
    parser.add_argument("--prefix", default="fleet", help="host names are <prefix>00001...")
    parser.add_argument("--poll-wait", type=int, default=30)
    parser.add_argument("--scan-seconds", type=float, default=0.1, help="simulated scan time")
    parser.add_argument("--ramp", type=float, default=30.0, help="seconds over which the agents start polling")
    parser.add_argument("--no-firewall", action="store_true", help="do not fetch the firewall")
    args = parser.parse_args()
    benchlib.raise_nofile(args.agents + 1024)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
