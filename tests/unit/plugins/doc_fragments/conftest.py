"""The collection's plugin documentation as ansible-doc shows it: fragments merged."""

import os

import pytest


def rendered_doc(kind, name):
    """DOCUMENTATION of plugins/<kind>/<name>.py with its doc fragments merged in."""
    # Imported here, not at the top: this conftest loads before the root conftest has set up
    # Ansible's collection loader.
    from ansible.plugins.loader import fragment_loader
    from ansible.utils.plugin_docs import get_docstring

    from ansible_collections.cloudpassage.halo.plugins.doc_fragments import connection

    path = os.path.join(os.path.dirname(os.path.dirname(connection.__file__)), kind, name + ".py")
    return get_docstring(path, fragment_loader, collection_name="cloudpassage.halo", is_module=kind == "modules")[0]


@pytest.fixture(name="rendered_doc")
def rendered_doc_fixture():
    return rendered_doc
