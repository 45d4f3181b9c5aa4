"""halo_group against a scripted API: create, update only what differs, idempotence,
check mode, diff, and deleting a group that still holds servers."""

from ansible_collections.cloudpassage.halo.plugins.modules import halo_group

DIRTY = {"id": "gd", "name": "ProdWebDirty", "tag": "NewDirty", "description": None, "parent_id": "groot",
         "policy_ids": ["p1"], "linux_firewall_policy_id": None}
ROOT = {"id": "groot", "name": "Root", "tag": None, "parent_id": None, "policy_ids": []}
CLEAN = {"id": "gc", "name": "ProdWebClean", "tag": None, "parent_id": "groot", "policy_ids": ["p1"]}
POLICIES = {"policies": [{"id": "p1", "name": "CIS Debian baseline"}, {"id": "p2", "name": "Extra"}]}
FIREWALLS = {"firewall_policies": [{"id": "fw1", "name": "Protect CriticalApplication"}]}
WEB1 = {"id": "s1", "hostname": "web1", "group_id": "gd", "state": "active"}


def writes(fake):
    return [(r["method"], r["path"]) for r in fake.requests if r["method"] in ("POST", "PUT", "DELETE")
            and r["path"] != "/oauth/access_token"]


def test_creates_a_missing_group_with_names_resolved_to_ids(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT]}))
    fake_halo.on("GET", "/v2/policies", (200, POLICIES))
    fake_halo.on("POST", "/v1/groups", (201, {"group": dict(DIRTY, id="gnew")}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", tag="NewDirty",
                                                 parent="Root", config_policies=["CIS Debian baseline"]))
    assert not failed and result["changed"] is True
    assert result["group"]["id"] == "gnew"
    post = fake_halo.calls("POST", "/v1/groups")[0]
    assert post["body"] == {"group": {"name": "ProdWebDirty", "tag": "NewDirty", "parent_id": "groot",
                                      "policy_ids": ["p1"]}}
    assert fake_halo.calls("GET", "/v2/policies")[0]["query"]["module"] == "csm"


def test_an_unchanged_group_is_left_alone(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, DIRTY]}))
    fake_halo.on("GET", "/v2/policies", (200, POLICIES))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", tag="NewDirty",
                                                 parent="groot", config_policies=["p1"],
                                                 linux_firewall_policy=""), diff=True)
    assert not failed and result["changed"] is False
    assert result["group"] == DIRTY
    assert result["diff"]["before"] == result["diff"]["after"]
    assert writes(fake_halo) == []


def test_updates_only_the_fields_that_differ_and_returns_the_stored_group(auth, fake_halo, run_module):
    updated = dict(DIRTY, policy_ids=["p1", "p2"], linux_firewall_policy_id="fw1")
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, DIRTY]}))
    fake_halo.on("GET", "/v2/policies", (200, POLICIES))
    fake_halo.on("GET", "/v1/firewall_policies", (200, FIREWALLS))
    fake_halo.on("PUT", "/v1/groups/gd", (204, None))
    fake_halo.on("GET", "/v1/groups/gd", (200, {"group": updated}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", tag="NewDirty",
                                                 config_policies=["CIS Debian baseline", "Extra"],
                                                 linux_firewall_policy="Protect CriticalApplication"),
                                diff=True)
    assert not failed and result["changed"] is True
    assert fake_halo.calls("PUT", "/v1/groups/gd")[0]["body"] == {
        "group": {"policy_ids": ["p1", "p2"], "linux_firewall_policy_id": "fw1"}}
    assert result["group"] == updated
    assert result["diff"]["before"]["policy_ids"] == ["p1"]
    assert result["diff"]["after"]["policy_ids"] == ["p1", "p2"]
    assert result["diff"]["after"]["linux_firewall_policy_id"] == "fw1"


def test_check_mode_reports_the_change_and_writes_nothing(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, DIRTY]}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", tag=""), check_mode=True)
    assert not failed and result["changed"] is True
    assert result["group"]["tag"] is None and result["group"]["id"] == "gd"
    assert writes(fake_halo) == []


def test_an_unknown_policy_fails_naming_the_known_ones_before_writing(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT]}))
    fake_halo.on("GET", "/v2/policies", (200, POLICIES))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", config_policies=["CIS"]))
    assert failed
    assert result["msg"] == ("no Halo configuration policy named or with id 'CIS'; "
                             "known policies: CIS Debian baseline, Extra")
    assert writes(fake_halo) == []


def test_an_ambiguous_group_name_is_refused(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [DIRTY, dict(DIRTY, id="gd2")]}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", tag="x"))
    assert failed and "more than one Halo server group is named 'ProdWebDirty'" in result["msg"]
    assert writes(fake_halo) == []


def test_deleting_a_group_with_servers_needs_a_destination(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, DIRTY, CLEAN]}))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", state="absent"))
    assert failed and "still holds 1 server(s) (web1)" in result["msg"]
    assert fake_halo.calls("GET", "/v1/servers")[0]["query"]["state"] == "active,missing,deactivated"
    assert writes(fake_halo) == []


def test_deleting_moves_the_servers_first(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, DIRTY, CLEAN]}))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    fake_halo.on("PUT", "/v1/servers/s1", (204, None))
    fake_halo.on("DELETE", "/v1/groups/gd", (204, None))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", state="absent",
                                                 move_servers_to="ProdWebClean"))
    assert not failed and result["changed"] is True
    assert result["moved_servers"] == [{"server_id": "s1", "hostname": "web1"}]
    assert writes(fake_halo) == [("PUT", "/v1/servers/s1"), ("DELETE", "/v1/groups/gd")]
    assert fake_halo.calls("PUT", "/v1/servers/s1")[0]["body"] == {"server": {"group_id": "gc"}}
    assert fake_halo.calls("DELETE", "/v1/groups/gd")[0]["query"] == {}


def test_deleting_can_let_halo_move_the_servers_to_the_parent(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, DIRTY]}))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    fake_halo.on("DELETE", "/v1/groups/gd", (204, None))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", state="absent",
                                                 move_servers_to_parent=True))
    assert not failed and result["changed"] is True
    assert fake_halo.calls("DELETE", "/v1/groups/gd")[0]["query"] == {"move_to_parent": "true"}


def test_deleting_in_check_mode_deletes_nothing(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, DIRTY, CLEAN]}))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": []}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", state="absent"),
                                check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert result["diff"] == {"before": halo_group.managed_view(DIRTY), "after": {}}
    assert writes(fake_halo) == []


def test_deleting_a_missing_group_is_ok(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT]}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebDirty", state="absent"))
    assert not failed and result["changed"] is False
    assert writes(fake_halo) == []


# -- scan_interval ------------------------------------------------------------------------------
SCHEDULED = dict(CLEAN, scan_interval=3600)


def test_scan_interval_is_set_then_left_alone_and_zero_clears_it(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, CLEAN]}))
    fake_halo.on("PUT", "/v1/groups/gc", (204, None))
    fake_halo.on("GET", "/v1/groups/gc", (200, {"group": SCHEDULED}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", scan_interval=3600),
                                diff=True)
    assert not failed and result["changed"] is True, result
    assert fake_halo.calls("PUT", "/v1/groups/gc")[0]["body"] == {"group": {"scan_interval": 3600}}
    assert (result["diff"]["before"]["scan_interval"], result["diff"]["after"]["scan_interval"]) == (None, 3600)
    assert result["group"]["scan_interval"] == 3600

    fake_halo.requests.clear()
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, SCHEDULED]}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", scan_interval=3600))
    assert not failed and result["changed"] is False and writes(fake_halo) == []

    fake_halo.on("GET", "/v1/groups/gc", (200, {"group": dict(CLEAN, scan_interval=None)}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", scan_interval=0))
    assert not failed and result["changed"] is True
    assert fake_halo.calls("PUT", "/v1/groups/gc")[-1]["body"] == {"group": {"scan_interval": None}}


def test_scan_interval_in_check_mode_writes_nothing(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, CLEAN]}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", scan_interval=600),
                                check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert result["group"]["scan_interval"] == 600 and result["diff"]["after"]["scan_interval"] == 600
    assert writes(fake_halo) == []


def test_a_service_that_ignores_scan_interval_fails_the_task_instead_of_reporting_a_change(auth, fake_halo, run_module):
    # Halo's own API drops unknown group fields: the stored group comes back without it.
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, CLEAN]}))
    fake_halo.on("PUT", "/v1/groups/gc", (204, None))
    fake_halo.on("GET", "/v1/groups/gc", (200, {"group": CLEAN}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", scan_interval=3600))
    assert failed and "did not store scan_interval" in result["msg"], result


# -- fim_policies -------------------------------------------------------------------------------
FIM_POLICIES = {"fim_policies": [{"id": "f1", "name": "Core system files"}, {"id": "f2", "name": "Web content"}]}


def test_fim_policies_are_resolved_to_ids_set_then_left_alone(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, CLEAN]}))
    fake_halo.on("GET", "/v1/fim_policies", (200, FIM_POLICIES))
    fake_halo.on("PUT", "/v1/groups/gc", (204, None))
    fake_halo.on("GET", "/v1/groups/gc", (200, {"group": dict(CLEAN, fim_policy_ids=["f1", "f2"])}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", fim_policies=["Core system files", "f2"]),
                                diff=True)
    assert not failed and result["changed"] is True, result
    assert fake_halo.calls("PUT", "/v1/groups/gc")[0]["body"] == {"group": {"fim_policy_ids": ["f1", "f2"]}}
    assert (result["diff"]["before"]["fim_policy_ids"], result["diff"]["after"]["fim_policy_ids"]) == (None, ["f1", "f2"])
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, dict(CLEAN, fim_policy_ids=["f1", "f2"])]}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", fim_policies=["f1", "Web content"]))
    assert not failed and result["changed"] is False
    assert len(fake_halo.calls("PUT", "/v1/groups/gc")) == 1


def test_an_empty_fim_policies_list_removes_them_and_an_unknown_one_fails_before_writing(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, dict(CLEAN, fim_policy_ids=["f1"])]}))
    fake_halo.on("GET", "/v1/fim_policies", (200, FIM_POLICIES))
    fake_halo.on("PUT", "/v1/groups/gc", (204, None))
    fake_halo.on("GET", "/v1/groups/gc", (200, {"group": dict(CLEAN, fim_policy_ids=[])}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", fim_policies=[]))
    assert not failed and result["changed"] is True
    assert fake_halo.calls("PUT", "/v1/groups/gc")[0]["body"] == {"group": {"fim_policy_ids": []}}
    assert fake_halo.calls("GET", "/v1/fim_policies") == []  # nothing to resolve
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", fim_policies=["Nope"]))
    assert failed and "no Halo FIM policy named or with id 'Nope'" in result["msg"]
    assert "Core system files, Web content" in result["msg"]
    assert len(fake_halo.calls("PUT", "/v1/groups/gc")) == 1


def test_a_service_that_ignores_fim_policy_ids_fails_the_task(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [ROOT, CLEAN]}))
    fake_halo.on("GET", "/v1/fim_policies", (200, FIM_POLICIES))
    fake_halo.on("PUT", "/v1/groups/gc", (204, None))
    fake_halo.on("GET", "/v1/groups/gc", (200, {"group": CLEAN}))
    result, failed = run_module(halo_group, dict(auth, name="ProdWebClean", fim_policies=["f1"]))
    assert failed and "did not store fim_policy_ids" in result["msg"], result
