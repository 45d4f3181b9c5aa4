# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""What every Halo module shares: the argument spec with the connection options, server
selection, input errors that name the option and never show a secret, and turning a
HaloClientError into one clear ``fail_json`` line."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible.module_utils.common.validation import check_type_dict, check_type_list

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import (
    AUTH_ARGUMENT_SPEC,
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    HaloClient,
    HaloClientError,
)

SERVER_STATES = ["active", "missing", "deactivated"]

# Options that pick servers; documented in the ``cloudpassage.halo.server_selection`` fragment,
# and ``state`` in its ``state`` section (a module whose ``state`` is its own takes the selectors only).
SERVER_SELECTORS_ARGUMENT_SPEC = dict(
    group=dict(type="str"),
    server_ids=dict(type="list", elements="str"),
    hostname=dict(type="str"),
    server_label=dict(type="str"),
)
SERVER_SELECTION_ARGUMENT_SPEC = dict(
    SERVER_SELECTORS_ARGUMENT_SPEC,
    state=dict(type="list", elements="str", choices=SERVER_STATES, default=["active"]),
)
SELECTORS = tuple(SERVER_SELECTORS_ARGUMENT_SPEC)


class HaloBaseModule(AnsibleModule):
    """An AnsibleModule whose input errors name the option and never show a secret; the base
    of every module of the collection, with or without a Halo connection.

    ansible-core (2.17 to 2.19 at least) stops collecting no_log values at the first option of
    the wrong shape, such as a firewall rule given as a string (ansible/ansible#81672), and then
    fails with every argument, secrets included, in the result's ``invocation``; its message
    for that case is the converter's ("dictionary requested, could not parse JSON or
    key=value"), naming no option. Here the secrets are known before validation starts, and
    an option of the wrong shape is named.
    """

    _wrong_shapes = ()
    _validating = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._validating = False

    def _load_params(self):
        # AnsibleModule.__init__ calls this after reading the arguments, before validating them.
        super()._load_params()
        self.no_log_values.update(no_log_values(self.argument_spec, self.params))
        self._wrong_shapes = wrong_shapes(self.argument_spec, self.params)
        self._validating = True

    def fail_json(self, msg, **kwargs):
        validation = getattr(self, "validation_result", None)
        if self._validating and self._wrong_shapes and validation is not None and validation.errors:
            msg = "; ".join(self._wrong_shapes)
        super().fail_json(msg, **kwargs)


class HaloModule(HaloBaseModule):
    """An AnsibleModule with the connection options and a ready ``client``."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(AUTH_ARGUMENT_SPEC)
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)
        if not HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib("requests"), exception=str(REQUESTS_IMPORT_ERROR))
        try:
            self.client = HaloClient.from_params(self.params)
        except HaloClientError as exc:
            self.fail_json(msg=str(exc))

    def run(self, action):
        """Call ``action(self)``, which returns the result dict; a HaloClientError ends the task
        with its one-line message instead of a traceback."""
        try:
            result = action(self)
        except HaloClientError as exc:
            self.fail_json(msg=str(exc))
        self.exit_json(**result)


def select_servers(client, params, require_selector=True):
    """The servers chosen by the selection options, in a stable order (hostname, id).

    ``server_ids`` given as an empty list selects nothing: a playbook that passes the list
    of hosts that passed a scan must never fall back to "every server".
    """
    chosen = [name for name in SELECTORS if params.get(name) is not None]
    if require_selector and not chosen:
        raise HaloClientError("select servers with at least one of: %s" % ", ".join(SELECTORS))
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


def server_entry(server, **fields):
    """A server as a module's result lists it: its id and host name, then ``fields``."""
    entry = {"server_id": server["id"], "hostname": server.get("hostname")}
    entry.update(fields)
    return entry


def no_log_values(argument_spec, params):
    """Every value of a no_log option in ``params`` (or in its environment fallback), in
    sub-options too; values of the wrong shape are passed over, never a reason to stop."""
    found = set()
    if not isinstance(params, Mapping):
        return found
    for name, option in argument_spec.items():
        value = _given(name, option, params)
        if option.get("no_log"):
            found.update(_secret_strings(value if value is not None else _env_fallback(option)))
        sub_spec = option.get("options")
        if sub_spec and value is not None:
            for element in value if isinstance(value, list) else [value]:
                found.update(no_log_values(sub_spec, _as_dict(element)))
    return found


def wrong_shapes(argument_spec, params, prefix=""):
    """What is given as a dict, a list or a list of dicts that Ansible cannot take as one,
    one line each, naming the option by its path (``rules[0].source``)."""
    problems = []
    if not isinstance(params, Mapping):
        return problems
    for name, option in argument_spec.items():
        value = _given(name, option, params)
        if value is None:
            continue
        path = prefix + name
        sub_spec = option.get("options")
        if option.get("type") == "dict":
            value = _as_dict(value)
            if value is None:
                problems.append("%s must be a dict%s, not %s" % (path, _of(sub_spec), _kind(_given(name, option, params))))
            elif sub_spec:
                problems.extend(wrong_shapes(sub_spec, value, path + "."))
        elif option.get("type") == "list":
            try:
                elements = check_type_list(value)
            except TypeError:
                problems.append("%s must be a list, not %s" % (path, _kind(value)))
                continue
            if option.get("elements") != "dict":
                continue
            for index, element in enumerate(elements):
                element_path = "%s[%d]" % (path, index)
                as_dict = _as_dict(element)
                if as_dict is None:
                    problems.append("%s must be a dict%s, not %s" % (element_path, _of(sub_spec), _kind(element)))
                elif sub_spec:
                    problems.extend(wrong_shapes(sub_spec, as_dict, element_path + "."))
    return problems


def _given(name, option, params):
    for key in [name] + list(option.get("aliases") or []):
        if params.get(key) is not None:
            return params[key]
    return None


def _as_dict(value):
    """``value`` as Ansible takes a dict (a mapping, JSON or ``k=v`` text), or None."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            converted = check_type_dict(value)
        except TypeError:
            return None
        return converted if isinstance(converted, Mapping) else None
    return None


def _env_fallback(option):
    fallback = option.get("fallback") or ()
    if len(fallback) < 2 or fallback[0] is not env_fallback:
        return None
    for name in fallback[1]:
        if isinstance(name, str) and name in os.environ:
            return os.environ[name]
    return None


def _secret_strings(value):
    """The strings Ansible masks for a no_log value: the value, or each leaf of a structure."""
    if isinstance(value, str):
        return [value] if value else []
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple, set)):
        return [leaf for element in value for leaf in _secret_strings(element)]
    return [str(value)]


def _of(sub_spec):
    return " (of %s)" % ", ".join(sorted(sub_spec)) if sub_spec else ""


def _kind(value):
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Mapping):
        return "a dict"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a %s" % type(value).__name__
