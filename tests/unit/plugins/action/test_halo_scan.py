"""The halo_scan action plugin (the task on the controller) against a scripted API: its
progress lines, check mode, option errors and API failures, with the secret never shown."""

from types import SimpleNamespace
from unittest import mock

import pytest
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import action_loader

SERVERS = {"servers": [{"id": "s1", "hostname": "web1", "group_id": "gd", "state": "active"}]}
CLEAN_SCAN = {"id": "new", "server_id": "s1", "command_id": "c1", "module": "sca", "status": "completed_clean",
              "critical_findings_count": 0, "non_critical_findings_count": 0, "ok_findings_count": 1,
              "findings": [{"rule_name": "r", "critical": True, "status": "good", "details": []}]}


@pytest.fixture
def run_action(fake_halo, monkeypatch):
    """Run the action with these task arguments; returns (result, progress lines)."""
    from ansible_collections.cloudpassage.halo.plugins.action import halo_scan

    lines = []
    monkeypatch.setattr(halo_scan.display, "display", lambda line, *args, **kwargs: lines.append(line))

    def run(args, check_mode=False):
        task = mock.MagicMock(args=dict(args), async_val=0, check_mode=check_mode)
        play_context = PlayContext()
        play_context.check_mode = check_mode
        action = action_loader.get("cloudpassage.halo.halo_scan", task=task, play_context=play_context,
                                   connection=SimpleNamespace(_shell=SimpleNamespace(tmpdir=None)),
                                   loader=None, templar=None, shared_loader_obj=None)
        return action.run(task_vars={"inventory_hostname": "controller1"}), lines

    return run


def connection(fake_halo, **options):
    return dict({"api_host": fake_halo.url, "api_key": "key-id", "api_secret": "TOPSECRET", "max_retries": 0},
                **options)


def test_a_scan_prints_progress_on_the_controller_and_returns_the_verdicts(fake_halo, run_action):
    fake_halo.on("GET", "/v1/servers", (200, SERVERS))
    fake_halo.on("POST", "/v1/servers/s1/scans", (202, {"command": {"id": "c1", "status": "queued", "scan_id": "new"}}))
    fake_halo.on("GET", "/v1/scans", (200, {"scans": [{"id": "new", "status": "completed_clean"}]}))
    fake_halo.on("GET", "/v1/scans/new", (200, {"scan": CLEAN_SCAN}))
    result, lines = run_action(connection(fake_halo, server_ids=["s1"], poll_interval=0.01))
    assert not result.get("failed"), result
    assert (result["passed_count"], result["failed_count"], result["changed"]) == (1, 0, False)
    assert result["results"][0]["scan_id"] == "new"
    assert lines and lines[-1].startswith("halo_scan [controller1]: 1/1 scans finished (1 passed, 0 kept")


def test_check_mode_starts_no_scan(fake_halo, run_action):
    fake_halo.on("GET", "/v1/servers", (200, SERVERS))
    fake_halo.on("GET", "/v1/servers/s1/sca", (200, {"scan": CLEAN_SCAN}))
    result, dummy = run_action(connection(fake_halo, server_ids=["s1"]), check_mode=True)
    assert not result.get("failed") and result["results"][0]["scan_id"] == "new"
    assert fake_halo.calls("POST", "/v1/servers/s1/scans") == []


@pytest.mark.parametrize("options, message", [
    ({"scan_timeout": 0}, "scan_timeout must be at least 1"),
    ({"module": "nmap"}, "value of module must be one of"),
    ({"poll_interval": 0}, "poll_interval must be more than 0"),
])
def test_wrong_options_fail_before_any_call_without_the_secret(fake_halo, run_action, options, message):
    result, dummy = run_action(connection(fake_halo, group="ProdWebDirty", **options))
    assert result["failed"] is True and message in result["msg"]
    assert "TOPSECRET" not in repr(result)
    assert fake_halo.requests == []


def test_an_api_failure_is_one_line_without_the_secret(fake_halo, run_action):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [{"id": "gd", "name": "ProdWebDirty"}]}))
    result, dummy = run_action(connection(fake_halo, group="ProdWebStaging"))
    assert result["failed"] is True
    assert result["msg"] == "no Halo server group named or with id 'ProdWebStaging'; known groups: ProdWebDirty"
    assert "TOPSECRET" not in repr(result)
