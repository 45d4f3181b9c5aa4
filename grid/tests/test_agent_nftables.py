"""The nftables rendering of a group firewall, and applying it in a throwaway namespace."""
import os
import shutil
import subprocess
import uuid

import pytest

from haloagent import nftables

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
    script = nftables.render(POLICY)
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
    script = nftables.render({"rules": [{"chain": "INPUT", "action": "DROP", "source": empty}]})
    assert "set src_grp_dirty { type ipv4_addr; flags interval; auto-merge; }" in script
    zone = {"type": "FirewallZone", "id": "z1", "ips": ["198.19.0.0/16", "198.19.2.3", "fd00::1", "198.18.200.9/32"]}
    script = nftables.render({"rules": [{"chain": "INPUT", "action": "ACCEPT", "source": zone}]})
    assert "elements = { 198.18.200.9, 198.19.0.0/16, 198.19.2.3 };" in script
    assert nftables.render(None) == "table inet halo\ndelete table inet halo\n"


GOOD_RULE = {"id": "r-ssh", "chain": "INPUT", "action": "ACCEPT", "position": 1,
             "service": {"port": "22", "protocol": "TCP"}}


@pytest.mark.parametrize("rule,message", [
    ({"chain": "FORWARD", "action": "DROP"}, "chain"),
    ({"chain": "INPUT", "action": "LOG"}, "action"),
    ({"chain": "INPUT", "action": "DROP", "service": {"port": "22; flush ruleset", "protocol": "TCP"}}, "port"),
    ({"chain": "INPUT", "action": "DROP", "service": {"port": "abc; drop", "protocol": "TCP"}}, "port"),
    ({"chain": "INPUT", "action": "DROP", "service": {"port": "1-2-3", "protocol": "TCP"}}, "port"),
    ({"chain": "INPUT", "action": "DROP", "service": {"port": "70000", "protocol": "TCP"}}, "port"),
    ({"chain": "INPUT", "action": "DROP", "service": {"port": "22,90-80", "protocol": "TCP"}}, "port"),
    ({"chain": "INPUT", "action": "DROP", "service": {"port": "22,,80", "protocol": "TCP"}}, "port"),
    ({"chain": "INPUT", "action": "DROP", "service": {"port": "1", "protocol": "SCTP"}}, "protocol"),
    ({"chain": "INPUT", "action": "DROP", "service": "ssh"}, "service"),
    ({"chain": "INPUT", "action": "DROP", "connection_states": "NEW, BOGUS"}, "BOGUS"),
    ({"chain": "INPUT", "action": "DROP", "connection_states": "FOO"}, "FOO"),
    ({"chain": "INPUT", "action": "DROP", "source": "everyone"}, "source"),
])
def test_build_leaves_out_only_the_rule_it_cannot_express(rule, message):
    ruleset = nftables.build({"rules": [GOOD_RULE, dict(rule, id="r-bad", position=2)]})
    assert [r.label for r in ruleset.rules] == ["rule 1 [r-ssh]"]
    assert chain_lines(ruleset.script(), "input") == ['iifname "lo" accept', "tcp dport 22 accept"]
    assert len(ruleset.problems) == 1 and ruleset.problems[0].startswith("rule 2 [r-bad]: ")
    assert message in ruleset.problems[0] and "left out" in ruleset.problems[0]


def test_a_group_source_holds_only_host_addresses():
    """A member registered with a bad address must neither break the ruleset nor, as
    0.0.0.0/0, turn a DROP of one group into a DROP of everybody."""
    group = {"type": "Group", "id": "g1", "name": "Dirty",
             "ips": ["198.18.0.11", "not-an-ip", "0.0.0.0/0", "0.0.0.0", "198.18.0.0/24", "fd00::1"]}
    zone = {"type": "FirewallZone", "id": "z1", "name": "Office", "ips": ["198.19.0.0/16", "bogus"]}
    ruleset = nftables.build({"rules": [
        {"id": "r1", "chain": "INPUT", "action": "DROP", "position": 1, "source": group},
        {"id": "r2", "chain": "INPUT", "action": "ACCEPT", "position": 2, "source": zone}]})
    script = ruleset.script()
    assert "set src_g1 { type ipv4_addr; flags interval; auto-merge; elements = { 198.18.0.11 }; }" in script
    assert "elements = { 198.19.0.0/16 };" in script  # a zone may name networks
    assert len(ruleset.rules) == 2
    assert ruleset.problems == [
        "rule 1 [r1]: source Dirty: 'not-an-ip' is not a host address (left out)",
        "rule 1 [r1]: source Dirty: '0.0.0.0/0' is not a host address (left out)",
        "rule 1 [r1]: source Dirty: '0.0.0.0' is not a host address (left out)",
        "rule 1 [r1]: source Dirty: '198.18.0.0/24' is not a host address (left out)",
        "rule 2 [r2]: source Office: 'bogus' is not an address (left out)"]


def test_comments_and_log_prefixes_fit_nft_limits_in_bytes():
    rule = dict(GOOD_RULE, comment="é" * 120 + '"', log=True, log_prefix="ü" * 100)
    statement = nftables.build({"rules": [rule]}).rules[0].statement
    comment = statement.split('comment "')[1][:-1]
    prefix = statement.split('log prefix "')[1].split('"')[0]
    assert len(comment.encode()) <= 128 and comment == "é" * 64
    assert len(prefix.encode()) <= 127 and prefix.endswith(" ")


def test_a_rule_nft_refuses_is_left_out_and_the_rest_applied(tmp_path):
    """nft refusing the whole ruleset for one rule: every rule is checked alone (nft -c)
    and the rest is applied. A fake nft refuses any script holding the word 'frobnicate'."""
    loaded = tmp_path / "loaded"
    fake_nft = tmp_path / "nft"
    fake_nft.write_text("#!/bin/sh\nscript=$(cat)\n"
                        "case \"$script\" in *frobnicate*) echo 'Error: syntax error, frobnicate' >&2; exit 1;; esac\n"
                        "[ \"$1\" = -c ] || printf '%s' \"$script\" > " + str(loaded) + "\n")
    fake_nft.chmod(0o755)
    ruleset = nftables.build({"rules": [GOOD_RULE, dict(GOOD_RULE, id="r-odd", position=2)]})
    ruleset.rules[1].statement = "tcp dport 23 frobnicate"
    problems = nftables.apply_ruleset(ruleset, nft=[str(fake_nft)])
    assert problems == ["rule 2 [r-odd]: nft refused it: Error: syntax error, frobnicate (rule left out)"]
    assert "tcp dport 22 accept" in loaded.read_text() and "frobnicate" not in loaded.read_text()

    ruleset.rules[0].statement = "frobnicate"  # all refused: the table holds the valid part, none
    assert len(nftables.apply_ruleset(ruleset, nft=[str(fake_nft)])) == 2
    assert chain_lines(loaded.read_text(), "input") == ['iifname "lo" accept']
    with pytest.raises(nftables.FirewallError, match="not found"):
        nftables.apply_ruleset(ruleset, nft=[str(tmp_path / "missing-nft")])


def test_apply_reports_nft_errors(tmp_path):
    fake_nft = tmp_path / "nft"
    fake_nft.write_text("#!/bin/sh\necho 'Error: Could not process rule' >&2\nexit 1\n")
    fake_nft.chmod(0o755)
    with pytest.raises(nftables.FirewallError, match="Could not process rule"):
        nftables.apply("table inet halo\n", nft=[str(fake_nft)])


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
    nftables.apply(script, nft=["ip", "netns", "exec", ns, "nft"])


@pytest.mark.lab
def test_apply_in_a_namespace_is_atomic_and_leaves_other_tables(netns):
    other = "table inet keepme {\n chain c {\n type filter hook input priority 10;\n }\n}\n"
    assert nft_in(netns, "-f", "-", script=other).returncode == 0
    apply_in(netns, nftables.render(POLICY))
    changed = dict(DIRTY, ips=["198.18.0.13"])
    zone = {"type": "FirewallZone", "id": "z1", "ips": ["198.19.0.0/16", "198.19.2.3"]}  # overlapping
    second = {"rules": [{"chain": "INPUT", "action": "DROP", "source": changed},
                        {"chain": "INPUT", "action": "ACCEPT", "source": zone}]}
    apply_in(netns, nftables.render(second))  # replaces, does not add
    listing = nft_in(netns, "list", "ruleset").stdout
    assert "198.18.0.13" in listing and "198.18.0.11" not in listing and "dport 22" not in listing
    assert "table inet keepme" in listing and "198.19.0.0/16" in listing

    broken = nftables.render(second).replace("198.18.0.13", "198.18.0.999")
    with pytest.raises(nftables.FirewallError):
        apply_in(netns, broken)
    assert nft_in(netns, "list", "ruleset").stdout == listing  # the previous state stands

    apply_in(netns, nftables.render(None))
    assert "table inet halo" not in nft_in(netns, "list", "ruleset").stdout


class FakeClient:
    def __init__(self, version, policy):
        self.answer = {"version": version, "policy": policy}
        self.statuses = []

    def firewall(self):
        return self.answer

    def firewall_status(self, version, status, message=""):
        self.statuses.append((version, status, message))


@pytest.mark.lab
def test_first_apply_with_bad_rules_and_addresses_keeps_the_valid_part(netns):
    """The host gets its Halo table with every valid rule; the grid hears which rule and
    which address were left out."""
    group = {"type": "Group", "id": "g1", "name": "Dirty", "ips": ["198.18.0.11", "not-an-ip", "0.0.0.0/0"]}
    policy = {"id": "fw-2", "name": "bad parts", "rules": [
        {"id": "r1", "chain": "INPUT", "action": "DROP", "position": 1, "source": group},
        {"id": "r2", "chain": "INPUT", "action": "DROP", "position": 2,
         "service": {"port": "1-2-3", "protocol": "TCP"}},
        {"id": "r3", "chain": "INPUT", "action": "ACCEPT", "position": 3, "connection_states": "FOO"},
        dict(GOOD_RULE, position=4, comment="ü" * 120)]}
    client = FakeClient(5, policy)
    nftables.sync(client, nft=["ip", "netns", "exec", netns, "nft"])
    listing = nft_in(netns, "list", "table", "inet", "halo").stdout
    assert "198.18.0.11" in listing and "0.0.0.0" not in listing and "not-an-ip" not in listing
    assert "tcp dport 22 accept" in listing and "ct state" not in listing
    [(version, status, message)] = client.statuses
    assert (version, status) == (5, "failed") and message.startswith("partly applied: ")
    for part in ("'not-an-ip' is not a host address", "'0.0.0.0/0' is not a host address",
                 "rule 2 [r2]: unsupported port '1-2-3'", "rule 3 [r3]: unsupported connection states FOO"):
        assert part in message

    # nft itself refusing one rule: the rest is still applied in the namespace
    ruleset = nftables.build({"rules": [GOOD_RULE, dict(GOOD_RULE, id="r-odd", position=2)]})
    ruleset.rules[1].statement = "tcp dport 23 frobnicate"
    problems = nftables.apply_ruleset(ruleset, nft=["ip", "netns", "exec", netns, "nft"])
    assert len(problems) == 1 and problems[0].startswith("rule 2 [r-odd]: nft refused it: ")
    listing = nft_in(netns, "list", "table", "inet", "halo").stdout
    assert "tcp dport 22 accept" in listing and "dport 23" not in listing


@pytest.mark.lab
def test_a_comma_list_of_ports_applies_as_one_set(netns):
    """The API accepts a port, a range or a comma list of them; nft must take all three."""
    policy = {"rules": [{"chain": "INPUT", "action": "ACCEPT",
                         "service": {"port": "22, 8000:8080,443", "protocol": "TCP"}}]}
    apply_in(netns, nftables.render(policy))
    listing = nft_in(netns, "list", "ruleset").stdout
    assert "tcp dport { 22, 443, 8000-8080 } accept" in listing, listing
