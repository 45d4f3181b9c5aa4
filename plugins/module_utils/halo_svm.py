# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The verdict of a software vulnerability (svm) scan: a server with vulnerable packages is
kept, by default only for critical ones (``svm_fail_on``)."""

from __future__ import annotations

SVM_FAIL_ON = ("critical", "any")


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


def svm_findings(scan):
    """What an svm scan found, as fields of its result: the vulnerable packages, and the same as
    failed rules."""
    packages = vulnerable_packages(scan)
    return {"failed_rules": package_rules(packages), "vulnerable_packages": packages}


def svm_verdict(scan, found, fail_on="critical"):
    """The verdict of a finished svm scan that did not fail (halo_scanning.judge_scan judges the
    others), as fields of its result: passed, kept (vulnerable packages) or no verdict.

    The counts and the findings are both read and the worse of the two counts: a service
    whose counts and findings disagree cannot admit a server by it."""
    packages = found["vulnerable_packages"]
    findings = scan.get("findings")
    critical = max(scan.get("critical_findings_count") or 0, sum(1 for p in packages if p["critical"]))
    other = max(scan.get("non_critical_findings_count") or 0, sum(1 for p in packages if not p["critical"]))
    if not (critical or other or scan.get("ok_findings_count")) or (findings is not None and not findings):
        return {"error": True, "msg": "the svm scan listed no installed package; a scan that checked nothing is not a pass"}
    if critical:
        return {"msg": "%d package(s) with critical vulnerabilities" % critical}
    if other and fail_on == "any":
        return {"msg": "%d vulnerable package(s), none critical (svm_fail_on=any keeps them)" % other}
    if other:
        return {"passed": True, "msg": "%d vulnerable package(s), none critical: allowed by svm_fail_on=critical" % other}
    return {"passed": True}
