"""halo_firewall_policy against a scripted API: names resolved to ids, rules compared by id
and order, replaced (new first, old removed after) when they differ, check mode, diff."""

from ansible_collections.cloudpassage.halo.plugins.modules import halo_firewall_policy

GROUPS = {"groups": [{"id": "gd", "name": "ProdWebDirty"}, {"id": "gc", "name": "ProdWebClean"}]}
ZONES = {"firewall_zones": [{"id": "z1", "name": "Admin network", "ip_address": "198.18.0.0/24"}]}
SERVICES = {"firewall_services": [{"id": "svc-ssh", "name": "ssh", "port": "22", "protocol": "TCP"}]}
POLICIES = {"firewall_policies": [{"id": "fw1", "name": "Protect CriticalApplication", "description": None}]}

WANTED_RULES = [
    {"action": "DROP", "source": {"group": "ProdWebDirty"}, "log": True, "comment": "Not yet admitted"},
    {"action": "ACCEPT", "source": {"group": "ProdWebClean"}, "service": {"name": "ssh"}, "states": ["NEW"]},
]
# The same two rules as the API lists them.
STORED_RULES = {"firewall_rules": [
    {"id": "r2", "position": 2, "chain": "INPUT", "action": "ACCEPT", "active": True, "log": False,
     "log_prefix": None, "comment": None, "connection_states": "NEW",
     "firewall_source": {"id": "gc", "type": "Group", "name": "ProdWebClean"},
     "firewall_service": {"id": "svc-ssh", "name": "ssh", "port": "22", "protocol": "TCP"}},
    {"id": "r1", "position": 1, "chain": "INPUT", "action": "DROP", "active": True, "log": True,
     "log_prefix": "", "comment": "Not yet admitted", "connection_states": None,
     "firewall_source": {"id": "gd", "type": "Group", "name": "ProdWebDirty"}, "firewall_service": None},
]}


def writes(fake):
    return [(r["method"], r["path"]) for r in fake.requests if r["method"] in ("POST", "PUT", "DELETE")
            and r["path"] != "/oauth/access_token"]


def script_lookups(fake, policies=None):
    fake.on("GET", "/v1/firewall_policies", (200, POLICIES if policies is None else policies))
    fake.on("GET", "/v1/groups", (200, GROUPS))
    fake.on("GET", "/v1/firewall_zones", (200, ZONES))
    fake.on("GET", "/v1/firewall_services", (200, SERVICES))


def test_creates_the_policy_with_its_rules_in_order_with_ids(auth, fake_halo, run_module):
    script_lookups(fake_halo, policies={"firewall_policies": []})
    fake_halo.on("POST", "/v1/firewall_policies", (201, {"firewall_policy": {"id": "fw9", "name": "P"}}))
    result, failed = run_module(halo_firewall_policy, dict(auth, name="P", rules=WANTED_RULES))
    assert not failed and result["changed"] is True and result["policy_id"] == "fw9"
    assert writes(fake_halo) == [("POST", "/v1/firewall_policies")]
    created = fake_halo.calls("POST", "/v1/firewall_policies")[0]["body"]["firewall_policy"]
    assert (created["name"], created["platform"]) == ("P", "linux")
    assert created["firewall_rules"] == [
        {"chain": "INPUT", "action": "DROP", "active": True, "firewall_source": {"id": "gd", "type": "Group"},
         "firewall_service": None, "connection_states": None, "log": True, "log_prefix": None,
         "comment": "Not yet admitted", "position": 1},
        {"chain": "INPUT", "action": "ACCEPT", "active": True, "firewall_source": {"id": "gc", "type": "Group"},
         "firewall_service": "svc-ssh", "connection_states": "NEW", "log": False, "log_prefix": None,
         "comment": "", "position": 2},
    ]


def test_matching_rules_change_nothing(auth, fake_halo, run_module):
    script_lookups(fake_halo)
    fake_halo.on("GET", "/v1/firewall_policies/fw1/firewall_rules", (200, STORED_RULES))
    result, failed = run_module(halo_firewall_policy, dict(auth, name="Protect CriticalApplication",
                                                           rules=WANTED_RULES), diff=True)
    assert not failed and result["changed"] is False
    assert [rule["source"]["name"] for rule in result["rules"]] == ["ProdWebDirty", "ProdWebClean"]
    assert result["diff"]["before"] == result["diff"]["after"]
    assert writes(fake_halo) == []


def test_changed_order_replaces_new_rules_first_then_removes_old(auth, fake_halo, run_module):
    script_lookups(fake_halo)
    fake_halo.on("GET", "/v1/firewall_policies/fw1/firewall_rules", (200, STORED_RULES))
    fake_halo.on("POST", "/v1/firewall_policies/fw1/firewall_rules", (201, {"firewall_rule": {"id": "n"}}))
    fake_halo.on("DELETE", "/v1/firewall_policies/fw1/firewall_rules/r1", (204, None))
    fake_halo.on("DELETE", "/v1/firewall_policies/fw1/firewall_rules/r2", (204, None))
    result, failed = run_module(halo_firewall_policy, dict(auth, name="Protect CriticalApplication",
                                                           rules=list(reversed(WANTED_RULES))), diff=True)
    assert not failed and result["changed"] is True
    assert writes(fake_halo) == [("POST", "/v1/firewall_policies/fw1/firewall_rules")] * 2 + [
        ("DELETE", "/v1/firewall_policies/fw1/firewall_rules/r1"),
        ("DELETE", "/v1/firewall_policies/fw1/firewall_rules/r2")]
    created = [c["body"]["firewall_rule"] for c in fake_halo.calls("POST")[1:]]
    assert [(r["action"], r["position"]) for r in created] == [("ACCEPT", 1), ("DROP", 2)]
    assert [r["action"] for r in result["diff"]["before"]["rules"]] == ["DROP", "ACCEPT"]
    assert [r["action"] for r in result["diff"]["after"]["rules"]] == ["ACCEPT", "DROP"]


def test_a_renamed_source_group_with_the_same_id_is_the_same_rule(auth, fake_halo, run_module):
    script_lookups(fake_halo)
    fake_halo.on("GET", "/v1/firewall_policies/fw1/firewall_rules", (200, STORED_RULES))
    rules = [dict(WANTED_RULES[0], source={"group": "gd"}), dict(WANTED_RULES[1], source={"group": "gc"})]
    result, failed = run_module(halo_firewall_policy, dict(auth, name="Protect CriticalApplication",
                                                           rules=rules))
    assert not failed and result["changed"] is False


def test_a_different_state_or_flag_is_a_change_in_check_mode_without_writes(auth, fake_halo, run_module):
    script_lookups(fake_halo)
    fake_halo.on("GET", "/v1/firewall_policies/fw1/firewall_rules", (200, STORED_RULES))
    rules = [WANTED_RULES[0], dict(WANTED_RULES[1], states=["NEW", "ESTABLISHED"])]
    result, failed = run_module(halo_firewall_policy, dict(auth, name="Protect CriticalApplication",
                                                           rules=rules), check_mode=True)
    assert not failed and result["changed"] is True
    assert result["rules"][1]["states"] == ["NEW", "ESTABLISHED"]
    assert writes(fake_halo) == []


def test_a_zone_source_and_a_new_port_service(auth, fake_halo, run_module):
    script_lookups(fake_halo, policies={"firewall_policies": []})
    fake_halo.on("POST", "/v1/firewall_services", (201, {"firewall_service": {
        "id": "svc-new", "name": "8080/TCP", "port": "8080", "protocol": "TCP"}}))
    fake_halo.on("POST", "/v1/firewall_policies", (201, {"firewall_policy": {"id": "fw9", "name": "P"}}))
    rules = [{"action": "ACCEPT", "source": {"zone": "Admin network"}, "service": {"port": "8080"}},
             {"action": "ACCEPT", "service": {"port": "22", "protocol": "TCP"}}]
    result, failed = run_module(halo_firewall_policy, dict(auth, name="P", rules=rules))
    assert not failed and result["changed"] is True
    assert fake_halo.calls("POST", "/v1/firewall_services")[0]["body"] == {
        "firewall_service": {"name": "8080/TCP", "port": "8080", "protocol": "TCP"}}
    assert len(fake_halo.calls("POST", "/v1/firewall_services")) == 1  # 22/TCP is the existing ssh service
    bodies = fake_halo.calls("POST", "/v1/firewall_policies")[0]["body"]["firewall_policy"]["firewall_rules"]
    assert [(b["firewall_source"], b["firewall_service"]) for b in bodies] == [
        ({"id": "z1", "type": "FirewallZone"}, "svc-new"), (None, "svc-ssh")]


def test_check_mode_creates_no_service_either(auth, fake_halo, run_module):
    script_lookups(fake_halo, policies={"firewall_policies": []})
    rules = [{"action": "ACCEPT", "service": {"port": "8443"}}]
    result, failed = run_module(halo_firewall_policy, dict(auth, name="P", rules=rules),
                                check_mode=True)
    assert not failed and result["changed"] is True
    assert result["rules"][0]["service"]["name"] == "8443/TCP"
    assert writes(fake_halo) == []


def test_an_unknown_source_group_fails_before_any_write(auth, fake_halo, run_module):
    script_lookups(fake_halo)
    rules = [{"action": "DROP", "source": {"group": "ProdWebDirt"}}]
    result, failed = run_module(halo_firewall_policy, dict(auth, name="Protect CriticalApplication",
                                                           rules=rules))
    assert failed and "no Halo server group named or with id 'ProdWebDirt'" in result["msg"]
    assert writes(fake_halo) == []


def test_a_source_needs_exactly_one_of_group_and_zone(auth, fake_halo, run_module):
    rules = [{"action": "DROP", "source": {"group": "ProdWebDirty", "zone": "Admin network"}}]
    result, failed = run_module(halo_firewall_policy, dict(auth, name="P", rules=rules))
    assert failed and "mutually exclusive" in result["msg"]


def test_deletes_by_name(auth, fake_halo, run_module):
    script_lookups(fake_halo)
    fake_halo.on("DELETE", "/v1/firewall_policies/fw1", (204, None))
    result, failed = run_module(halo_firewall_policy, dict(auth, name="Protect CriticalApplication",
                                                           state="absent"))
    assert not failed and result["changed"] is True
    assert writes(fake_halo) == [("DELETE", "/v1/firewall_policies/fw1")]
    result, failed = run_module(halo_firewall_policy, dict(auth, name="Gone", state="absent"))
    assert not failed and result["changed"] is False
