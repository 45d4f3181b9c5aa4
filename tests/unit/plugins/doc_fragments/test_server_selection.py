"""The cloudpassage.halo.server_selection fragment follows SERVER_SELECTION_ARGUMENT_SPEC (the
selectors in DOCUMENTATION, the servers' state in the ``state`` section), in every module that
takes it, as ansible-doc renders it."""

import pytest
import yaml

from ansible_collections.cloudpassage.halo.plugins.doc_fragments import server_selection
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import (
    SERVER_SELECTION_ARGUMENT_SPEC,
    SERVER_SELECTORS_ARGUMENT_SPEC,
)

SELECTORS = yaml.safe_load(server_selection.ModuleDocFragment.DOCUMENTATION)["options"]
STATE = yaml.safe_load(server_selection.ModuleDocFragment.STATE)["options"]
DOCUMENTED = dict(SELECTORS, **STATE)


@pytest.mark.parametrize("option", sorted(SERVER_SELECTION_ARGUMENT_SPEC))
def test_each_selector_is_documented_as_its_spec(option):
    spec = SERVER_SELECTION_ARGUMENT_SPEC[option]
    documented = DOCUMENTED[option]
    assert documented["type"] == spec["type"]
    assert documented.get("elements") == spec.get("elements")
    assert documented.get("choices") == spec.get("choices")
    assert documented.get("default") == spec.get("default")


def test_nothing_else_is_documented_and_each_option_once():
    assert set(SELECTORS) == set(SERVER_SELECTORS_ARGUMENT_SPEC)
    assert set(STATE) == set(SERVER_SELECTION_ARGUMENT_SPEC) - set(SERVER_SELECTORS_ARGUMENT_SPEC)


@pytest.mark.parametrize("name", ["halo_scan", "halo_group_move", "halo_server_info"])
def test_the_modules_that_select_servers_render_the_selectors_and_the_state(rendered_doc, name):
    options = rendered_doc("modules", name)["options"]
    assert all(options[option]["description"] == DOCUMENTED[option]["description"] for option in DOCUMENTED)


def test_a_module_with_a_state_of_its_own_renders_the_selectors_only(rendered_doc):
    options = rendered_doc("modules", "halo_fim_baseline")["options"]
    assert all(options[option]["description"] == SELECTORS[option]["description"] for option in SELECTORS)
    assert options["state"]["choices"] == ["present", "absent"]
