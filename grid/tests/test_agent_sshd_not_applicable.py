"""A host without openssh-server: its sshd rules are not applicable, end to end.

The agent scans a real tree with the default Debian policy, the findings go to a real grid
process, and the scan read back through the API is clean, keeps the not-applicable marker
(a ``good`` finding whose details have ``scan_status`` ``not_applicable``: statuses the
Halo API already carries) and does not count those findings as ok.
"""
import json
import os

from gridhelpers import run_scan
from halodev.trees import make_compliant_tree
from haloagent import scan
from haloagent.checks import ScanContext

POLICY = os.path.join(os.path.dirname(__file__), "../src/halogrid/policies/debian.json")


def without_openssh_server(tmp_path):
    root = make_compliant_tree(str(tmp_path), "debian")
    os.remove(os.path.join(root, "etc/ssh/sshd_config"))
    with open(os.path.join(root, "var/lib/dpkg/status"), "w") as handle:
        handle.write("\n".join("Package: %s\nStatus: install ok installed\nVersion: 1\n" % p
                               for p in ("base-files", "rsyslog", "libc6")))
    return root


def test_grid_keeps_not_applicable_and_does_not_count_it_ok(tmp_path, api, make_agent):
    with open(POLICY) as handle:
        policy = json.load(handle)["policy"]
    findings = scan.scan_policies([policy], ScanContext(without_openssh_server(tmp_path)))
    agent = make_agent()
    run_scan(api, agent, findings)
    sc = api.ok("GET", "/v1/servers/%s/sca" % agent.server_id)["scan"]
    assert sc["status"] == "completed_clean"
    not_applicable = [f for f in sc["findings"]
                      if [d["scan_status"] for d in f["details"]] == ["not_applicable"]]
    assert len(not_applicable) == 9 and all(f["status"] == "good" for f in not_applicable)
    assert sc["ok_findings_count"] == len(findings) - 9
    assert (sc["critical_findings_count"], sc["non_critical_findings_count"]) == (0, 0)


def test_a_scan_where_no_rule_applies_counts_no_ok_finding(tmp_path, api, make_agent):
    """Every rule not applicable: nothing was evaluated, so nothing is ok (a client that
    requires ok findings, as the collection's admission does, gets no pass from it)."""
    with open(POLICY) as handle:
        policy = json.load(handle)["policy"]
    policy["rules"] = [r for r in policy["rules"] if r.get("applies_to")]
    findings = scan.scan_policies([policy], ScanContext(without_openssh_server(tmp_path)))
    agent = make_agent()
    run_scan(api, agent, findings)
    sc = api.ok("GET", "/v1/servers/%s/sca" % agent.server_id)["scan"]
    assert sc["ok_findings_count"] == 0 and len(sc["findings"]) == 9
