"""DB rows -> Halo API objects."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .common import iso
from .models import (Command, Event, Finding, FirewallPolicy, FirewallRule, FirewallService,
                     FirewallZone, Group, Policy, Scan, Server)


class Lookup:
    """Groups and firewall policies by id, each read at most once (the session's identity
    map holds objects only while they are referenced: a page of servers would read its
    groups again for every server). `preload` reads a page's groups with their ancestors
    and firewall policies in a few queries."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.groups: Dict[str, Optional[Group]] = {}
        self.policies: Dict[str, Optional[FirewallPolicy]] = {}
        self.paths: Dict[str, str] = {}

    def group(self, gid: Optional[str]) -> Optional[Group]:
        if not gid:
            return None
        if gid not in self.groups:
            self.groups[gid] = self.db.get(Group, gid)
        return self.groups[gid]

    def policy(self, pid: Optional[str]) -> Optional[FirewallPolicy]:
        if not pid:
            return None
        if pid not in self.policies:
            self.policies[pid] = self.db.get(FirewallPolicy, pid)
        return self.policies[pid]

    def preload(self, group_ids: Iterable[Optional[str]]) -> "Lookup":
        wanted = {g for g in group_ids if g and g not in self.groups}
        while wanted:  # one query per level of the group tree
            found = {g.id: g for g in self.db.scalars(select(Group).where(
                Group.id.in_(sorted(wanted))))}
            for gid in wanted:
                self.groups[gid] = found.get(gid)
            wanted = {g.parent_id for g in found.values()
                      if g.parent_id and g.parent_id not in self.groups}
        pids = {g.linux_firewall_policy_id for g in self.groups.values()
                if g is not None and g.linux_firewall_policy_id} - set(self.policies)
        if pids:
            found_p = {p.id: p for p in self.db.scalars(select(FirewallPolicy).where(
                FirewallPolicy.id.in_(sorted(pids))))}
            for pid in pids:
                self.policies[pid] = found_p.get(pid)
        return self


def group_path(db: Session, group: Optional[Group],
               lookup: Optional[Lookup] = None) -> Optional[str]:
    if group is None:
        return None
    lookup = lookup or Lookup(db)
    path = lookup.paths.get(group.id)
    if path is None:
        names: List[str] = []
        seen = set()
        g: Optional[Group] = group
        while g is not None and g.id not in seen:
            seen.add(g.id)
            names.append(g.name)
            g = lookup.group(g.parent_id)
        path = lookup.paths[group.id] = "/".join(reversed(names))
    return path


def group_dict(db: Session, g: Group, base: str,
               lookup: Optional[Lookup] = None) -> Dict[str, Any]:
    counts = {"active": 0, "missing": 0, "deactivated": 0}
    for state, n in db.execute(select(Server.state, func.count()).where(Server.group_id == g.id)
                               .group_by(Server.state)):
        if state in counts:
            counts[state] = n
    has_children = db.scalar(select(func.count()).select_from(Group)
                             .where(Group.parent_id == g.id)) or 0
    return {
        "id": g.id, "url": "%s/v1/groups/%s" % (base, g.id), "name": g.name,
        "description": g.description, "parent_id": g.parent_id, "tag": g.tag,
        "policy_ids": list(g.policy_ids or []),
        "linux_firewall_policy_id": g.linux_firewall_policy_id,
        "windows_firewall_policy_id": g.windows_firewall_policy_id,
        "fim_policy_ids": list(g.fim_policy_ids or []),
        "server_counts": counts, "has_children": bool(has_children),
        "group_path": group_path(db, g, lookup), "is_default": bool(g.is_default),
        "scan_interval": g.scan_interval,
        "created_at": iso(g.created_at), "updated_at": iso(g.updated_at),
    }


def firewall_summary(db: Session, s: Server,
                     lookup: Optional[Lookup] = None) -> Optional[Dict[str, Any]]:
    lookup = lookup or Lookup(db)
    g = lookup.group(s.group_id)
    pol = lookup.policy(g.linux_firewall_policy_id) if g is not None else None
    if pol is None:
        return None
    if s.fw_status and s.fw_status_version == s.fw_version:
        status = s.fw_status
    else:
        status = "pending"
    return {"id": pol.id, "name": pol.name, "status": status,
            "url": None, "message": s.fw_status_message if status == "failed" else None}


def server_dicts(db: Session, rows: Sequence[Server], base: str) -> List[Dict[str, Any]]:
    """A page of servers: their groups and firewall policies are read once for the page."""
    lookup = Lookup(db).preload(s.group_id for s in rows)
    return [server_dict(db, s, base, lookup) for s in rows]


def server_dict(db: Session, s: Server, base: str,
                lookup: Optional[Lookup] = None) -> Dict[str, Any]:
    lookup = lookup or Lookup(db)
    g = lookup.group(s.group_id)
    fw = firewall_summary(db, s, lookup)
    if fw is not None:
        fw["url"] = "%s/v1/firewall_policies/%s" % (base, fw["id"])
    return {
        "id": s.id, "url": "%s/v1/servers/%s" % (base, s.id),
        "hostname": s.hostname, "server_label": s.server_label,
        "reported_fqdn": s.reported_fqdn,
        "connecting_ip_address": s.connecting_ip_address,
        "primary_ip_address": s.primary_ip_address,
        "interfaces": list(s.interfaces or []),
        "group_id": s.group_id, "group_name": g.name if g else None,
        "group_path": group_path(db, g, lookup),
        "state": s.state, "platform": s.platform, "platform_version": s.platform_version,
        "os_version": s.os_version, "kernel_name": s.kernel_name,
        "daemon_version": s.daemon_version,
        "last_state_change": iso(s.last_state_change),
        "last_seen_at": iso(s.last_seen_at),
        "firewall_policy": fw,
        "created_at": iso(s.created_at),
    }


def command_dict(c: Command, base: str) -> Dict[str, Any]:
    return {
        "id": c.id, "url": "%s/v1/servers/%s/commands/%s" % (base, c.server_id, c.id),
        "name": c.name, "status": c.status, "server_id": c.server_id,
        "scan_id": c.scan_id,
        "created_at": iso(c.created_at), "updated_at": iso(c.updated_at), "result": c.result,
    }


def finding_dict(f: Finding, base: str) -> Dict[str, Any]:
    return {
        "id": f.id, "url": "%s/v1/scans/%s/findings/%s" % (base, f.scan_id, f.id),
        "rule_name": f.rule_name, "policy_id": f.policy_id, "critical": bool(f.critical),
        "status": f.status, "details": f.details or [],
    }


def scan_dict(db: Session, sc: Scan, base: str, with_findings: bool = True) -> Dict[str, Any]:
    out = {
        "id": sc.id, "url": "%s/v1/scans/%s" % (base, sc.id), "module": sc.module,
        "status": sc.status, "server_id": sc.server_id,
        "server_hostname": sc.server_hostname,
        "server_url": "%s/v1/servers/%s" % (base, sc.server_id),
        "group_id": sc.group_id, "command_id": sc.command_id,
        "created_at": iso(sc.created_at),
        "agent_started_at": iso(sc.agent_started_at),
        "agent_completed_at": iso(sc.agent_completed_at),
        "analysis_started_at": iso(sc.analysis_started_at),
        "analysis_completed_at": iso(sc.analysis_completed_at),
        "completed_at": iso(sc.completed_at),
        "critical_findings_count": sc.critical_findings_count or 0,
        "non_critical_findings_count": sc.non_critical_findings_count or 0,
        "ok_findings_count": sc.ok_findings_count or 0,
        "result": sc.result,
    }
    if with_findings and sc.module == "svm":  # one finding per package (svm.py)
        from .svm import finding_dicts
        out["findings"] = finding_dicts(db, sc.id, base)
    elif with_findings and sc.module == "fim":  # one finding per changed object (fim.py)
        from .fim import finding_dicts as fim_finding_dicts
        out["findings"] = fim_finding_dicts(db, sc.id, base)
    elif with_findings:
        rows = db.scalars(select(Finding).where(Finding.scan_id == sc.id)
                          .order_by(Finding.position)).all()
        out["findings"] = [finding_dict(f, base) for f in rows]
    return out


def policy_dict(p: Policy, base: str, version: int = 2) -> Dict[str, Any]:
    out = dict(p.body or {})
    out.update({
        "id": p.id, "url": "%s/v%d/policies/%s" % (base, version, p.id), "name": p.name,
        "module": p.module, "platform": p.platform or out.get("platform"),
        "created_at": iso(p.created_at), "updated_at": iso(p.updated_at),
    })
    out.setdefault("rules", [])
    return out


def fw_service_dict(s: FirewallService, base: str) -> Dict[str, Any]:
    return {"id": s.id, "url": "%s/v1/firewall_services/%s" % (base, s.id), "name": s.name,
            "protocol": s.protocol, "port": s.port}


def fw_zone_dict(z: FirewallZone, base: str) -> Dict[str, Any]:
    return {"id": z.id, "url": "%s/v1/firewall_zones/%s" % (base, z.id), "name": z.name,
            "ip_address": z.ip_address, "description": z.description}


def fw_rule_dict(db: Session, r: FirewallRule, base: str) -> Dict[str, Any]:
    source = None
    if r.source_type:
        source = {"id": r.source_id, "type": r.source_type, "name": None}
        if r.source_type == "Group":
            g = db.get(Group, r.source_id)
            source["name"] = g.name if g else None
            source["url"] = "%s/v1/groups/%s" % (base, r.source_id)
        elif r.source_type == "FirewallZone":
            z = db.get(FirewallZone, r.source_id)
            if z is not None:
                source.update({"name": z.name, "ip_address": z.ip_address})
            source["url"] = "%s/v1/firewall_zones/%s" % (base, r.source_id)
    service = None
    if r.service_id:
        svc = db.get(FirewallService, r.service_id)
        if svc is not None:
            service = fw_service_dict(svc, base)
    elif r.service_port or r.service_protocol:
        service = {"id": None, "name": None, "port": r.service_port,
                   "protocol": r.service_protocol}
    return {
        "id": r.id,
        "url": "%s/v1/firewall_policies/%s/firewall_rules/%s" % (base, r.policy_id, r.id),
        "chain": r.chain, "active": bool(r.active), "action": r.action,
        "position": r.position, "firewall_source": source, "firewall_service": service,
        "firewall_interface": r.interface_id, "connection_states": r.connection_states,
        "log": bool(r.log), "log_prefix": r.log_prefix, "comment": r.comment,
    }


def fw_policy_dict(db: Session, p: FirewallPolicy, base: str,
                   with_rules: bool = True) -> Dict[str, Any]:
    used_by = db.scalars(select(Group.id).where(Group.linux_firewall_policy_id == p.id)).all()
    out = {
        "id": p.id, "url": "%s/v1/firewall_policies/%s" % (base, p.id), "name": p.name,
        "description": p.description, "platform": p.platform, "shared": bool(p.shared),
        "ignore_forwarding_rules": bool(p.ignore_forwarding_rules),
        "used_by": [{"id": gid, "type": "Group"} for gid in used_by],
        "created_at": iso(p.created_at), "updated_at": iso(p.updated_at),
    }
    if with_rules:
        rules = db.scalars(select(FirewallRule).where(FirewallRule.policy_id == p.id)
                           .order_by(FirewallRule.position)).all()
        out["firewall_rules"] = [fw_rule_dict(db, r, base) for r in rules]
    return out


def event_dict(e: Event, base: str) -> Dict[str, Any]:
    return {
        "id": e.id, "url": "%s/v1/events/%s" % (base, e.id), "type": e.type,
        "name": e.name, "message": e.message, "critical": bool(e.critical),
        "created_at": iso(e.created_at), "server_id": e.server_id,
        "server_hostname": e.server_hostname, "group_id": e.group_id,
        "group_name": e.group_name, "actor": e.actor, "object_id": e.object_id,
    }
