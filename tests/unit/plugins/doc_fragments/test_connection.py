"""The cloudpassage.halo.connection fragment: the connection options of every module and of
the inventory plugin, as ansible-doc renders them, follow AUTH_ARGUMENT_SPEC."""

import os

import pytest
import yaml

from ansible_collections.cloudpassage.halo.plugins.doc_fragments import connection
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import AUTH_ARGUMENT_SPEC

MODULES_DIR = os.path.join(os.path.dirname(os.path.dirname(connection.__file__)), "modules")
# halo_admission_report writes reports and talks to no Halo API.
CONNECTED_MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR)
                           if name.endswith(".py") and name != "halo_admission_report.py")


def test_the_fragment_documents_exactly_the_connection_options():
    documented = yaml.safe_load(connection.ModuleDocFragment.DOCUMENTATION)["options"]
    plugin_only = yaml.safe_load(connection.ModuleDocFragment.PLUGINS)["options"]
    assert set(documented) == set(plugin_only) == set(AUTH_ARGUMENT_SPEC)
    # PLUGINS adds sources only; every description lives once, in DOCUMENTATION.
    assert all(set(entry) == {"env"} for entry in plugin_only.values())


@pytest.mark.parametrize("name", CONNECTED_MODULES)
def test_each_module_documents_the_connection_options_as_its_spec(rendered_doc, name):
    options = rendered_doc("modules", name)["options"]
    for option, spec in AUTH_ARGUMENT_SPEC.items():
        assert options[option]["type"] == spec["type"], (name, option)
        assert options[option].get("default") == spec.get("default"), (name, option)
        assert options[option].get("required", False) == spec.get("required", False), (name, option)
        # Modules may not carry env entries: the spec's env fallback is in the description.
        assert "env" not in options[option], (name, option)
        assert "E(%s)" % spec["fallback"][1][0] in " ".join(options[option]["description"]), (name, option)


def test_the_inventory_plugin_reads_the_spec_environment_variables(rendered_doc):
    options = rendered_doc("inventory", "halo")["options"]
    for option, spec in AUTH_ARGUMENT_SPEC.items():
        assert [entry["name"] for entry in options[option]["env"]] == spec["fallback"][1], option
        assert options[option].get("default") == spec.get("default"), option
        assert options[option].get("required", False) == spec.get("required", False), option
        # The description is the modules' one, from the same fragment.
        assert options[option]["description"] == rendered_doc("modules", "halo_scan")["options"][option]["description"]
        # ca_path is read as a str there: Ansible turns an empty path into the working directory.
        assert options[option]["type"] == ("str" if option == "ca_path" else spec["type"]), option
