"""The halo_group_info module against a scripted API: groups in order, their configuration
policies with the rules that can find anything, the key's scope, and an unknown name."""

from ansible_collections.cloudpassage.halo.plugins.modules import halo_group_info

GROUPS = {"groups": [{"id": "gc", "name": "ProdWebClean", "policy_ids": ["p1"]},
                     {"id": "gd", "name": "ProdWebDirty", "policy_ids": ["p1", "p2"]},
                     {"id": "ga", "name": "CriticalApplication", "policy_ids": []}]}
# p1: an active rule with an active check, a rule switched off, a rule whose only check is off.
P1 = {"policy": {"id": "p1", "name": "CIS Debian baseline", "rules": [
    {"name": "root login", "active": True, "checks": [{"active": True}]},
    {"name": "off", "active": False, "checks": [{"active": True}]},
    {"name": "no check on", "checks": [{"active": False}]},
]}}
P2 = {"policy": {"id": "p2", "name": "Empty", "rules": []}}


def test_every_group_by_name_with_the_rules_that_can_find_anything(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v2/policies/p1", (200, P1))
    fake_halo.on("GET", "/v2/policies/p2", (200, P2))
    result, failed = run_module(halo_group_info, auth, check_mode=True)
    assert not failed and result["changed"] is False
    assert [group["name"] for group in result["groups"]] == ["CriticalApplication", "ProdWebClean", "ProdWebDirty"]
    dirty = result["groups"][2]
    assert dirty["config_policies"] == [{"id": "p1", "name": "CIS Debian baseline", "active_rule_count": 1},
                                        {"id": "p2", "name": "Empty", "active_rule_count": 0}]
    assert dirty["active_rule_count"] == 1 and result["groups"][0]["active_rule_count"] == 0
    assert result["key_scope"] == "read+write"
    # A policy two groups share is read once.
    assert len(fake_halo.calls("GET", "/v2/policies/p1")) == 1


def test_named_groups_come_in_the_order_asked_by_name_or_id(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v2/policies/p1", (200, P1))
    fake_halo.on("GET", "/v2/policies/p2", (200, P2))
    result, failed = run_module(halo_group_info, dict(auth, names=["gd", "ProdWebClean"]))
    assert not failed
    assert [group["id"] for group in result["groups"]] == ["gd", "gc"]


def test_an_unknown_group_fails_naming_the_known_ones(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    result, failed = run_module(halo_group_info, dict(auth, names=["ProdWebStaging"]))
    assert failed
    assert "ProdWebStaging" in result["msg"] and "CriticalApplication, ProdWebClean, ProdWebDirty" in result["msg"]
    assert fake_halo.calls("GET", "/v2/policies/p1") == []
