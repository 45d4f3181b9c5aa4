#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_fim_baseline
short_description: Take, retake or delete the file integrity (FIM) baselines of Halo servers
version_added: 0.2.0
description:
  - A FIM baseline is the inventory of what a FIM policy watches on one server (each file's
    SHA-256, mode, owner, size, link target), taken by the server's agent. A C(fim) scan
    (M(cloudpassage.halo.halo_scan)) reports every object added, removed or changed since.
  - With O(state=present), every selected server that has no active baseline for O(policy)
    gets one; a failed or expired baseline is taken again. With O(rebaseline=true) the active
    baselines are taken again as well, replacing the old inventory (after an approved change).
  - The task then waits, up to O(wait_timeout), until each baseline it asked for is active or
    failed. It fails, naming the server and quoting the service's reason, when a baseline failed
    or is still pending, since a server without an active baseline cannot pass a C(fim) scan.
  - With O(state=absent), the baselines of O(policy) on the selected servers are deleted.
  - Uses Halo's C(/v1/fim_policies/{id}/baselines) API, which the halogrid grid serves as well.
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.connection
  - cloudpassage.halo.server_selection
  - cloudpassage.halo.attributes
  - cloudpassage.halo.attributes.actiongroup_halo
attributes:
  check_mode:
    support: full
    details:
      - In check mode no baseline is taken, retaken or deleted, and nothing is waited for;
        the result says what would be done and returns the baselines as they are.
  diff_mode:
    support: none
    details: The result lists the baselines created, taken again or deleted instead.
options:
  policy:
    description:
      - The FIM policy, by name or id.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure each selected server has an active baseline for O(policy).
      - V(absent) deletes the baselines of O(policy) on the selected servers.
    type: str
    choices: [present, absent]
    default: present
  rebaseline:
    description:
      - With O(state=present), take the baselines again even where one is active, so that the
        servers' files as they are now become what later scans compare with.
      - A task with O(rebaseline=true) always reports a change.
    type: bool
    default: false
  expires:
    description:
      - Days until a baseline this task takes expires (an expired baseline no longer lets a scan
        judge the server); not set, it never expires.
    type: int
  comment:
    description:
      - A comment stored with each baseline this task takes, for example the change it approves.
    type: str
  wait:
    description:
      - Wait until each baseline this task asked for is active or failed.
      - V(false) returns at once with the baselines C(pending); nothing then fails on a failed baseline.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for all baselines together; one still pending then fails the task.
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between two looks at the pending baselines.
    type: float
    default: 2
notes:
  - At least one of O(group), O(server_ids), O(hostname) and O(server_label) is required.
  - With O(state=present) only active servers are selected (a baseline is taken by the
    running agent); with O(state=absent) servers in every state are, so the baselines of a
    deactivated server can be deleted as well.
  - Changing a FIM policy's rules or what it compares fails its baselines on the service;
    this module with O(state=present) then takes them again.
"""

EXAMPLES = r"""
- name: Baseline every server of the staging group that has none yet
  cloudpassage.halo.halo_fim_baseline:
    policy: Core system files
    group: ProdWebDirty
    wait_timeout: 600
  register: fim_baselines

- name: Accept a server's files as they are now, after an approved upgrade
  cloudpassage.halo.halo_fim_baseline:
    policy: Core system files
    hostname: web1
    rebaseline: true
    comment: "CHG-1234: openssl upgrade"

- name: Drop the baselines of a retired server
  cloudpassage.halo.halo_fim_baseline:
    policy: Core system files
    server_label: web9
    state: absent
"""

RETURN = r"""
policy_id:
  description: Id of the FIM policy.
  returned: always
  type: str
  sample: 0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e
baselines:
  description:
    - With O(state=present), the baseline of each selected server as the API describes it after
      the task, in host name order (in check mode, as it is; a server that has none yet is
      missing here and listed in RV(created)).
    - With O(state=absent), the baselines deleted (or that would be).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Baseline id.
      type: str
    policy_id:
      description: FIM policy id.
      type: str
    server_id:
      description: Server id.
      type: str
    server_hostname:
      description: Host name of the server.
      type: str
    status:
      description: C(pending) (the agent's inventory has not arrived yet), C(active), C(failed) or C(expired).
      type: str
    reason:
      description: Why the baseline failed or expired.
      type: str
    object_count:
      description: How many objects the baseline holds.
      type: int
    comment:
      description: The baseline's comment.
      type: str
    expires_at:
      description: When it expires (ISO 8601), or null.
      type: str
    effective_at:
      description: When its inventory was taken (ISO 8601).
      type: str
  sample:
    - id: 4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091
      policy_id: 0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e
      server_id: 7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d
      server_hostname: web1
      status: active
      reason: null
      object_count: 1843
      comment: null
      expires_at: null
      effective_at: "2026-03-01T10:15:02Z"
created:
  description: Servers that got a new baseline (or would).
  returned: always
  type: list
  elements: dict
  contains:
    server_id:
      description: Server id.
      type: str
    hostname:
      description: Host name.
      type: str
    baseline_id:
      description: The baseline's id; null in check mode.
      type: str
rebaselined:
  description: Servers whose baseline was taken again (or would be), because it had failed or expired or O(rebaseline=true) asked for it.
  returned: always
  type: list
  elements: dict
  contains:
    server_id:
      description: Server id.
      type: str
    hostname:
      description: Host name.
      type: str
    baseline_id:
      description: The baseline's id.
      type: str
deleted:
  description: Baselines deleted (or that would be) with O(state=absent).
  returned: always
  type: list
  elements: dict
  contains:
    server_id:
      description: Server id.
      type: str
    hostname:
      description: Host name.
      type: str
    baseline_id:
      description: The baseline's id.
      type: str
"""

import time

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloClientError
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import (
    SELECTORS,
    SERVER_SELECTORS_ARGUMENT_SPEC,
    SERVER_STATES,
    HaloModule,
    select_servers,
    server_entry,
)

DONE = ("active", "failed", "expired")


def _newest(baselines):
    return sorted(baselines, key=lambda b: (b.get("effective_at") or "", b.get("updated_at") or "",
                                            b.get("created_at") or ""))[-1]


def select(client, params, state):
    # ``state`` is the baseline's here, so the servers' states are chosen by it (see notes).
    selection = dict((key, params[key]) for key in SELECTORS)
    selection["state"] = ["active"] if state == "present" else SERVER_STATES
    return select_servers(client, selection)


def ensure_present(module, policy, servers, by_server):
    client = module.client
    params = module.params
    result = {"created": [], "rebaselined": [], "deleted": []}
    waiting = []  # (server, baseline) of the baselines to wait for
    kept = []
    for server in servers:
        own = by_server.get(server["id"], [])
        active = [b for b in own if b.get("status") == "active"]
        pending = [b for b in own if b.get("status") == "pending"]
        if active and not params["rebaseline"]:
            kept.append((server, _newest(active)))
        elif pending and not params["rebaseline"]:
            # Already being taken (by another run): wait for it, changing nothing.
            waiting.append((server, _newest(pending)))
        elif own:
            # Retake the newest (failed, expired, or rebaseline asked): one baseline per server and policy.
            baseline = _newest(active or pending or own)
            result["rebaselined"].append(server_entry(server, baseline_id=baseline.get("id")))
            if module.check_mode:
                kept.append((server, baseline))
            else:
                client.require_write_scope()
                retaken = client.rebaseline_fim(policy["id"], baseline["id"], server["id"],
                                                params["expires"], params["comment"])
                waiting.append((server, retaken))
        else:
            entry = server_entry(server, baseline_id=None)
            result["created"].append(entry)
            if not module.check_mode:
                client.require_write_scope()
                baseline = client.create_fim_baseline(policy["id"], server["id"], params["expires"], params["comment"])
                entry["baseline_id"] = baseline["id"]
                waiting.append((server, baseline))
    result["changed"] = bool(result["created"] or result["rebaselined"])
    if params["wait"] and waiting:
        waiting = wait_for(client, policy, waiting, params["wait_timeout"], params["poll_interval"])
    order = dict((server["id"], index) for index, server in enumerate(servers))
    everything = sorted(kept + waiting, key=lambda item: order[item[0]["id"]])
    result["baselines"] = [baseline for dummy, baseline in everything]
    if params["wait"] and not module.check_mode:
        result["problems"] = problems(policy, everything)
    return result


def wait_for(client, policy, waiting, timeout, interval, clock=time.monotonic, sleep=time.sleep):
    """The baselines again, once each is active, failed or expired, or the time is up."""
    deadline = clock() + timeout
    current = list(waiting)
    while True:
        open_ones = [index for index, (dummy, baseline) in enumerate(current) if baseline.get("status") not in DONE]
        if not open_ones or clock() >= deadline:
            return current
        sleep(min(interval, max(0.0, deadline - clock())))
        for index in open_ones:
            server, baseline = current[index]
            current[index] = (server, client.get_fim_baseline(policy["id"], baseline["id"]))


def problems(policy, baselines):
    """One line per server whose baseline is not active: the task fails with them."""
    lines = []
    for server, baseline in baselines:
        status = baseline.get("status")
        if status == "active":
            continue
        name = server.get("hostname") or server["id"]
        if status == "pending":
            lines.append("the baseline of FIM policy %s on %s is still pending (is the agent running?)"
                         % (policy["name"], name))
        else:
            lines.append("the baseline of FIM policy %s on %s is %s: %s"
                         % (policy["name"], name, status, baseline.get("reason") or "no reason given"))
    return lines


def ensure_absent(module, policy, servers, by_server):
    client = module.client
    result = {"created": [], "rebaselined": [], "deleted": [], "baselines": []}
    for server in servers:
        for baseline in by_server.get(server["id"], []):
            result["deleted"].append(server_entry(server, baseline_id=baseline.get("id")))
            result["baselines"].append(baseline)
            if not module.check_mode:
                client.require_write_scope()
                client.delete_fim_baseline(policy["id"], baseline["id"])
    result["changed"] = bool(result["deleted"])
    return result


def manage(module):
    client = module.client
    params = module.params
    policy = client.find_fim_policy(params["policy"])
    servers = select(client, params, params["state"])
    by_server = {}
    if servers:
        for baseline in client.list_fim_baselines(policy["id"]):
            by_server.setdefault(baseline.get("server_id"), []).append(baseline)
    action = ensure_absent if params["state"] == "absent" else ensure_present
    result = action(module, policy, servers, by_server)
    result["policy_id"] = policy["id"]
    return result


def main():
    # ``state`` is the baselines' own, so only the selectors are shared (see select()).
    argument_spec = dict(SERVER_SELECTORS_ARGUMENT_SPEC)
    argument_spec.update(
        policy=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        rebaseline=dict(type="bool", default=False),
        expires=dict(type="int"),
        comment=dict(type="str"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        poll_interval=dict(type="float", default=2),
    )
    module = HaloModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    errors = []
    if params["wait_timeout"] < 1:
        errors.append("wait_timeout must be at least 1, got %s" % params["wait_timeout"])
    if params["poll_interval"] <= 0:
        errors.append("poll_interval must be more than 0, got %s" % params["poll_interval"])
    if params["expires"] is not None and params["expires"] < 1:
        errors.append("expires must be at least 1 (days), got %s" % params["expires"])
    if errors:
        module.fail_json(msg="; ".join(errors))
    try:
        result = manage(module)
    except HaloClientError as exc:
        module.fail_json(msg=str(exc))
    failures = result.pop("problems", None)
    if failures:
        # Fail closed: a server without an active baseline cannot be judged by a fim scan.
        module.fail_json(msg="; ".join(failures), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
