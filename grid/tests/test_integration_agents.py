"""Real `haloagent run` processes against a real grid, scanning two small prepared trees."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from halodev.launchers import AgentProcess, GridProcess

pytestmark = pytest.mark.skipif(
    not (Path(__file__).resolve().parents[1] / "src" / "haloagent" / "cli.py").exists(),
    reason="the haloagent package is not there yet")

SSHD_POLICY = {"policy": {
    "name": "SSH hardening", "platform": "linux", "description": "two sshd rules",
    "rules": [
        {"name": "SSH root login disabled", "active": True, "critical": True, "alert": False,
         "rule_operator": "AND", "checks": [
             {"object_type": "configuration_file_setting", "active": True,
              "config_file_path": "/etc/ssh/sshd_config", "config_item": "PermitRootLogin",
              "desired_value": "no", "comment_character": "#", "delimiter": ""}]},
        {"name": "SSH empty passwords disabled", "active": True, "critical": False,
         "alert": False, "rule_operator": "AND", "checks": [
             {"object_type": "configuration_file_setting", "active": True,
              "config_file_path": "/etc/ssh/sshd_config",
              "config_item": "PermitEmptyPasswords", "desired_value": "no",
              "comment_character": "#", "delimiter": ""}]},
    ]}}


def make_tree(base: Path, permit_root: str) -> Path:
    (base / "etc" / "ssh").mkdir(parents=True)
    (base / "etc" / "ssh" / "sshd_config").write_text(
        "# test tree\nPermitRootLogin %s\nPermitEmptyPasswords no\n" % permit_root)
    (base / "etc" / "hostname").write_text(base.name + "\n")
    return base


@pytest.fixture
def trees(tmp_path):
    return (make_tree(tmp_path / "clean", "no"), make_tree(tmp_path / "dirty", "yes"))


def _setup(api):
    pol = api.ok("POST", "/v2/policies", SSHD_POLICY)["policy"]
    return api.create_group("NewDirty", tag="NewDirty", policy_ids=[pol["id"]]), pol


def test_clean_and_dirty_trees(tmp_path, trees):
    clean, dirty = trees
    with GridProcess(tmp_path / "grid", rate_limit=0) as grid:
        api = grid.api()
        group, pol = _setup(api)
        with AgentProcess(grid.url, grid.agent_key, root=clean, state_dir=tmp_path / "a1",
                          tag="NewDirty", server_label="clean") as a1, \
             AgentProcess(grid.url, grid.agent_key, root=dirty, state_dir=tmp_path / "a2",
                          tag="NewDirty", server_label="dirty") as a2:
            s1 = a1.wait_registered(api)
            s2 = a2.wait_registered(api)
            assert s1["group_id"] == s2["group_id"] == group["id"]
            assert s1["server_label"] == "clean" and s1["daemon_version"]
            c1, c2 = api.scan(s1["id"]), api.scan(s2["id"])
            done1 = api.wait_command(s1["id"], c1["id"], timeout=60)
            done2 = api.wait_command(s2["id"], c2["id"], timeout=60)
            assert done1["status"] == "completed", (done1, a1.log())
            assert done2["status"] == "completed", (done2, a2.log())
            r1 = api.ok("GET", "/v1/servers/%s/sca" % s1["id"])["scan"]
            r2 = api.ok("GET", "/v1/servers/%s/sca" % s2["id"])["scan"]
            assert r1["status"] == "completed_clean", r1
            assert r1["critical_findings_count"] == 0 and r1["ok_findings_count"] == 2
            assert r2["status"] == "completed_with_errors", r2
            assert r2["critical_findings_count"] == 1 and r2["ok_findings_count"] == 1
            bad = [f for f in r2["findings"] if f["status"] == "bad"]
            assert [f["rule_name"] for f in bad] == ["SSH root login disabled"]
            assert bad[0]["critical"] is True
            detail = bad[0]["details"][0]
            assert detail["target"].endswith("etc/ssh/sshd_config")
            assert detail["actual"] == "yes"
            # promote the clean one, as the collection would
            prod = api.create_group("ProdWebDirty")
            r = api.put("/v1/servers/%s" % s1["id"], {"server": {"group_id": prod["id"]}})
            assert r.status_code == 204
            assert api.ok("GET", "/v1/servers/%s" % s1["id"])["server"]["group_name"] == \
                "ProdWebDirty"


def test_grid_restart_between_registration_and_scan(tmp_path, trees):
    clean, dirty = trees
    with GridProcess(tmp_path / "grid", rate_limit=0) as grid:
        api = grid.api()
        _setup(api)
        with AgentProcess(grid.url, grid.agent_key, root=dirty, state_dir=tmp_path / "a",
                          tag="NewDirty", poll_wait=5) as agent:
            server = agent.wait_registered(api)
            grid.restart()
            cmd = api.scan(server["id"])
            done = api.wait_command(server["id"], cmd["id"], timeout=90)
            assert done["status"] == "completed", (done, agent.log(), grid.log())
            res = api.ok("GET", "/v1/servers/%s/sca" % server["id"])["scan"]
            assert res["status"] == "completed_with_errors"
            # the same server, not a new registration
            assert api.ok("GET", "/v1/servers", params={"state": "active,missing"})["count"] == 1


def test_agent_restart_keeps_its_registration(tmp_path, trees):
    clean, _dirty = trees
    with GridProcess(tmp_path / "grid", rate_limit=0) as grid:
        api = grid.api()
        _setup(api)
        state = tmp_path / "a"
        with AgentProcess(grid.url, grid.agent_key, root=clean, state_dir=state,
                          tag="NewDirty") as agent:
            first = agent.wait_registered(api)
        assert oct(os.stat(state / "agent.json").st_mode & 0o777) == "0o600"
        with AgentProcess(grid.url, grid.agent_key, root=clean, state_dir=state,
                          tag="NewDirty") as agent:
            again = agent.wait_registered(api)
            assert again["id"] == first["id"]
            cmd = api.scan(again["id"])
            assert api.wait_command(again["id"], cmd["id"])["status"] == "completed"
        assert api.ok("GET", "/v1/servers")["count"] == 1
