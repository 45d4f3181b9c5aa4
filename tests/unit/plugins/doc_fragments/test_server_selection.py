"""The cloudpassage.halo.server_selection fragment follows SERVER_SELECTION_ARGUMENT_SPEC, in
every module that takes it, as ansible-doc renders it."""

import pytest
import yaml

from ansible_collections.cloudpassage.halo.plugins.doc_fragments import server_selection
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import SERVER_SELECTION_ARGUMENT_SPEC

DOCUMENTED = yaml.safe_load(server_selection.ModuleDocFragment.DOCUMENTATION)["options"]


@pytest.mark.parametrize("option", sorted(SERVER_SELECTION_ARGUMENT_SPEC))
def test_each_selector_is_documented_as_its_spec(option):
    spec = SERVER_SELECTION_ARGUMENT_SPEC[option]
    documented = DOCUMENTED[option]
    assert documented["type"] == spec["type"]
    assert documented.get("elements") == spec.get("elements")
    assert documented.get("choices") == spec.get("choices")
    assert documented.get("default") == spec.get("default")


def test_nothing_else_is_documented():
    assert set(DOCUMENTED) == set(SERVER_SELECTION_ARGUMENT_SPEC)


@pytest.mark.parametrize("name", ["halo_scan", "halo_group_move", "halo_server_info"])
def test_the_modules_that_select_servers_render_the_selectors(rendered_doc, name):
    options = rendered_doc("modules", name)["options"]
    assert all(options[option]["description"] == DOCUMENTED[option]["description"] for option in DOCUMENTED)
