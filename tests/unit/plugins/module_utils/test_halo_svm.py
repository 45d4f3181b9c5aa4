"""The verdict of an svm scan (halo_svm.svm_verdict, reached through halo_scanning.judge_scan)."""

import pytest

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_scanning import SCAN_ARGUMENT_SPEC, judge_scan
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_svm import svm_findings, svm_verdict, vulnerable_packages


def finding(name, status="good", critical=False, cves=(), fixed=None):
    return {"package_name": name, "package_version": "1.0-1", "status": status, "critical": critical,
            "fixed_version": fixed, "max_cvss": None, "advisories": [{"id": "DSA-%s" % name}] if cves else [],
            "cve_entries": [{"cve_entry": cve, "cvss_score": None, "suppressed": False} for cve in cves]}


def svm_scan(*findings, status=None):
    bad = [f for f in findings if f["status"] == "bad"]
    return {"id": "s1", "module": "svm",
            "status": status or ("completed_with_errors" if bad else "completed_clean"),
            "critical_findings_count": sum(1 for f in bad if f["critical"]),
            "non_critical_findings_count": sum(1 for f in bad if not f["critical"]),
            "ok_findings_count": len(findings) - len(bad), "findings": list(findings)}


def judge(scan, fail_on="critical"):
    return judge_scan({"passed": False, "error": False, "msg": ""}, scan, fail_on)


def test_a_host_without_vulnerable_packages_passes():
    result = judge(svm_scan(finding("bash"), finding("libc6")))
    assert (result["passed"], result["error"], result["vulnerable_packages"]) == (True, False, [])


def test_a_critical_package_keeps_the_host_either_way():
    scan = svm_scan(finding("bash"), finding("openssh-server", "bad", True, ["CVE-2024-6387"], "1:9.2p1-2+deb12u3"))
    for fail_on in ("critical", "any"):
        result = judge(scan, fail_on)
        assert (result["passed"], result["error"]) == (False, False)
        assert result["vulnerable_packages"][0]["name"] == "openssh-server"
        assert result["vulnerable_packages"][0]["cves"] == ["CVE-2024-6387"]
        (rule,) = result["failed_rules"]  # the reason, for summaries written for rules
        assert rule["name"] == "vulnerable package openssh-server 1.0-1" and rule["critical"] is True
        assert rule["checks"][0]["expected"] == "1:9.2p1-2+deb12u3 or later"
        assert rule["checks"][0]["actual"] == "1.0-1" and rule["checks"][0]["reason"] == "CVE-2024-6387"


def test_only_lesser_vulnerabilities_pass_unless_fail_on_any():
    scan = svm_scan(finding("bash"), finding("rsyslog", "bad", False, ["CVE-2099-1"]))
    assert judge(scan, "critical")["passed"] is True
    kept = judge(scan, "any")
    assert (kept["passed"], kept["error"]) == (False, False)


def test_counts_that_hide_a_critical_finding_do_not_admit():
    scan = svm_scan(finding("bash"), finding("openssh-server", "bad", True, ["CVE-2024-6387"]))
    scan.update(critical_findings_count=0, status="completed_clean")
    assert judge(scan)["passed"] is False


@pytest.mark.parametrize("scan, words", [
    (svm_scan(status="completed_clean"), "listed no installed package"),
    (dict(svm_scan(finding("bash")), status="failed", result="no feed for Ubuntu 24.04"), "no feed"),
    (dict(svm_scan(finding("bash")), status="running"), "not finished"),
])
def test_no_verdict(scan, words):
    result = judge(scan)
    assert (result["passed"], result["error"]) == (False, True)
    assert words in result["msg"]


def test_vulnerable_packages_are_sorted_critical_first():
    packages = vulnerable_packages(svm_scan(finding("zlib", "bad", False), finding("openssl", "bad", True),
                                            finding("bash")))
    assert [p["name"] for p in packages] == ["openssl", "zlib"]


def test_the_option_defaults_to_critical():
    assert SCAN_ARGUMENT_SPEC["svm_fail_on"] == dict(type="str", default="critical", choices=["critical", "any"])
    scan = svm_scan(finding("bash"), finding("zlib", "bad", False))
    assert svm_verdict(scan, svm_findings(scan))["passed"] is True
