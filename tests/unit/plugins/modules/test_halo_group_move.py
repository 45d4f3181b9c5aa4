"""The halo_group_move module against a scripted API: what moves, check mode, diff,
idempotence, selection and failures."""

from ansible_collections.cloudpassage.halo.plugins.modules import halo_group_move

GROUPS = {"groups": [{"id": "gd", "name": "ProdWebDirty"}, {"id": "gc", "name": "ProdWebClean"}]}
WEB1 = {"id": "s1", "hostname": "web1", "group_id": "gd", "group_name": "ProdWebDirty", "state": "active"}
WEB2 = {"id": "s2", "hostname": "web2", "group_id": "gc", "group_name": "ProdWebClean", "state": "active"}


def test_group_move_moves_only_servers_not_there_yet_with_diff(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1, WEB2]}))
    fake_halo.on("PUT", "/v1/servers/s1", (204, None))
    result, failed = run_module(halo_group_move, dict(auth, server_ids=["s1", "s2"],
                                                      destination_group="ProdWebClean"), diff=True)
    assert not failed and result["changed"] is True
    assert [m["hostname"] for m in result["moved"]] == ["web1"]
    assert [u["hostname"] for u in result["unchanged"]] == ["web2"]
    assert result["diff"] == {"before": {"web1": "ProdWebDirty"}, "after": {"web1": "ProdWebClean"}}
    puts = fake_halo.calls("PUT")
    assert [(p["path"], p["body"]) for p in puts] == [("/v1/servers/s1", {"server": {"group_id": "gc"}})]


def test_group_move_in_check_mode_moves_nothing(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    result, failed = run_module(halo_group_move, dict(auth, group="ProdWebDirty",
                                                      destination_group="ProdWebClean"), check_mode=True)
    assert not failed and result["changed"] is True
    assert [m["hostname"] for m in result["moved"]] == ["web1"]
    assert fake_halo.calls("PUT") == []


def test_group_move_is_ok_when_every_server_is_there(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB2]}))
    result, failed = run_module(halo_group_move, dict(auth, hostname="web2",
                                                      destination_group="gc"))
    assert not failed and result["changed"] is False and result["moved"] == []


def test_group_move_with_an_empty_id_list_moves_nothing_and_lists_nothing(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    result, failed = run_module(halo_group_move, dict(auth, server_ids=[],
                                                      destination_group="ProdWebClean"))
    assert not failed and result["changed"] is False
    assert fake_halo.calls("GET", "/v1/servers") == []


def test_group_move_to_an_unknown_group_names_the_known_ones(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    result, failed = run_module(halo_group_move, dict(auth, group="ProdWebDirty",
                                                      destination_group="ProdWebCleen"))
    assert failed
    assert result["msg"] == ("no Halo server group named or with id 'ProdWebCleen'; "
                             "known groups: ProdWebClean, ProdWebDirty")
    assert fake_halo.calls("PUT") == []


def test_group_move_without_a_selector_refuses(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    result, failed = run_module(halo_group_move, dict(auth, destination_group="ProdWebClean"))
    assert failed and "select servers with at least one of" in result["msg"]


def test_group_move_with_a_read_only_key_moves_nothing(auth, fake_halo, run_module):
    fake_halo.scope = "read"
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    result, failed = run_module(halo_group_move, dict(auth, group="ProdWebDirty",
                                                      destination_group="ProdWebClean"))
    assert failed and "read-only" in result["msg"]
    assert fake_halo.calls("PUT") == []


def test_group_move_moves_the_others_when_one_move_fails_and_says_what_moved(auth, fake_halo, run_module):
    """Moves run side by side (max_workers); one refused move no longer leaves the servers
    after it unmoved, and the failure names the server and every one that did move."""
    web3 = dict(WEB1, id="s3", hostname="web3")
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1, web3]}))
    fake_halo.on("PUT", "/v1/servers/s1", (422, {"message": "Validation Failed"}))
    fake_halo.on("PUT", "/v1/servers/s3", (204, None))
    result, failed = run_module(halo_group_move, dict(auth, server_ids=["s1", "s3"],
                                                      destination_group="ProdWebClean", max_workers=2))
    assert failed
    assert "web1" in result["msg"] and "moved: web3" in result["msg"]
    assert sorted(p["path"] for p in fake_halo.calls("PUT")) == ["/v1/servers/s1", "/v1/servers/s3"]
