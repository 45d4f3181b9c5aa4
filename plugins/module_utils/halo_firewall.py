# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Linux firewall rules as halo_firewall_policy compares them: the rule options, one view of
a rule whether wanted or stored, and names of groups, zones and services resolved to ids."""

from __future__ import annotations

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import find_by_name_or_id

STATES = ["NEW", "ESTABLISHED", "RELATED"]

RULE_SPEC = dict(
    chain=dict(type="str", choices=["INPUT", "OUTPUT"], default="INPUT"),
    action=dict(type="str", choices=["ACCEPT", "DROP", "REJECT"], required=True),
    source=dict(type="dict", options=dict(group=dict(type="str"), zone=dict(type="str")),
                mutually_exclusive=[("group", "zone")], required_one_of=[("group", "zone")]),
    service=dict(type="dict", options=dict(name=dict(type="str"), port=dict(type="str"),
                                           protocol=dict(type="str", choices=["TCP", "UDP", "ICMP"], default="TCP")),
                 mutually_exclusive=[("name", "port")], required_one_of=[("name", "port")]),
    states=dict(type="list", elements="str", choices=STATES),
    log=dict(type="bool", default=False),
    log_prefix=dict(type="str"),
    comment=dict(type="str"),
    active=dict(type="bool", default=True),
)


def parse_states(value):
    """Halo's ``"NEW, ESTABLISHED"`` (or null / ``ANY``) as a list in a fixed order."""
    states = set(part.strip().upper() for part in (value or "").split(",") if part.strip())
    states.discard("ANY")
    return sorted(states, key=lambda state: (STATES.index(state) if state in STATES else len(STATES), state))


def rule_view(chain, action, source, service, states, log, log_prefix, comment, active):
    """One rule in the form this module compares and reports, wanted or stored alike."""
    return {"chain": chain, "action": action, "source": source, "service": service,
            "states": parse_states(", ".join(states or [])), "log": bool(log),
            "log_prefix": log_prefix or "", "comment": comment or "", "active": bool(active)}


def stored_view(rule):
    source = rule.get("firewall_source")
    service = rule.get("firewall_service")
    return rule_view(
        rule.get("chain"), rule.get("action"),
        {"type": source.get("type"), "id": source.get("id"), "name": source.get("name")} if source else None,
        {"id": service.get("id"), "name": service.get("name"), "port": service.get("port"),
         "protocol": service.get("protocol")} if service else None,
        parse_states(rule.get("connection_states")), rule.get("log"), rule.get("log_prefix"),
        rule.get("comment"), rule.get("active", True))


def comparable(view):
    """What makes two rules the same: sources and services by id, not by (mutable) name."""
    compared = dict(view)
    compared["source"] = view["source"] and (view["source"]["type"], view["source"]["id"])
    service = view["service"]
    # A service check mode has not created yet, or one stored inline, has no id.
    compared["service"] = service and (service["id"] or (service["port"], service["protocol"]))
    return compared


class Resolver:
    """Names of groups, zones and services to ids, each list fetched once and only if needed."""

    def __init__(self, client, check_mode):
        self.client = client
        self.check_mode = check_mode
        self._cache = {}

    def _objects(self, kind, list_call):
        if kind not in self._cache:
            self._cache[kind] = list_call()
        return self._cache[kind]

    def source(self, wanted):
        if not wanted:
            return None
        if wanted.get("group"):
            group = find_by_name_or_id(self._objects("groups", self.client.list_groups), wanted["group"],
                                       "server group", "groups")
            return {"type": "Group", "id": group["id"], "name": group.get("name")}
        zone = find_by_name_or_id(self._objects("zones", self.client.list_firewall_zones), wanted["zone"],
                                  "firewall zone", "zones")
        return {"type": "FirewallZone", "id": zone["id"], "name": zone.get("name")}

    def service(self, wanted):
        if not wanted:
            return None
        services = self._objects("services", self.client.list_firewall_services)
        if wanted.get("name"):
            found = find_by_name_or_id(services, wanted["name"], "firewall service", "services")
        else:
            matching = [svc for svc in services if str(svc.get("port")) == wanted["port"]
                        and (svc.get("protocol") or "").upper() == wanted["protocol"]]
            found = matching[0] if matching else self._new_service(wanted["port"], wanted["protocol"])
        return {"id": found.get("id"), "name": found.get("name"), "port": found.get("port"),
                "protocol": found.get("protocol")}

    def _new_service(self, port, protocol):
        fields = {"name": "%s/%s" % (port, protocol), "port": port, "protocol": protocol}
        if self.check_mode:
            return fields  # no id yet: no stored rule can match it, so the rules differ
        self.client.require_write_scope()
        service = self.client.create_firewall_service(fields)
        self._cache["services"].append(service)
        return service

    def rule(self, wanted):
        return rule_view(wanted["chain"], wanted["action"], self.source(wanted["source"]),
                         self.service(wanted["service"]), wanted["states"], wanted["log"],
                         wanted["log_prefix"], wanted["comment"], wanted["active"])


def api_rule(view, position):
    """The ``firewall_rule`` body that creates ``view`` at ``position`` (1 = first)."""
    return {
        "chain": view["chain"], "action": view["action"], "active": view["active"],
        "firewall_source": view["source"] and {"id": view["source"]["id"], "type": view["source"]["type"]},
        "firewall_service": view["service"] and view["service"]["id"],
        "connection_states": ", ".join(view["states"]) or None,
        "log": view["log"], "log_prefix": view["log_prefix"] or None, "comment": view["comment"],
        "position": position,
    }
