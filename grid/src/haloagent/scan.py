"""Running configuration policies: rules of checks -> findings (see PROTOCOL.md)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .checks import (BAD, CHECKS, GOOD, INDETERMINATE, Detail, ScanContext, as_bool, as_list,
                     is_not_applicable, rule_applicability, undetermined)

log = logging.getLogger(__name__)
Finding = Dict[str, Any]


def run_check(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    """The details of one check; never raises, so one broken check spoils only its rule."""
    check_type = str(check.get("object_type"))
    function = CHECKS.get(check_type)
    if function is None:
        return [undetermined(check, "", None, "unsupported check type %r" % check_type)]
    try:
        details = function(check, ctx)
    except Exception as exc:  # a bug or an unforeseen input: report it, keep scanning
        log.exception("check %s failed", check_type)
        return [undetermined(check, "", None, "check failed: %s" % exc)]
    if not details:
        return [undetermined(check, "", None, "the check names no target")]
    return details


def _targets(check: Dict[str, Any]) -> str:
    """What a check looks at, for a detail written without running it."""
    for field in ("config_file_path", "files", "folders", "packages", "processes", "ports"):
        if check.get(field):
            return ", ".join(as_list(check[field]))
    return ""


class Deadline:
    """The time limit of one scan (``seconds`` None or 0: none).

    Each check runs in a worker thread that is waited for until the deadline: a check that
    overruns it (a hung network filesystem, an enormous file) is reported indeterminate and
    left behind, and every check after it is indeterminate without running, so the scan
    still reports. A Python thread cannot be killed: the late one ends on its own or with
    the agent (it is a daemon thread)."""

    def __init__(self, seconds: Optional[float]) -> None:
        self.seconds = seconds if seconds and seconds > 0 else None
        self.at = None if self.seconds is None else time.monotonic() + self.seconds

    def remaining(self) -> Optional[float]:
        return None if self.at is None else self.at - time.monotonic()

    def run(self, check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
        remaining = self.remaining()
        if remaining is None:
            return run_check(check, ctx)
        if remaining <= 0:
            return [undetermined(check, _targets(check), None, "not run: the scan reached its time limit "
                                 "of %g s" % self.seconds)]
        box: List[List[Detail]] = []
        worker = threading.Thread(target=lambda: box.append(run_check(check, ctx)),
                                  name="check-%s" % check.get("object_type"), daemon=True)
        worker.start()
        worker.join(remaining)
        if box:
            return box[0]
        log.warning("check %s overran the scan's time limit of %g s", check.get("object_type"),
                    self.seconds)
        return [undetermined(check, _targets(check), None, "did not finish within the scan's time limit "
                             "of %g s" % self.seconds)]


def combine(statuses: Iterable[str], operator: str = "AND") -> str:
    """AND: bad if any is bad, else indeterminate if any is, else good.
    OR: good if any is good, else indeterminate if any is, else bad."""
    seen = set(statuses)
    if operator.upper() == "OR":
        if GOOD in seen:
            return GOOD
        return INDETERMINATE if INDETERMINATE in seen else BAD
    if BAD in seen:
        return BAD
    return INDETERMINATE if INDETERMINATE in seen else GOOD


def evaluate_rule(rule: Dict[str, Any], ctx: ScanContext,
                  deadline: Optional[Deadline] = None) -> Tuple[Optional[str], List[Detail]]:
    """The rule's status (None when it has no active check) and its checks' details.

    A check with several targets (files, packages) is bad when any target is: the
    details of one check are combined with AND; the rule's operator combines its checks.
    """
    deadline = deadline or Deadline(None)
    if not any(as_bool(c.get("active")) for c in rule.get("checks") or []):
        return None, []
    subject_absent = rule_applicability(rule, ctx)
    if subject_absent is not None:  # not applicable (or not known whether it is)
        return combine(d["status"] for d in subject_absent), subject_absent
    statuses, details = [], []
    for check in rule.get("checks") or []:
        if not as_bool(check.get("active")):
            continue
        check_details = deadline.run(check, ctx)
        statuses.append(combine(d["status"] for d in check_details))
        details.extend(check_details)
    if not statuses:
        return None, details
    return combine(statuses, str(rule.get("rule_operator") or "AND")), details


def scan_policies(policies: Iterable[Dict[str, Any]], ctx: ScanContext,
                  time_limit: Optional[float] = None) -> List[Finding]:
    """One finding per active rule with active checks, in policy order. With
    ``time_limit`` (seconds), checks beyond it are indeterminate (see Deadline)."""
    deadline = Deadline(time_limit)
    findings = []
    for policy in policies:
        for rule in policy.get("rules") or []:
            if not as_bool(rule.get("active")):
                continue
            status, details = evaluate_rule(rule, ctx, deadline)
            if status is None:
                continue
            findings.append({
                "rule_name": rule.get("name", ""),
                "policy_id": policy.get("id"),
                "critical": bool(rule.get("critical", False)),
                "status": status,
                "details": details,
            })
    return findings


def summarize(findings: List[Finding]) -> Dict[str, Any]:
    """The findings counted by the grid's scan fields, for the log and the local report (a
    not-applicable finding is good but not counted as ok: it is no evidence of a pass).

    No status: the agent reports findings and the grid alone decides a scan's status."""
    bad = [f for f in findings if f["status"] == BAD]
    not_applicable = sum(1 for f in findings if is_not_applicable(f))
    return {
        "critical_findings_count": sum(1 for f in bad if f["critical"]),
        "non_critical_findings_count": sum(1 for f in bad if not f["critical"]),
        "ok_findings_count": sum(1 for f in findings if f["status"] == GOOD) - not_applicable,
        "indeterminate_findings_count": sum(1 for f in findings if f["status"] == INDETERMINATE),
    }
