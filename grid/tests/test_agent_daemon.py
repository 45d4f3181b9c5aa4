"""haloagent run against a tiny in-process fake grid (unit level: the real grid has its
own integration tests). Covers registration state, commands, re-registration, a rejected
daemon key, firewall hand-off and SIGTERM."""
import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gridhelpers import JsonHandler, LoopbackServer, wait_for
from halodev.trees import make_compliant_tree, make_failing_tree
from haloagent import nftables
from haloagent.agent import Agent, AgentConfig, Backoff

KEY = "0123456789abcdef0123456789abcdef"
AGENT_SRC = Path(__file__).resolve().parents[1] / "src"
POLICIES = Path(__file__).resolve().parents[1] / "src" / "halogrid" / "policies"
PYTHON38 = "/root/.pyenv/versions/3.8.18/bin/python3.8"  # the oldest Python the agent supports


class FakeGrid(LoopbackServer):
    """Just enough of PROTOCOL.md's agent endpoints, recording what agents sent."""

    def __init__(self):
        self.registrations = []          # bodies of accepted registrations
        self.secrets = {}                # server_id -> agent_secret
        self.gone = set()                # server ids that get 410
        self.queue = []                  # commands for the next poll
        self.polls = []                  # (server_id, query) of every poll
        self.starts, self.results = [], {}
        self.result_failures = 0         # answer that many result posts with 503 first
        self.scan_refusal = None         # (status, error): the answer to every result with a scan
        self.closed = set()              # command ids whose result gets 409 (closed at the grid)
        self.result_posts = []           # (command id, body) of every result post
        self.firewall_version, self.firewall_policy = 1, None
        self.firewall_fetches, self.firewall_statuses = 0, []
        self.closing = threading.Event()
        grid = self

        class Handler(JsonHandler):
            def server_id(self):
                scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
                server_id, _, secret = value.partition(":")
                if scheme != "Agent" or grid.secrets.get(server_id) != secret:
                    self.reply(401, {"error": "invalid agent credential"})
                    return None
                if server_id in grid.gone:
                    self.reply(410, {"error": "server retired"})
                    return None
                return server_id

            def do_POST(self):
                path = urlsplit(self.path).path
                if path == "/agent/v1/register":
                    body = self.body()
                    if self.headers.get("X-Daemon-Key") != KEY:
                        return self.reply(401, {"error": "invalid daemon key"})
                    server_id = "%032x" % (len(grid.registrations) + 1)
                    grid.registrations.append(body)
                    grid.secrets[server_id] = "secret-" + server_id
                    return self.reply(201, {"server_id": server_id, "agent_secret": grid.secrets[server_id],
                                            "group_id": "g-dirty"})
                if self.server_id() is None:
                    return None
                parts = path.split("/")
                if path.startswith("/agent/v1/commands/") and parts[-1] == "start":
                    grid.starts.append(parts[-2])
                    self.body()
                    return self.reply(204)
                if path.startswith("/agent/v1/commands/") and parts[-1] == "result":
                    body = self.body()
                    grid.result_posts.append((parts[-2], body))
                    if grid.result_failures:
                        grid.result_failures -= 1
                        return self.reply(503, {"error": "try again"})
                    if parts[-2] in grid.closed:
                        return self.reply(409, {"error": "command %s is already failed" % parts[-2]})
                    if grid.scan_refusal and "scan" in body:
                        status, error = grid.scan_refusal
                        return self.reply(status, {"error": error})
                    grid.results[parts[-2]] = body
                    return self.reply(204)
                if path == "/agent/v1/firewall/status":
                    grid.firewall_statuses.append(self.body())
                    return self.reply(204)
                return self.reply(404, {"error": "not found"})

            def do_GET(self):
                url = urlsplit(self.path)
                server_id = self.server_id()
                if server_id is None:
                    return None
                if url.path == "/agent/v1/poll":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    grid.polls.append((server_id, query))
                    if not grid.queue and int(query["firewall_version"]) == grid.firewall_version:
                        grid.closing.wait(min(int(query["wait"]), 30))  # a real long-poll
                    commands, grid.queue = grid.queue, []
                    return self.reply(200, {"commands": commands, "firewall_version": grid.firewall_version})
                if url.path == "/agent/v1/firewall":
                    grid.firewall_fetches += 1
                    return self.reply(200, {"version": grid.firewall_version, "policy": grid.firewall_policy})
                return self.reply(404, {"error": "not found"})

        super().__init__(Handler)

    def __exit__(self, *exc):
        self.closing.set()  # ends the long-polls still waiting
        super().__exit__(*exc)


@pytest.fixture
def grid():
    with FakeGrid() as fake:
        yield fake


def agent(grid, tmp_path, **overrides):
    settings = dict(grid=grid.url, agent_key=KEY, tag="NewDirty", state_dir=str(tmp_path / "state"),
                    root=str(tmp_path / "root"), firewall=False, once=True, poll_wait=0)
    settings.update(overrides)
    return Agent(AgentConfig(**settings))


@pytest.fixture
def root(tmp_path):
    return make_compliant_tree(str(tmp_path / "root"))


def test_registration_is_saved_0600_and_reused(grid, tmp_path, root):
    assert agent(grid, tmp_path, server_label="web1").run() == 0
    [facts] = grid.registrations
    assert (facts["tag"], facts["server_label"], facts["platform"], facts["platform_version"]) == \
        ("NewDirty", "web1", "debian", "12")
    assert facts["hostname"] and facts["kernel_name"] == os.uname().sysname
    assert all(set(i) == {"name", "ip"} for i in facts["interfaces"])
    state_file = tmp_path / "state" / "agent.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    saved = json.loads(state_file.read_text())
    assert saved["server_id"] == "%032x" % 1 and saved["grid"] == grid.url

    assert agent(grid, tmp_path).run() == 0  # a restart: same credential, no new server
    assert len(grid.registrations) == 1
    assert [server_id for server_id, _ in grid.polls] == ["%032x" % 1] * 2


def test_state_of_another_grid_is_not_used(grid, tmp_path, root):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "agent.json").write_text(json.dumps(
        {"grid": "https://old-grid.example", "server_id": "x", "agent_secret": "y"}))
    assert agent(grid, tmp_path).run() == 0
    assert len(grid.registrations) == 1


def test_retired_server_registers_again(grid, tmp_path, root):
    assert agent(grid, tmp_path).run() == 0
    grid.gone.add("%032x" % 1)
    assert agent(grid, tmp_path).run() == 1  # once: the 410 ends this run, state is dropped
    assert not (tmp_path / "state" / "agent.json").exists()
    assert agent(grid, tmp_path).run() == 0
    assert len(grid.registrations) == 2 and grid.polls[-1][0] == "%032x" % 2


def test_forgotten_credential_registers_again(grid, tmp_path, root):
    assert agent(grid, tmp_path).run() == 0
    grid.secrets.clear()  # e.g. the grid's database was reset: 401 on the next poll
    assert agent(grid, tmp_path).run() == 1
    assert agent(grid, tmp_path).run() == 0
    assert len(grid.registrations) == 2


def test_rejected_daemon_key_is_reported(grid, tmp_path, root, caplog):
    with caplog.at_level(logging.ERROR, logger="haloagent"):
        assert agent(grid, tmp_path, agent_key="f" * 32).run() == 1
    assert "rejected the agent key" in caplog.text
    assert grid.registrations == [] and not (tmp_path / "state" / "agent.json").exists()


def test_backoff_grows_with_jitter_up_to_the_cap():
    backoff = Backoff(base=1.0, cap=8.0)
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8, 8]):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_sca_command_scans_and_reports(grid, tmp_path):
    make_failing_tree(str(tmp_path / "root"))
    policy = dict(json.loads((POLICIES / "debian.json").read_text())["policy"], id="pol-1")
    grid.queue = [{"id": "cmd-1", "name": "sca", "policies": [policy]},
                  {"id": "cmd-2", "name": "lids", "policies": []}]
    assert agent(grid, tmp_path).run() == 0
    assert grid.starts == ["cmd-1", "cmd-2"]
    result = grid.results["cmd-1"]
    assert result["status"] == "completed" and result["scan"]["module"] == "sca"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", result["scan"]["agent_completed_at"])
    findings = {f["rule_name"]: f for f in result["scan"]["findings"]}
    assert len(findings) == len(policy["rules"])
    telnet = findings["A telnet server is not installed"]
    assert (telnet["status"], telnet["critical"], telnet["policy_id"]) == ("bad", True, "pol-1")
    assert findings["No account has an empty password"]["status"] == "good"
    assert grid.results["cmd-2"] == {"status": "failed", "result": "haloagent does not support command 'lids'"}


def test_a_scan_past_its_time_limit_still_sends_its_result(grid, tmp_path, root, monkeypatch):
    from haloagent import checks

    release = threading.Event()
    monkeypatch.setitem(checks.CHECKS, "hangs", lambda check, ctx: release.wait(60) and [])
    policy = {"id": "pol-1", "rules": [{"name": "stuck", "checks": [{"object_type": "hangs"}]}]}
    grid.queue = [{"id": "cmd-1", "name": "sca", "policies": [policy]}]
    try:
        assert agent(grid, tmp_path, scan_timeout=0.5).run() == 0
    finally:
        release.set()
    result = grid.results["cmd-1"]
    assert result["status"] == "completed"
    [finding] = result["scan"]["findings"]
    assert finding["status"] == "indeterminate"
    assert "time limit of 0.5 s" in finding["details"][0]["reason"]


def test_a_result_survives_a_grid_hiccup(grid, tmp_path, root, monkeypatch):
    monkeypatch.setattr(Agent, "_sleep", lambda self, seconds: None)
    grid.queue = [{"id": "cmd-1", "name": "sca", "policies": []}]
    grid.result_failures = 2
    assert agent(grid, tmp_path).run() == 0
    assert grid.results["cmd-1"]["status"] == "completed" and grid.result_failures == 0


@pytest.mark.parametrize("status, error", [
    (413, "scan result too large: scan.findings has 10001 findings (at most 10000)"),
    (400, "scan.findings[0].policy_id is longer than 64 characters"),
])
def test_a_refused_result_is_reported_as_failed_with_the_grids_reason(grid, tmp_path, root,
                                                                     status, error):
    """Before: the refusal ended the run (GridError) and the command stayed `started` at the
    grid until its deadline."""
    policy = {"id": "pol-1", "rules": [{"name": "r", "checks": [{"object_type": "none"}]}]}
    grid.queue = [{"id": "cmd-1", "name": "sca", "policies": [policy]},
                  {"id": "cmd-2", "name": "sca", "policies": []}]
    grid.scan_refusal = (status, error)
    assert agent(grid, tmp_path).run() == 0
    refused_body = grid.result_posts[0][1]
    size = len(json.dumps(refused_body).encode())
    assert grid.results["cmd-1"] == {"status": "failed", "result": (
        "the grid refused the scan result (1 findings, %d bytes): HTTP %d %s" % (size, status, error))}
    assert grid.results["cmd-2"]["status"] == "failed"  # the next command ran too


def test_a_result_that_cannot_be_delivered_is_reported_as_failed(grid, tmp_path, root, monkeypatch):
    monkeypatch.setattr(Agent, "_sleep", lambda self, seconds: None)
    grid.queue = [{"id": "cmd-1", "name": "sca", "policies": []}]
    grid.result_failures = 5  # every try of the full result; the short report gets through
    assert agent(grid, tmp_path).run() == 0
    assert [body.get("scan") is not None for _, body in grid.result_posts] == [True] * 5 + [False]
    result = grid.results["cmd-1"]
    assert result["status"] == "failed" and "scan" not in result
    assert result["result"].startswith("the grid refused the scan result (0 findings, ")
    assert result["result"].endswith("): HTTP 503 try again")


def test_a_command_closed_at_the_grid_does_not_stop_the_next(grid, tmp_path, root):
    """A result for a command the grid already failed (its deadline) gets 409: nothing to
    report, and the commands after it still run."""
    grid.queue = [{"id": "cmd-1", "name": "sca", "policies": []},
                  {"id": "cmd-2", "name": "sca", "policies": []}]
    grid.closed.add("cmd-1")
    assert agent(grid, tmp_path).run() == 0
    assert [cid for cid, _ in grid.result_posts] == ["cmd-1", "cmd-2"]
    assert "cmd-1" not in grid.results and grid.results["cmd-2"]["status"] == "completed"


def test_firewall_changes_are_applied_and_reported(grid, tmp_path, root, monkeypatch):
    applied = []
    monkeypatch.setattr(nftables, "apply", lambda script, nft=None: applied.append(script))
    grid.firewall_version = 7
    grid.firewall_policy = {"id": "fw", "name": "prod", "rules": [
        {"chain": "INPUT", "action": "DROP", "active": True, "position": 1,
         "source": {"type": "Group", "id": "g-dirty", "name": "Dirty", "ips": ["198.18.0.11"]},
         "service": {"port": "22", "protocol": "TCP"}, "connection_states": None, "log": False}]}
    assert agent(grid, tmp_path, firewall=True).run() == 0
    assert grid.firewall_statuses == [{"version": 7, "status": "applied", "message": ""}]
    assert "elements = { 198.18.0.11 }" in applied[0]

    def reject(script, nft=None):
        raise nftables.FirewallError("Error: syntax error")

    monkeypatch.setattr(nftables, "apply", reject)
    monkeypatch.setattr(nftables, "check", reject)  # no rule alone passes either
    grid.firewall_version = 8
    assert agent(grid, tmp_path, firewall=True).run() == 0
    assert grid.firewall_statuses[-1] == {"version": 8, "status": "failed", "message": "Error: syntax error"}


def test_no_firewall_only_follows_the_version(grid, tmp_path, root):
    grid.firewall_version = 5
    a = agent(grid, tmp_path, firewall=False)
    assert a.run() == 0 and a.run() == 0  # the same agent polls twice
    assert grid.firewall_fetches == 0 and grid.firewall_statuses == []
    assert [q["firewall_version"] for _, q in grid.polls] == ["-1", "5"]


@pytest.mark.parametrize("python", [
    sys.executable,
    pytest.param(PYTHON38, marks=pytest.mark.skipif(not os.path.exists(PYTHON38),
                                                    reason="no Python 3.8 here")),
])
def test_sigterm_stops_a_waiting_agent(grid, tmp_path, root, python):
    grid.firewall_version = -1  # nothing to report: the first poll blocks
    env = dict(os.environ, PYTHONPATH=str(AGENT_SRC))
    process = subprocess.Popen(
        [python, "-m", "haloagent", "run", "--grid", grid.url, "--agent-key", KEY,
         "--state-dir", str(tmp_path / "state"), "--root", root, "--no-firewall"],
        stderr=subprocess.PIPE, env=env)
    try:
        wait_for("a poll or the agent's exit", lambda: grid.polls or process.poll() is not None,
                 interval=0.05)
        assert grid.polls, "the agent never polled"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = process.stderr.read().decode()
    process.stderr.close()
    assert "registered as server" in log and "stopped" in log
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", log)  # timestamped lines on stderr


def test_run_takes_the_daemon_key_from_the_environment_and_refuses_to_start_without_one(
        tmp_path, monkeypatch):
    import subprocess
    import sys

    from haloagent.cli import build_parser

    monkeypatch.delenv("HALOAGENT_AGENT_KEY", raising=False)
    missing = subprocess.run([sys.executable, "-m", "haloagent", "run", "--grid", "http://127.0.0.1:9",
                              "--once", "--state-dir", str(tmp_path), "--no-firewall"],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2
    assert "--agent-key or $HALOAGENT_AGENT_KEY" in missing.stderr

    monkeypatch.setenv("HALOAGENT_AGENT_KEY", "k" * 32)
    assert build_parser().parse_args(["run", "--grid", "http://127.0.0.1:9"]).agent_key == "k" * 32
