# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The verdict of a software vulnerability (svm) scan: a server with vulnerable packages is
kept, by default only for critical ones (``svm_fail_on``)."""

from __future__ import annotations

SVM_FAIL_ON = ("critical", "any")
_FINISHED = ("completed_clean", "completed_with_errors", "failed")


def vulnerable_packages(scan):
    """The vulnerable packages of an svm scan, critical first: what a reader acts on."""
    out = []
    for finding in (scan or {}).get("findings") or []:
        if finding.get("status") != "bad":
            continue
        out.append({
            "name": finding.get("package_name"),
            "version": finding.get("package_version"),
            "fixed_version": finding.get("fixed_version"),
            "critical": bool(finding.get("critical")),
            "max_cvss": finding.get("max_cvss"),
            "cves": [entry.get("cve_entry") for entry in finding.get("cve_entries") or []],
            "advisories": [advisory.get("id") for advisory in finding.get("advisories") or []],
        })
    out.sort(key=lambda package: (not package["critical"], package["name"] or "", package["version"] or ""))
    return out


def package_rules(packages):
    """The vulnerable packages as failed rules (the shape of a configuration finding), so that
    summaries, reports and notifications written for rules give the reason a host was kept."""
    rules = []
    for package in packages:
        fixed = package["fixed_version"]
        rules.append({
            "name": "vulnerable package %s %s" % (package["name"], package["version"]),
            "critical": package["critical"],
            "status": "bad",
            "checks": [{
                "type": "package_vulnerability",
                "target": package["name"],
                "config_key": None,
                "expected": "%s or later" % fixed if fixed else "a fixed version (none published yet)",
                "actual": package["version"],
                "status": "bad",
                "reason": ", ".join(package["cves"] or package["advisories"]) or None,
            }],
        })
    return rules


def judge_svm(result, scan, fail_on="critical"):
    """Judge an svm ``scan`` into ``result``: passed, kept (vulnerable packages) or no verdict.

    The counts and the findings are both read and the worse of the two counts: a service
    whose counts and findings disagree cannot admit a server by it."""
    packages = vulnerable_packages(scan)
    findings = scan.get("findings")
    critical = max(scan.get("critical_findings_count") or 0, sum(1 for p in packages if p["critical"]))
    other = max(scan.get("non_critical_findings_count") or 0, sum(1 for p in packages if not p["critical"]))
    result.update(
        scan_id=scan.get("id"),
        status=scan.get("status"),
        critical_findings_count=scan.get("critical_findings_count"),
        non_critical_findings_count=scan.get("non_critical_findings_count"),
        ok_findings_count=scan.get("ok_findings_count"),
        completed_at=scan.get("completed_at"),
        failed_rules=package_rules(packages),
        vulnerable_packages=packages,
        passed=False,
    )
    status = scan.get("status")
    if status not in _FINISHED:
        result.update(error=True, msg="the scan is %s, not finished" % status)
    elif status == "failed":
        result.update(error=True, msg="the scan failed on the server: %s" % (scan.get("result") or "no reason given"))
    elif not (critical or other or scan.get("ok_findings_count")) or (findings is not None and not findings):
        result.update(error=True, msg="the svm scan listed no installed package; a scan that checked nothing is not a pass")
    elif critical:
        result["msg"] = "%d package(s) with critical vulnerabilities" % critical
    elif other and fail_on == "any":
        result["msg"] = "%d vulnerable package(s), none critical (svm_fail_on=any keeps them)" % other
    else:
        result["passed"] = True
        if other:
            result["msg"] = "%d vulnerable package(s), none critical: allowed by svm_fail_on=critical" % other
    return result
