#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_group
short_description: Manage Halo server groups
version_added: 0.1.0
description:
  - Creates, updates or deletes a Halo server group, found by O(name).
  - Only the options given are managed; a group's other settings are left as they are.
  - Policies and the parent can be named; they are looked up and stored by id.
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
      - In check mode nothing is created, changed, moved or deleted.
      - A parent or policy that an earlier task would create does not exist yet in check mode,
        so naming it fails the task.
  diff_mode:
    support: full
    details: The diff shows the managed settings before and after (policies by id).
options:
  name:
    description:
      - Name of the group. Halo allows two groups of the same name; this module refuses to
        act on an ambiguous name.
    type: str
    required: true
  state:
    description:
      - V(present) creates the group or brings it in line with the options.
      - V(absent) deletes it. A group that still holds servers is deleted only when
        O(move_servers_to) or O(move_servers_to_parent) says where they go.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Description of the group.
    type: str
  tag:
    description:
      - Registration tag. An agent started with C(--tag=<tag>) joins this group when it
        first registers, which is how new workloads land in a staging group.
      - An empty string removes the tag.
    type: str
  parent:
    description:
      - Parent group, by name or id.
    type: str
  config_policies:
    description:
      - Configuration policies of the group, by name or id, in the order Halo applies them.
      - An empty list removes every configuration policy from the group.
    type: list
    elements: str
  fim_policies:
    description:
      - File integrity (FIM) policies of the group, by name or id (see M(cloudpassage.halo.halo_fim_policy)).
        A C(fim) scan compares each server of the group with its baseline for each of them.
      - An empty list removes every FIM policy from the group.
      - Stored as the group's C(fim_policy_ids); a service that does not store them fails the
        task rather than reporting a change that did not happen.
    type: list
    elements: str
    version_added: 0.2.0
  linux_firewall_policy:
    description:
      - Linux firewall policy of the group, by name or id.
      - An empty string removes the firewall policy from the group.
    type: str
  scan_interval:
    description:
      - Seconds between the configuration (C(sca)) scans the service starts by itself on
        each server of the group, so that drift is noticed without a playbook asking for a scan.
      - V(0) removes the schedule.
      - This is the C(scan_interval) of the halogrid grid's group API (it accepts 10 to 31536000
        seconds). Halo itself schedules scans in its portal settings; a service that does not
        store the field fails the task rather than reporting a change that did not happen.
    type: int
    version_added: 0.2.0
  move_servers_to:
    description:
      - With O(state=absent), move the group's servers (active, missing and deactivated)
        to this group, by name or id, before deleting it.
    type: str
  move_servers_to_parent:
    description:
      - With O(state=absent), let Halo move the group's servers to its parent group.
    type: bool
    default: false
notes:
  - Changing a group's policies or firewall policy changes what Halo enforces on every
    server in the group.
"""

EXAMPLES = r"""
# Application membership control: a staging group that new workloads join by tag, a
# production group and a protected group. The firewall policy named here is made by
# cloudpassage.halo.halo_firewall_policy, after the groups its rules refer to exist.
- name: Staging group for new web servers
  cloudpassage.halo.halo_group:
    name: ProdWebDirty
    tag: NewDirty
    description: New web servers wait here until their configuration scan passes
    config_policies:
      - CIS Core (Debian/Ubuntu) v1

- name: Production web group
  cloudpassage.halo.halo_group:
    name: ProdWebClean
    config_policies:
      - CIS Core (Debian/Ubuntu) v1

- name: Protected application group
  cloudpassage.halo.halo_group:
    name: CriticalApplication
    config_policies:
      - CIS Core (Debian/Ubuntu) v1

- name: Keep staging hosts away from the application
  cloudpassage.halo.halo_group:
    name: CriticalApplication
    linux_firewall_policy: Protect CriticalApplication

- name: Watch the staging hosts' files (see cloudpassage.halo.halo_fim_policy)
  cloudpassage.halo.halo_group:
    name: ProdWebDirty
    fim_policies:
      - Core system files

- name: Rescan the production servers every hour, so drift is noticed
  cloudpassage.halo.halo_group:
    name: ProdWebClean
    scan_interval: 3600

- name: Retire the staging group, its servers go to production
  cloudpassage.halo.halo_group:
    name: ProdWebDirty
    state: absent
    move_servers_to: ProdWebClean
"""

RETURN = r"""
group:
  description:
    - The group as the API describes it after the task (fields C(id), C(name), C(tag),
      C(description), C(parent_id), C(policy_ids), C(fim_policy_ids), C(linux_firewall_policy_id),
      C(scan_interval) and more).
    - In check mode, what it would be; a group that would be created has no C(id).
    - Empty after the group was deleted or when it did not exist.
  returned: always
  type: dict
  sample:
    id: 0d7d6a1c8b5e4f0c9a3b2e1d0c9b8a7f
    name: ProdWebDirty
    tag: NewDirty
    policy_ids: [5d8f1a0b9c7e4d3a2b1c0f9e8d7c6b5a]
    fim_policy_ids: [0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e]
    linux_firewall_policy_id: null
    scan_interval: 3600
moved_servers:
  description: Servers moved out of the group before it was deleted (or that would be).
  returned: when O(state=absent)
  type: list
  elements: dict
  contains:
    server_id:
      description: Server id.
      type: str
    hostname:
      description: Host name.
      type: str
"""

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import (
    HaloClientError,
    find_by_name,
    find_by_name_or_id,
)
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import (
    SERVER_STATES,
    HaloModule,
    server_entry,
)

# The group fields this module manages, as the API names them.
MANAGED_FIELDS = ("name", "description", "tag", "parent_id", "policy_ids", "fim_policy_ids",
                  "linux_firewall_policy_id", "scan_interval")


def _same(current, wanted):
    # The API reports "no tag" / "no policies" as null, "" or [] depending on the field.
    return (current or None) == (wanted or None)


def wanted_fields(client, params, groups):
    """The settings the options ask for, with names resolved to ids."""
    fields = {}
    if params["description"] is not None:
        fields["description"] = params["description"]
    if params["tag"] is not None:
        fields["tag"] = params["tag"] or None
    if params["parent"] is not None:
        fields["parent_id"] = find_by_name_or_id(groups, params["parent"], "server group", "groups")["id"]
    if params["config_policies"] is not None:
        known = client.list_config_policies() if params["config_policies"] else []
        fields["policy_ids"] = [find_by_name_or_id(known, policy, "configuration policy", "policies")["id"]
                                for policy in params["config_policies"]]
    if params["fim_policies"] is not None:
        known = client.list_fim_policies() if params["fim_policies"] else []
        fields["fim_policy_ids"] = [find_by_name_or_id(known, policy, "FIM policy", "FIM policies")["id"]
                                    for policy in params["fim_policies"]]
    if params["linux_firewall_policy"] is not None:
        firewall = params["linux_firewall_policy"]
        fields["linux_firewall_policy_id"] = client.find_firewall_policy(firewall)["id"] if firewall else None
    if params["scan_interval"] is not None:
        fields["scan_interval"] = params["scan_interval"] or None
    return fields


def managed_view(group):
    return dict((key, group.get(key)) for key in MANAGED_FIELDS)


def ensure_present(module, group, groups):
    client = module.client
    fields = wanted_fields(client, module.params, groups)
    if group is None:
        fields["name"] = module.params["name"]
        before, changes = {}, fields
    else:
        before = managed_view(group)
        changes = dict((key, value) for key, value in fields.items() if not _same(group.get(key), value))
    result = {"changed": bool(changes)}
    if not changes:
        result["group"] = group
    elif module.check_mode:
        result["group"] = dict(group or {}, **changes)
    else:
        client.require_write_scope()
        if group is None:
            result["group"] = client.create_group(changes)
        else:
            client.update_group(group["id"], changes)
            result["group"] = client.get_group(group["id"])
        if "fim_policy_ids" in changes and not _same(result["group"].get("fim_policy_ids"), changes["fim_policy_ids"]):
            raise HaloClientError("the service did not store fim_policy_ids for group %s (it answers %r)"
                                  % (module.params["name"], result["group"].get("fim_policy_ids")))
        if "scan_interval" in changes and not _same(result["group"].get("scan_interval"), changes["scan_interval"]):
            # Halo's own API has no such field and ignores unknown ones: say so, never "changed"
            raise HaloClientError("the service did not store scan_interval for group %s (it answers %r): scheduled scans "
                                  "are a halogrid grid feature; Halo schedules scans in its portal settings"
                                  % (module.params["name"], result["group"].get("scan_interval")))
    if module._diff:
        result["diff"] = {"before": before, "after": dict(before, **changes)}
    return result


def ensure_absent(module, group, groups):
    params = module.params
    client = module.client
    result = {"changed": group is not None, "group": {}, "moved_servers": []}
    if group is None:
        return result
    servers = client.list_servers(group_id=group["id"], state=SERVER_STATES)
    if servers and not (params["move_servers_to"] or params["move_servers_to_parent"]):
        names = ", ".join(sorted(server.get("hostname") or server["id"] for server in servers))
        raise HaloClientError("group %s still holds %d server(s) (%s); set move_servers_to or "
                              "move_servers_to_parent to say where they go" % (group["name"], len(servers), names))
    if params["move_servers_to_parent"] and servers and not group.get("parent_id"):
        raise HaloClientError("group %s has no parent to move its servers to; use move_servers_to" % group["name"])
    destination = None
    if params["move_servers_to"]:
        destination = find_by_name_or_id(groups, params["move_servers_to"], "server group", "groups")
        if destination["id"] == group["id"]:
            raise HaloClientError("move_servers_to names the group being deleted")
    result["moved_servers"] = [server_entry(server) for server in servers]
    if not module.check_mode:
        client.require_write_scope()
        if destination is not None:
            for server in servers:
                client.move_server(server["id"], destination["id"])
        client.delete_group(group["id"], move_to_parent=params["move_servers_to_parent"])
    if module._diff:
        result["diff"] = {"before": managed_view(group), "after": {}}
    return result


def manage(module):
    groups = module.client.list_groups()
    group = find_by_name(groups, module.params["name"], "server group")
    if module.params["state"] == "absent":
        return ensure_absent(module, group, groups)
    return ensure_present(module, group, groups)


def main():
    module = HaloModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            description=dict(type="str"),
            tag=dict(type="str"),
            parent=dict(type="str"),
            config_policies=dict(type="list", elements="str"),
            fim_policies=dict(type="list", elements="str"),
            linux_firewall_policy=dict(type="str"),
            scan_interval=dict(type="int"),
            move_servers_to=dict(type="str"),
            move_servers_to_parent=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("move_servers_to", "move_servers_to_parent")],
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
