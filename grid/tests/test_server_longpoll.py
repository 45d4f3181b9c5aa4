"""What a long-poll costs and whom a change wakes (issue 12): a grid served in this process,
so the tests can count the database transactions of a poll and the polls a change wakes."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
import traceback
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
import uvicorn
from sqlalchemy import event

from gridhelpers import PG_ADMIN_URL, Agent, fresh_pg_database, register, unique, wait_for
from halogrid.api import agent as agent_api
from halogrid.app import create_app
from halogrid.auth import create_api_key
from halogrid.config import Config
from halogrid.db import READ_ONLY_OPTION
from halodev.launchers import GridAPI


class InProcessGrid:
    """uvicorn serving create_app() in a thread; `.grid` is the app's Grid object."""

    def __init__(self, db: str) -> None:
        self.app = create_app(Config(db=db, rate_limit=0))
        self.grid = self.app.state.grid
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning",
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def agent_key(self) -> str:
        from halogrid.db import get_setting
        with self.grid.Session() as db:
            return get_setting(db, "agent_key")

    def api(self) -> GridAPI:
        with self.grid.Session() as db, db.begin():
            key_id, secret = create_api_key(db)
        return GridAPI(self.url, key_id, secret)

    def __enter__(self) -> "InProcessGrid":
        self.thread.start()
        wait_for("the grid to start", lambda: self.server.started or not self.thread.is_alive(),
                 interval=0.05)
        assert self.server.started, "grid did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def polling(self, server_id: str) -> bool:
        return server_id in self.grid.notifier.polling()

    def waiting(self, server_id: str) -> bool:
        """Whether the server's poll has had its first look and is waiting (filed under its
        group, which happens right after the look)."""
        return self.grid.notifier.waiting(server_id)


@pytest.fixture(scope="module")
def igrid(tmp_path_factory) -> Iterator[InProcessGrid]:
    with contextlib.ExitStack() as stack:
        db = (stack.enter_context(fresh_pg_database()) if PG_ADMIN_URL
              else str(tmp_path_factory.mktemp("igrid") / "grid.db"))
        yield stack.enter_context(InProcessGrid(db))


@pytest.fixture(scope="module")
def iapi(igrid) -> GridAPI:
    return igrid.api()


class PollThread:
    """A long-poll in a thread."""

    def __init__(self, agent, wait: float, firewall_version: Any) -> None:
        self.out: Dict[str, Any] = {}
        self.thread = threading.Thread(target=lambda: self.out.setdefault(
            "r", agent.poll(wait=wait, firewall_version=firewall_version)), daemon=True)
        self.thread.start()

    def answer(self, timeout: float) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the poll did not answer"
        assert self.out["r"].status_code == 200, self.out["r"].text
        return self.out["r"].json()


def _background(frame) -> bool:
    """A frame of the grid's own background rounds: the sweeps (app.sweep_round, which on
    PostgreSQL takes and gives back an advisory lock, and app._sweep_steps: missing servers,
    deadlines, scheduled scans) and the writes of the agents' batched reports
    (agent_logs.py), which run whatever the agents do."""
    return frame.name in ("sweep_round", "_sweep_steps") or \
        frame.filename.endswith("halogrid/agent_logs.py")


@contextlib.contextmanager
def transactions(engine, writes: Optional[List[float]] = None) -> Iterator[List[float]]:
    """The times at which a transaction began on `engine` while the block ran, leaving out
    the grid's background rounds; those that may write are also added to `writes`."""
    begun: List[float] = []

    def on_begin(conn):
        if not any(_background(frame) for frame in traceback.extract_stack()):
            begun.append(time.monotonic())
            if writes is not None and not conn.get_execution_options().get(READ_ONLY_OPTION):
                writes.append(begun[-1])

    event.listen(engine, "begin", on_begin)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", on_begin)


def test_an_idle_poll_reads_the_database_once(igrid):
    """A poll that waits its whole `wait` looks at the database when it starts and never
    again: no periodic re-check, no second transaction to answer at the end."""
    a = register(igrid)
    fwv = a.poll().json()["firewall_version"]
    with transactions(igrid.grid.engine) as begun:
        started = time.monotonic()
        r = a.poll(wait=3, firewall_version=fwv)
        ended = time.monotonic()
    assert r.status_code == 200 and r.json() == {"commands": [], "firewall_version": fwv}
    assert ended - started >= 2.9  # it did wait
    assert len(begun) == 1, begun


def test_idle_polls_write_nothing_and_their_contacts_are_written_together(igrid):
    """An idle poll's look only reads (on SQLite a write waits its turn for the one write
    lock: thousands of agents queued there). Its contact reaches last_seen_at through the
    contact log, for all polling servers in one write."""
    agents = [register(igrid) for _ in range(3)]
    versions = [a.poll().json()["firewall_version"] for a in agents]
    igrid.grid.contacts.flush(igrid.grid.Session)
    before = {a.server_id: _last_seen(igrid, a.server_id) for a in agents}
    writes: List[float] = []
    with transactions(igrid.grid.engine, writes) as begun:
        for a, fwv in zip(agents, versions):
            assert a.poll(wait=0, firewall_version=fwv).json()["commands"] == []
    assert len(begun) == 3 and writes == [], (begun, writes)
    assert igrid.grid.contacts.pending() >= 3
    wait_for("the contacts to be written", lambda: all(
        _last_seen(igrid, a.server_id) > before[a.server_id] for a in agents), interval=0.02)


def _groups_with_a_guard(iapi, names):
    """A tagged group per name; the group "guard" gets a firewall policy that accepts the
    members of the group "src". (tags, groups) by name."""
    tags = {k: unique(k) for k in names}
    groups = {k: iapi.create_group(unique(k + "g"), tag=t) for k, t in tags.items()}
    fp = iapi.ok("POST", "/v1/firewall_policies", {"firewall_policy": {
        "name": unique("guardfw"), "platform": "linux"}})["firewall_policy"]
    iapi.ok("POST", "/v1/firewall_policies/%s/firewall_rules" % fp["id"], {"firewall_rule": {
        "chain": "INPUT", "action": "ACCEPT",
        "firewall_source": {"id": groups["src"]["id"], "type": "Group"}}})
    iapi.put("/v1/groups/%s" % groups["guard"]["id"],
             {"group": {"linux_firewall_policy_id": fp["id"]}})
    return tags, groups


def test_idle_looks_resolve_a_groups_firewall_once_until_the_group_changes(igrid, iapi,
                                                                            monkeypatch):
    """Resolving a firewall answer reads the policy, its rules and every member of its
    source groups: idle looks of the group's servers reuse the group's digest, and the
    change that wakes the group (a server joining the source group) is seen at once."""
    from halogrid import resolved_firewall
    tags, groups = _groups_with_a_guard(iapi, ("src", "guard"))
    register(igrid, tag=tags["src"], ip="198.18.8.1")
    guards = [register(igrid, tag=tags["guard"], ip="198.18.8.%d" % (10 + i))
              for i in range(3)]
    versions = [a.poll(firewall_version=-1).json()["firewall_version"] for a in guards]

    resolved: List[str] = []
    resolve = resolved_firewall.resolved_policy_of_group

    def counted(db, group_id):
        resolved.append(group_id)
        return resolve(db, group_id)

    monkeypatch.setattr(resolved_firewall, "resolved_policy_of_group", counted)
    for _ in range(3):
        for a, fwv in zip(guards, versions):
            assert a.poll(wait=0, firewall_version=fwv).json() == {
                "commands": [], "firewall_version": fwv}
    assert resolved.count(groups["guard"]["id"]) <= 1, resolved

    # a new member of the source group wakes the guarded group: its answer changes at once
    register(igrid, tag=tags["src"], ip="198.18.8.2")
    answers = [a.poll(wait=0, firewall_version=fwv).json() for a, fwv in zip(guards, versions)]
    assert all(ans["firewall_version"] == fwv + 1 for ans, fwv in zip(answers, versions)), answers
    rules = guards[0].get("/agent/v1/firewall").json()["policy"]["rules"]
    assert rules[0]["source"]["ips"] == ["198.18.8.1", "198.18.8.2"]


def test_a_group_digest_serves_only_until_its_group_is_woken_or_it_is_old():
    """GroupDigests' rules: an entry computed by a look is used until the group (or every
    poll) is woken after that look began, and never past max_age."""
    from halogrid import resolved_firewall
    from halogrid.notify import Notifier

    notifier, now = Notifier(), [100.0]
    digests = resolved_firewall.GroupDigests(notifier, max_age=10, clock=lambda: now[0])
    computed: List[str] = []
    answers = {"g1": {"rules": ["a"]}, "g2": {"rules": ["b"]}}
    original = resolved_firewall.resolved_policy_of_group
    resolved_firewall.resolved_policy_of_group = lambda db, gid: computed.append(gid) or answers[gid]
    try:
        def look(gid):
            return digests.digest(None, gid, notifier.mark())

        first = look("g1")
        assert look("g1") == first and computed == ["g1"]
        notifier.wake_local(groups=["g2"])  # another group's change
        assert look("g1") == first and computed == ["g1"]
        answers["g1"] = {"rules": ["c"]}
        notifier.wake_local(groups=["g1"])
        assert look("g1") != first and computed == ["g1", "g1"]
        # a look that began before a wake-up must not leave its (old) answer for later looks
        since = notifier.mark()
        notifier.wake_local(groups=["g1"])
        digests.digest(None, "g1", since)
        look("g1")
        assert computed == ["g1", "g1", "g1", "g1"]
        notifier.wake_all_local()
        look("g1")
        assert len(computed) == 5
        now[0] += 10
        look("g1")
        assert len(computed) == 6
    finally:
        resolved_firewall.resolved_policy_of_group = original


def test_a_new_agent_writes_only_to_register_and_to_store_its_scan_results(igrid, iapi):
    """A fleet that comes up together must not queue on SQLite's one write lock: the
    registration gives the server its firewall version, so the agent's first poll and its
    firewall read only read; its firewall status, its contacts and a scan's handout and
    start go to the batched logs (agent_logs.py). A scan's result is its one other write,
    and that leaves the server row alone."""
    from halogrid.models import Server
    writes: List[float] = []
    key = igrid.agent_key  # read here: the helper's own read counts as a write below
    with transactions(igrid.grid.engine, writes):
        r = requests.post(igrid.url + "/agent/v1/register", headers={"X-Daemon-Key": key},
                          json={"hostname": unique("fresh"), "platform": "debian"}, timeout=30)
    assert r.status_code == 201 and len(writes) == 1, (r.text, writes)
    a = Agent(igrid.url, r.json()["server_id"], r.json()["agent_secret"], r.json()["group_id"])
    cmd = iapi.scan(a.server_id)
    writes.clear()
    with transactions(igrid.grid.engine, writes) as begun:
        answer = a.poll(firewall_version=-1).json()
        fwv = answer["firewall_version"]
        assert a.get("/agent/v1/firewall").json()["version"] == fwv
        r = a.post("/agent/v1/firewall/status", {"version": fwv, "status": "applied"})
        assert r.status_code == 204, r.text
        assert [c["id"] for c in answer["commands"]] == [cmd["id"]]
        assert a.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    assert writes == [] and len(begun) >= 4, (begun, writes)
    igrid.grid.contacts.flush(igrid.grid.Session)
    updates: List[str] = []

    def on_execute(conn, clauseelement, *rest):
        table = getattr(clauseelement, "table", None)
        if getattr(clauseelement, "is_dml", False) and getattr(table, "name", None) == "servers":
            updates.append(str(clauseelement))

    event.listen(igrid.grid.engine, "before_execute", on_execute)
    try:
        before = _last_seen(igrid, a.server_id)
        with transactions(igrid.grid.engine, writes):
            r = a.post("/agent/v1/commands/%s/result" % cmd["id"],
                       {"status": "completed", "scan": {"findings": []}})
        assert r.status_code == 204, r.text
    finally:
        event.remove(igrid.grid.engine, "before_execute", on_execute)
    assert updates == [] and len(writes) == 1, (updates, writes)
    igrid.grid.flush_agent_logs()
    assert _last_seen(igrid, a.server_id) > before
    with igrid.grid.Session() as db:
        srv = db.get(Server, a.server_id)
        assert srv.state == "active" and (srv.fw_status, srv.fw_status_version) == ("applied", fwv)


def _events(igrid, server_id):
    from sqlalchemy import select
    from halogrid.models import Event
    with igrid.grid.Session() as db:
        return [(e.type, e.object_id, e.critical, e.message) for e in db.scalars(
            select(Event).where(Event.server_id == server_id).order_by(Event.seq))]


def _command_and_scan(igrid, command_id):
    from halogrid.models import Command, Scan
    with igrid.grid.Session() as db:
        c = db.get(Command, command_id)
        return c.status, db.get(Scan, c.scan_id)


def test_handouts_starts_and_firewall_reports_are_written_together_with_their_events(igrid,
                                                                                     iapi):
    """What the batched logs write: each command's progress (a handout: pending, a start:
    started and running, with its event), each server's last firewall report, and an event
    for each report that changed the status or version, in the order they came."""
    a, b = register(igrid), register(igrid)
    cmds = {x.server_id: iapi.scan(x.server_id) for x in (a, b)}
    versions = {}
    for x in (a, b):
        answer = x.poll(firewall_version=-1).json()
        versions[x.server_id] = answer["firewall_version"]
        assert [c["id"] for c in answer["commands"]] == [cmds[x.server_id]["id"]]
    assert a.post("/agent/v1/commands/%s/start" % cmds[a.server_id]["id"]).status_code == 204
    # started, if not written yet: never handed out again
    assert a.poll(wait=0).json()["commands"] == []
    assert [c["id"] for c in b.poll(wait=0).json()["commands"]] == [cmds[b.server_id]["id"]]
    va, vb = versions[a.server_id], versions[b.server_id]
    for x, v in ((a, va), (b, vb), (a, va)):  # the second "applied" of a changes nothing
        assert x.post("/agent/v1/firewall/status", {"version": v, "status": "applied",
                                                    "message": "ok"}).status_code == 204
    assert b.post("/agent/v1/firewall/status", {"version": vb, "status": "failed",
                                                "message": "nft: syntax error"}
                  ).status_code == 204
    igrid.grid.flush_agent_logs()  # (or the grid's own round did already)

    status, scan = _command_and_scan(igrid, cmds[a.server_id]["id"])
    assert (status, scan.status) == ("started", "running") and scan.agent_started_at
    status, scan = _command_and_scan(igrid, cmds[b.server_id]["id"])
    assert (status, scan.status, scan.agent_started_at) == ("pending", "pending", None)
    ev_a = [e for e in _events(igrid, a.server_id) if e[0] != "server_registered"]
    assert [e[:3] for e in ev_a] == [("scan_requested", scan_id(igrid, a), False),
                                     ("scan_started", scan_id(igrid, a), False),
                                     ("firewall_applied", None, False)], ev_a
    ev_b = [e for e in _events(igrid, b.server_id) if e[0].startswith("firewall")]
    assert [e[:3] for e in ev_b] == [("firewall_applied", None, False),
                                     ("firewall_failed", None, True)], ev_b
    assert ev_b[1][3] == "Firewall version %d failed on server %s: nft: syntax error" % (
        vb, _hostname(igrid, b))
    shown = iapi.ok("GET", "/v1/servers/%s" % b.server_id)["server"]["firewall_policy"]
    assert shown is None or shown["status"] == "failed"
    assert (igrid.grid.command_progress.pending(), igrid.grid.firewall_reports.pending()) == (0, 0)


def scan_id(igrid, agent):
    from sqlalchemy import select
    from halogrid.models import Scan
    with igrid.grid.Session() as db:
        return db.scalar(select(Scan.id).where(Scan.server_id == agent.server_id))


def _hostname(igrid, agent):
    from halogrid.models import Server
    with igrid.grid.Session() as db:
        return db.get(Server, agent.server_id).hostname


def test_a_start_still_in_the_log_is_written_with_its_result(igrid, iapi):
    """A scan that ends within the second: its start (time and event) goes in with the
    result, before the result's event; a result refused leaves the start in the log."""
    a, other = register(igrid), register(igrid)
    cmd = iapi.scan(a.server_id)
    a.poll(firewall_version=-1)
    assert a.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    # another server's agent cannot answer it, and loses nothing of the start (still in the
    # log, or written by the grid's own round meanwhile)
    assert other.post("/agent/v1/commands/%s/result" % cmd["id"],
                      {"status": "completed", "scan": {"findings": []}}).status_code == 404
    assert igrid.grid.command_progress.is_started(cmd["id"]) or \
        _command_and_scan(igrid, cmd["id"])[0] == "started"
    r = a.post("/agent/v1/commands/%s/result" % cmd["id"],
               {"status": "completed", "scan": {"findings": [
                   {"rule_name": "r", "status": "good", "critical": False, "details": []}]}})
    assert r.status_code == 204, r.text
    assert igrid.grid.command_progress.pending() == 0
    status, scan = _command_and_scan(igrid, cmd["id"])
    assert (status, scan.status) == ("completed", "completed_clean") and scan.agent_started_at
    kinds = [e[0] for e in _events(igrid, a.server_id) if e[1] == scan.id]
    assert kinds == ["scan_requested", "scan_started", "scan_completed"], kinds
    igrid.grid.flush_agent_logs()  # writes nothing more about it
    assert [e[0] for e in _events(igrid, a.server_id) if e[1] == scan.id] == kinds


def test_a_failed_write_keeps_the_reports_for_the_next_round(igrid, iapi, monkeypatch):
    """Logs of the test's own, so the grid's background round cannot write them between."""
    from halogrid import agent_logs
    a = register(igrid)
    cmd = iapi.scan(a.server_id)
    fwv = a.poll(firewall_version=-1).json()["firewall_version"]
    progress, reports = agent_logs.CommandProgressLog(), agent_logs.FirewallStatusLog()
    progress.started(cmd["id"], cmd["scan_id"], a.server_id, "sca")
    reports.report(a.server_id, fwv, "applied", None)
    original = {cls: cls._write for cls in (agent_logs.CommandProgressLog,
                                            agent_logs.FirewallStatusLog)}

    def broken(self, conn, batch):
        raise RuntimeError("disk full")

    for cls in original:
        monkeypatch.setattr(cls, "_write", broken)
    for log in (progress, reports):
        with pytest.raises(RuntimeError):
            log.flush(igrid.grid.Session)
    assert progress.is_started(cmd["id"]) and reports.pending() == 1
    for cls, write in original.items():
        monkeypatch.setattr(cls, "_write", write)
    assert (progress.flush(igrid.grid.Session), reports.flush(igrid.grid.Session)) == (1, 1)
    assert (progress.pending(), reports.pending()) == (0, 0)
    assert _command_and_scan(igrid, cmd["id"])[0] == "started"
    assert [e[0] for e in _events(igrid, a.server_id)].count("firewall_applied") == 1


def test_a_start_being_written_still_keeps_its_command_from_being_handed_out(igrid, iapi,
                                                                           monkeypatch):
    """Found on PostgreSQL under load: a poll while a flush was writing the start saw the
    command neither started in the database nor in the log, and handed it out again."""
    from halogrid import agent_logs
    a = register(igrid)
    cmd = iapi.scan(a.server_id)
    a.poll(firewall_version=-1)
    igrid.grid.command_progress.flush(igrid.grid.Session)  # the handout: pending
    seen: List[Any] = []
    write = agent_logs.CommandProgressLog._write

    def write_while_polling(self, conn, batch):
        seen.append(a.poll(wait=0).json()["commands"])  # the poll reads beside the write
        return write(self, conn, batch)

    # patched before the start: whichever flush writes it (this test's or the grid's own
    # round) polls while it writes
    monkeypatch.setattr(agent_logs.CommandProgressLog, "_write", write_while_polling)
    assert a.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    igrid.grid.command_progress.flush(igrid.grid.Session)
    wait_for("the start to be written", lambda: _command_and_scan(igrid, cmd["id"])[0] == "started")
    assert seen == [[]]


def test_poll_answers_are_sent_as_built_and_match_their_model(igrid, iapi):
    """A poll's answer skips FastAPI's encoder (it walked every rule of every policy a
    command carries): what is sent must still be the published model, policies whole."""
    from halogrid import agent_schemas as doc
    policy = iapi.ok("GET", "/v2/policies", params={"module": "csm"})["policies"][0]
    whole = iapi.ok("GET", "/v2/policies/%s" % policy["id"])["policy"]
    tag = unique("asbuilt")
    iapi.create_group(unique("asbuiltg"), tag=tag, policy_ids=[policy["id"]])
    a = register(igrid, tag=tag)
    first = a.poll(firewall_version=-1).json()
    idle = a.poll(wait=0.2, firewall_version=first["firewall_version"]).json()
    cmd = iapi.scan(a.server_id)
    answer = a.poll(wait=5, firewall_version=first["firewall_version"]).json()
    for body in (first, idle, answer):
        assert doc.AgentPollAnswer.model_validate(body).model_dump(exclude_none=True) == body
    (command,) = answer["commands"]
    assert (command["id"], command["name"]) == (cmd["id"], "sca")
    (sent,) = command["policies"]
    assert sent["id"] == policy["id"] and sent["rules"] == whole["rules"]


def test_a_missing_servers_start_or_firewall_report_reactivates_it_at_once(igrid, iapi):
    """Those reports go to the batched logs, but a missing server coming back is written
    by the request itself, with its event."""
    from halogrid.models import Server
    a, b = register(igrid), register(igrid)
    cmd = iapi.scan(a.server_id)
    fwv = b.poll(firewall_version=-1).json()["firewall_version"]
    a.poll(firewall_version=-1)
    with igrid.grid.Session() as db, db.begin():
        for agent in (a, b):
            db.get(Server, agent.server_id).state = "missing"
    assert a.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    assert b.post("/agent/v1/firewall/status", {"version": fwv, "status": "applied"}
                  ).status_code == 204
    for agent in (a, b):
        with igrid.grid.Session() as db:
            assert db.get(Server, agent.server_id).state == "active"
        assert "server_reactivated" in [e[0] for e in _events(igrid, agent.server_id)]


def test_the_deadline_sweep_writes_the_starts_first(igrid, iapi, monkeypatch):
    """A command created long ago whose start still waits in the log is started, not one the
    agent never picked up."""
    import datetime as dt
    from halogrid import app as app_module
    from halogrid.models import Command
    a = register(igrid)
    cmd = iapi.scan(a.server_id)
    a.poll(firewall_version=-1)
    assert a.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    with igrid.grid.Session() as db, db.begin():
        c = db.get(Command, cmd["id"])
        c.created_at -= dt.timedelta(hours=1)
    monkeypatch.setattr(igrid.grid.config, "command_timeout", 600.0)
    app_module._sweep_steps(igrid.grid)
    status, scan = _command_and_scan(igrid, cmd["id"])
    assert (status, scan.status) == ("started", "running"), (status, scan.status, scan.result)


def test_a_poll_that_waited_its_whole_wait_counts_as_contact_until_it_ends(igrid):
    """The agent was connected for the whole wait: its last contact is the poll's end, so a
    server that polls back to back is never judged on the start of a long poll."""
    import datetime as dt
    a = register(igrid)
    fwv = a.poll().json()["firewall_version"]
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert a.poll(wait=2, firewall_version=fwv).json()["commands"] == []
    igrid.grid.contacts.flush(igrid.grid.Session)
    assert _last_seen(igrid, a.server_id) >= started + dt.timedelta(seconds=1.9)


def _last_seen(igrid, server_id):
    from halogrid.models import Server
    with igrid.grid.Session() as db:
        return db.get(Server, server_id).last_seen_at


def test_a_command_queued_while_a_poll_waits_is_delivered_at_once(igrid, iapi):
    a = register(igrid)
    fwv = a.poll().json()["firewall_version"]
    poll = PollThread(a, wait=30, firewall_version=fwv)
    wait_for("the poll to wait", lambda: igrid.waiting(a.server_id), interval=0.02)
    cmd = iapi.scan(a.server_id)
    # answered well before its 30 s: by the wake-up, not by a periodic look
    ans = poll.answer(timeout=15)
    assert [c["id"] for c in ans["commands"]] == [cmd["id"]]


def test_a_command_queued_right_after_the_polls_first_look_is_not_missed(igrid, iapi,
                                                                         monkeypatch):
    """The race of "queued just before the poll began waiting": the command is committed
    (and its wake-up sent) after the poll's first look found nothing, before it waits."""
    a = register(igrid)
    fwv = a.poll().json()["firewall_version"]
    look = agent_api._poll_check
    queued: Dict[str, Any] = {}

    def look_then_queue(*look_args):
        answer = look(*look_args)
        if not queued:
            queued["cmd"] = iapi.scan(a.server_id)
        return answer

    monkeypatch.setattr(agent_api, "_poll_check", look_then_queue)
    ans = PollThread(a, wait=30, firewall_version=fwv).answer(timeout=15)
    assert [c["id"] for c in ans["commands"]] == [queued["cmd"]["id"]]


def test_a_firewall_change_right_after_the_polls_first_look_is_not_missed(igrid, iapi,
                                                                          monkeypatch):
    """The same race for a group's wake-up: the poll learns its group from its look, so a
    change to that group committed between the look and the wait must still wake it."""
    tag = unique("racetag")
    g = iapi.create_group(unique("raceg"), tag=tag)
    fp = iapi.ok("POST", "/v1/firewall_policies", {"firewall_policy": {
        "name": unique("racefw"), "platform": "linux"}})["firewall_policy"]
    a = register(igrid, tag=tag)
    fwv = a.poll(firewall_version=-1).json()["firewall_version"]
    look = agent_api._poll_check
    changed: Dict[str, Any] = {}

    def look_then_change(*look_args):
        answer = look(*look_args)
        if not changed:
            changed["done"] = True
            iapi.put("/v1/groups/%s" % g["id"], {"group": {"linux_firewall_policy_id": fp["id"]}})
        return answer

    monkeypatch.setattr(agent_api, "_poll_check", look_then_change)
    ans = PollThread(a, wait=30, firewall_version=fwv).answer(timeout=15)
    assert ans["firewall_version"] != fwv and ans["commands"] == []


def test_a_move_wakes_only_the_agents_whose_answer_it_changes(igrid, iapi):
    """Moving a server wakes that server and the members of groups whose firewall policy
    has the old or new group as a source; every other open poll sleeps on."""
    tags, groups = _groups_with_a_guard(iapi, ("src", "dst", "guard", "other"))
    mover = register(igrid, tag=tags["src"], ip="198.18.7.1")
    guard = register(igrid, tag=tags["guard"], ip="198.18.7.2")
    bystanders = [register(igrid, tag=tags["other"], ip="198.18.7.%d" % (3 + i))
                  for i in range(3)] + [register(igrid, tag=tags["dst"], ip="198.18.7.9")]
    everyone = [mover, guard] + bystanders
    versions = {a.server_id: a.poll(firewall_version=-1).json()["firewall_version"]
                for a in everyone}
    polls = {a.server_id: PollThread(a, wait=30, firewall_version=versions[a.server_id])
             for a in everyone}
    wait_for("every poll to wait", lambda: all(igrid.waiting(a.server_id) for a in everyone),
             interval=0.02)
    woken = igrid.grid.notifier.woken

    iapi.put("/v1/servers/%s" % mover.server_id, {"server": {"group_id": groups["dst"]["id"]}})
    # the guard's firewall lists the source group's members: one address fewer
    ans = polls[guard.server_id].answer(timeout=15)
    assert ans["firewall_version"] != versions[guard.server_id]
    wait_for("the wake-ups", lambda: igrid.grid.notifier.woken - woken >= 2, interval=0.02)
    # the mover's answer did not change (neither group has a policy): it went on waiting
    wait_for("the mover to wait again", lambda: igrid.waiting(mover.server_id), interval=0.02)
    assert igrid.grid.notifier.woken - woken == 2
    for a in bystanders:
        assert igrid.polling(a.server_id) and polls[a.server_id].thread.is_alive()

    # a scan for one bystander wakes that one only
    woken = igrid.grid.notifier.woken
    cmd = iapi.scan(bystanders[0].server_id)
    assert polls[bystanders[0].server_id].answer(timeout=15)["commands"][0]["id"] == cmd["id"]
    assert igrid.grid.notifier.woken - woken == 1
    for a in bystanders[1:]:
        assert polls[a.server_id].thread.is_alive()


def test_a_client_that_disconnects_mid_request_is_no_server_error(igrid, caplog):
    """A client gone before its body arrived is logged as such, not as a 500 with a
    traceback."""
    caplog.set_level(logging.INFO, logger="halogrid")
    a = register(igrid)
    cred = "Agent %s:%s" % (a.server_id, a.secret)
    for path, headers in (("/agent/v1/register", "X-Daemon-Key: %s\r\n" % igrid.agent_key),
                          ("/agent/v1/firewall/status", "Authorization: %s\r\n" % cred)):
        caplog.clear()
        with socket.create_connection(("127.0.0.1", igrid.port)) as s:
            s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
                       "Content-Length: 1000\r\n\r\n{\"hostname\": " % (path, headers)).encode())
            time.sleep(0.3)  # let the grid start reading the body, then hang up
        wait_for("the disconnect to be logged", lambda: any(
            "disconnected" in r.getMessage() for r in caplog.records), interval=0.02)
        # the grid is still there, and nothing was logged as an error
        assert a.poll().status_code == 200
        errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
        assert not errors, [r.getMessage() for r in errors]


def test_healthz_answers_while_every_worker_thread_is_busy(igrid, monkeypatch):
    """/healthz is answered on the event loop: database work filling the threadpool (one
    thread here, held by a poll's look) does not hold it up."""
    loop = igrid.grid.notifier.loop

    async def set_tokens(n):
        import anyio.to_thread
        limiter = anyio.to_thread.current_default_thread_limiter()
        old, limiter.total_tokens = limiter.total_tokens, n
        return old

    entered, release = threading.Event(), threading.Event()
    look = agent_api._poll_check

    def blocked_look(*look_args):
        entered.set()
        release.wait(30)
        return look(*look_args)

    a = register(igrid)
    old = asyncio.run_coroutine_threadsafe(set_tokens(1), loop).result(10)
    try:
        monkeypatch.setattr(agent_api, "_poll_check", blocked_look)
        poll = PollThread(a, wait=0, firewall_version=None)
        assert entered.wait(15), "the poll did not take the thread"
        r = requests.get(igrid.url + "/healthz", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert poll.thread.is_alive()  # the thread was still held
    finally:
        release.set()
        asyncio.run_coroutine_threadsafe(set_tokens(old), loop).result(10)
    poll.answer(timeout=15)
