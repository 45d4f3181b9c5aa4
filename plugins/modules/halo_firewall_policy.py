#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_firewall_policy
short_description: Manage Halo Linux firewall policies and their rules
version_added: 0.1.0
description:
  - Makes sure a Linux firewall policy of this name exists with exactly the rules given,
    in that order; or that no policy of that name exists.
  - A rule's source is a server group (Halo turns it into the group's member IPs on every
    host and keeps them current as servers join, move or change address), a firewall zone
    (a named IP list), or any address.
  - When the rules differ in any way, the policy's rules are replaced. The new rules are
    added before the old ones are removed, so hosts are never left with an empty policy.
  - Assign the policy to a group with M(cloudpassage.halo.halo_group) O(cloudpassage.halo.halo_group#module:linux_firewall_policy).
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.connection
  - cloudpassage.halo.attributes
  - cloudpassage.halo.attributes.actiongroup_halo
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is created, changed or deleted, not even a firewall service.
      - A source group or zone that an earlier task would create does not exist yet in check
        mode, so naming it fails the task.
  diff_mode:
    support: full
    details: The diff shows the policy's rules before and after, with sources and services by name.
options:
  name:
    description:
      - Name of the policy.
    type: str
    required: true
  description:
    description:
      - Description of the policy.
    type: str
  state:
    description:
      - V(present) creates the policy or brings its rules in line; V(absent) deletes it.
      - Halo refuses to delete a policy that a group still uses.
    type: str
    choices: [present, absent]
    default: present
  rules:
    description:
      - The rules, in the order Halo applies them (first match wins).
      - Required with O(state=present); an empty list leaves the policy without rules.
    type: list
    elements: dict
    suboptions:
      chain:
        description: The chain of the rule.
        type: str
        choices: [INPUT, OUTPUT]
        default: INPUT
      action:
        description: What happens to matching traffic.
        type: str
        choices: [ACCEPT, DROP, REJECT]
        required: true
      source:
        description:
          - Where the traffic comes from (for V(OUTPUT), where it goes), as a server group
            or a firewall zone, by name or id. Omit it (or null) for any address.
        type: dict
        suboptions:
          group:
            description: A server group, by name or id.
            type: str
          zone:
            description: A firewall zone (a named list of IP addresses), by name or id.
            type: str
      service:
        description:
          - The service (port and protocol) the rule matches, as a firewall service name,
            or a port and protocol. Omit it (or null) for any service.
          - A port and protocol that no firewall service has yet gets a new service named
            C(<port>/<protocol>).
        type: dict
        suboptions:
          name:
            description: A firewall service, by name or id.
            type: str
          port:
            description: Port or port range such as C(8000:8080).
            type: str
          protocol:
            description: Protocol.
            type: str
            choices: [TCP, UDP, ICMP]
            default: TCP
      states:
        description: Connection states the rule matches; none means any state.
        type: list
        elements: str
        choices: [NEW, ESTABLISHED, RELATED]
      log:
        description: Log the packets the rule matches.
        type: bool
        default: false
      log_prefix:
        description: Prefix of the log lines.
        type: str
      comment:
        description: Comment shown with the rule.
        type: str
      active:
        description: Whether the rule is in force.
        type: bool
        default: true
"""

EXAMPLES = r"""
# Application membership control: hosts still in the staging group must not reach the critical application;
# production web servers may. Make the groups first (cloudpassage.halo.halo_group), then
# this policy, then assign it to CriticalApplication.
- name: Firewall policy of the critical application
  cloudpassage.halo.halo_firewall_policy:
    name: Protect CriticalApplication
    description: Staging hosts are kept out until their scan passes
    rules:
      - chain: INPUT
        action: ACCEPT
        states: [ESTABLISHED, RELATED]
        comment: Replies to connections the host made
      - chain: INPUT
        action: DROP
        source:
          group: ProdWebDirty
        log: true
        log_prefix: "dirty: "
        comment: Not yet admitted
      - chain: INPUT
        action: ACCEPT
        source:
          group: ProdWebClean
        service:
          port: "8080"
          protocol: TCP
        states: [NEW]
        comment: Admitted web servers reach the application
      - chain: INPUT
        action: ACCEPT
        source:
          zone: Admin network
        service:
          name: ssh
      - chain: INPUT
        action: DROP

- name: Assign it
  cloudpassage.halo.halo_group:
    name: CriticalApplication
    linux_firewall_policy: Protect CriticalApplication
"""

RETURN = r"""
policy_id:
  description: Id of the policy; empty when it was deleted, did not exist, or would be created in check mode.
  returned: always
  type: str
  sample: 7b881ca072a4012c1ed6000e6db0c79f
rules:
  description:
    - The policy's rules after the task, in order, with sources and services by id and name.
  returned: always
  type: list
  elements: dict
  sample:
    - chain: INPUT
      action: DROP
      source: {type: Group, id: 0d7d6a1c8b5e4f0c9a3b2e1d0c9b8a7f, name: ProdWebDirty}
      service: null
      states: []
      log: true
      log_prefix: "dirty: "
      comment: Not yet admitted
      active: true
"""

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import find_by_name
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_firewall import (
    RULE_SPEC,
    Resolver,
    api_rule,
    comparable,
    stored_view,
)
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import HaloModule


def ensure_present(module, policy):
    params = module.params
    client = module.client
    resolver = Resolver(client, module.check_mode)
    wanted = [resolver.rule(rule) for rule in params["rules"]]
    stored_rules = client.list_firewall_rules(policy["id"]) if policy else []
    stored = [stored_view(rule) for rule in stored_rules]
    before = {"name": policy["name"], "description": policy.get("description"), "rules": stored} if policy else {}
    after = {"name": params["name"], "description": before.get("description"), "rules": wanted}
    fields = {}
    if params["description"] is not None and (policy or {}).get("description") != params["description"]:
        fields["description"] = after["description"] = params["description"]
    rules_differ = [comparable(rule) for rule in stored] != [comparable(rule) for rule in wanted]

    result = {"changed": policy is None or bool(fields) or rules_differ,
              "policy_id": policy["id"] if policy else "", "rules": wanted if rules_differ else stored}
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    if module.check_mode or not result["changed"]:
        return result
    client.require_write_scope()
    if policy is None:
        # Rules go in with the policy: one call, and no read of a just-created policy,
        # which the service may not find for a moment.
        fields.update(name=params["name"], platform="linux",
                      firewall_rules=[api_rule(rule, position) for position, rule in enumerate(wanted, 1)])
        result["policy_id"] = client.create_firewall_policy(fields)["id"]
        return result
    if fields:
        client.update_firewall_policy(policy["id"], fields)
    if rules_differ:
        # New rules go in first, at the top, and the old ones (now below them) go after:
        # hosts never see a policy without its rules in between.
        for position, rule in enumerate(wanted, 1):
            client.create_firewall_rule(policy["id"], api_rule(rule, position))
        for rule in stored_rules:
            client.delete_firewall_rule(policy["id"], rule["id"])
    return result


def ensure_absent(module, policy):
    result = {"changed": policy is not None, "policy_id": "", "rules": []}
    if policy is not None:
        if module._diff:
            stored = [stored_view(rule) for rule in module.client.list_firewall_rules(policy["id"])]
            result["diff"] = {"before": {"name": policy["name"], "description": policy.get("description"),
                                         "rules": stored}, "after": {}}
        if not module.check_mode:
            module.client.require_write_scope()
            module.client.delete_firewall_policy(policy["id"])
    return result


def manage(module):
    policy = find_by_name(module.client.list_firewall_policies(), module.params["name"], "firewall policy")
    if module.params["state"] == "absent":
        return ensure_absent(module, policy)
    return ensure_present(module, policy)


def main():
    module = HaloModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            description=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            rules=dict(type="list", elements="dict", options=RULE_SPEC),
        ),
        required_if=[("state", "present", ("rules",))],
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
