# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The verdict of a file integrity (fim) scan: every object added, removed or changed since the
server's baseline keeps the server; a scan that compared nothing, or failed (no baseline), is
no verdict."""

from __future__ import annotations

_FINISHED = ("completed_clean", "completed_with_errors", "failed")
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


def judge_fim(result, scan):
    """Judge a fim ``scan`` into ``result``: passed, kept (changed files) or no verdict.

    The counts and the findings are both read and the worse of the two counts, so a service
    whose counts and findings disagree cannot admit a server by them."""
    files = changed_files(scan)
    critical = max(scan.get("critical_findings_count") or 0, sum(1 for entry in files if entry["critical"]))
    other = max(scan.get("non_critical_findings_count") or 0, sum(1 for entry in files if not entry["critical"]))
    result.update(
        scan_id=scan.get("id"),
        status=scan.get("status"),
        critical_findings_count=scan.get("critical_findings_count"),
        non_critical_findings_count=scan.get("non_critical_findings_count"),
        ok_findings_count=scan.get("ok_findings_count"),
        completed_at=scan.get("completed_at"),
        failed_rules=file_rules(files),
        changed_files=files,
        passed=False,
    )
    status = scan.get("status")
    if status not in _FINISHED:
        result.update(error=True, msg="the scan is %s, not finished" % status)
    elif status == "failed":
        # No baseline, no policy, a lost chunk: the grid says which; never a pass.
        result.update(error=True, msg="the scan failed on the server: %s" % (scan.get("result") or "no reason given"))
    elif critical or other:
        result["msg"] = "%d file(s) changed since the baseline (%d critical)" % (critical + other, critical)
    elif status != "completed_clean":
        result.update(error=True, msg="the scan is %s but names no changed file" % status)
    elif not scan.get("ok_findings_count"):
        # A clean scan has no findings at all; only the count of unchanged objects proves it looked.
        result.update(error=True, msg="the fim scan compared no file with a baseline (do the FIM policy's targets "
                                      "exist on the server?); a scan that checked nothing is not a pass")
    else:
        result["passed"] = True
    return result
