"""The verdict of a local scan (``haloagent scan``), its summary, JSON and JUnit XML reports.

The verdict is admission's (plugins/module_utils/halo_scanning.py ``missing_evidence``),
fail-closed: a bad rule fails (exit 1); an indeterminate finding, or a scan that evaluated
no rule, gives no verdict (exit 2); not-applicable findings neither pass nor fail. Only a
scan whose every evaluated rule is good passes (exit 0).
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Tuple

from .checks import BAD, GOOD, INDETERMINATE, is_not_applicable

EXIT_PASS, EXIT_FAIL, EXIT_NO_VERDICT = 0, 1, 2
Finding = Dict[str, Any]


def verdict(findings: List[Finding]) -> Tuple[int, str]:
    """(exit code, why) for a scan's findings."""
    bad = [f for f in findings if f["status"] == BAD]
    if bad:
        critical = sum(1 for f in bad if f.get("critical"))
        return EXIT_FAIL, "%d rule(s) failed (%d critical)" % (len(bad), critical)
    unknown = [f for f in findings if f["status"] == INDETERMINATE]
    if unknown:
        return EXIT_NO_VERDICT, ("%d rule(s) could not be evaluated (indeterminate): no verdict"
                                 % len(unknown))
    if not any(f["status"] == GOOD and not is_not_applicable(f) for f in findings):
        return EXIT_NO_VERDICT, ("the scan evaluated no rule (no active rule, or none that applies "
                                 "to this system); a scan that checked nothing is not a pass")
    return EXIT_PASS, "every evaluated rule passed"


def counts(findings: List[Finding]) -> Dict[str, int]:
    not_applicable = sum(1 for f in findings if is_not_applicable(f))
    return {
        "passed": sum(1 for f in findings if f["status"] == GOOD) - not_applicable,
        "failed": sum(1 for f in findings if f["status"] == BAD),
        "failed_critical": sum(1 for f in findings if f["status"] == BAD and f.get("critical")),
        "not_applicable": not_applicable,
        "indeterminate": sum(1 for f in findings if f["status"] == INDETERMINATE),
    }


def build(findings: List[Finding], summary: Dict[str, Any], target: str,
          policies: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The JSON report: the grid's scan summary fields, the verdict, the findings."""
    code, why = verdict(findings)
    report = dict(summary)
    report.update({
        "target": target,
        "policies": [{"id": p.get("id"), "name": p.get("name")} for p in policies],
        "counts": counts(findings),
        "verdict": {"exit_code": code, "passed": code == EXIT_PASS, "reason": why},
        "findings": findings,
    })
    return report


def _value(value: Any) -> str:
    return "(not set)" if value is None else json.dumps(value) if not isinstance(value, str) else value


def _detail_line(d: Dict[str, Any]) -> str:
    key = d.get("config_key") if d.get("config_key") != d.get("target") else None
    what = " ".join(str(x) for x in (d.get("type"), d.get("target"), key) if x)
    if d.get("status") == INDETERMINATE:
        return "%s: %s" % (what, d.get("reason") or "indeterminate")
    return "%s: expected %s, actual %s" % (what, _value(d.get("expected")), _value(d.get("actual")))


def _policy_names(report: Dict[str, Any]) -> Dict[Any, str]:
    return {p["id"]: p.get("name") or str(p["id"]) for p in report.get("policies") or []}


def text(report: Dict[str, Any]) -> str:
    """The human summary: the counts, each failed and indeterminate rule, the verdict."""
    c = report["counts"]
    lines = ["haloagent scan of %s" % report["target"],
             "rules: %d passed, %d failed (%d critical), %d not applicable, %d indeterminate"
             % (c["passed"], c["failed"], c["failed_critical"], c["not_applicable"],
                c["indeterminate"])]
    order = sorted((f for f in report["findings"] if f["status"] in (BAD, INDETERMINATE)),
                   key=lambda f: (f["status"] != BAD, not f.get("critical"), f["rule_name"]))
    for finding in order:
        label = "FAILED" if finding["status"] == BAD else "INDETERMINATE"
        lines.append("%s%s %s" % (label, " [critical]" if finding.get("critical") else "",
                                  finding["rule_name"]))
        for d in finding.get("details") or []:
            if d.get("status") != GOOD:
                lines.append("    " + _detail_line(d))
    v = report["verdict"]
    lines.append("verdict: %s (exit %d): %s" % ("PASS" if v["passed"] else
                                                "FAIL" if v["exit_code"] == EXIT_FAIL else "NO VERDICT",
                                                v["exit_code"], v["reason"]))
    return "\n".join(lines) + "\n"


# XML 1.0 cannot hold most control characters, whatever the escaping; a file's text can
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def junit(report: Optional[Dict[str, Any]], error: Optional[str] = None,
          name: str = "haloagent scan") -> bytes:
    """JUnit XML: one test case per rule; bad = failure, indeterminate = error, not
    applicable = skipped. A scan without a verdict (nothing evaluated, or ``error``: it
    could not run) also gets an erroring case, so a CI test view fails as the exit code does."""
    findings = (report or {}).get("findings") or []
    names = _policy_names(report or {})
    suite = ET.Element("testsuite", name=_x(name))
    failures = errors = skipped = 0
    for finding in findings:
        policy = names.get(finding.get("policy_id"), finding.get("policy_id") or "policy")
        case = ET.SubElement(suite, "testcase", name=_x(finding["rule_name"]), classname=_x(policy))
        lines = "\n".join(_detail_line(d) for d in finding.get("details") or []
                          if d.get("status") != GOOD)
        if finding["status"] == BAD:
            failures += 1
            ET.SubElement(case, "failure", message=_x(lines.split("\n")[0] if lines else "bad"),
                          type="critical" if finding.get("critical") else "non-critical").text = _x(lines)
        elif finding["status"] == INDETERMINATE:
            errors += 1
            ET.SubElement(case, "error", message=_x(lines.split("\n")[0] if lines else "indeterminate"),
                          type="indeterminate").text = _x(lines)
        elif is_not_applicable(finding):
            skipped += 1
            reason = (finding.get("details") or [{}])[0].get("reason") or "not applicable"
            ET.SubElement(case, "skipped", message=_x(reason))
    no_verdict = error or (report is not None and report["verdict"]["exit_code"] == EXIT_NO_VERDICT
                           and not any(f["status"] == INDETERMINATE for f in findings)
                           and report["verdict"]["reason"])
    if no_verdict:
        errors += 1
        case = ET.SubElement(suite, "testcase", name="scan verdict", classname="haloagent")
        ET.SubElement(case, "error", message=_x(no_verdict), type="no-verdict").text = _x(no_verdict)
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    if report is not None:
        suite.set("hostname", _x(report.get("target", "")))
    suites = ET.Element("testsuites", name=_x(name), tests=suite.get("tests"),
                        failures=str(failures), errors=str(errors))
    suites.append(suite)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n%s\n'
            % ET.tostring(suites, encoding="unicode")).encode("utf-8")
