#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_group_move
short_description: Move Halo servers to a server group
version_added: 0.1.0
description:
  - Moves every selected server into O(destination_group). Halo then applies that group's
    policies and firewall to it.
  - A server already in the destination group is left alone, so a second run changes nothing.
  - An unknown destination fails before anything moves, naming the groups that exist.
  - With O(from_group), a server moves only if it is still in that group; each server is read
    again just before its own move, and one that an operator (or another job) has moved
    elsewhere meanwhile is left where it is and reported in RV(left_alone). The admission role
    uses this so that only servers still in the group their scan was judged in are promoted.
  - The Halo API has no compare-and-set, so a window remains between that last read and the
    move (one API call long); a server moved by someone else inside it still moves.
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.connection
  - cloudpassage.halo.server_selection
  - cloudpassage.halo.server_selection.state
  - cloudpassage.halo.attributes
  - cloudpassage.halo.attributes.actiongroup_halo
attributes:
  check_mode:
    support: full
    details: In check mode nothing moves; the result says what would move.
  diff_mode:
    support: full
    details: The diff shows each server's group before and after.
options:
  destination_group:
    description:
      - The group to move the servers to, by name or id.
    type: str
    required: true
  from_group:
    description:
      - Move a server only while it is still in this group (by name or id), read again right
        before its move; others are left alone and reported in RV(left_alone).
    type: str
  max_workers:
    description:
      - How many servers are moved at the same time (each one's re-read and move are one
        after the other). Halo's API rate limit is per key; lower this when other jobs share
        the key.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Promote the servers that passed their scan
  cloudpassage.halo.halo_group_move:
    server_ids: "{{ scan.results | selectattr('passed') | map(attribute='server_id') | list }}"
    destination_group: ProdWebClean

- name: Promote the servers that passed, unless someone moved them out of staging meanwhile
  cloudpassage.halo.halo_group_move:
    server_ids: "{{ scan.results | selectattr('passed') | map(attribute='server_id') | list }}"
    from_group: ProdWebDirty
    destination_group: ProdWebClean

- name: Put the application server into the protected group
  cloudpassage.halo.halo_group_move:
    hostname: app1
    destination_group: CriticalApplication
"""

RETURN = r"""
moved:
  description: Servers moved (or, in check mode, that would move).
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
    from_group:
      description: Name of the group the server was in.
      type: str
    to_group:
      description: Name of the destination group.
      type: str
unchanged:
  description: Servers that were already in the destination group.
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
left_alone:
  description: Servers not moved because they were no longer in O(from_group), with the group they are in now.
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
    group_name:
      description: Name of the group the server is in now.
      type: str
destination_group:
  description: The destination group (C(id), C(name)).
  returned: always
  type: dict
"""

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloClientError
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import (
    SERVER_SELECTION_ARGUMENT_SPEC,
    HaloModule,
    select_servers,
    server_entry,
)


def move(module):
    client = module.client
    destination = client.find_group(module.params["destination_group"])
    source = client.find_group(module.params["from_group"]) if module.params["from_group"] else None
    servers = select_servers(client, module.params)
    to_move = [server for server in servers if server.get("group_id") != destination["id"]]
    if to_move and not module.check_mode:
        client.require_write_scope()

    def move_one(server):
        """('moved' | 'left_alone', entry), or ('failed', error); one server's failure does not
        stop the others, and the task then fails saying what moved."""
        try:
            if source is not None:
                # Re-read just before the move: the group the caller judged it in may be stale.
                current = client.get_server(server["id"])
                if current.get("group_id") != source["id"]:
                    return "left_alone", server_entry(server, group_name=current.get("group_name"))
            if not module.check_mode:
                client.move_server(server["id"], destination["id"])
        except HaloClientError as exc:
            return "failed", "%s: %s" % (server.get("hostname") or server["id"], exc)
        return "moved", server_entry(server, from_group=server.get("group_name"), to_group=destination.get("name"))

    workers = max(1, min(module.params["max_workers"], len(to_move) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(move_one, to_move))  # in the order of the selection
    moved = [entry for kind, entry in outcomes if kind == "moved"]
    left_alone = [entry for kind, entry in outcomes if kind == "left_alone"]
    failed = [entry for kind, entry in outcomes if kind == "failed"]
    if failed:
        # Say what did move: the user must know the state the task left behind.
        done = ", ".join(entry["hostname"] or entry["server_id"] for entry in moved) or "none"
        raise HaloClientError("%s (moved: %s)" % ("; ".join(failed), done))
    result = {
        "changed": bool(moved),
        "moved": moved,
        "unchanged": [server_entry(server) for server in servers if server.get("group_id") == destination["id"]],
        "left_alone": left_alone,
        "destination_group": {"id": destination["id"], "name": destination.get("name")},
    }
    if module._diff:
        result["diff"] = {
            "before": dict((entry["hostname"] or entry["server_id"], entry["from_group"]) for entry in moved),
            "after": dict((entry["hostname"] or entry["server_id"], entry["to_group"]) for entry in moved),
        }
    return result


def main():
    argument_spec = dict(SERVER_SELECTION_ARGUMENT_SPEC)
    argument_spec.update(destination_group=dict(type="str", required=True), from_group=dict(type="str"),
                         max_workers=dict(type="int", default=10))
    module = HaloModule(argument_spec=argument_spec, supports_check_mode=True)
    module.run(move)


if __name__ == "__main__":
    main()
