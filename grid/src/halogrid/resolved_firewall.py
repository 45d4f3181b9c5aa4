"""What a server's firewall should be: its group's Linux policy with sources resolved."""
from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .models import FirewallPolicy, FirewallRule, FirewallService, FirewallZone, Group, Server

LIVE_STATES = ("active", "missing")


def host_ip(text: Optional[str]) -> Optional[str]:
    """``text`` as one host's address (canonical form), or None when it is not one.

    Registration validates addresses, but rows stored before it did may hold anything; a
    group source is a list of *hosts*: a network, an unspecified address or a string an
    agent cannot load must never reach another server's firewall."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(str(text).strip())
    except ValueError:
        return None
    if (getattr(address, "scope_id", None) or address.is_unspecified or address.is_multicast
            or address == ipaddress.IPv4Address("255.255.255.255")):
        return None
    return str(address)


def server_ips(s: Server) -> List[str]:
    """The server's address in group sources: its primary address, else the one it
    connects from (the first of them that is a valid host address)."""
    return _first_ip(s.primary_ip_address, s.connecting_ip_address)


def _first_ip(*candidates: Optional[str]) -> List[str]:
    for candidate in candidates:
        ip = host_ip(candidate)
        if ip:
            return [ip]
    return []


def group_ips(db: Session, group_id: str) -> List[str]:
    # the two address columns only: a source group may hold thousands of servers
    rows = db.execute(select(Server.primary_ip_address, Server.connecting_ip_address)
                      .where(Server.group_id == group_id, Server.state.in_(LIVE_STATES)))
    ips = set()
    for primary, connecting in rows:
        ips.update(_first_ip(primary, connecting))
    return sorted(ips)


def _source(db: Session, r: FirewallRule) -> Optional[Dict[str, Any]]:
    if not r.source_type:
        return None
    out: Dict[str, Any] = {"type": r.source_type, "id": r.source_id, "name": None, "ips": []}
    if r.source_type == "Group":
        g = db.get(Group, r.source_id)
        if g is not None:
            out["name"] = g.name
            out["ips"] = group_ips(db, g.id)
    elif r.source_type == "FirewallZone":
        z = db.get(FirewallZone, r.source_id)
        if z is not None:
            out["name"] = z.name
            out["ips"] = sorted({p.strip() for p in (z.ip_address or "").split(",") if p.strip()})
    return out


def _service(db: Session, r: FirewallRule) -> Optional[Dict[str, Any]]:
    if r.service_id:
        svc = db.get(FirewallService, r.service_id)
        if svc is None:
            return None
        return {"port": svc.port, "protocol": svc.protocol, "name": svc.name}
    if r.service_port or r.service_protocol:
        return {"port": r.service_port, "protocol": r.service_protocol}
    return None


def linux_policy_of(db: Session, group_id: Optional[str]) -> Optional[FirewallPolicy]:
    """The Linux firewall policy the group assigns, if any."""
    g = db.get(Group, group_id) if group_id else None
    if g is None or not g.linux_firewall_policy_id:
        return None
    return db.get(FirewallPolicy, g.linux_firewall_policy_id)


def resolved_policy(db: Session, s: Server) -> Optional[Dict[str, Any]]:
    """What the server's firewall should be: its group's answer."""
    return resolved_policy_of_group(db, s.group_id)


def resolved_policy_of_group(db: Session, group_id: Optional[str]) -> Optional[Dict[str, Any]]:
    pol = linux_policy_of(db, group_id)
    if pol is None:
        return None
    rules = db.scalars(select(FirewallRule).where(FirewallRule.policy_id == pol.id)
                       .order_by(FirewallRule.position, FirewallRule.created_at)).all()
    return {
        "id": pol.id, "name": pol.name,
        "rules": [{
            "id": r.id, "chain": r.chain, "action": r.action, "active": bool(r.active),
            "position": r.position, "source": _source(db, r), "service": _service(db, r),
            "connection_states": r.connection_states, "log": bool(r.log),
            "log_prefix": r.log_prefix, "comment": r.comment or "",
        } for r in rules],
    }


def affected_groups(db: Session, groups: Iterable[str] = (), policies: Iterable[str] = (),
                    source_groups: Iterable[str] = (), zones: Iterable[str] = (),
                    services: Iterable[str] = ()) -> Set[str]:
    """The groups whose members' firewall answer a change can alter: `groups` themselves,
    the groups using one of `policies`, and those whose policy has a rule with one of
    `source_groups` / `zones` as its source or one of `services` as its service. Run in the
    change's transaction (after its flush), before deleting what it names."""
    out = {g for g in groups if g}
    policy_ids = {p for p in policies if p}
    conds = []
    for source_type, ids in (("Group", source_groups), ("FirewallZone", zones)):
        ids = sorted({i for i in ids if i})
        if ids:
            conds.append(and_(FirewallRule.source_type == source_type,
                              FirewallRule.source_id.in_(ids)))
    service_ids = sorted({i for i in services if i})
    if service_ids:
        conds.append(FirewallRule.service_id.in_(service_ids))
    if conds:
        policy_ids.update(db.scalars(select(FirewallRule.policy_id).where(or_(*conds))
                                     .distinct()))
    if policy_ids:
        out.update(db.scalars(select(Group.id).where(
            Group.linux_firewall_policy_id.in_(sorted(policy_ids)))))
    return out


def _digest(policy: Optional[Dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(policy, sort_keys=True).encode()).hexdigest()


class GroupDigests:
    """The digest of each group's resolved answer, kept between long-poll looks.

    An idle poll asks whether its server's answer changed. Resolving it reads the group's
    policy, its rules and the members of every source group, on every look of every server,
    while the answer depends on the group alone. Every change that can alter it wakes the
    group's polls (`affected_groups`, then the Notifier), so an entry serves only while its
    group has not been woken since the look that computed it began, and for at most
    `max_age` seconds: a wake-up lost between processes is healed within that."""

    def __init__(self, notifier: Any, max_age: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier, self.max_age, self.clock = notifier, max_age, clock
        self._entries: Dict[str, Tuple[int, float, str]] = {}
        self._lock = threading.Lock()

    def digest(self, db: Session, group_id: str, since: int) -> str:
        """The group's digest; `since` is `notifier.mark()` taken before the look's
        transaction began (a change committed after it has woken the group since)."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(group_id)
        if (entry is not None and now - entry[1] < self.max_age
                and not self.notifier.woken_since(group_id, entry[0])):
            return entry[2]
        value = _digest(resolved_policy_of_group(db, group_id))
        with self._lock:
            self._entries[group_id] = (since, now, value)
        return value

    def unchanged_version(self, db: Session, group_id: str, fw_version: Optional[int],
                          fw_hash: Optional[str], since: int) -> Optional[int]:
        """The server's firewall version if its answer is still the one that version names
        (no write needed); None if `current` must bump it."""
        if fw_version is not None and self.digest(db, group_id, since) == fw_hash:
            return fw_version
        return None


def stored_answer(db: Session, group_id: str, fw_version: Optional[int],
                  fw_hash: Optional[str]) -> Optional[Tuple[int, Optional[Dict[str, Any]]]]:
    """(version, policy) when the server's stored version still names its answer (reading
    only); None when `current` must give it a new version."""
    policy = resolved_policy_of_group(db, group_id)
    if fw_version is not None and _digest(policy) == fw_hash:
        return fw_version, policy
    return None


def current(db: Session, s: Server) -> Tuple[int, Optional[Dict[str, Any]]]:
    """(version, policy) for `s`; bumps the server's version when the answer changed."""
    policy = resolved_policy(db, s)
    digest = _digest(policy)
    if digest != s.fw_hash:
        s.fw_hash = digest
        s.fw_version = (s.fw_version or 0) + 1
    return s.fw_version, policy
