# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The verdict of a file integrity (fim) scan: every object added, removed or changed since the
server's baseline keeps the server; a scan that compared nothing is no verdict (one that failed,
for want of a baseline, is judged with every scan in halo_scanning)."""

from __future__ import annotations

# What an added or removed object is, as the expected and actual values of its one check.
_PRESENCE = {"added": ("absent", "present"), "removed": ("present", "absent")}


def changed_files(scan):
    """The objects that differ from the baseline, critical first, then by path."""
    out = []
    for finding in (scan or {}).get("findings") or []:
        # Every fim finding is a change; a status other than bad (none is served) is not a pass either.
        if finding.get("status") == "good":
            continue
        out.append({
            "file": finding.get("file"),
            "change": finding.get("change"),
            "critical": bool(finding.get("critical")),
            "target": finding.get("target"),
            "policy_id": finding.get("policy_id"),
            "rule_id": finding.get("rule_id"),
            "details": [dict(field=detail.get("field"), baseline=detail.get("baseline"), current=detail.get("current"))
                        for detail in finding.get("details") or [] if isinstance(detail, dict)],
            "error": finding.get("error"),
        })
    out.sort(key=lambda entry: (not entry["critical"], entry["file"] or "", entry["change"] or ""))
    return out


def file_rules(files):
    """The changed files as failed rules (the shape of a configuration finding), so that
    summaries, reports and notifications written for rules say which file changed and how:
    one check per changed field, or one saying the file appeared or disappeared."""
    rules = []
    for entry in files:
        checks = []
        if entry["change"] in _PRESENCE:
            expected, actual = _PRESENCE[entry["change"]]
            checks.append(_check(entry, None, expected, actual))
        else:
            for detail in entry["details"]:
                checks.append(_check(entry, detail["field"], detail["baseline"], detail["current"]))
            if not checks:
                checks.append(_check(entry, None, "as in the baseline", "changed"))
        rules.append({
            "name": "%s %s" % (entry["change"] or "changed", entry["file"]),
            "critical": entry["critical"],
            "status": "bad",
            "checks": checks,
        })
    return rules


def _check(entry, field, expected, actual):
    return {
        "type": "file_integrity",
        "target": entry["file"],
        "config_key": field,
        "expected": expected,
        "actual": actual,
        "status": "bad",
        # why the agent could not read the file, if so (an unreadable file is a change)
        "reason": entry["error"],
    }


def fim_findings(scan):
    """What a fim scan found, as fields of its result: the changed files, and the same as
    failed rules."""
    files = changed_files(scan)
    return {"failed_rules": file_rules(files), "changed_files": files}


def fim_verdict(scan, found):
    """The verdict of a finished fim scan that did not fail (halo_scanning.judge_scan judges the
    others), as fields of its result: passed, kept (changed files) or no verdict.

    The counts and the findings are both read and the worse of the two counts, so a service
    whose counts and findings disagree cannot admit a server by them."""
    files = found["changed_files"]
    critical = max(scan.get("critical_findings_count") or 0, sum(1 for entry in files if entry["critical"]))
    other = max(scan.get("non_critical_findings_count") or 0, sum(1 for entry in files if not entry["critical"]))
    if critical or other:
        return {"msg": "%d file(s) changed since the baseline (%d critical)" % (critical + other, critical)}
    if scan.get("status") != "completed_clean":
        return {"error": True, "msg": "the scan is %s but names no changed file" % scan.get("status")}
    if not scan.get("ok_findings_count"):
        # A clean scan has no findings at all; only the count of unchanged objects proves it looked.
        return {"error": True, "msg": "the fim scan compared no file with a baseline (do the FIM policy's targets "
                                      "exist on the server?); a scan that checked nothing is not a pass"}
    return {"passed": True}
