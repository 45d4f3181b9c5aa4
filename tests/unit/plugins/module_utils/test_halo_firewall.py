"""plugins/module_utils/halo_firewall.py: one view of a rule whether wanted or stored, what
makes two rules the same, names resolved to ids (each list read once), and the API body."""

import pytest

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloClientError
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_firewall import (
    Resolver,
    api_rule,
    comparable,
    parse_states,
    rule_view,
    stored_view,
)


class Client:
    """The calls Resolver makes, counted."""

    def __init__(self):
        self.calls = []
        self.services = [{"id": "svc-ssh", "name": "ssh", "port": "22", "protocol": "TCP"}]

    def list_groups(self):
        self.calls.append("list_groups")
        return [{"id": "gd", "name": "ProdWebDirty"}]

    def list_firewall_zones(self):
        self.calls.append("list_firewall_zones")
        return [{"id": "z1", "name": "any"}]

    def list_firewall_services(self):
        self.calls.append("list_firewall_services")
        return self.services

    def require_write_scope(self):
        self.calls.append("require_write_scope")

    def create_firewall_service(self, fields):
        self.calls.append("create_firewall_service")
        return dict(fields, id="svc-new")


def wanted(**fields):
    rule = {"chain": "INPUT", "action": "ACCEPT", "source": None, "service": None, "states": None, "log": False,
            "log_prefix": None, "comment": None, "active": True}
    rule.update(fields)
    return rule


@pytest.mark.parametrize("value, expected", [
    ("ESTABLISHED, NEW", ["NEW", "ESTABLISHED"]),
    ("related,new , ANY", ["NEW", "RELATED"]),
    (None, []),
    ("ANY", []),
    ("NEW, INVALID", ["NEW", "INVALID"]),  # unknown states are kept, after the known ones
])
def test_states_in_a_fixed_order(value, expected):
    assert parse_states(value) == expected


def test_a_stored_rule_and_the_same_wanted_rule_compare_equal():
    stored = {"chain": "INPUT", "action": "DROP", "active": True, "connection_states": "NEW, ESTABLISHED",
              "firewall_source": {"id": "gd", "type": "Group", "name": "ProdWebDirty (renamed)"},
              "firewall_service": {"id": "svc-ssh", "name": "ssh", "port": "22", "protocol": "TCP"},
              "log": None, "log_prefix": None, "comment": None}
    resolver = Resolver(Client(), check_mode=False)
    view = resolver.rule(wanted(action="DROP", source={"group": "ProdWebDirty"}, service={"name": "ssh"},
                                states=["ESTABLISHED", "NEW"]))
    # Names may differ (a rename); ids decide.
    assert stored_view(stored)["source"]["name"] != view["source"]["name"]
    assert comparable(stored_view(stored)) == comparable(view)
    assert comparable(rule_view("INPUT", "DROP", None, None, [], False, "", "", False)) != comparable(
        rule_view("INPUT", "DROP", None, None, [], False, "", "", True))


def test_each_list_is_read_once_and_only_when_needed():
    client = Client()
    resolver = Resolver(client, check_mode=False)
    for dummy in range(3):
        resolver.rule(wanted(source={"group": "gd"}, service={"name": "ssh"}))
    assert client.calls == ["list_groups", "list_firewall_services"]
    assert resolver.source({"zone": "any"}) == {"type": "FirewallZone", "id": "z1", "name": "any"}


def test_a_port_without_a_service_makes_one_only_outside_check_mode():
    client = Client()
    found = Resolver(client, check_mode=True).service({"port": "8443", "protocol": "TCP"})
    assert found == {"id": None, "name": "8443/TCP", "port": "8443", "protocol": "TCP"}
    assert "create_firewall_service" not in client.calls
    resolver = Resolver(client, check_mode=False)
    assert resolver.service({"port": "8443", "protocol": "TCP"})["id"] == "svc-new"
    assert client.calls[-2:] == ["require_write_scope", "create_firewall_service"]
    # The new service is known from then on: a second rule on that port makes no second one.
    assert resolver.service({"port": "8443", "protocol": "TCP"})["id"] == "svc-new"
    assert client.calls.count("create_firewall_service") == 1


def test_an_unknown_group_names_the_known_ones():
    with pytest.raises(HaloClientError, match="known groups: ProdWebDirty"):
        Resolver(Client(), check_mode=False).source({"group": "ProdWebStaging"})


def test_the_api_body_of_a_rule():
    view = rule_view("OUTPUT", "REJECT", {"type": "Group", "id": "gd", "name": "x"},
                     {"id": "svc-ssh", "name": "ssh", "port": "22", "protocol": "TCP"},
                     ["ESTABLISHED", "NEW"], True, "", "why", True)
    assert api_rule(view, 3) == {
        "chain": "OUTPUT", "action": "REJECT", "active": True, "firewall_source": {"id": "gd", "type": "Group"},
        "firewall_service": "svc-ssh", "connection_states": "NEW, ESTABLISHED", "log": True, "log_prefix": None,
        "comment": "why", "position": 3}
    assert api_rule(rule_view("INPUT", "ACCEPT", None, None, None, False, None, None, True), 1)["connection_states"] is None
