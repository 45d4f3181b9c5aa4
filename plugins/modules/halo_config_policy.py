#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_config_policy
short_description: Manage Halo configuration (CSM) policies
version_added: 0.1.0
description:
  - Makes sure a configuration policy, given in Halo's own JSON form, exists under its name
    and matches; or that no policy of that name exists.
  - The policy is compared on the fields its JSON gives. Fields the API adds (ids, URLs,
    timestamps, defaults) and fields the JSON leaves out are not compared. When anything
    differs the whole policy is sent again (C(PUT)).
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.connection
  - cloudpassage.halo.attributes
  - cloudpassage.halo.attributes.actiongroup_halo
attributes:
  check_mode:
    support: full
    details: In check mode nothing is created, changed or deleted.
  diff_mode:
    support: full
    details: The diff shows the compared fields of the policy before and after.
options:
  name:
    description:
      - Name of the policy. Overrides the name inside the policy JSON.
      - Required with O(state=absent) unless O(policy) or O(src) give the name.
    type: str
  policy:
    description:
      - The policy as Halo's JSON object, either the policy itself (C(name), C(platform),
        C(description), C(rules)) or wrapped in a top-level C(policy) key, as Halo exports it.
      - Ids, URLs and timestamps in it are ignored, so a policy exported from another Halo
        account can be used as is.
    type: dict
  src:
    description:
      - Path of a JSON file with the policy under a top-level C(policy) key, as Halo exports it.
      - The file is read on the host that runs the module, usually the controller
        (C(localhost)).
    type: path
  state:
    description:
      - V(present) creates or updates the policy; V(absent) deletes it.
      - Halo refuses to delete a policy that a group still uses.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
# One configuration policy for the staging, production and protected groups; make it
# first, then name it in cloudpassage.halo.halo_group's config_policies.
- name: Configuration policy from an exported JSON file
  cloudpassage.halo.halo_config_policy:
    src: "{{ playbook_dir }}/files/cis-core-debian.json"
    name: CIS Core (Debian/Ubuntu) v1
  register: baseline

- name: A small policy written in the playbook
  cloudpassage.halo.halo_config_policy:
    policy:
      name: No telnet
      platform: linux
      description: The telnet client must not be installed
      rules:
        - name: telnet is absent
          active: true
          critical: true
          alert: false
          rule_operator: AND
          checks:
            - object_type: file_presence
              active: true
              files: [/usr/bin/telnet]
              present: false

- name: Apply the baseline to the staging group
  cloudpassage.halo.halo_group:
    name: ProdWebDirty
    config_policies:
      - "{{ baseline.policy_id }}"

- name: Remove an old policy
  cloudpassage.halo.halo_config_policy:
    name: Old baseline
    state: absent
"""

RETURN = r"""
policy_id:
  description: Id of the policy; empty when it was deleted, did not exist, or would be created in check mode.
  returned: always
  type: str
  sample: 5d8f1a0b9c7e4d3a2b1c0f9e8d7c6b5a
name:
  description: Name of the policy.
  returned: always
  type: str
  sample: CIS Core (Debian/Ubuntu) v1
"""

import json

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloClientError, find_by_name
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import HaloModule

# What the API sets itself, at the top of a policy and inside its rules and checks.
SERVER_FIELDS = frozenset(["id", "url", "created_at", "updated_at", "used_by", "module"])
NESTED_SERVER_FIELDS = frozenset(["id", "url"])


def without_server_fields(value, fields=SERVER_FIELDS):
    if isinstance(value, dict):
        return dict((key, without_server_fields(item, NESTED_SERVER_FIELDS))
                    for key, item in value.items() if key not in fields)
    if isinstance(value, list):
        return [without_server_fields(item, NESTED_SERVER_FIELDS) for item in value]
    return value


def project(current, wanted):
    """``current`` cut down to the fields ``wanted`` gives, so that the two compare and
    diff on what the user manages. Extra list items stay: a rule too many is a difference."""
    if isinstance(wanted, dict) and isinstance(current, dict):
        return dict((key, project(current.get(key), value)) for key, value in wanted.items())
    if isinstance(wanted, list) and isinstance(current, list):
        return [project(item, wanted[index]) if index < len(wanted) else without_server_fields(item, NESTED_SERVER_FIELDS)
                for index, item in enumerate(current)]
    return current


def load_policy(params):
    """The wanted policy from ``policy`` or ``src``; None when neither is given."""
    document = params["policy"]
    if params["src"]:
        try:
            with open(params["src"]) as handle:
                document = json.load(handle)
        except (IOError, OSError, ValueError) as exc:
            raise HaloClientError("cannot read the policy JSON from %s: %s" % (params["src"], exc))
    if document is None:
        return None
    if isinstance(document.get("policy"), dict):
        document = document["policy"]
    policy = without_server_fields(document)
    if params["name"]:
        policy["name"] = params["name"]
    if not policy.get("name"):
        raise HaloClientError("the policy has no name; set name")
    return policy


def manage(module):
    client = module.client
    wanted = load_policy(module.params)
    name = module.params["name"] or wanted["name"]
    existing = find_by_name(client.list_config_policies(), name, "configuration policy")
    result = {"changed": False, "name": name, "policy_id": existing["id"] if existing else ""}

    if module.params["state"] == "absent":
        if existing is not None:
            result.update(changed=True, policy_id="")
            if module._diff:
                result["diff"] = {"before": without_server_fields(client.get_config_policy(existing["id"])),
                                  "after": {}}
            if not module.check_mode:
                client.require_write_scope()
                client.delete_config_policy(existing["id"])
        return result

    before = project(client.get_config_policy(existing["id"]), wanted) if existing else {}
    if before != wanted:
        result["changed"] = True
        if not module.check_mode:
            client.require_write_scope()
            if existing is None:
                result["policy_id"] = client.create_config_policy(wanted)["id"]
            else:
                client.update_config_policy(existing["id"], wanted)
    if module._diff:
        result["diff"] = {"before": before, "after": wanted}
    return result


def main():
    module = HaloModule(
        argument_spec=dict(
            name=dict(type="str"),
            policy=dict(type="dict"),
            src=dict(type="path"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        mutually_exclusive=[("policy", "src")],
        required_if=[("state", "present", ("policy", "src"), True),
                     ("state", "absent", ("name", "policy", "src"), True)],
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
