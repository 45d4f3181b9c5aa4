#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_group_info
short_description: Read Halo server groups with their configuration policies and the key's scope
version_added: 0.2.0
description:
  - Returns the selected server groups as the Halo API describes them, each with its
    configuration policies resolved to their names and the number of active rules they hold.
  - Also returns the scope the API granted to the key (C(read) or C(read+write)), so a play can
    fail before any change when the key cannot write.
  - The admission role uses it to refuse a staging group whose scans could prove nothing (no
    configuration policy, or none with an active rule) before it starts any scan.
  - Reads only; changes nothing.
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.connection
  - cloudpassage.halo.attributes
  - cloudpassage.halo.attributes.info_module
  - cloudpassage.halo.attributes.actiongroup_halo
options:
  names:
    description:
      - The groups to return, by name or id. An unknown one fails, naming the groups that exist.
      - Every group when not given.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Read the staging and the production group
  cloudpassage.halo.halo_group_info:
    names: [ProdWebDirty, ProdWebClean]
  register: halo_groups

- name: Refuse a staging group whose scans would check nothing
  ansible.builtin.assert:
    that: halo_groups.groups[0].active_rule_count > 0
    fail_msg: ProdWebDirty has no configuration policy with an active rule

- name: Fail early when the key is read-only
  ansible.builtin.assert:
    that: "'write' in halo_groups.key_scope"
"""

RETURN = r"""
groups:
  description: The groups, in the order of O(names) (or by name when every group is returned).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Group id.
      type: str
    name:
      description: Group name.
      type: str
    tag:
      description: Tag that a new agent registers with to join the group.
      type: str
    policy_ids:
      description: Ids of the configuration policies of the group.
      type: list
      elements: str
    config_policies:
      description: The configuration policies of the group, resolved.
      type: list
      elements: dict
      contains:
        id:
          description: Policy id.
          type: str
        name:
          description: Policy name.
          type: str
        active_rule_count:
          description: Rules that are active and have at least one active check.
          type: int
    active_rule_count:
      description: Active rules over all the group's configuration policies.
      type: int
    server_counts:
      description: Servers of the group by state, as the API reports them.
      type: dict
key_scope:
  description: The scope the API granted to the key, C(read) or C(read+write).
  returned: always
  type: str
  sample: read+write
"""

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import find_by_name_or_id
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import HaloModule


def active_rule_count(policy):
    """Rules that can find anything: active, with at least one active check."""
    return sum(1 for rule in policy.get("rules") or []
               if rule.get("active", True) is not False
               and any(check.get("active", True) is not False for check in rule.get("checks") or []))


def read_groups(module):
    client = module.client
    every_group = client.list_groups()
    if module.params["names"] is None:
        groups = sorted(every_group, key=lambda group: group.get("name") or "")
    else:
        groups = [find_by_name_or_id(every_group, name, "server group", "groups") for name in module.params["names"]]
    policies = {}
    described = []
    for group in groups:
        entry = dict(group)
        entry["config_policies"] = []
        for policy_id in group.get("policy_ids") or []:
            if policy_id not in policies:
                policies[policy_id] = client.get_config_policy(policy_id)
            policy = policies[policy_id]
            entry["config_policies"].append({"id": policy_id, "name": policy.get("name"),
                                             "active_rule_count": active_rule_count(policy)})
        entry["active_rule_count"] = sum(policy["active_rule_count"] for policy in entry["config_policies"])
        described.append(entry)
    return {"changed": False, "groups": described, "key_scope": client.scope}


def main():
    module = HaloModule(argument_spec=dict(names=dict(type="list", elements="str")), supports_check_mode=True)
    module.run(read_groups)


if __name__ == "__main__":
    main()
