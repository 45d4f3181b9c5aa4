# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scan many servers at once and judge each result: the heart of admission."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloError, HaloOutcomeUnknownError

# Halo module names and the path their latest results live under.
SCAN_MODULES = {"sca": "sca", "csm": "sca", "svm": "svm", "sva": "svm", "fim": "fim", "sam": "sam", "sv": "sv"}
CLEAN = "completed_clean"
FINISHED_COMMAND_STATES = ("completed", "failed")
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
        "timed_out": False,
        "attempts": 0,
        "msg": "",
    }


def _with_scan(result, scan):
    result.update(
        scan_id=scan.get("id"),
        status=scan.get("status"),
        critical_findings_count=scan.get("critical_findings_count"),
        non_critical_findings_count=scan.get("non_critical_findings_count"),
        ok_findings_count=scan.get("ok_findings_count"),
        completed_at=scan.get("completed_at"),
        failed_rules=failed_rules(scan),
        passed=scan_verdict(scan),
    )
    return result


class Scanner(object):
    """Starts one scan per server and waits for all of them, ``max_workers`` at a time."""

    def __init__(self, client, module="sca", timeout=300, poll_interval=2.0, max_workers=10,
                 rescan_failed=1, clock=time.monotonic, sleep=time.sleep):
        if module not in SCAN_MODULES:
            raise HaloError("unknown scan module %r; Halo knows %s" % (module, ", ".join(sorted(SCAN_MODULES))))
        self.client = client
        self.module = module
        self.results_path = SCAN_MODULES[module]
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.max_workers = max_workers
        self.rescan_failed = rescan_failed
        self._clock = clock
        self._sleep = sleep

    def latest(self, servers):
        """The latest stored result per server, starting nothing (check mode)."""
        results = []
        for server in servers:
            result = _base_result(server)
            scan = self.client.latest_scan(server["id"], self.results_path)
            if scan is None:
                result["msg"] = "no %s scan stored for this server yet" % self.module
            else:
                _with_scan(result, scan)
                result["msg"] = "latest stored scan; no new scan was started (check mode)"
            results.append(result)
        return results

    def scan(self, servers):
        """Scan every server now; results in the order of ``servers``."""
        if not servers:
            return []
        deadline = self._clock() + self.timeout
        workers = max(1, min(self.max_workers, len(servers)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(self._scan_one, server, deadline) for server in servers]
            return [future.result() for future in futures]

    def _scan_one(self, server, deadline):
        # A scan that failed on the server (not one that found problems) is started again,
        # as CloudPassage's own scan-and-move script does, while time is left.
        for attempt in range(1, self.rescan_failed + 2):
            result = _base_result(server)
            result["attempts"] = attempt
            try:
                result = self._run_scan(server, deadline, result)
            except HaloError as exc:
                # One server's failure must not hide the others' results, and is never a pass.
                result.update(status=result["status"] or "error", passed=False, msg=str(exc))
                return result
            if result["status"] != "failed" or self._clock() >= deadline:
                return result
        return result

    def _run_scan(self, server, deadline, result):
        server_id = server["id"]
        # The scan we judge must be one that finished after we asked for it: remember the
        # previous one, so an old clean result can never admit a server.
        previous = self.client.latest_scan(server_id, self.results_path)
        previous_id = previous.get("id") if previous else None
        try:
            command = self.client.start_scan(server_id, self.module)
        except HaloOutcomeUnknownError as exc:
            return self._await_unconfirmed_scan(server_id, previous_id, deadline, result, exc)
        result["command_id"] = command.get("id")
        # Look at least once after starting: with more servers than workers, a server's turn
        # can come after the deadline, and a scan that already finished must still count.
        while command.get("status") not in FINISHED_COMMAND_STATES:
            self._sleep(self.poll_interval)
            command = self.client.get_command(server_id, command["id"])
            if command.get("status") not in FINISHED_COMMAND_STATES and self._clock() >= deadline:
                result.update(status="timed_out", timed_out=True,
                              msg="the scan did not finish within %ss (command %s is %s; is the agent running?)"
                              % (self.timeout, command.get("id"), command.get("status")))
                return result
        if command["status"] == "failed":
            result.update(status="failed", msg="the scan failed on the server: %s" % (command.get("result") or "no reason given"))
            return result
        # The result can lag the command for a moment (eventual consistency).
        scan = self._wait_for_new_scan(server_id, previous_id, deadline)
        if scan is None:
            result.update(status="timed_out", timed_out=True,
                          msg="command %s completed but no new scan result appeared within %ss"
                          % (command["id"], self.timeout))
            return result
        return _with_scan(result, scan)

    def _await_unconfirmed_scan(self, server_id, previous_id, deadline, result, error):
        """Starting the scan failed in a way that does not say whether it started. Starting it
        again could run two scans, so wait for a new result instead."""
        scan = self._wait_for_new_scan(server_id, previous_id, deadline)
        if scan is None:
            result.update(status="error", msg="%s; the scan was not started again (the first request may have "
                                              "started one) and no new result appeared within %ss"
                                              % (error, self.timeout))
            return result
        return _with_scan(result, scan)

    def _wait_for_new_scan(self, server_id, previous_id, deadline):
        """The server's newest scan once it differs from ``previous_id``; None at the deadline."""
        while True:
            scan = self.client.latest_scan(server_id, self.results_path)
            if scan is not None and scan.get("id") != previous_id:
                return scan
            if self._clock() >= deadline:
                return None
            self._sleep(self.poll_interval)
