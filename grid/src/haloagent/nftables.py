"""The group firewall (``GET /agent/v1/firewall``) as an nftables table of its own.

Everything lives in ``table inet halo``: one named set of IPv4 addresses per source, one
chain hooked on input and one on output. A change replaces the whole table in ONE
``nft -f -`` transaction (create-if-missing, delete, re-create), so the host never runs a
half-applied policy, and a rejected ruleset leaves the previous one in force. Other tables
(the distribution's, Docker's) are never touched.

Mapping of Halo rule fields:
* ``chain`` INPUT / OUTPUT -> the ``input`` / ``output`` chain; rules in ``position`` order;
* ``source`` with ``ips`` (addresses or networks) -> ``ip saddr @set`` on input,
  ``ip daddr @set`` on output (the remote side of the connection); null -> any address.
  Only IPv4 is filtered: IPv6 entries are left out;
* ``service`` ``{"port": "22" | "8000:8080", "protocol": "TCP" | "UDP" | "ICMP"}`` -> the
  destination port; null -> any;
* ``connection_states`` ``"NEW, ESTABLISHED"`` -> ``ct state { new, established }``;
* ``log`` -> an nft ``log`` statement (``log_prefix``, default "halo:") before the verdict;
  ``action`` ACCEPT/DROP/REJECT.
Loopback traffic is always accepted first, and the chains' policy is accept: a Halo policy
that wants "deny the rest" says so with a last DROP rule.

A bad rule never costs the host its whole firewall: a rule this module cannot express (an
unknown chain, action, protocol, port or connection state) is left out, and so is a source
entry that is no address (or, in a group source, anything but one host's address, such as
``0.0.0.0/0``); should nft still refuse the ruleset, each rule is checked on its own
(``nft -c``) and the ones nft refuses are left out too. The rest is applied, and the status
sent to the grid is ``failed`` with a message naming every rule or address left out.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import shutil
import subprocess
from typing import Any, Dict, List, Optional, Sequence

log = logging.getLogger(__name__)

TABLE = "inet halo"
_ACTIONS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject"}
_STATES = {"NEW", "ESTABLISHED", "RELATED", "INVALID"}
_PROTOCOLS = {"TCP": "tcp", "UDP": "udp"}


class FirewallError(Exception):
    """A policy or rule that cannot be rendered, or a ruleset nft rejected."""


class Rule:
    """One rendered rule: its nft statement, its chain and the set it matches, if any."""

    def __init__(self, label: str, chain: str, statement: str, set_name: Optional[str]) -> None:
        self.label, self.chain, self.statement, self.set_name = label, chain, statement, set_name


class Ruleset:
    """The renderable part of a policy, and what was left out of it (``problems``)."""

    def __init__(self, policy: Optional[Dict[str, Any]]) -> None:
        self.policy = policy
        self.sets: Dict[str, List[str]] = {}
        self.rules: List[Rule] = []
        self.problems: List[str] = []

    def script(self, rules: Optional[List[Rule]] = None) -> str:
        """The nft script that replaces ``table inet halo`` with ``rules`` (default: all)."""
        lines = ["table %s" % TABLE, "delete table %s" % TABLE]  # create-if-missing, then delete
        if self.policy is None:
            return "\n".join(lines) + "\n"
        rules = self.rules if rules is None else rules
        chains: Dict[str, List[str]] = {"input": ['iifname "lo" accept'],
                                        "output": ['oifname "lo" accept']}
        for rule in rules:
            chains[rule.chain].append(rule.statement)
        used = {rule.set_name for rule in rules}
        lines.append("table %s {" % TABLE)
        if self.policy.get("name"):
            lines.append("  # policy %s" % _quote(str(self.policy["name"]), 120))
        for name, ips in self.sets.items():
            if name not in used:
                continue
            elements = " elements = { %s };" % ", ".join(ips) if ips else ""
            # interval + auto-merge: zones may hold networks, and overlapping ones
            lines.append("  set %s { type ipv4_addr; flags interval; auto-merge;%s }"
                         % (name, elements))
        for chain, statements in chains.items():
            lines.append("  chain %s {" % chain)
            lines.append("    type filter hook %s priority filter; policy accept;" % chain)
            lines.extend("    " + s for s in statements)
            lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _set_name(source: Dict[str, Any], index: int) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", str(source.get("id") or index))
    return ("src_" + cleaned)[:60]


def _quote(text: str, limit: int) -> str:
    """A string for nft's double quotes: no quote, backslash or control character, and at
    most ``limit`` bytes of UTF-8 (nft refuses a longer comment or log prefix)."""
    cleaned = re.sub(r'["\\\x00-\x1f\x7f]', "", text)
    return cleaned.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _host_address(text: str) -> Optional[str]:
    """``text`` as one host's address (IPv4 or IPv6), or None when it is not one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
        return None
    return str(address)


def _ipv4_elements(source: Dict[str, Any], label: str, problems: List[str]) -> List[str]:
    """The IPv4 set elements of a source; entries that are no address are left out (and
    listed in ``problems``). A zone may hold networks (``198.18.10.0/24``); a group source
    is its members' addresses, so there only single host addresses count."""
    hosts_only = source.get("type") == "Group"
    raw = source.get("ips") or []
    if not isinstance(raw, list):
        raw = [raw]
    elements = set()
    for entry in raw:
        text = str(entry).strip()
        if hosts_only:
            host = _host_address(text)
            network = None if host is None else ipaddress.ip_network(host)
        else:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                network = None
        if network is None:
            problems.append("%s: source %s: %r is not %s (left out)"
                            % (label, _quote(str(source.get("name") or source.get("id") or "?"), 60),
                               text[:60], "a host address" if hosts_only else "an address"))
            continue
        if network.version == 4:
            elements.add(str(network.network_address) if network.prefixlen == 32 else str(network))
    return sorted(elements, key=lambda e: ipaddress.ip_network(e))


def _match_service(service: Optional[Dict[str, Any]]) -> List[str]:
    if not service:
        return []
    if not isinstance(service, dict):
        raise FirewallError("unsupported service %r" % (service,))
    protocol = str(service.get("protocol") or "TCP").upper()
    if protocol == "ICMP":
        return ["meta l4proto icmp"]
    if protocol not in _PROTOCOLS:
        raise FirewallError("unsupported protocol %r" % protocol[:40])
    port = str(service.get("port") or "").strip().replace(":", "-")
    if not port:
        return ["meta l4proto %s" % _PROTOCOLS[protocol]]
    # A port, a range low-high, or a comma list of them (the API accepts all three).
    items = [item.strip() for item in port.split(",")]
    for item in items:
        match = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", item)
        numbers = [int(p) for p in match.groups() if p] if match else []
        if not numbers or not all(1 <= n <= 65535 for n in numbers) or numbers != sorted(numbers):
            raise FirewallError("unsupported port %r" % port[:40])
    ports = items[0] if len(items) == 1 else "{ %s }" % ", ".join(items)
    return ["%s dport %s" % (_PROTOCOLS[protocol], ports)]


def _match_states(states: Optional[str]) -> List[str]:
    names = [s.strip().upper() for s in str(states or "").split(",") if s.strip()]
    if not names:
        return []
    unknown = set(names) - _STATES
    if unknown:
        raise FirewallError("unsupported connection states %s"
                            % ", ".join(sorted(n[:40] for n in unknown)))
    return ["ct state { %s }" % ", ".join(s.lower() for s in names)]


def _position(rule: Any) -> float:
    try:
        return float(rule.get("position") or 0)
    except (TypeError, ValueError, AttributeError):
        return 0.0


def build(policy: Optional[Dict[str, Any]]) -> Ruleset:
    """The rules of ``policy`` that can be expressed, and the problems of the others.

    Raises FirewallError only when the policy as a whole is unusable (not an object)."""
    if policy is not None and not isinstance(policy, dict):
        raise FirewallError("the firewall policy is not an object")
    ruleset = Ruleset(policy)
    if policy is None:
        return ruleset
    raw_rules = policy.get("rules") or []
    if not isinstance(raw_rules, list):
        raise FirewallError("the firewall policy's rules are not a list")
    active = [r for r in raw_rules if not isinstance(r, dict) or r.get("active", True)]
    for index, rule in enumerate(sorted(active, key=_position)):
        if not isinstance(rule, dict):
            ruleset.problems.append("rule %d: not an object (left out)" % (index + 1))
            continue
        label = "rule %s" % _quote(str(rule.get("position") or index + 1), 20)
        if rule.get("id"):
            label += " [%s]" % _quote(str(rule["id"]), 40)
        try:
            ruleset.rules.append(_render_rule(rule, index, label, ruleset))
        except FirewallError as exc:
            ruleset.problems.append("%s: %s (rule left out)" % (label, exc))
    return ruleset


def _render_rule(rule: Dict[str, Any], index: int, label: str, ruleset: Ruleset) -> Rule:
    chain = str(rule.get("chain") or "INPUT").lower()
    if chain not in ("input", "output"):
        raise FirewallError("unsupported chain %r" % str(rule.get("chain"))[:40])
    action = _ACTIONS.get(str(rule.get("action") or "").upper())
    if action is None:
        raise FirewallError("unsupported action %r" % str(rule.get("action"))[:40])
    statement = []
    set_name = None
    source = rule.get("source")
    if source:
        if not isinstance(source, dict):
            raise FirewallError("unsupported source %r" % str(source)[:60])
        set_name = _set_name(source, index)
        statement.append("ip %s @%s" % ("saddr" if chain == "input" else "daddr", set_name))
    statement += _match_service(rule.get("service"))
    statement += _match_states(rule.get("connection_states"))
    if source:  # only now: a rule left out for another reason adds no address problems
        ruleset.sets[set_name] = _ipv4_elements(source, label, ruleset.problems)
    if rule.get("log"):
        # nft's limit is 127 bytes, and the prefix ends with a space
        statement.append('log prefix "%s "' % _quote(str(rule.get("log_prefix") or "halo:"), 126))
    statement.append(action)
    if rule.get("comment"):
        statement.append('comment "%s"' % _quote(str(rule["comment"]), 128))
    return Rule(label, chain, " ".join(statement), set_name)


def render(policy: Optional[Dict[str, Any]]) -> str:
    """The nft script that replaces ``table inet halo`` with the expressible part of
    ``policy`` (None: removes the table)."""
    return build(policy).script()


def _run_nft(script: str, nft: Sequence[str], options: Sequence[str]) -> None:
    if shutil.which(nft[0]) is None:
        raise FirewallError("%s not found: install nftables" % nft[0])
    done = subprocess.run(list(nft) + list(options) + ["-f", "-"], input=script,
                          universal_newlines=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    if done.returncode != 0:
        raise FirewallError((done.stderr or done.stdout).strip() or "nft failed")


def apply(script: str, nft: Sequence[str] = ("nft",)) -> None:
    """Load ``script`` in one nft transaction. Raises FirewallError (nothing changed then).

    ``nft`` is the command to run (tests prefix it with ``ip netns exec``)."""
    _run_nft(script, nft, ())


def check(script: str, nft: Sequence[str] = ("nft",)) -> None:
    """Have nft check ``script`` without applying it (``nft -c``). Raises FirewallError."""
    _run_nft(script, nft, ("-c",))


def _first_error_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line]
    return (errors or lines or ["nft refused it"])[0][:300]


def apply_ruleset(ruleset: Ruleset, nft: Sequence[str] = ("nft",)) -> List[str]:
    """Apply ``ruleset``; the problems of what was left out (empty: all of it applied).

    Should nft refuse the whole, every rule is checked alone and the ones nft refuses are
    left out, so one rule nft cannot load never leaves the host without its table. Raises
    FirewallError when nothing could be applied (the previous ruleset, if any, stays)."""
    try:
        apply(ruleset.script(), nft)
        return list(ruleset.problems)
    except FirewallError as exc:
        if not ruleset.rules:
            raise
        whole_error = exc
    refused: List[str] = []
    kept = []
    for rule in ruleset.rules:
        try:
            check(ruleset.script([rule]), nft)
        except FirewallError as exc:
            refused.append("%s: nft refused it: %s (rule left out)"
                           % (rule.label, _first_error_line(exc)))
            continue
        kept.append(rule)
    if not refused:
        raise whole_error  # only the combination fails: nothing to leave out
    apply(ruleset.script(kept), nft)
    return list(ruleset.problems) + refused


def sync(client: Any, nft: Sequence[str] = ("nft",)) -> None:
    """Fetch the server's firewall from the grid, apply what can be, report the outcome."""
    answer = client.firewall()
    version = answer.get("version")
    policy = answer.get("policy")
    try:
        problems = apply_ruleset(build(policy), nft)
    except (FirewallError, ValueError, OSError, subprocess.SubprocessError) as exc:
        log.error("firewall version %s not applied: %s", version, exc)
        client.firewall_status(version, "failed", str(exc)[:2000])
        return
    if problems:
        for problem in problems:
            log.error("firewall version %s: %s", version, problem)
        client.firewall_status(version, "failed",
                               ("partly applied: " + "; ".join(problems))[:2000])
        return
    log.info("firewall version %s applied (%s)", version,
             policy.get("name") if policy else "no policy: table removed")
    client.firewall_status(version, "applied", "")
