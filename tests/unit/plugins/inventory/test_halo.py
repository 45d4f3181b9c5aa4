"""The cloudpassage.halo.halo inventory plugin, loaded as Ansible loads it, against a
scripted API: hosts, groups, host variables, filters, constructed features, cache."""

import re

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

from ansible_collections.cloudpassage.halo.plugins.inventory import halo

GROUPS = {"groups": [{"id": "gd", "name": "ProdWebDirty"}, {"id": "gc", "name": "Prod Web-Clean"},
                     {"id": "ga", "name": "CriticalApplication"}]}
WEB1 = {"id": "s1", "hostname": "web1", "server_label": "web-one", "group_id": "gd", "group_name": "ProdWebDirty",
        "primary_ip_address": "198.18.0.11", "connecting_ip_address": "198.19.0.11", "state": "active",
        "platform": "debian", "daemon_version": "0.1.0"}
WEB2 = {"id": "s2", "hostname": "web2", "server_label": "", "group_id": "gc", "group_name": "Prod Web-Clean",
        "primary_ip_address": "198.18.0.12", "connecting_ip_address": "198.19.0.12", "state": "active",
        "platform": "ubuntu", "daemon_version": "0.1.0"}


@pytest.fixture
def parse(fake_halo, tmp_path, monkeypatch):
    """Parse an inventory source with these options; returns the InventoryData."""
    monkeypatch.setenv("HALO_API_HOST", fake_halo.url)
    monkeypatch.setenv("HALO_API_KEY", "key-id")
    monkeypatch.setenv("HALO_API_SECRET_KEY", "s3cret")
    monkeypatch.setenv("HALO_API_MAX_RETRIES", "0")

    def run(name="lab.halo.yml", **options):
        source = tmp_path / name
        source.write_text(yaml.safe_dump(dict({"plugin": "cloudpassage.halo.halo"}, **options)))
        plugin = inventory_loader.get("cloudpassage.halo.halo")
        assert plugin.verify_file(str(source))
        inventory = InventoryData()
        plugin.parse(inventory, DataLoader(), str(source), cache=True)
        if options.get("cache"):
            plugin.update_cache_if_changed()  # what the inventory manager does after a parse
        return inventory

    return run


def members(inventory, group):
    return sorted(host.name for host in inventory.groups[group].get_hosts())


def test_hosts_groups_and_host_variables(fake_halo, parse):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1, WEB2]}))
    inventory = parse()
    assert sorted(inventory.hosts) == ["web1", "web2"]
    assert members(inventory, "ProdWebDirty") == ["web1"]
    assert members(inventory, "Prod_Web_Clean") == ["web2"]
    assert members(inventory, "CriticalApplication") == []
    web1 = inventory.get_host("web1").vars
    assert web1["ansible_host"] == "198.18.0.11"
    assert (web1["halo_id"], web1["halo_group_id"], web1["halo_group_name"]) == ("s1", "gd", "ProdWebDirty")
    assert (web1["halo_platform"], web1["halo_daemon_version"], web1["halo_state"]) == ("debian", "0.1.0", "active")
    assert web1["halo_server_label"] == "web-one"
    assert fake_halo.calls("GET", "/v1/servers")[0]["query"]["state"] == "active"


def test_host_names_addresses_and_prefix_follow_the_options(fake_halo, parse):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1, WEB2]}))
    inventory = parse(hostname_source="server_label", ansible_host_source="connecting_ip_address",
                      group_prefix="halo_")
    # web2 has no label: its host name is used instead.
    assert sorted(inventory.hosts) == ["web-one", "web2"]
    assert inventory.get_host("web-one").vars["ansible_host"] == "198.19.0.11"
    assert members(inventory, "halo_ProdWebDirty") == ["web-one"]


def test_group_state_and_platform_filters(fake_halo, parse):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    inventory = parse(halo_groups=["ProdWebDirty"], server_states=["active", "missing"], platforms=["ubuntu"])
    query = fake_halo.calls("GET", "/v1/servers")[0]["query"]
    assert (query["group_id"], query["state"]) == ("gd", "active,missing")
    assert sorted(inventory.hosts) == []  # web1 is debian
    assert sorted(inventory.groups) == ["ProdWebDirty", "all", "ungrouped"]


def test_an_unknown_group_filter_fails_with_the_known_names(fake_halo, parse):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    with pytest.raises(AnsibleParserError, match="no Halo server group named or with id 'ProdWebDirt'"):
        parse(halo_groups=["ProdWebDirt"])


def test_compose_groups_and_keyed_groups(fake_halo, parse):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1, WEB2]}))
    inventory = parse(compose={"ansible_user": "'admin'"},
                      groups={"awaiting_admission": "halo_group_name == 'ProdWebDirty'"},
                      keyed_groups=[{"key": "halo_platform", "prefix": "platform"}])
    assert inventory.get_host("web2").vars["ansible_user"] == "admin"
    assert members(inventory, "awaiting_admission") == ["web1"]
    assert members(inventory, "platform_ubuntu") == ["web2"]


def test_two_servers_of_one_name_both_stay(fake_halo, parse):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [dict(WEB1, id="s9", state="missing"), WEB1]}))
    inventory = parse(server_states=["active", "missing"])
    assert sorted(inventory.hosts) == ["web1", "web1_s9"]
    assert inventory.get_host("web1").vars["halo_state"] == "active"


def test_the_cache_answers_the_second_parse(fake_halo, parse, tmp_path):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    options = dict(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"))
    first = parse(**options)
    second = parse(**options)
    assert len(fake_halo.calls("GET", "/v1/servers")) == 1
    assert sorted(second.hosts) == sorted(first.hosts) == ["web1"]


def test_only_halo_yml_sources_are_taken(tmp_path):
    plugin = inventory_loader.get("cloudpassage.halo.halo")
    for name, taken in (("lab.halo.yml", True), ("halo.yaml", True), ("lab.yml", False), ("halo.json", False)):
        source = tmp_path / name
        source.write_text("plugin: cloudpassage.halo.halo\n")
        assert plugin.verify_file(str(source)) is taken, name


def test_the_documented_host_variables_are_the_ones_set(fake_halo, parse):
    documented = re.findall(r"C\((halo_\w+)\)", " ".join(yaml.safe_load(halo.DOCUMENTATION)["description"]))
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1]}))
    hostvars = parse().get_host("web1").vars
    assert sorted(documented) == sorted(name for name in hostvars if name.startswith("halo_"))
