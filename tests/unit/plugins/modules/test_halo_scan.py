"""The halo_scan module run directly (without its action plugin) against a scripted API:
check mode reads stored results, a scan is judged by the scan its command produced."""

from ansible_collections.cloudpassage.halo.plugins.modules import halo_scan

GROUPS = {"groups": [{"id": "gd", "name": "ProdWebDirty"}, {"id": "gc", "name": "ProdWebClean"}]}
WEB1 = {"id": "s1", "hostname": "web1", "group_id": "gd", "group_name": "ProdWebDirty", "state": "active"}


def test_scan_in_check_mode_starts_nothing_and_returns_stored_results(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    fake_halo.on("GET", "/v1/servers/s1/sca", (200, {"id": "s1", "scan": {
        "id": "old", "status": "completed_clean", "critical_findings_count": 0,
        "non_critical_findings_count": 0, "ok_findings_count": 1,
        "findings": [{"rule_name": "r", "critical": True, "status": "good", "details": []}]}}))
    result, failed = run_module(halo_scan, dict(auth, group="ProdWebDirty"), check_mode=True)
    assert not failed and result["changed"] is False
    assert result["results"][0]["scan_id"] == "old" and result["passed_count"] == 1
    assert fake_halo.calls("POST", "/v1/servers/s1/scans") == []


def test_scan_judges_the_scan_its_command_produced(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    fake_halo.on("POST", "/v1/servers/s1/scans", (202, {"command": {"id": "c1", "status": "queued", "scan_id": "new"}}))
    fake_halo.on("GET", "/v1/scans", (200, {"scans": [{"id": "new", "status": "running"}]}),
                 (200, {"scans": [{"id": "other", "status": "completed_clean"},
                                  {"id": "new", "status": "completed_with_errors"}]}))
    # Stored a moment after the command completed (eventual consistency): 404 first.
    fake_halo.on("GET", "/v1/scans/new",
                 (404, {"resource": "scan", "field": "id", "value": "new"}),
                 (200, {"scan": {"id": "new", "server_id": "s1", "command_id": "c1", "module": "sca",
                                 "status": "completed_with_errors", "critical_findings_count": 1,
                                 "non_critical_findings_count": 0, "ok_findings_count": 0,
                                 "findings": [{"rule_name": "r", "critical": True, "status": "bad", "details": []}]}}))
    result, failed = run_module(halo_scan, dict(auth, group="ProdWebDirty", poll_interval=0.01))
    assert not failed
    (web1,) = result["results"]
    assert (web1["scan_id"], web1["passed"], web1["error"], web1["failed_rules"][0]["name"]) == ("new", False, False, "r")
    assert (result["passed_count"], result["failed_count"], result["error_count"]) == (0, 1, 0)
    assert fake_halo.calls("POST", "/v1/servers/s1/scans")[0]["body"] == {"scan": {"module": "sca"}}
    assert fake_halo.calls("GET", "/v1/servers/s1/sca") == [] and fake_halo.calls("GET", "/v1/servers/s1/commands/c1") == []
