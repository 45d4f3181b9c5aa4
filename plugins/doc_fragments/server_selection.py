# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # SERVER_SELECTORS_ARGUMENT_SPEC in plugins/module_utils/halo_module.py.
    DOCUMENTATION = r"""
options:
  group:
    description:
      - Select the servers of this server group, by name or id.
    type: str
  server_ids:
    description:
      - Select these servers by id.
      - An empty list selects no server at all (never every server), so the list of hosts
        that passed a scan can be passed on safely.
    type: list
    elements: str
  hostname:
    description:
      - Select servers with this host name.
    type: str
  server_label:
    description:
      - Select servers with this server label.
    type: str
notes:
  - Selectors combine; a server must match all of those given.
"""

    # With DOCUMENTATION, for the modules whose O(state) selects servers
    # (SERVER_SELECTION_ARGUMENT_SPEC); a module with a state of its own leaves it out.
    STATE = r"""
options:
  state:
    description:
      - Select servers in these states.
    type: list
    elements: str
    choices: [active, missing, deactivated]
    default: [active]
"""
