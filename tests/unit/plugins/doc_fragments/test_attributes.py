"""The cloudpassage.halo.attributes fragment: every module states its check and diff mode
support over the shared meanings, and the action group attribute matches meta/runtime.yml."""

import os

import pytest
import yaml

from ansible_collections.cloudpassage.halo.plugins.doc_fragments import attributes

MODULES_DIR = os.path.join(os.path.dirname(os.path.dirname(attributes.__file__)), "modules")
MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith(".py"))
RUNTIME = os.path.join(os.path.dirname(os.path.dirname(MODULES_DIR)), "meta", "runtime.yml")
SHARED = yaml.safe_load(attributes.ModuleDocFragment.DOCUMENTATION)["attributes"]


@pytest.mark.parametrize("name", MODULES)
def test_each_module_states_its_support_with_the_shared_meaning(rendered_doc, name):
    doc_attributes = rendered_doc("modules", name)["attributes"]
    for attribute in ("check_mode", "diff_mode"):
        assert doc_attributes[attribute]["description"] == SHARED[attribute]["description"], (name, attribute)
        assert doc_attributes[attribute]["support"] in ("full", "partial", "none", "N/A"), (name, attribute)
        assert doc_attributes[attribute]["details"], (name, attribute)
    # Every module of the collection supports check mode.
    assert doc_attributes["check_mode"]["support"] == "full", name


@pytest.mark.parametrize("name", MODULES)
def test_the_action_group_attribute_is_the_runtime_action_group(rendered_doc, name):
    with open(RUNTIME) as runtime:
        members = yaml.safe_load(runtime)["action_groups"]["halo"]
    action_group = rendered_doc("modules", name)["attributes"].get("action_group")
    if name in members:
        assert action_group["membership"] == ["cloudpassage.halo.halo"], name
        assert action_group["support"] == "full", name
    else:
        assert action_group is None, name
