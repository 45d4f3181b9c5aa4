"""The modules end to end against a scripted API: options, check mode, diff, idempotence."""

from ansible_collections.cloudpassage.halo.plugins.modules import halo_group_move, halo_scan, halo_server_info

GROUPS = {"groups": [{"id": "gd", "name": "ProdWebDirty"}, {"id": "gc", "name": "ProdWebClean"}]}
WEB1 = {"id": "s1", "hostname": "web1", "group_id": "gd", "group_name": "ProdWebDirty", "state": "active"}
WEB2 = {"id": "s2", "hostname": "web2", "group_id": "gc", "group_name": "ProdWebClean", "state": "active"}


def auth(fake):
    return {"api_host": fake.url, "api_key": "key-id", "api_secret": "s3cret", "max_retries": 0}


def test_server_info_filters_by_group_name(fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1], "count": 1}))
    result, failed = run_module(halo_server_info, dict(auth(fake_halo), group="ProdWebDirty"), check_mode=True)
    assert not failed and result["changed"] is False
    assert result["servers"] == [WEB1]
    assert fake_halo.calls("GET", "/v1/servers")[0]["query"]["group_id"] == "gd"


def test_group_move_moves_only_servers_not_there_yet_with_diff(fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1, WEB2]}))
    fake_halo.on("PUT", "/v1/servers/s1", (204, None))
    result, failed = run_module(halo_group_move, dict(auth(fake_halo), server_ids=["s1", "s2"],
                                                      destination_group="ProdWebClean"), diff=True)
    assert not failed and result["changed"] is True
    assert [m["hostname"] for m in result["moved"]] == ["web1"]
    assert [u["hostname"] for u in result["unchanged"]] == ["web2"]
    assert result["diff"] == {"before": {"web1": "ProdWebDirty"}, "after": {"web1": "ProdWebClean"}}
    puts = fake_halo.calls("PUT")
    assert [(p["path"], p["body"]) for p in puts] == [("/v1/servers/s1", {"server": {"group_id": "gc"}})]


def test_group_move_in_check_mode_moves_nothing(fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    result, failed = run_module(halo_group_move, dict(auth(fake_halo), group="ProdWebDirty",
                                                      destination_group="ProdWebClean"), check_mode=True)
    assert not failed and result["changed"] is True
    assert [m["hostname"] for m in result["moved"]] == ["web1"]
    assert fake_halo.calls("PUT") == []


def test_group_move_is_ok_when_every_server_is_there(fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB2]}))
    result, failed = run_module(halo_group_move, dict(auth(fake_halo), hostname="web2",
                                                      destination_group="gc"))
    assert not failed and result["changed"] is False and result["moved"] == []


def test_group_move_with_an_empty_id_list_moves_nothing_and_lists_nothing(fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    result, failed = run_module(halo_group_move, dict(auth(fake_halo), server_ids=[],
                                                      destination_group="ProdWebClean"))
    assert not failed and result["changed"] is False
    assert fake_halo.calls("GET", "/v1/servers") == []


def test_group_move_to_an_unknown_group_names_the_known_ones(fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    result, failed = run_module(halo_group_move, dict(auth(fake_halo), group="ProdWebDirty",
                                                      destination_group="ProdWebCleen"))
    assert failed
    assert result["msg"] == ("no Halo server group named or with id 'ProdWebCleen'; "
                             "known groups: ProdWebClean, ProdWebDirty")
    assert fake_halo.calls("PUT") == []


def test_group_move_without_a_selector_refuses(fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    result, failed = run_module(halo_group_move, dict(auth(fake_halo), destination_group="ProdWebClean"))
    assert failed and "select servers with at least one of" in result["msg"]


def test_group_move_with_a_read_only_key_moves_nothing(fake_halo, run_module):
    fake_halo.scope = "read"
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    result, failed = run_module(halo_group_move, dict(auth(fake_halo), group="ProdWebDirty",
                                                      destination_group="ProdWebClean"))
    assert failed and "read-only" in result["msg"]
    assert fake_halo.calls("PUT") == []


def test_scan_in_check_mode_starts_nothing_and_returns_stored_results(fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    fake_halo.on("GET", "/v1/servers/s1/sca", (200, {"id": "s1", "scan": {
        "id": "old", "status": "completed_clean", "critical_findings_count": 0,
        "non_critical_findings_count": 0, "ok_findings_count": 1,
        "findings": [{"rule_name": "r", "critical": True, "status": "good", "details": []}]}}))
    result, failed = run_module(halo_scan, dict(auth(fake_halo), group="ProdWebDirty"), check_mode=True)
    assert not failed and result["changed"] is False
    assert result["results"][0]["scan_id"] == "old" and result["passed_count"] == 1
    assert fake_halo.calls("POST", "/v1/servers/s1/scans") == []


def test_scan_judges_the_scan_its_command_produced(fake_halo, run_module):
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
    result, failed = run_module(halo_scan, dict(auth(fake_halo), group="ProdWebDirty", poll_interval=0.01))
    assert not failed
    (web1,) = result["results"]
    assert (web1["scan_id"], web1["passed"], web1["error"], web1["failed_rules"][0]["name"]) == ("new", False, False, "r")
    assert (result["passed_count"], result["failed_count"], result["error_count"]) == (0, 1, 0)
    assert fake_halo.calls("POST", "/v1/servers/s1/scans")[0]["body"] == {"scan": {"module": "sca"}}
    assert fake_halo.calls("GET", "/v1/servers/s1/sca") == [] and fake_halo.calls("GET", "/v1/servers/s1/commands/c1") == []


def test_secret_comes_from_the_environment(fake_halo, run_module, monkeypatch):
    monkeypatch.setenv("HALO_API_HOST", fake_halo.url)
    monkeypatch.setenv("HALO_API_KEY", "env-key")
    monkeypatch.setenv("HALO_API_SECRET_KEY", "env-secret")
    fake_halo.on("GET", "/v1/servers", (200, {"servers": []}))
    result, failed = run_module(halo_server_info, {})
    assert not failed and result["servers"] == []
    import base64
    assert fake_halo.calls("POST")[0]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"env-key:env-secret").decode()


def test_group_move_moves_the_others_when_one_move_fails_and_says_what_moved(fake_halo, run_module):
    """Moves run side by side (max_workers); one refused move no longer leaves the servers
    after it unmoved, and the failure names the server and every one that did move."""
    web3 = dict(WEB1, id="s3", hostname="web3")
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1, web3]}))
    fake_halo.on("PUT", "/v1/servers/s1", (422, {"message": "Validation Failed"}))
    fake_halo.on("PUT", "/v1/servers/s3", (204, None))
    result, failed = run_module(halo_group_move, dict(auth(fake_halo), server_ids=["s1", "s3"],
                                                      destination_group="ProdWebClean", max_workers=2))
    assert failed
    assert "web1" in result["msg"] and "moved: web3" in result["msg"]
    assert sorted(p["path"] for p in fake_halo.calls("PUT")) == ["/v1/servers/s1", "/v1/servers/s3"]
