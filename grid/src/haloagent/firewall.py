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
    """A policy that cannot be rendered, or a ruleset nft rejected."""


def _set_name(source: Dict[str, Any], index: int) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", str(source.get("id") or index))
    return ("src_" + cleaned)[:60]


def _quote(text: str) -> str:
    """A string for nft's double quotes: no quote or backslash, bounded length."""
    return re.sub(r'["\\\n\r]', "", text)[:120]


def _ipv4_elements(addresses: List[str]) -> List[str]:
    """The IPv4 addresses and networks of a source (a zone may list ``198.18.10.0/24``)."""
    elements = []
    for text in addresses:
        try:
            network = ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError as exc:
            raise FirewallError("invalid source address %r" % text) from exc
        if network.version == 4:
            elements.append(str(network.network_address) if network.prefixlen == 32 else str(network))
    return sorted(set(elements), key=lambda e: ipaddress.ip_network(e))


def _match_service(service: Optional[Dict[str, Any]]) -> List[str]:
    if not service:
        return []
    protocol = str(service.get("protocol") or "TCP").upper()
    if protocol == "ICMP":
        return ["meta l4proto icmp"]
    if protocol not in _PROTOCOLS:
        raise FirewallError("unsupported protocol %r" % protocol)
    port = str(service.get("port") or "").strip().replace(":", "-")
    if not port:
        return ["meta l4proto %s" % _PROTOCOLS[protocol]]
    if not re.fullmatch(r"\d{1,5}(-\d{1,5})?", port):
        raise FirewallError("unsupported port %r" % port)
    return ["%s dport %s" % (_PROTOCOLS[protocol], port)]


def _match_states(states: Optional[str]) -> List[str]:
    names = [s.strip().upper() for s in (states or "").split(",") if s.strip()]
    if not names:
        return []
    unknown = set(names) - _STATES
    if unknown:
        raise FirewallError("unsupported connection states %s" % ", ".join(sorted(unknown)))
    return ["ct state { %s }" % ", ".join(s.lower() for s in names)]


def render(policy: Optional[Dict[str, Any]]) -> str:
    """The nft script that replaces ``table inet halo`` with ``policy`` (None: removes it)."""
    lines = ["table %s" % TABLE, "delete table %s" % TABLE]  # create-if-missing, then delete
    if policy is None:
        return "\n".join(lines) + "\n"
    sets: Dict[str, List[str]] = {}
    chains: Dict[str, List[str]] = {"input": ['iifname "lo" accept'],
                                    "output": ['oifname "lo" accept']}
    rules = [r for r in policy.get("rules") or [] if r.get("active", True)]
    for index, rule in enumerate(sorted(rules, key=lambda r: r.get("position") or 0)):
        chain = str(rule.get("chain") or "INPUT").lower()
        if chain not in chains:
            raise FirewallError("unsupported chain %r" % rule.get("chain"))
        action = _ACTIONS.get(str(rule.get("action") or "").upper())
        if action is None:
            raise FirewallError("unsupported action %r" % rule.get("action"))
        statement = []
        source = rule.get("source")
        if source:
            name = _set_name(source, index)
            sets[name] = _ipv4_elements(source.get("ips") or [])
            statement.append("ip %s @%s" % ("saddr" if chain == "input" else "daddr", name))
        statement += _match_service(rule.get("service"))
        statement += _match_states(rule.get("connection_states"))
        if rule.get("log"):
            statement.append('log prefix "%s "' % _quote(str(rule.get("log_prefix") or "halo:")))
        statement.append(action)
        if rule.get("comment"):
            statement.append('comment "%s"' % _quote(str(rule["comment"])))
        chains[chain].append(" ".join(statement))

    lines.append("table %s {" % TABLE)
    if policy.get("name"):
        lines.append("  # policy %s" % _quote(str(policy["name"])))
    for name, ips in sets.items():
        elements = " elements = { %s };" % ", ".join(ips) if ips else ""
        # interval + auto-merge: zones may hold networks, and overlapping ones
        lines.append("  set %s { type ipv4_addr; flags interval; auto-merge;%s }" % (name, elements))
    for chain, statements in chains.items():
        lines.append("  chain %s {" % chain)
        lines.append("    type filter hook %s priority filter; policy accept;" % chain)
        lines.extend("    " + s for s in statements)
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def apply(script: str, nft: Sequence[str] = ("nft",)) -> None:
    """Load ``script`` in one nft transaction. Raises FirewallError (nothing changed then).

    ``nft`` is the command to run (tests prefix it with ``ip netns exec``)."""
    if shutil.which(nft[0]) is None:
        raise FirewallError("%s not found: install nftables" % nft[0])
    done = subprocess.run(list(nft) + ["-f", "-"], input=script, universal_newlines=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if done.returncode != 0:
        raise FirewallError((done.stderr or done.stdout).strip() or "nft failed")


def sync(client: Any) -> None:
    """Fetch the server's firewall from the grid, apply it, report the outcome."""
    answer = client.firewall()
    version = answer.get("version")
    policy = answer.get("policy")
    try:
        apply(render(policy))
    except (FirewallError, ValueError, OSError, subprocess.SubprocessError) as exc:
        log.error("firewall version %s not applied: %s", version, exc)
        client.firewall_status(version, "failed", str(exc)[:2000])
        return
    log.info("firewall version %s applied (%s)", version,
             policy.get("name") if policy else "no policy: table removed")
    client.firewall_status(version, "applied", "")
