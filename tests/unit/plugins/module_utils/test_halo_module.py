"""plugins/module_utils/halo_module.py: input of the wrong shape is named by its option path,
and never a reason to show a secret.
The module runs are in-process but with AnsibleModule's real output (what the controller
would receive), since the masking happens there."""

import contextlib
import io
import json

import pytest
from ansible.module_utils.basic import env_fallback

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_firewall import RULE_SPEC
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import (
    SELECTORS,
    SERVER_SELECTION_ARGUMENT_SPEC,
    SERVER_SELECTORS_ARGUMENT_SPEC,
    HaloBaseModule,
    no_log_values,
    server_entry,
    wrong_shapes,
)

RULES = {"rules": dict(type="list", elements="dict", options=RULE_SPEC)}
NESTED = {
    "token": dict(type="str", no_log=True, fallback=(None, [])),
    "mail": dict(type="dict", options={"password": dict(type="str", no_log=True), "to": dict(type="list")}),
    "hooks": dict(type="list", elements="dict", options={
        "url": dict(type="str", no_log=True), "secret": dict(type="str", no_log=True)}),
}


@pytest.mark.parametrize("params, expected", [
    ({"rules": ["allow ssh"]}, ["rules[0] must be a dict (of action, active, chain, comment, log, log_prefix, "
                                "service, source, states), not a string"]),
    ({"rules": [{"action": "ACCEPT", "source": "web"}]}, ["rules[0].source must be a dict (of group, zone), not a string"]),
    ({"rules": [{"action": "ACCEPT"}, {"action": "DROP", "service": ["ssh", 22]}]},
     ["rules[1].service must be a dict (of name, port, protocol), not a list"]),
    ({"rules": {"action": "ACCEPT"}}, ["rules must be a list, not a dict"]),
    ({"rules": [7, None]}, ["rules[0] must be a dict (of action, active, chain, comment, log, log_prefix, service, "
                            "source, states), not a number", "rules[1] must be a dict (of action, active, chain, "
                            "comment, log, log_prefix, service, source, states), not a NoneType"]),
    # what Ansible itself takes as a dict or a list is not a wrong shape
    ({"rules": [{"action": "ACCEPT", "source": "group=web"}, '{"action": "DROP"}']}, []),
    ({"rules": "action=ACCEPT"}, []),
    ({"rules": None}, []),
])
def test_wrong_shapes_are_named_by_their_path(params, expected):
    assert wrong_shapes(RULES, params) == expected


def test_no_log_values_are_found_whatever_else_is_malformed(monkeypatch):
    monkeypatch.setenv("HALO_API_SECRET_KEY", "from-the-env")
    spec = dict(NESTED, api_secret=dict(type="str", no_log=True, fallback=(env_fallback, ["HALO_API_SECRET_KEY"])))
    hooks = ["junk", {"url": "https://hook/abc", "secret": 42}, {"url": ["x-part", "y-part"]}]
    params = {"token": "t0ken", "mail": "not a dict", "hooks": hooks}
    assert no_log_values(spec, params) == {"t0ken", "https://hook/abc", "42", "x-part", "y-part", "from-the-env"}


@contextlib.contextmanager
def module_output(args):
    """The JSON a module prints for the controller, and whether it exited."""
    from ansible.module_utils.testing import patch_module_args

    out = io.StringIO()
    printed = {}
    with patch_module_args(args), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            yield printed
    printed.update(json.loads(out.getvalue().strip().splitlines()[-1]), raw=out.getvalue())


@pytest.mark.parametrize("args", [
    {"token": "TOPSECRET", "hooks": ["a string"]},
    {"token": "TOPSECRET", "hooks": [{"url": "u"}, ["a list"]]},
    {"mail": {"password": "TOPSECRET", "to": {"a": 1}}, "hooks": "[not json"},
    {"hooks": [{"secret": "TOPSECRET"}, "junk"]},
])
def test_a_malformed_argument_never_shows_a_secret(args):
    with module_output(args) as printed:
        HaloBaseModule(argument_spec=NESTED).exit_json(changed=False)
    assert printed["failed"] is True
    assert "TOPSECRET" not in printed["raw"]
    assert "could not parse JSON" not in printed["msg"], printed["msg"]


def test_a_well_formed_argument_reaches_the_module_unchanged():
    with module_output({"token": "t0ken", "hooks": [{"url": "https://hook"}], "mail": "to=a@b"}) as printed:
        module = HaloBaseModule(argument_spec=NESTED)
        module.exit_json(lengths=[len(module.params["token"]), len(module.params["hooks"][0]["url"])],
                         to=module.params["mail"]["to"])
    assert "failed" not in printed
    assert printed["lengths"] == [5, 12] and printed["to"] == ["a@b"]


def test_a_server_entry_is_its_id_and_host_name_then_the_fields_given():
    server = {"id": "s1", "hostname": "web1", "group_name": "ProdWebDirty"}
    assert server_entry(server) == {"server_id": "s1", "hostname": "web1"}
    assert server_entry(server, baseline_id=None, group_name="Quarantine") == {
        "server_id": "s1", "hostname": "web1", "baseline_id": None, "group_name": "Quarantine"}
    assert server_entry({"id": "s2"}) == {"server_id": "s2", "hostname": None}


def test_the_selection_is_the_selectors_and_the_server_state():
    assert SELECTORS == ("group", "server_ids", "hostname", "server_label")
    assert set(SERVER_SELECTION_ARGUMENT_SPEC) == set(SELECTORS) | {"state"}
    assert all(SERVER_SELECTION_ARGUMENT_SPEC[name] == SERVER_SELECTORS_ARGUMENT_SPEC[name] for name in SELECTORS)
