#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_fim_policy
short_description: Manage Halo file integrity (FIM) policies
version_added: 0.2.0
description:
  - Makes sure a file integrity monitoring policy exists under its O(name) with the given
    settings, or that no FIM policy of that name exists.
  - Only the options given are managed. O(rules), when given, is the whole list of the policy's
    rules, in order; a rule too many or too few is a difference.
  - A policy is attached to server groups with M(cloudpassage.halo.halo_group) (O(cloudpassage.halo.halo_group#module:fim_policies));
    each server then needs a baseline (M(cloudpassage.halo.halo_fim_baseline)) before a C(fim)
    scan (M(cloudpassage.halo.halo_scan)) can judge it.
  - Uses Halo's C(/v1/fim_policies) API, which the halogrid grid serves as well.
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
    details: The diff shows the managed settings of the policy before and after.
options:
  name:
    description:
      - Name of the policy. Halo refuses a second FIM policy of the same name.
    type: str
    required: true
  state:
    description:
      - V(present) creates the policy or brings it in line with the options; V(absent) deletes it.
      - Halo refuses to delete a policy that a server group still uses.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Description of the policy.
    type: str
  platform:
    description:
      - Platform of the servers the policy is for. Set on creation when not given.
    type: str
    choices: [linux]
  rules:
    description:
      - What the policy watches, in order. Each rule's O(rules[].target) is an absolute file,
        directory or glob.
      - Changing the rules makes the service fail the policy's baselines (they no longer
        describe what a scan measures); take them again with
        O(cloudpassage.halo.halo_fim_baseline#module:rebaseline=true).
    type: list
    elements: dict
    suboptions:
      target:
        description:
          - A file (C(/etc/passwd)), a directory (C(/usr/bin)) or a glob matched on each path
            component as the shell does (C(/etc/*.conf)).
          - Symbolic links are reported with their target, never followed.
        type: str
        required: true
      description:
        description:
          - Description of the rule.
        type: str
      recurse:
        description:
          - For a directory, watch its whole tree; V(false) watches the directory and its direct children.
        type: bool
        default: false
      critical:
        description:
          - A change under this rule is a critical finding.
        type: bool
        default: false
      alert:
        description:
          - Raise a Halo alert for a change under this rule.
        type: bool
        default: false
      exclusions:
        description:
          - Globs of paths not to watch, matched against the full path and against the base name.
          - Sent as Halo's newline-separated list; a comma-separated string is split into the list.
        type: list
        elements: str
  compare:
    description:
      - What a scan compares with the baseline, among C(content) (SHA-256), C(mode) (permission
        bits with setuid, setgid and sticky), C(owner) (uid), C(group) (gid), C(size) and
        C(link_target). An object's type is always compared.
      - This is the C(compare) of the halogrid grid's FIM policy API (its default is all six).
        Halo itself compares what its portal settings say; a service that does not store the
        field fails the task rather than reporting a change that did not happen.
      - Changing it makes the service fail the policy's baselines, as changing O(rules) does.
    type: list
    elements: str
    choices: [content, mode, owner, group, size, link_target]
"""

EXAMPLES = r"""
# File integrity monitoring in the admission: a policy, attached to the staging group; each
# server then gets a baseline, and halo_admission_scan_modules [sca, fim] keeps a host whose
# watched files changed since.
- name: Watch the system binaries and the account files
  cloudpassage.halo.halo_fim_policy:
    name: Core system files
    description: Binaries and account databases
    rules:
      - target: /usr/bin
        recurse: true
        critical: true
      - target: /usr/sbin
        recurse: true
        critical: true
      - target: /etc/passwd
        critical: true
      - target: /etc/*.conf
        exclusions: [/etc/ld.so.conf, "*.dpkg-*"]
    compare: [content, mode, owner, group, link_target]
  register: fim_policy

- name: Attach it to the staging group
  cloudpassage.halo.halo_group:
    name: ProdWebDirty
    fim_policies:
      - "{{ fim_policy.policy_id }}"

- name: Remove an old policy
  cloudpassage.halo.halo_fim_policy:
    name: Old FIM policy
    state: absent
"""

RETURN = r"""
policy_id:
  description: Id of the policy; empty when it was deleted, did not exist, or would be created in check mode.
  returned: always
  type: str
  sample: 0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e
name:
  description: Name of the policy.
  returned: always
  type: str
  sample: Core system files
policy:
  description:
    - The policy as the API describes it after the task (fields C(id), C(name), C(description),
      C(platform), C(rules) with their ids, C(compare) on the grid, C(used_by) and more).
    - In check mode, what it would be; a policy that would be created has no C(id).
    - Empty after the policy was deleted or when it did not exist.
  returned: always
  type: dict
  sample:
    id: 0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e
    name: Core system files
    platform: linux
    rules:
      - id: 9f8e7d6c5b4a39281706f5e4d3c2b1a0
        target: /usr/bin
        description: null
        recurse: true
        critical: true
        alert: false
        exclusions: null
    compare: [content, mode, owner, group, size, link_target]
"""

import re

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloClientError, find_by_name
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import HaloModule

COMPARE_CHOICES = ["content", "mode", "owner", "group", "size", "link_target"]
RULE_FIELDS = ("target", "description", "recurse", "critical", "alert", "exclusions")


def split_exclusions(value):
    """Halo's comma or newline list of globs (or a list) as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[,\n]", value)
    return [glob.strip() for glob in value if glob and glob.strip()]


def rule_view(rule):
    """A rule as compared and diffed: the managed fields, defaults filled in, exclusions a list."""
    return {
        "target": rule.get("target"),
        "description": rule.get("description") or None,
        "recurse": bool(rule.get("recurse")),
        "critical": bool(rule.get("critical")),
        "alert": bool(rule.get("alert")),
        "exclusions": split_exclusions(rule.get("exclusions")),
    }


def wanted_view(params):
    """The settings the options ask for, in the compared form."""
    view = {}
    for key in ("description", "platform"):
        if params[key] is not None:
            view[key] = params[key]
    if params["rules"] is not None:
        view["rules"] = [rule_view(rule) for rule in params["rules"]]
    if params["compare"] is not None:
        # The service keeps them in its own order and once each.
        view["compare"] = [item for item in COMPARE_CHOICES if item in params["compare"]]
    return view


def current_view(policy, wanted):
    """The stored policy, cut down to what ``wanted`` manages."""
    view = {}
    for key in wanted:
        if key == "rules":
            view["rules"] = [rule_view(rule) for rule in policy.get("rules") or []]
        elif key == "compare":
            view["compare"] = policy.get("compare")
        else:
            view[key] = policy.get(key) or None
    return view


def api_rules(rules, stored):
    """The rules as the API takes them: exclusions as Halo's newline list, and the id of a
    stored rule with the same target, so the service keeps the rule's identity."""
    ids = {}
    for rule in stored or []:
        ids.setdefault(rule.get("target"), rule.get("id"))
    out = []
    for rule in rules:
        fields = dict(rule)
        fields["exclusions"] = "\n".join(rule["exclusions"]) or None
        if ids.get(rule["target"]):
            fields["id"] = ids.pop(rule["target"])
        out.append(fields)
    return out


def ensure_present(module, existing):
    client = module.client
    params = module.params
    wanted = wanted_view(params)
    stored = client.get_fim_policy(existing["id"]) if existing else None
    if stored is None:
        before = {}
        changes = dict(wanted, name=params["name"])
        changes.setdefault("platform", "linux")
        after = dict(changes)
    else:
        before = current_view(stored, wanted)
        changes = dict((key, value) for key, value in wanted.items() if before.get(key) != value)
        after = dict(before, **changes)
    result = {"changed": bool(changes), "name": params["name"], "policy_id": existing["id"] if existing else "",
              "policy": stored or {}}
    if changes:
        body = dict(changes)
        if "rules" in body:
            body["rules"] = api_rules(body["rules"], (stored or {}).get("rules"))
        if module.check_mode:
            result["policy"] = dict(stored or {}, **body)
        else:
            client.require_write_scope()
            if stored is None:
                created = client.create_fim_policy(body)
                result["policy_id"] = created["id"]
                result["policy"] = client.get_fim_policy(created["id"])
            else:
                client.update_fim_policy(stored["id"], body)
                result["policy"] = client.get_fim_policy(stored["id"])
            if "compare" in changes and result["policy"].get("compare") != changes["compare"]:
                # Halo's own API has no such field and ignores unknown ones: say so, never "changed".
                raise HaloClientError("the service did not store compare for FIM policy %s (it answers %r): "
                                      "compare is a halogrid grid feature; Halo sets what FIM compares in "
                                      "its portal settings" % (params["name"], result["policy"].get("compare")))
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def ensure_absent(module, existing):
    client = module.client
    result = {"changed": existing is not None, "name": module.params["name"], "policy_id": "", "policy": {}}
    if existing is None:
        return result
    if module._diff:
        stored = client.get_fim_policy(existing["id"])
        result["diff"] = {"before": current_view(stored, dict.fromkeys(("description", "platform", "rules", "compare"))),
                          "after": {}}
    if not module.check_mode:
        client.require_write_scope()
        client.delete_fim_policy(existing["id"])
    return result


def manage(module):
    existing = find_by_name(module.client.list_fim_policies(), module.params["name"], "FIM policy")
    if module.params["state"] == "absent":
        return ensure_absent(module, existing)
    return ensure_present(module, existing)


def main():
    module = HaloModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            description=dict(type="str"),
            platform=dict(type="str", choices=["linux"]),
            rules=dict(type="list", elements="dict", options=dict(
                target=dict(type="str", required=True),
                description=dict(type="str"),
                recurse=dict(type="bool", default=False),
                critical=dict(type="bool", default=False),
                alert=dict(type="bool", default=False),
                exclusions=dict(type="list", elements="str"),
            )),
            compare=dict(type="list", elements="str", choices=COMPARE_CHOICES),
        ),
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
