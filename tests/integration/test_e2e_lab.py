"""The seed's lab end to end on real lab hosts: web1 and web2 get the agent with the tag
NewDirty through playbooks/provision.yml, app1 sits in CriticalApplication whose firewall
drops ProdWebDirty; admission opens the path for web1 (hardened) and only for it.

Real everything: lab hosts (network namespaces, own roots, sshd), a grid on the lab's
controller address, the agents installed by the halo_agent role applying nftables on app1,
ansible-playbook over ssh, ping. The lab is built once for the module (about a minute);
each test asserts one part of the seed's outcome.
"""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_seedlab():
    spec = importlib.util.spec_from_file_location("seedlab", REPO / "scripts" / "lab" / "seedlab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seedlab = _load_seedlab()
_missing = seedlab.missing_requirements()
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_missing), reason="lab hosts cannot run here: "
                                                   + ", ".join(_missing))]

BLOCKED = {"web1": False, "web2": False}
ADMITTED = {"web1": True, "web2": False}


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """Runs the seed's steps once and records what the hosts and the grid showed."""
    observed = {}
    with seedlab.SeedLab(tmp_path_factory.mktemp("seed")) as lab:
        for step in (("playbooks/lab.yml",), ("scripts/lab/workloads.yml",),
                     ("playbooks/provision.yml", "-e", "halo_provision_admit=false")):
            run = lab.playbook(*step)
            assert run.rc == 0, run
        observed["membership_before"] = lab.membership()
        observed["pings_before"] = lab.wait_for_pings(BLOCKED)

        observed["admission"] = lab.playbook("playbooks/provision.yml")
        observed["membership_after"] = lab.membership()
        observed["web2_failed_rules"] = lab.failed_rules("web2")
        observed["pings_after"] = lab.wait_for_pings(ADMITTED)

        observed["second_admission"] = lab.playbook("playbooks/provision.yml")
        observed["membership_final"] = lab.membership()
        observed["pings_final"] = lab.pings()
        yield observed


def test_new_hosts_register_into_staging_and_cannot_reach_the_application(seed):
    assert seed["membership_before"] == {"web1": "ProdWebDirty", "web2": "ProdWebDirty",
                                         "app1": "CriticalApplication"}
    assert seed["pings_before"] == BLOCKED


def test_admission_moves_only_the_compliant_host_and_opens_the_path_for_it_only(seed):
    run = seed["admission"]
    assert run.rc == 0, run
    # The agents were installed by the first run: only the move of web1 changes something.
    assert {host: counts["changed"] for host, counts in run.recap.items()} == {"localhost": 1, "web1": 0, "web2": 0}
    assert '"Promoted to ProdWebClean: web1"' in run.output
    assert seed["membership_after"] == {"web1": "ProdWebClean", "web2": "ProdWebDirty",
                                        "app1": "CriticalApplication"}
    assert seed["pings_after"] == ADMITTED


def test_the_failed_rules_of_the_host_kept_in_staging_are_named(seed):
    output = seed["admission"].output
    assert "Kept in ProdWebDirty: web2" in output
    kept = output[output.index("web2: completed_with_errors"):]
    assert "SSH root login is disabled or key-only (bad)" in kept
    assert "PermitRootLogin: expected no|prohibit-password|without-password, actual yes" in kept
    # The grid stored the same verdict: web2's latest scan fails that rule.
    assert "SSH root login is disabled or key-only" in seed["web2_failed_rules"]


def test_a_second_run_changes_nothing(seed):
    run = seed["second_admission"]
    assert (run.rc, run.changed) == (0, 0), run
    assert seed["membership_final"] == seed["membership_after"]
    assert seed["pings_final"] == ADMITTED
