"""halo_scan with module svm, run by real ansible-playbook against a real grid and a real agent.

The grid's feed is two published Debian advisories in OSV form, with their real packages,
CVEs and fixed versions (grid/tests/fixtures/osv, imported with `halogrid feed import`); the agent scans a prepared Debian 12 tree whose dpkg status
file holds openssh-server 1:9.2p1-2+deb12u2 (vulnerable to CVE-2024-6387, DSA-5724-1). After
the tree's openssh is upgraded to the fixed 1:9.2p1-2+deb12u3, the same task passes the host.
"""

import json

import pytest

from halodev.launchers import AgentProcess
from playbook_env import REPO, trees

FEED = REPO / "grid/tests/fixtures/osv/debian-dsa.json"

PLAYBOOK = """\
- name: Scan for vulnerable packages
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the svm scan
      cloudpassage.halo.halo_scan:
        group: SvmDirty
        module: "{{ module | default('svm') }}"
        svm_fail_on: "{{ fail_on | default('critical') }}"
        scan_timeout: 120
        poll_interval: 0.5
      register: scan
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ scan | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


def dpkg_status(openssh_version, libc6_version="2.36-9+deb12u3"):
    stanza = "Package: {0}\nStatus: install ok installed\nArchitecture: amd64\n{1}Version: {2}\n"
    return "\n".join([
        stanza.format("base-files", "", "12.4+deb12u5"),
        stanza.format("openssh-server", "Source: openssh\n", openssh_version),
        stanza.format("libc6", "Source: glibc\n", libc6_version),
        stanza.format("rsyslog", "", "8.2302.0-1"),
    ])


@pytest.fixture
def vulnerable_host(grid, tmp_path):
    stats = json.loads(grid.grid.cli("feed", "import", "--json", str(FEED)))
    assert stats["advisories"] == 2
    grid.api.create_group("SvmDirty", tag="SvmDirty")
    root = tmp_path / "tree-web3"
    trees.make_compliant_tree(str(root))
    (root / "etc" / "hostname").write_text("web3\n")
    status = root / "var" / "lib" / "dpkg" / "status"
    status.write_text(dpkg_status("1:9.2p1-2+deb12u2"))
    agent = AgentProcess(grid.grid.url, grid.grid.agent_key, root=root, state_dir=tmp_path / "state-web3",
                         tag="SvmDirty", server_label="web3")
    agent.start()
    try:
        agent.wait_registered(grid.api)
        yield agent, status
    finally:
        agent.stop()


def run(grid, tmp_path, *extra):
    playbook = tmp_path / "svm.yml"
    playbook.write_text(PLAYBOOK)
    out = tmp_path / "scan.json"
    if out.exists():
        out.unlink()
    result = grid.playbook(str(playbook), "-e", "out=%s" % out, *extra)
    assert result.rc == 0, result
    return json.loads(out.read_text())


def test_a_vulnerable_host_is_kept_and_passes_after_the_upgrade(grid, vulnerable_host, tmp_path):
    agent, status = vulnerable_host
    scan = run(grid, tmp_path)
    assert (scan["passed_count"], scan["failed_count"], scan["error_count"]) == (0, 1, 0), scan
    (host,) = scan["results"]
    assert host["hostname"] == "web3" and host["passed"] is False and host["error"] is False
    assert host["critical_findings_count"] == 1
    assert host["vulnerable_packages"] == [{
        "name": "openssh-server", "version": "1:9.2p1-2+deb12u2", "fixed_version": "1:9.2p1-2+deb12u3",
        "critical": True, "max_cvss": None, "cves": ["CVE-2024-6387"], "advisories": ["DSA-5724-1"]}]
    # the grid's own record of the scan the task judged
    stored = grid.api.ok("GET", "/v1/scans/%s" % host["scan_id"])["scan"]
    assert stored["module"] == "svm" and stored["server_id"] == agent.server_id
    assert {f["package_name"] for f in stored["findings"]} == {"base-files", "openssh-server", "libc6", "rsyslog"}

    status.write_text(dpkg_status("1:9.2p1-2+deb12u3"))  # the upgrade
    scan = run(grid, tmp_path)
    (host,) = scan["results"]
    assert host["passed"] is True, host
    assert host["vulnerable_packages"] == []
    assert (host["status"], host["critical_findings_count"], host["ok_findings_count"]) == ("completed_clean", 0, 4)


def test_svm_fail_on_any_keeps_a_host_that_critical_lets_pass(grid, vulnerable_host, tmp_path):
    """A package with a non-critical advisory only (a Debian urgency of "low" on a real
    record's shape: the rating is the test's): critical lets the host pass, any keeps it."""
    agent, status = vulnerable_host
    feed = tmp_path / "low.json"
    feed.write_text(json.dumps({
        "id": "DEBIAN-CVE-2099-0001", "upstream": ["CVE-2099-0001"], "affected": [{
            "package": {"ecosystem": "Debian:12", "name": "rsyslog"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "8.2302.0-1+deb12u1"}]}],
            "ecosystem_specific": {"urgency": "low"}}]}))
    grid.grid.cli("feed", "import", str(feed))
    status.write_text(dpkg_status("1:9.2p1-2+deb12u3"))
    lenient = run(grid, tmp_path)["results"][0]
    assert lenient["passed"] is True and lenient["non_critical_findings_count"] == 1
    assert [p["name"] for p in lenient["vulnerable_packages"]] == ["rsyslog"]
    assert "allowed by svm_fail_on=critical" in lenient["msg"]
    strict = run(grid, tmp_path, "-e", "fail_on=any")["results"][0]
    assert strict["passed"] is False and strict["error"] is False
    assert [p["name"] for p in strict["vulnerable_packages"]] == ["rsyslog"]


def test_admission_with_svm_keeps_the_vulnerable_host_with_its_reason(admission):
    """playbooks/admit.yml with halo_admission_scan_modules [sca, svm]: both hosts pass the
    configuration policy; the one with the vulnerable openssh is kept, saying why, and is
    admitted once its openssh is upgraded."""
    assert json.loads(admission.grid.cli("feed", "import", "--json", str(FEED)))["advisories"] == 2
    for label in ("web1", "web2"):
        admission.add_agent(label, compliant=True)
    web1_status = admission.tmp_path / "tree-web1" / "var" / "lib" / "dpkg" / "status"
    web1_status.write_text(dpkg_status("1:9.2p1-2+deb12u2"))
    (admission.tmp_path / "tree-web2" / "var" / "lib" / "dpkg" / "status").write_text(
        dpkg_status("1:9.2p1-2+deb12u3"))
    with_svm = ["-e", json.dumps({"halo_admission_scan_modules": ["sca", "svm"]})]

    run = admission.playbook("admit.yml", *with_svm)
    assert run.rc == 0, run
    assert admission.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebClean"}
    assert "Promoted to ProdWebClean: web2" in run.output
    assert "[critical] vulnerable package openssh-server 1:9.2p1-2+deb12u2" in run.output
    assert "expected 1:9.2p1-2+deb12u3 or later, actual 1:9.2p1-2+deb12u2 (CVE-2024-6387)" in run.output
    svm_scans = admission.api.ok("GET", "/v1/scans", params={"module": "svm", "per_page": 100})["scans"]
    assert len(svm_scans) == 2  # svm ran on the hosts that passed the configuration scan

    web1_status.write_text(dpkg_status("1:9.2p1-2+deb12u3"))  # the upgrade
    run = admission.playbook("admit.yml", *with_svm)
    assert run.rc == 0, run
    assert admission.membership() == {"web1": "ProdWebClean", "web2": "ProdWebClean"}
