#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_server_info
short_description: List the servers Halo knows, by group, name, label, state or id
version_added: 0.2.0
description:
  - Returns the Halo servers that match the selection, with their group, state, addresses,
    platform and agent version.
  - Without any selector, every server in the chosen O(state) is returned.
  - Reads only; changes nothing.
  - Before 0.2.0 this module was called C(cloudpassage.halo.halo_server_facts). That name still
    works but is deprecated and will be removed in 1.0.0; it was renamed because the module
    returns no C(ansible_facts).
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.connection
  - cloudpassage.halo.server_selection
  - cloudpassage.halo.server_selection.state
  - cloudpassage.halo.attributes
  - cloudpassage.halo.attributes.info_module
  - cloudpassage.halo.attributes.actiongroup_halo
"""

EXAMPLES = r"""
- name: List the workloads waiting in the staging group
  cloudpassage.halo.halo_server_info:
    group: ProdWebDirty
  register: dirty

- name: Show their names
  ansible.builtin.debug:
    msg: "{{ dirty.servers | map(attribute='hostname') | list }}"

- name: Find one host, also when its agent stopped reporting
  cloudpassage.halo.halo_server_info:
    hostname: web1
    state: [active, missing]
"""

RETURN = r"""
servers:
  description:
    - The selected servers, sorted by host name, as the Halo API returns them.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Server id.
      type: str
    hostname:
      description: Host name the agent reported.
      type: str
    server_label:
      description: Label given to the agent at installation.
      type: str
    group_id:
      description: Id of the server's group.
      type: str
    group_name:
      description: Name of the server's group.
      type: str
    state:
      description: C(active), C(missing) or C(deactivated).
      type: str
    primary_ip_address:
      description: The server's primary IP address.
      type: str
    connecting_ip_address:
      description: The address the agent connects to Halo from.
      type: str
    interfaces:
      description: Network interfaces (C(name), C(ip)).
      type: list
      elements: dict
    platform:
      description: Operating system family, for example C(debian).
      type: str
    daemon_version:
      description: Version of the Halo agent (daemon).
      type: str
    last_state_change:
      description: When the state last changed (ISO 8601).
      type: str
  sample:
    - id: 5a4c0b0ff1e611e6b5d2d1e3c2f4a1b0
      hostname: web1
      server_label: web1
      group_id: 9b0c4e5af1e611e6b5d2d1e3c2f4a1b0
      group_name: ProdWebDirty
      state: active
      primary_ip_address: 198.18.0.11
      platform: debian
      daemon_version: 0.1.0
"""

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import (
    SERVER_SELECTION_ARGUMENT_SPEC,
    HaloModule,
    select_servers,
)


def list_servers(module):
    return {"changed": False, "servers": select_servers(module.client, module.params, require_selector=False)}


def main():
    module = HaloModule(argument_spec=dict(SERVER_SELECTION_ARGUMENT_SPEC), supports_check_mode=True)
    module.run(list_servers)


if __name__ == "__main__":
    main()
