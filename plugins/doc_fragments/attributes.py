# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # What each attribute means, for every module; a module then states its support, and in
    # details what is particular to it.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts, without changing anything.
  diff_mode:
    description: Returns what has changed (or would change, in check mode) when in diff mode.
"""

    # With DOCUMENTATION, for modules that only read.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - Reads only, so it runs the same in check mode.
  diff_mode:
    support: N/A
    details:
      - Changes nothing, so there is nothing to diff.
"""

    # For the modules of the action group in meta/runtime.yml.
    ACTIONGROUP_HALO = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/cloudpassage.halo.halo) in C(module_defaults) to set the connection options once for a play.
    support: full
    membership:
      - cloudpassage.halo.halo
"""
