"""Application Membership Control end to end on real lab hosts (halodev.workloads): web1 to
web4 get the agent with the tag NewDirty through playbooks/provision.yml, app1 sits in
CriticalApplication whose firewall drops ProdWebDirty; admission with the scans sca, svm and
fim opens the path for web1 (hardened, clean) and only for it: web2 fails its configuration
scan, web3's package database has an openssh-server with a known CVE (the grid imported the
svm test feed), and a binary of web4 changed after its FIM baseline.

Real everything: lab hosts (network namespaces, own roots, sshd), a grid on the lab's
controller address, the agents installed by the halo_agent role applying nftables on app1,
ansible-playbook over ssh, ping. One test, in the flow's order: building the lab takes over
a minute, and one test function keeps it to one lab also under pytest-xdist.
"""

import hashlib
import json
from pathlib import Path

import pytest

from halodev import workloads

_missing = workloads.missing_requirements()
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_missing), reason="lab hosts cannot run here: "
                                                   + ", ".join(_missing))]

BLOCKED = {"web1": False, "web2": False, "web3": False, "web4": False}
ADMITTED = dict(BLOCKED, web1=True)
STAGED = {"web1": "ProdWebDirty", "web2": "ProdWebDirty", "web3": "ProdWebDirty", "web4": "ProdWebDirty",
          "app1": "CriticalApplication"}
ALL_SCANS = ["-e", json.dumps({"halo_admission_scan_modules": ["sca", "svm", "fim"]})]


def kept_reason(output, host):
    """The admission summary's lines about a kept host."""
    start = output.index('"%s: completed_with_errors' % host)
    end = output.find('"web', start + 1)
    return output[start:end if end != -1 else None]


def test_membership_control_end_to_end_on_lab_hosts(tmp_path):
    with workloads.WorkloadLab(tmp_path) as lab:
        assert lab.feed["advisories"] == 2  # halogrid feed import of workloads.FEED
        for step in (("playbooks/lab.yml",), (workloads.WORKLOADS,),
                     ("playbooks/provision.yml", "-e", "halo_provision_admit=false"), (workloads.INTEGRITY,)):
            run = lab.playbook(*step)
            assert run.rc == 0, run

        # The baselines of the staging hosts are taken; then web4's /usr/bin/ls changes, in
        # web4's own root only.
        run = lab.playbook(workloads.TAMPER)
        assert (run.rc, run.recap["web4"]["changed"]) == (0, 1), run
        sums = {host: lab.lab.exec(host, ["sha256sum", "/usr/bin/ls"]).stdout.split()[0] for host in ("web1", "web4")}
        assert sums["web1"] == hashlib.sha256(Path("/usr/bin/ls").read_bytes()).hexdigest() != sums["web4"]

        # All new hosts wait in staging and cannot reach the application.
        assert lab.membership() == STAGED
        assert lab.wait_for_pings(BLOCKED) == BLOCKED

        # Only the host that passes all three scans is admitted, and only its path opens.
        run = lab.playbook("playbooks/provision.yml", *ALL_SCANS)
        assert run.rc == 0, run
        # The agents were installed by the first run: only the move of web1 changes something.
        assert {host: counts["changed"] for host, counts in run.recap.items()} == {
            "localhost": 1, "web1": 0, "web2": 0, "web3": 0, "web4": 0}
        assert '"Promoted to ProdWebClean: web1"' in run.output
        assert lab.membership() == dict(STAGED, web1="ProdWebClean")
        assert lab.wait_for_pings(ADMITTED) == ADMITTED

        # Each host kept in staging is told why, and the grid stored the same verdict.
        assert '"Kept in ProdWebDirty: web2, web3, web4"' in run.output
        web2 = kept_reason(run.output, "web2")
        assert "SSH root login is disabled or key-only (bad)" in web2
        assert "PermitRootLogin: expected no|prohibit-password|without-password, actual yes" in web2
        assert "SSH root login is disabled or key-only" in lab.failed_rules("web2")

        # web3 passed its configuration scan and was kept by svm for its openssh-server.
        web3 = kept_reason(run.output, "web3")
        assert "[critical] vulnerable package openssh-server 1:9.2p1-2+deb12u2" in web3
        assert "expected 1:9.2p1-2+deb12u3 or later, actual 1:9.2p1-2+deb12u2 (CVE-2024-6387)" in web3
        assert lab.failed_rules("web3") == []
        assert lab.vulnerable_packages("web3") == [
            "openssh-server 1:9.2p1-2+deb12u2: CVE-2024-6387 (DSA-5724-1), fixed in 1:9.2p1-2+deb12u3"]

        # web4 passed sca and svm and was kept by fim for the binary changed after its baseline.
        web4 = kept_reason(run.output, "web4")
        assert "/usr/bin/ls" in web4
        assert lab.failed_rules("web4") == [] and lab.vulnerable_packages("web4") == []
        (changed,) = lab.changed_files("web4")
        assert changed == "/usr/bin/ls changed; sha256 %s... -> %s..." % (sums["web1"][:12], sums["web4"][:12])
        # web1 went through the same fim scan and nothing of its watched files changed.
        assert lab.changed_files("web1") == []

        # A second admission run changes nothing.
        second = lab.playbook("playbooks/provision.yml", *ALL_SCANS)
        assert (second.rc, second.changed) == (0, 0), second
        assert lab.membership() == dict(STAGED, web1="ProdWebClean")
        assert lab.pings() == ADMITTED
