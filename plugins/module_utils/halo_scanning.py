# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Scan many servers at once and judge each result: the heart of admission."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloClientError, HaloOutcomeUnknownError
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_fim import fim_findings, fim_verdict
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_svm import SVM_FAIL_ON, svm_findings, svm_verdict

# Halo scan modules (the API's ``module``: sca, svm, ...), aliases included, and the path their
# latest results live under.
SCAN_MODULES = {"sca": "sca", "csm": "sca", "svm": "svm", "sva": "svm", "fim": "fim", "sam": "sam", "sv": "sv"}
CLEAN = "completed_clean"
FINISHED_COMMAND_STATES = ("completed", "failed")
FINISHED_SCAN_STATES = (CLEAN, "completed_with_errors", "failed")
# What a failed rule reports of each check that did not pass; always all keys, so templates
# and conditions can rely on them.
CHECK_FIELDS = ("type", "target", "config_key", "expected", "actual", "status", "reason")


def scan_verdict(scan):
    """True only for a scan that completed clean with no bad finding at all.

    Status alone is not a verdict: the real service has stored ``completed_clean`` scans
    with critical findings, so the counts must be zero as well.
    """
    return bool(
        scan
        and scan.get("status") == CLEAN
        and not scan.get("critical_findings_count")
        and not scan.get("non_critical_findings_count")
    )


def is_not_applicable(finding):
    """A finding of a rule whose subject is absent (the grid agent's ``applies_to``): Halo's
    statuses carry it as ``good`` with every detail's ``scan_status`` ``not_applicable``.
    It neither proves a pass nor keeps a server out."""
    details = finding.get("details") or []
    return bool(details) and all(isinstance(detail, dict) and detail.get("scan_status") == "not_applicable"
                                 for detail in details)


def missing_evidence(scan):
    """Why a clean-looking scan proves nothing, or None when it does.

    A scan of a group without a configuration policy, or with no active rule, completes
    clean with zero findings: it evaluated nothing, so it cannot admit a server; so does a
    scan whose every rule was not applicable. Every finding of a pass must be ``good`` too
    (an indeterminate one is not proof).
    """
    findings = scan.get("findings")
    evaluated = None if findings is None else [finding for finding in findings if not is_not_applicable(finding)]
    if not scan.get("ok_findings_count") or (evaluated is not None and not evaluated):
        return ("the scan evaluated no rule (does the server's group have a configuration policy with "
                "active rules that apply to this server?); a scan that checked nothing is not a pass")
    not_good = [finding for finding in findings or [] if finding.get("status") != "good"]
    if not_good:
        return "the scan is %s but %d finding(s) are not good" % (scan.get("status"), len(not_good))
    return None


def failed_rules(scan):
    """The rules that did not pass, each with its non-good checks (expected vs actual)."""
    rules = []
    for finding in (scan or {}).get("findings") or []:
        if finding.get("status") == "good":
            continue
        checks = []
        for detail in finding.get("details") or []:
            if detail.get("status") == "good":
                continue
            checks.append(dict((key, detail.get(key)) for key in CHECK_FIELDS))
        rules.append({"name": finding.get("rule_name"), "critical": bool(finding.get("critical")),
                      "status": finding.get("status"), "checks": checks})
    # Critical first, then bad before indeterminate: the order a reader triages in.
    rules.sort(key=lambda rule: (not rule["critical"], rule["status"] != "bad", rule["name"] or ""))
    return rules


def _base_result(server):
    return {
        "server_id": server.get("id"),
        "hostname": server.get("hostname"),
        "server_label": server.get("server_label"),
        "group_name": server.get("group_name"),
        "command_id": None,
        "scan_id": None,
        "status": None,
        "critical_findings_count": None,
        "non_critical_findings_count": None,
        "ok_findings_count": None,
        "completed_at": None,
        "failed_rules": [],
        "passed": False,
        "error": False,
        "timed_out": False,
        "attempts": 0,
        "msg": "",
    }


def sca_findings(scan):
    """What a configuration (sca) scan found, as fields of its result: the rules that did not pass."""
    return {"failed_rules": failed_rules(scan)}


def sca_verdict(scan, found):
    """The verdict of a finished sca scan that did not fail, as fields of its result: passed
    only with a clean status, no bad finding and evidence that a rule was evaluated."""
    if not scan_verdict(scan):
        return {}
    reason = missing_evidence(scan)
    return {"error": True, "msg": reason} if reason else {"passed": True}


def judge_scan(result, scan, svm_fail_on="critical"):
    """Judge ``scan`` into ``result``: passed, kept (bad findings), or no verdict (``error``).

    A scan that has not finished or failed on the server is no verdict whatever its module;
    what a finished scan found, and whether that keeps the server, depends on its module:
    installed packages (halo_svm.py), objects changed since the baseline (halo_fim.py) or
    rules (sca, and any other module)."""
    module = SCAN_MODULES.get(scan.get("module"))
    if module == "svm":
        found, verdict = svm_findings(scan), partial(svm_verdict, fail_on=svm_fail_on)
    elif module == "fim":
        found, verdict = fim_findings(scan), fim_verdict
    else:
        found, verdict = sca_findings(scan), sca_verdict
    result.update(
        scan_id=scan.get("id"),
        status=scan.get("status"),
        critical_findings_count=scan.get("critical_findings_count"),
        non_critical_findings_count=scan.get("non_critical_findings_count"),
        ok_findings_count=scan.get("ok_findings_count"),
        completed_at=scan.get("completed_at"),
        passed=False,
        **found
    )
    status = scan.get("status")
    if status not in FINISHED_SCAN_STATES:
        result.update(error=True, msg="the scan is %s, not finished" % status)
    elif status == "failed":
        # No policy, no baseline, a lost chunk: the service says which; never a pass.
        result.update(error=True, msg="the scan failed on the server: %s" % (scan.get("result") or "no reason given"))
    else:
        result.update(verdict(scan, found))
    return result


def _no_verdict(result, status, msg, timed_out=False):
    result.update(status=status, passed=False, error=True, timed_out=timed_out, msg=msg)
    return result


class _Server:
    """What the scanner knows of one server while its scans run."""

    def __init__(self, server):
        self.server = server
        self.id = server["id"]
        self.result = _base_result(server)
        self.command = None
        self.failed_runs = 0
        self.unknown_starts = 0
        self.last_status = None  # the status of its scan (or command) at the last look

    def finish(self, result):
        self.result = result
        self.command = None


class Scanner:
    """Starts one scan per server and waits for all of them.

    The verdict of a server is the scan produced by the command this scanner started, found
    through the command's ``scan_id`` (the grid, and any service that links the two); a scan
    that cannot be linked to the command never passes unless ``require_scan_link`` is off.

    The cost stays flat per server however many there are: the scans are started
    ``max_workers`` at a time, all running scans are watched through one paginated listing of
    the scans since the first start (100 per call), and only a finished scan is read whole.
    """

    def __init__(self, client, scan_module="sca", scan_timeout=300, poll_interval=2.0, max_workers=10,
                 rescan_failed=1, require_scan_link=True, progress=None, progress_interval=15,
                 svm_fail_on="critical", clock=time.monotonic, sleep=time.sleep):
        if scan_module not in SCAN_MODULES:
            raise HaloClientError("unknown scan module %r; Halo knows %s" % (scan_module, ", ".join(sorted(SCAN_MODULES))))
        self.client = client
        self.scan_module = scan_module
        self.results_path = SCAN_MODULES[scan_module]
        self.scan_timeout = scan_timeout
        self.poll_interval = poll_interval
        self.max_workers = max_workers
        self.rescan_failed = rescan_failed
        self.require_scan_link = require_scan_link
        self.progress = progress
        self.progress_interval = progress_interval
        self.svm_fail_on = svm_fail_on  # an svm scan keeps a server for: critical or any vulnerable packages
        self._clock = clock
        self._sleep = sleep

    def latest(self, servers):
        """The latest stored result per server, starting nothing (check mode)."""
        results = []
        for server in servers:
            result = _base_result(server)
            scan = self.client.latest_scan(server["id"], self.results_path)
            if scan is None:
                result.update(status="not_scanned",
                              msg="no %s scan stored for this server yet; check mode starts none" % self.scan_module)
            else:
                judge_scan(result, scan, self.svm_fail_on)
                result["msg"] = result["msg"] or "latest stored scan; no new scan was started (check mode)"
            results.append(result)
        return results

    def scan(self, servers):
        """Scan every server now; results in the order of ``servers``."""
        if not servers:
            return []
        started = self._clock()
        deadline = started + self.scan_timeout
        states = [_Server(server) for server in servers]
        next_progress = started + self.progress_interval
        since = None
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(states)))) as pool:
            to_start = states
            while True:
                list(pool.map(self._start, to_start))
                running = [state for state in states if state.command is not None]
                for state in running:
                    created = state.command.get("created_at")
                    if created and (since is None or created < since):
                        since = created
                # Look at least once after starting: a scan that already finished must count,
                # even when the starts used up the time.
                self._sleep(self.poll_interval)
                finished = self._finished(running, since)
                list(pool.map(lambda item: self._judge(item[0], item[1], deadline), finished))
                to_start = [state for state in states if state.command is None and state.result["status"] == "restart"]
                waiting = [state for state in states if state.command is not None]
                now = self._clock()
                if self.progress and (now >= next_progress or not (waiting or to_start)):
                    self._report(states, now - started)
                    next_progress = now + self.progress_interval
                if not (waiting or to_start):
                    break
                if now >= deadline:
                    for state in waiting + to_start:
                        self._time_out(state)
                    if self.progress:
                        self._report(states, now - started)
                    break
        return [state.result for state in states]

    def _report(self, states, elapsed):
        done = [state.result for state in states if state.command is None and state.result["status"] != "restart"]
        self.progress(
            "%d/%d scans finished (%d passed, %d kept, %d without verdict), %d waiting, %ds elapsed"
            % (len(done), len(states), sum(1 for r in done if r["passed"]),
               sum(1 for r in done if not r["passed"] and not r["error"]),
               sum(1 for r in done if r["error"]), len(states) - len(done), elapsed))

    def _start(self, state):
        """Ask for a scan. A request whose outcome is unknown (a 5xx, a reset after sending) is
        made once more: the verdict follows the command this task knows, so a second scan
        costs a scan, never a wrong verdict."""
        attempt = state.result["attempts"] + 1
        state.result = _base_result(state.server)
        state.result["attempts"] = attempt
        try:
            state.command = self.client.start_scan(state.id, self.scan_module)
        except HaloOutcomeUnknownError as exc:
            state.unknown_starts += 1
            if state.unknown_starts <= 1:
                return self._start(state)
            state.finish(_no_verdict(state.result, "error", "%s; whether the scan started is unknown, so "
                                                            "there is no verdict" % exc))
            return None
        except HaloClientError as exc:
            # One server's failure must not hide the others' results, and is never a pass.
            state.finish(_no_verdict(state.result, "error", str(exc)))
            return None
        state.result["command_id"] = state.command.get("id")
        state.last_status = state.command.get("status")
        return None

    def _finished(self, running, since):
        """(state, finished scan summary or finished command) for each running server whose
        scan is done. Linked scans come from one listing; unlinked ones need their command."""
        linked = dict((state.command["scan_id"], state) for state in running if state.command.get("scan_id"))
        done = []
        try:
            listed = self.client.list_scans(scan_module=self.results_path, since=since) if linked else []
        except HaloClientError as exc:
            # A missed look, not a verdict: the next one may work; at the deadline it is said.
            for state in linked.values():
                state.last_status = "unknown (%s)" % exc
            listed = []
        if linked:
            for scan in listed:
                state = linked.get(scan.get("id"))
                if state is None:
                    continue
                state.last_status = scan.get("status")
                if scan.get("status") in FINISHED_SCAN_STATES:
                    done.append((state, scan))
        for state in running:
            if state.command.get("scan_id"):
                continue
            try:
                command = dict(state.command, **self.client.get_command(state.id, state.command["id"]))
            except HaloClientError as exc:
                state.finish(_no_verdict(state.result, "error", str(exc)))
                continue
            state.command, state.last_status = command, command.get("status")
            if command.get("status") in FINISHED_COMMAND_STATES:
                done.append((state, command))
        return done

    def _judge(self, state, finished, deadline):
        try:
            if state.command.get("scan_id"):
                result = self._judge_linked_scan(state, finished)
            elif finished.get("status") == "failed":
                result = _no_verdict(state.result, "failed", "the scan failed on the server: %s"
                                     % (finished.get("result") or "no reason given"))
            elif self.require_scan_link:
                result = _no_verdict(state.result, "unlinked", "the API did not say which scan command %s produced "
                                                               "(no scan_id), so no scan can be proved to be this "
                                                               "task's own; set require_scan_link=false to judge every "
                                                               "scan since the command instead" % finished["id"])
            else:
                result = self._judge_scans_since(state, finished)
        except HaloClientError as exc:
            result = _no_verdict(state.result, "error", str(exc))
        if result is None:  # the scan of a finished command is not stored yet: look again
            return
        # A scan that failed on the server (not one that found problems) is started again,
        # as CloudPassage's own scan-and-move script does, while time is left.
        if result["status"] == "failed" and state.failed_runs < self.rescan_failed and self._clock() < deadline:
            state.failed_runs += 1
            result["status"] = "restart"
        state.finish(result)

    def _judge_linked_scan(self, state, summary):
        """The scan that the command produced, read whole (findings and all)."""
        command = state.command
        scan = self.client.get_scan(command["scan_id"])
        if scan is None or scan.get("status") not in FINISHED_SCAN_STATES:
            return None
        mismatch = [name for name, value in (("server_id", state.id), ("command_id", command["id"]))
                    if scan.get(name) not in (None, value)]
        if SCAN_MODULES.get(scan.get("module"), self.results_path) != self.results_path:
            mismatch.append("module")
        if mismatch:
            return _no_verdict(state.result, "unlinked", "scan %s named by command %s belongs elsewhere (%s differs)"
                               % (scan.get("id"), command["id"], ", ".join(mismatch)))
        return judge_scan(state.result, scan, self.svm_fail_on)

    def _judge_scans_since(self, state, command):
        """Without a link, every scan of the server since the command was created is judged and
        the worst one counts: a scan that ran beside ours can then only keep a server, never pass it."""
        scans = [scan for scan in self.client.list_scans(server_id=state.id, scan_module=self.results_path,
                                                         since=command.get("created_at"))
                 if scan.get("status") in FINISHED_SCAN_STATES]
        if not scans:
            return None
        judged = [judge_scan(dict(state.result), self.client.get_scan(scan["id"]) or scan, self.svm_fail_on)
                  for scan in scans]
        judged.sort(key=lambda entry: (entry["passed"], not entry["error"]))
        return judged[0]

    def _time_out(self, state):
        if state.command is None:  # a failed scan due for a restart when time ran out
            state.result["status"] = "failed"
            return
        state.finish(_no_verdict(state.result, "timed_out", "the scan did not finish within %ss (command %s is %s; "
                                                            "is the agent running?)"
                                 % (self.scan_timeout, state.command.get("id"), state.last_status),
                                 timed_out=True))


# The options of halo_scan besides the connection and the server selection; the Ansible module
# and its action plugin (which adds progress lines) both validate with it. ``module`` is the
# Halo scan module, named as the API names it.
SCAN_ARGUMENT_SPEC = dict(
    module=dict(type="str", default="sca", choices=sorted(SCAN_MODULES)),
    scan_timeout=dict(type="int", default=300),
    poll_interval=dict(type="float", default=2),
    max_workers=dict(type="int", default=10),
    rescan_failed=dict(type="int", default=1),
    require_scan_link=dict(type="bool", default=True),
    progress_interval=dict(type="int", default=15),
    svm_fail_on=dict(type="str", default="critical", choices=list(SVM_FAIL_ON)),
)


def scan_option_errors(params):
    """What is wrong with the scan options, as messages for the user."""
    errors = []
    for name in ("scan_timeout", "max_workers", "progress_interval"):
        if params[name] < 1:
            errors.append("%s must be at least 1, got %s" % (name, params[name]))
    if params["rescan_failed"] < 0:
        errors.append("rescan_failed must be 0 or more, got %s" % params["rescan_failed"])
    if params["poll_interval"] <= 0:
        errors.append("poll_interval must be more than 0, got %s" % params["poll_interval"])
    return errors


def run_scans(client, params, check_mode, select, progress=None):
    """halo_scan's whole task: select the servers, scan them (or, in check mode, read their
    latest stored scans) and count the outcomes. The task ends within ``scan_timeout`` plus one
    API ``timeout``: every call and its retries stop there."""
    client.limit_total_time(params["scan_timeout"] + client.timeout)
    scanner = Scanner(client, scan_module=params["module"], scan_timeout=params["scan_timeout"],
                      poll_interval=params["poll_interval"], max_workers=params["max_workers"],
                      rescan_failed=params["rescan_failed"], require_scan_link=params["require_scan_link"],
                      progress=progress, progress_interval=params["progress_interval"],
                      svm_fail_on=params.get("svm_fail_on") or "critical")
    servers = select(client, params)
    results = scanner.latest(servers) if check_mode else scanner.scan(servers)
    passed = sum(1 for result in results if result["passed"])
    return {
        "changed": False,
        "results": results,
        "passed_count": passed,
        "failed_count": len(results) - passed,
        "error_count": sum(1 for result in results if result["error"]),
        "timed_out_count": sum(1 for result in results if result["timed_out"]),
    }
