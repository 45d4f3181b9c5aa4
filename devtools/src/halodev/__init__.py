"""The development tooling of this checkout (not published; `make venv` installs it editable).

    halodev.launchers   a real `halogrid serve` and real `haloagent run` subprocesses for tests
    halodev.trees       prepared root trees that pass or fail the default policies
    halodev.lab         lab hosts: Linux namespaces with sshd on this machine (`halolab`)
    halodev.workloads   the Application Membership Control lab: lab hosts, a grid, playbooks
    halodev.labgrid     lab hosts plus a grid for the molecule scenarios
    halodev.demo        `make demo`

Standard library only at import time: lab hosts run `python -m halodev.lab.boot_sysctl`.
"""

from pathlib import Path

# The checkout this editable install lives in (devtools/src/halodev/): the tools run its
# playbooks and find it as the collection cloudpassage.halo through COLLECTIONS.
REPO = Path(__file__).resolve().parents[3]
COLLECTIONS = REPO / ".collections"


def use_collection():
    """Make `ansible_collections.cloudpassage.halo` importable outside pytest (which has it
    through pytest.ini's pythonpath) with Ansible's own collection loader, as ansible-test does."""
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader([str(COLLECTIONS)])
