# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every Halo module shares: the argument spec with the connection options, server
selection, and turning a HaloError into one clear ``fail_json`` line."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import (
    AUTH_ARGUMENT_SPEC,
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    HaloClient,
    HaloError,
)

SERVER_STATES = ["active", "missing", "deactivated"]

# Options that pick servers; documented in the ``cloudpassage.halo.server_selection`` fragment.
SERVER_SELECTION_ARGUMENT_SPEC = dict(
    group=dict(type="str"),
    server_ids=dict(type="list", elements="str"),
    hostname=dict(type="str"),
    server_label=dict(type="str"),
    state=dict(type="list", elements="str", choices=SERVER_STATES, default=["active"]),
)
SELECTORS = ("group", "server_ids", "hostname", "server_label")


class HaloModule(AnsibleModule):
    """An AnsibleModule with the connection options and a ready ``client``."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(AUTH_ARGUMENT_SPEC)
        spec.update(argument_spec)
        super(HaloModule, self).__init__(argument_spec=spec, **kwargs)
        if not HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib("requests"), exception=str(REQUESTS_IMPORT_ERROR))
        try:
            self.client = HaloClient.from_params(self.params)
        except HaloError as exc:
            self.fail_json(msg=str(exc))

    def run(self, action):
        """Call ``action(self)``, which returns the result dict; a HaloError ends the task
        with its one-line message instead of a traceback."""
        try:
            result = action(self)
        except HaloError as exc:
            self.fail_json(msg=str(exc))
        self.exit_json(**result)


def select_servers(client, params, require_selector=True):
    """The servers chosen by the selection options, in a stable order (hostname, id).

    ``server_ids`` given as an empty list selects nothing: a playbook that passes the list
    of hosts that passed a scan must never fall back to "every server".
    """
    chosen = [name for name in SELECTORS if params.get(name) is not None]
    if require_selector and not chosen:
        raise HaloError("select servers with at least one of: %s" % ", ".join(SELECTORS))
    filters = {"state": params.get("state") or ["active"]}
    group = None
    if params.get("group") is not None:
        group = client.find_group(params["group"])
        filters["group_id"] = group["id"]
    if params.get("hostname") is not None:
        filters["hostname"] = params["hostname"]
    if params.get("server_label") is not None:
        filters["server_label"] = params["server_label"]
    wanted_ids = params.get("server_ids")
    if wanted_ids is not None and not wanted_ids:
        return []
    servers = client.list_servers(**filters)
    if wanted_ids is not None:
        wanted = set(wanted_ids)
        servers = [server for server in servers if server.get("id") in wanted]
    # The API filters hostname/label itself; filter again so a service that ignores an
    # unknown filter can never widen the selection.
    for key in ("hostname", "server_label"):
        if params.get(key) is not None:
            servers = [server for server in servers if server.get(key) == params[key]]
    if group is not None:
        servers = [server for server in servers if server.get("group_id") == group["id"]]
    return sorted(servers, key=lambda server: (server.get("hostname") or "", server.get("id") or ""))
