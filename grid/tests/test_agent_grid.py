"""Integration: real `halogrid serve` and real `haloagent run` processes on 127.0.0.1.

The agents scan prepared trees (halodev.trees) with the grid's bundled Debian policy.
The firewall test puts a recording stand-in for `nft` first in the agent's PATH, so the
machine's ruleset is never touched (the real nft is exercised in test_agent_nftables.py).
"""
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from gridhelpers import unique, wait_for
from halodev.trees import make_compliant_tree, make_failing_tree
from halodev.launchers import AgentProcess, GridProcess, make_self_signed_cert

DEBIAN_POLICY = "CIS Core (Debian/Ubuntu) v1"
AGENT_SRC = Path(__file__).resolve().parents[1] / "src"
PYTHON38 = "/root/.pyenv/versions/3.8.18/bin/python3.8"  # the oldest Python the agent supports


def bundled_policy_id(api, name):
    policies = api.ok("GET", "/v2/policies", params={"module": "csm", "per_page": 100})["policies"]
    [policy_id] = [p["id"] for p in policies if p["name"] == name]
    return policy_id


@pytest.fixture(scope="module")
def dirty_group(api):
    tag = unique("NewDirty")
    group = api.create_group(unique("dirty"), tag=tag,
                             policy_ids=[bundled_policy_id(api, DEBIAN_POLICY)])
    return group, tag


def test_agents_scan_their_trees_through_the_grid(grid, api, dirty_group, tmp_path):
    group, tag = dirty_group
    good_tree = make_compliant_tree(str(tmp_path / "good"))
    bad_tree = make_failing_tree(str(tmp_path / "bad"))
    with AgentProcess(grid.url, grid.agent_key, root=good_tree, state_dir=tmp_path / "a-good",
                      tag=tag, server_label="good") as good, \
            AgentProcess(grid.url, grid.agent_key, root=bad_tree, state_dir=tmp_path / "a-bad",
                         tag=tag, server_label="bad") as bad:
        servers = {"good": good.wait_registered(api), "bad": bad.wait_registered(api)}
        for server in servers.values():
            assert server["group_id"] == group["id"]
            assert (server["platform"], server["platform_version"]) == ("debian", "12")
        commands = {label: api.scan(s["id"]) for label, s in servers.items()}
        for label, server in servers.items():
            done = api.wait_command(server["id"], commands[label]["id"])
            assert done["status"] == "completed", good.log() + bad.log()
        good_scan = api.ok("GET", "/v1/servers/%s/sca" % servers["good"]["id"])["scan"]
        bad_scan = api.ok("GET", "/v1/servers/%s/sca" % servers["bad"]["id"])["scan"]

    assert good_scan["status"] == "completed_clean"
    assert (good_scan["critical_findings_count"], good_scan["non_critical_findings_count"]) == (0, 0)
    assert good_scan["ok_findings_count"] == len(good_scan["findings"]) >= 20
    assert bad_scan["status"] == "completed_with_errors"
    assert (bad_scan["critical_findings_count"], bad_scan["non_critical_findings_count"]) == (4, 7)
    telnet = [f for f in bad_scan["findings"] if f["rule_name"] == "A telnet server is not installed"]
    assert telnet[0]["status"] == "bad" and telnet[0]["details"][0]["actual"].startswith("installed")


def test_a_restarted_agent_keeps_its_server(grid, api, dirty_group, tmp_path):
    _, tag = dirty_group
    tree = make_compliant_tree(str(tmp_path / "tree"))
    label = unique("restart")
    with AgentProcess(grid.url, grid.agent_key, root=tree, state_dir=tmp_path / "a",
                      tag=tag, server_label=label) as first:
        server_id = first.wait_registered(api)["id"]
    with AgentProcess(grid.url, grid.agent_key, root=tree, state_dir=tmp_path / "a",
                      tag=tag, server_label=label) as second:
        command = api.scan(server_id)  # answered by the restarted process
        assert api.wait_command(server_id, command["id"])["status"] == "completed", second.log()
        assert "using the saved registration" in second.log()
    assert [s["id"] for s in api.servers(server_label=label)] == [server_id]


def test_wrong_agent_key_is_logged_and_retried(grid, tmp_path):
    with AgentProcess(grid.url, "0" * 32, state_dir=tmp_path / "a",
                      root=make_compliant_tree(str(tmp_path / "tree"))) as agent:
        wait_for("the key error", lambda: "rejected the agent key" in agent.log())
        wait_for("a retry", lambda: "retrying in" in agent.log())
        assert agent.proc.poll() is None  # still running: keeps trying with backoff
    assert not (tmp_path / "a" / "agent.json").exists()


def test_group_firewall_reaches_the_agent(grid, api, tmp_path):
    tag = unique("FwDirty")
    dirty = api.create_group(unique("fw-dirty"), tag=tag)
    policy = api.ok("POST", "/v1/firewall_policies",
                    {"firewall_policy": {"name": unique("fw"), "platform": "linux"}})["firewall_policy"]
    api.ok("POST", "/v1/firewall_policies/%s/firewall_rules" % policy["id"], {"firewall_rule": {
        "chain": "INPUT", "action": "DROP", "active": True,
        "firewall_source": {"id": dirty["id"], "type": "Group"},
        "firewall_service": {"port": "22", "protocol": "TCP"}}})
    api.ok("PUT", "/v1/groups/%s" % dirty["id"], {"group": {"linux_firewall_policy_id": policy["id"]}})

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    recorded = tmp_path / "nft-input"
    (fake_bin / "nft").write_text("#!/bin/sh\ncat > '%s'\n" % recorded)
    (fake_bin / "nft").chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (fake_bin, os.environ["PATH"]))
    with AgentProcess(grid.url, grid.agent_key, root=make_compliant_tree(str(tmp_path / "tree")),
                      state_dir=tmp_path / "a", tag=tag, firewall=True, env=env) as agent:
        server = agent.wait_registered(api)

        def applied():
            fw = api.ok("GET", "/v1/servers/%s" % server["id"])["server"]["firewall_policy"]
            return fw if fw and fw.get("status") == "applied" else None

        fw = wait_for("firewall status applied", applied)
    assert fw["id"] == policy["id"]
    script = recorded.read_text()
    assert script.startswith("table inet halo\ndelete table inet halo\n")
    assert "tcp dport 22 drop" in script
    assert server["primary_ip_address"] in script  # the group's member IPs fill the set


def test_tls_grid_is_verified_with_the_ca_file(tmp_path):
    cert, key = make_self_signed_cert(tmp_path / "tls")
    tree = make_compliant_tree(str(tmp_path / "tree"))
    env = dict(os.environ, PYTHONPATH=str(AGENT_SRC))
    with GridProcess(tmp_path / "grid", certfile=cert, keyfile=key, rate_limit=0) as tls_grid:
        def run_once(*extra):
            return subprocess.run(
                [sys.executable, "-m", "haloagent", "run", "--once", "--no-firewall", "--grid", tls_grid.url,
                 "--agent-key", tls_grid.agent_key, "--root", tree, "--state-dir", str(tmp_path / "a"),
                 *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60,
                universal_newlines=True)

        unverified = run_once()
        assert unverified.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in unverified.stderr
        assert not (tmp_path / "a" / "agent.json").exists()
        verified = run_once("--ca-file", cert)
        assert verified.returncode == 0, verified.stderr
        assert "registered as server" in verified.stderr


def test_the_grids_zipapp_scans_with_the_oldest_python(grid, tmp_path):
    python = PYTHON38 if os.path.exists(PYTHON38) else sys.executable
    pyz = tmp_path / "haloagent.pyz"
    with urllib.request.urlopen(grid.url + "/agent/v1/dist/haloagent.pyz", timeout=30) as answer:
        pyz.write_bytes(answer.read())
    policy = Path(__file__).resolve().parents[1] / "src" / "halogrid" / "policies" / "debian.json"
    done = subprocess.run([python, str(pyz), "scan", "--root", make_failing_tree(str(tmp_path / "t")),
                           "--policy", str(policy)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, universal_newlines=True, env={"PATH": os.environ["PATH"]})
    assert done.returncode == 1, done.stderr  # the failing tree: findings, no crash
    assert json.loads(done.stdout)["critical_findings_count"] == 4
    # one version for the wheel: the agent the grid serves is the grid's release
    with urllib.request.urlopen(grid.url + "/healthz", timeout=30) as answer:
        grid_version = json.loads(answer.read())["version"]
    shown = subprocess.run([python, str(pyz), "--version"], stdout=subprocess.PIPE,
                           universal_newlines=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert shown.stdout.strip() == "haloagent " + grid_version


def test_one_version_for_the_grid_and_the_agent():
    """grid/pyproject.toml reads haloagent.__version__; halogrid reports the installed
    distribution's. A mismatch here is an editable install older than the source: `make venv`."""
    import halogrid
    import haloagent
    assert halogrid.__version__ == haloagent.__version__ != "0+unknown"
