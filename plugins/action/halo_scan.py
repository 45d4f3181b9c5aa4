# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""halo_scan on the controller, so that a long scan wait prints progress as it goes.

An Ansible module can only answer once, at its end; an action plugin runs in the controller's worker
and its display lines reach ``ansible-playbook`` output (and AWX) while the task runs. The
work itself is the Ansible module's: the same argument spec and ``run_scans`` from module_utils.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import AUTH_ARGUMENT_SPEC, HaloClient, HaloClientError
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import (
    SERVER_SELECTION_ARGUMENT_SPEC,
    select_servers,
)
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_scanning import (
    SCAN_ARGUMENT_SPEC,
    run_scans,
    scan_option_errors,
)

display = Display()


class ActionModule(ActionBase):
    # Only the Halo API is talked to, from the controller: no connection to the target host.
    _requires_connection = False
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        spec = dict(AUTH_ARGUMENT_SPEC)
        spec.update(SERVER_SELECTION_ARGUMENT_SPEC)
        spec.update(SCAN_ARGUMENT_SPEC)
        validated = ArgumentSpecValidator(spec).validate(self._task.args)
        secrets = set(validated._no_log_values)
        secret = self._task.args.get("api_secret")
        if isinstance(secret, str) and secret:
            secrets.add(secret)
        params = validated.validated_parameters
        errors = list(validated.error_messages) or scan_option_errors(params)
        if errors:
            result.update(failed=True, msg="; ".join(errors))
            return remove_values(result, secrets)

        host = task_vars.get("inventory_hostname", "localhost") if task_vars else "localhost"

        def progress(line):
            display.display("halo_scan [%s]: %s" % (host, line))

        try:
            client = HaloClient.from_params(params)
            result.update(run_scans(client, params, self._play_context.check_mode, select_servers, progress))
        except HaloClientError as exc:
            result.update(failed=True, msg=str(exc))
        return remove_values(result, secrets)
