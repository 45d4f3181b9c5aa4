"""The nftables rendering of a group firewall, and applying it in a throwaway namespace."""
import os
import shutil
import subprocess
import uuid

import pytest

from haloagent import firewall

DIRTY = {"type": "Group", "id": "grp-dirty", "name": "ProdWebDirty", "ips": ["198.18.0.11", "198.18.0.12"]}
POLICY = {"id": "fw-1", "name": "Prod web", "rules": [
    {"chain": "INPUT", "action": "ACCEPT", "active": True, "position": 3, "source": None,
     "service": {"port": "22", "protocol": "TCP"}, "connection_states": None, "log": False, "comment": ""},
    {"chain": "INPUT", "action": "DROP", "active": True, "position": 1, "source": DIRTY,
     "service": None, "connection_states": "NEW, ESTABLISHED", "log": True, "comment": 'keep "dirty" out'},
    {"chain": "INPUT", "action": "DROP", "active": False, "position": 2, "source": None,
     "service": None, "connection_states": None, "log": False, "comment": "inactive"},
    {"chain": "OUTPUT", "action": "REJECT", "active": True, "position": 4, "source": DIRTY,
     "service": {"port": "8000:8080", "protocol": "UDP"}, "connection_states": None, "log": False},
]}


def chain_lines(script, chain):
    lines = script.splitlines()
    start = lines.index("  chain %s {" % chain)
    end = lines.index("  }", start)
    return [line.strip() for line in lines[start + 2:end]]


def test_render_replaces_only_its_own_table_in_one_script():
    script = firewall.render(POLICY)
    assert script.startswith("table inet halo\ndelete table inet halo\ntable inet halo {\n")
    assert ("set src_grp_dirty { type ipv4_addr; flags interval; auto-merge; "
            "elements = { 198.18.0.11, 198.18.0.12 }; }") in script
    assert chain_lines(script, "input") == [
        'iifname "lo" accept',
        'ip saddr @src_grp_dirty ct state { new, established } log prefix "halo: " drop comment "keep dirty out"',
        "tcp dport 22 accept",
    ]
    assert chain_lines(script, "output") == [
        'oifname "lo" accept', "ip daddr @src_grp_dirty udp dport 8000-8080 reject"]
    assert "inactive" not in script


def test_render_empty_group_and_no_policy():
    empty = dict(DIRTY, ips=[])
    script = firewall.render({"rules": [{"chain": "INPUT", "action": "DROP", "source": empty}]})
    assert "set src_grp_dirty { type ipv4_addr; flags interval; auto-merge; }" in script
    zone = {"type": "FirewallZone", "id": "z1", "ips": ["198.19.0.0/16", "198.19.2.3", "fd00::1", "198.18.200.9/32"]}
    script = firewall.render({"rules": [{"chain": "INPUT", "action": "ACCEPT", "source": zone}]})
    assert "elements = { 198.18.200.9, 198.19.0.0/16, 198.19.2.3 };" in script
    assert firewall.render(None) == "table inet halo\ndelete table inet halo\n"


@pytest.mark.parametrize("rule,message", [
    ({"chain": "FORWARD", "action": "DROP"}, "chain"),
    ({"chain": "INPUT", "action": "LOG"}, "action"),
    ({"chain": "INPUT", "action": "DROP", "service": {"port": "22; flush ruleset", "protocol": "TCP"}}, "port"),
    ({"chain": "INPUT", "action": "DROP", "service": {"port": "1", "protocol": "SCTP"}}, "protocol"),
    ({"chain": "INPUT", "action": "DROP", "connection_states": "NEW, BOGUS"}, "BOGUS"),
    ({"chain": "INPUT", "action": "DROP", "source": {"id": "z", "ips": ["198.18.0.300"]}}, "address"),
])
def test_render_refuses_what_it_cannot_express(rule, message):
    with pytest.raises(firewall.FirewallError, match=message):
        firewall.render({"rules": [rule]})


def test_apply_reports_nft_errors(tmp_path):
    fake_nft = tmp_path / "nft"
    fake_nft.write_text("#!/bin/sh\necho 'Error: Could not process rule' >&2\nexit 1\n")
    fake_nft.chmod(0o755)
    with pytest.raises(firewall.FirewallError, match="Could not process rule"):
        firewall.apply("table inet halo\n", nft=[str(fake_nft)])


@pytest.fixture
def netns():
    """A network namespace of our own, so the machine's ruleset is never touched."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"):
        pytest.skip("needs root, iproute2 and nftables")
    name = "halo-fwtest-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def nft_in(ns, *args, script=None):
    return subprocess.run(["ip", "netns", "exec", ns, "nft", *args], input=script,
                          universal_newlines=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def apply_in(ns, script):
    firewall.apply(script, nft=["ip", "netns", "exec", ns, "nft"])


@pytest.mark.lab
def test_apply_in_a_namespace_is_atomic_and_leaves_other_tables(netns):
    other = "table inet keepme {\n chain c {\n type filter hook input priority 10;\n }\n}\n"
    assert nft_in(netns, "-f", "-", script=other).returncode == 0
    apply_in(netns, firewall.render(POLICY))
    changed = dict(DIRTY, ips=["198.18.0.13"])
    zone = {"type": "FirewallZone", "id": "z1", "ips": ["198.19.0.0/16", "198.19.2.3"]}  # overlapping
    second = {"rules": [{"chain": "INPUT", "action": "DROP", "source": changed},
                        {"chain": "INPUT", "action": "ACCEPT", "source": zone}]}
    apply_in(netns, firewall.render(second))  # replaces, does not add
    listing = nft_in(netns, "list", "ruleset").stdout
    assert "198.18.0.13" in listing and "198.18.0.11" not in listing and "dport 22" not in listing
    assert "table inet keepme" in listing and "198.19.0.0/16" in listing

    broken = firewall.render(second).replace("198.18.0.13", "198.18.0.999")
    with pytest.raises(firewall.FirewallError):
        apply_in(netns, broken)
    assert nft_in(netns, "list", "ruleset").stdout == listing  # the previous state stands

    apply_in(netns, firewall.render(None))
    assert "table inet halo" not in nft_in(netns, "list", "ruleset").stdout
