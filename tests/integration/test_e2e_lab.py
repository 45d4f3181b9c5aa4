"""Application Membership Control end to end on real lab hosts (halodev.workloads): web1 and
web2 get the agent with the tag NewDirty through playbooks/provision.yml, app1 sits in
CriticalApplication whose firewall drops ProdWebDirty; admission opens the path for web1
(hardened) and only for it.

Real everything: lab hosts (network namespaces, own roots, sshd), a grid on the lab's
controller address, the agents installed by the halo_agent role applying nftables on app1,
ansible-playbook over ssh, ping. One test, in the flow's order: building the lab takes over
a minute, and one test function keeps it to one lab also under pytest-xdist.
"""

import pytest

from halodev import workloads

_missing = workloads.missing_requirements()
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_missing), reason="lab hosts cannot run here: "
                                                   + ", ".join(_missing))]

BLOCKED = {"web1": False, "web2": False}
ADMITTED = {"web1": True, "web2": False}


def test_membership_control_end_to_end_on_lab_hosts(tmp_path):
    with workloads.WorkloadLab(tmp_path) as lab:
        for step in (("playbooks/lab.yml",), (workloads.WORKLOADS,),
                     ("playbooks/provision.yml", "-e", "halo_provision_admit=false")):
            run = lab.playbook(*step)
            assert run.rc == 0, run

        # Steps 9-10: both new hosts wait in staging and cannot reach the application.
        assert lab.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty", "app1": "CriticalApplication"}
        assert lab.wait_for_pings(BLOCKED) == BLOCKED

        # Step 11: only the hardened host is admitted, and only its path opens.
        run = lab.playbook("playbooks/provision.yml")
        assert run.rc == 0, run
        # The agents were installed by the first run: only the move of web1 changes something.
        assert {host: counts["changed"] for host, counts in run.recap.items()} == {"localhost": 1, "web1": 0, "web2": 0}
        assert '"Promoted to ProdWebClean: web1"' in run.output
        assert lab.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty", "app1": "CriticalApplication"}
        assert lab.wait_for_pings(ADMITTED) == ADMITTED

        # The host kept in staging is told why, and the grid stored the same verdict.
        assert '"Kept in ProdWebDirty: web2"' in run.output
        kept = run.output[run.output.index("web2: completed_with_errors"):]
        assert "SSH root login is disabled or key-only (bad)" in kept
        assert "PermitRootLogin: expected no|prohibit-password|without-password, actual yes" in kept
        assert "SSH root login is disabled or key-only" in lab.failed_rules("web2")

        # A second admission run changes nothing.
        second = lab.playbook("playbooks/provision.yml")
        assert (second.rc, second.changed) == (0, 0), second
        assert lab.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty", "app1": "CriticalApplication"}
        assert lab.pings() == ADMITTED
