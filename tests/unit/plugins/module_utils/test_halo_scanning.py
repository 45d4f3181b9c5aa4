import pytest

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloAPIError, HaloOutcomeUnknownError
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_scanning import (
    Scanner,
    failed_rules,
    judge_scan,
    missing_evidence,
    scan_verdict,
)

BAD_ROOT_LOGIN = {
    "rule_name": "SSH root login disabled", "critical": True, "status": "bad",
    "details": [{"type": "configuration_file_setting", "target": "/etc/ssh/sshd_config",
                 "config_key": "PermitRootLogin", "expected": "no", "actual": "yes", "status": "bad"},
                {"type": "file_presence", "target": "/etc/ssh/sshd_config", "expected": "present",
                 "actual": "present", "status": "good"}],
}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class ScriptedClient:
    """A Halo API whose scans go through scripted states.

    ``commands[server_id]``: the states a started scan goes through, one per look (the last
    repeats); ``produced[server_id]``: the scan each started command produces when it
    completes (one per start, the last repeats). Each command names its scan through
    ``scan_id``, as the grid does, unless ``link`` is off; ``latest`` is what the server's
    "latest scan" endpoint would answer, which a correct scanner never reads."""

    SCAN_STATUS = {"queued": "queued", "pending": "pending", "started": "running"}

    def __init__(self, commands, produced, latest=None, link=True):
        self.commands = commands
        self.produced = produced
        self.latest = dict(latest or {})
        self.link = link
        self.started = []
        self.stored = {}
        self.calls = []

    def latest_scan(self, server_id, scan_module):
        self.calls.append("latest_scan")
        return self.latest.get(server_id)

    def start_scan(self, server_id, scan_module):
        self.calls.append("start_scan")
        self.started.append((server_id, scan_module))
        number = sum(1 for started in self.started if started[0] == server_id)
        command = {"id": "cmd-%s-%d" % (server_id, number), "status": "queued", "created_at": "T%d" % number}
        scan_id = "scan-%s-%d" % (server_id, number)
        self.stored[scan_id] = {"id": scan_id, "server_id": server_id, "command_id": command["id"],
                                "module": "sca", "status": "queued", "created_at": command["created_at"]}
        if self.link:
            command["scan_id"] = scan_id
        return command

    def _advance(self, scan):
        if scan["status"] in ("completed_clean", "completed_with_errors", "failed"):
            return "completed" if scan["status"] != "failed" else "failed"
        server_id, number = scan["server_id"], int(scan["id"].rsplit("-", 1)[1])
        states = self.commands[server_id]
        status = states.pop(0) if len(states) > 1 else states[0]
        if status == "completed":
            scans = self.produced[server_id]
            scan.update(scans[min(number, len(scans)) - 1])
        elif status == "failed":
            scan.update(status="failed", result="agent crashed")
        else:
            scan["status"] = self.SCAN_STATUS[status]
        return status

    def get_command(self, server_id, command_id):
        self.calls.append("get_command")
        scan = self.stored["scan-" + command_id[len("cmd-"):]]
        status = self._advance(scan)
        answer = {"id": command_id, "status": status, "result": "agent crashed" if status == "failed" else None}
        if self.link:
            answer["scan_id"] = scan["id"]
        return answer

    def list_scans(self, server_id=None, scan_module=None, since=None):
        self.calls.append("list_scans")
        if server_id is None:  # the scanner's watch over all its scans: each look moves them on
            for scan in self.stored.values():
                if scan["server_id"] in self.commands:
                    self._advance(scan)
        return [dict((key, value) for key, value in scan.items() if key != "findings")
                for scan in self.stored.values() if server_id is None or scan["server_id"] == server_id]

    def get_scan(self, scan_id):
        self.calls.append("get_scan")
        return self.stored.get(scan_id)


GOOD_RULE = {"rule_name": "Telnet is not installed", "critical": False, "status": "good", "details": []}


def scan(status, critical=0, non_critical=0, findings=None, ok=20):
    if findings is None:
        findings = [GOOD_RULE] if status == "completed_clean" and not critical and not non_critical else []
    return {"status": status, "critical_findings_count": critical, "non_critical_findings_count": non_critical,
            "ok_findings_count": ok, "findings": list(findings)}


SERVERS = [{"id": "s1", "hostname": "web1"}, {"id": "s2", "hostname": "web2"}]


def run(client, servers=None, timeout=30, **options):
    clock = FakeClock()
    scanner = Scanner(client, scan_timeout=timeout, poll_interval=1, max_workers=1, clock=clock,
                      sleep=clock.sleep, **options)
    return scanner.scan(SERVERS if servers is None else servers)


def test_clean_server_passes_and_dirty_server_reports_its_failed_rule():
    client = ScriptedClient(
        commands={"s1": ["pending", "started", "completed"], "s2": ["completed"]},
        produced={"s1": [scan("completed_clean")],
                  "s2": [scan("completed_with_errors", critical=1, findings=[BAD_ROOT_LOGIN])]},
    )
    web1, web2 = run(client)
    assert (web1["passed"], web1["error"], web1["scan_id"], web1["status"]) == (True, False, "scan-s1-1", "completed_clean")
    assert (web2["passed"], web2["error"], web2["critical_findings_count"]) == (False, False, 1)
    assert web2["failed_rules"] == [{
        "name": "SSH root login disabled", "critical": True, "status": "bad",
        "checks": [{"type": "configuration_file_setting", "target": "/etc/ssh/sshd_config",
                    "config_key": "PermitRootLogin", "expected": "no", "actual": "yes", "status": "bad",
                    "reason": None}]}]
    assert client.started == [("s1", "sca"), ("s2", "sca")]


def test_the_verdict_is_the_scan_of_this_tasks_command_not_the_latest_one():
    # The task's own command produced a dirty scan; another (older, queued) command finished
    # clean after it, so it is the server's latest scan.
    client = ScriptedClient(commands={"s1": ["completed"]},
                            produced={"s1": [scan("completed_with_errors", critical=1, findings=[BAD_ROOT_LOGIN])]},
                            latest={"s1": dict(scan("completed_clean"), id="older-clean")})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["passed"], result["scan_id"], result["critical_findings_count"]) == (False, "scan-s1-1", 1)


def test_a_scan_named_by_the_command_but_belonging_to_another_command_is_not_judged():
    class Mislinked(ScriptedClient):
        def get_scan(self, scan_id):
            found = super().get_scan(scan_id)
            return dict(found, command_id="someone-elses")

    client = Mislinked(commands={"s1": ["completed"]}, produced={"s1": [scan("completed_clean")]})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["passed"], result["error"], result["status"]) == (False, True, "unlinked")
    assert "command_id differs" in result["msg"]


def test_without_a_link_from_command_to_scan_there_is_no_verdict_by_default():
    client = ScriptedClient(commands={"s1": ["completed"]}, produced={"s1": [scan("completed_clean")]}, link=False)
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["passed"], result["error"], result["status"]) == (False, True, "unlinked")
    assert "require_scan_link" in result["msg"]


def test_without_a_link_every_scan_since_the_command_is_judged_and_the_worst_counts():
    client = ScriptedClient(commands={"s1": ["completed"]}, produced={"s1": [scan("completed_clean")]}, link=False)
    client.stored["beside"] = dict(scan("completed_with_errors", critical=1, findings=[BAD_ROOT_LOGIN]),
                                   id="beside-1", server_id="s1")
    (result,) = run(client, servers=SERVERS[:1], require_scan_link=False)
    assert (result["passed"], result["scan_id"]) == (False, "beside-1")

    alone = ScriptedClient(commands={"s1": ["completed"]}, produced={"s1": [scan("completed_clean")]}, link=False)
    (result,) = run(alone, servers=SERVERS[:1], require_scan_link=False)
    assert (result["passed"], result["scan_id"]) == (True, "scan-s1-1")


def test_a_clean_scan_that_evaluated_no_rule_is_not_a_pass():
    client = ScriptedClient(commands={"s1": ["completed"]}, produced={"s1": [scan("completed_clean", ok=0, findings=[])]})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["passed"], result["error"], result["status"]) == (False, True, "completed_clean")
    assert "evaluated no rule" in result["msg"]


def test_a_clean_scan_with_an_indeterminate_finding_is_not_a_pass():
    unknown = {"rule_name": "Password aging", "critical": False, "status": "indeterminate", "details": []}
    client = ScriptedClient(commands={"s1": ["completed"]},
                            produced={"s1": [scan("completed_clean", findings=[GOOD_RULE, unknown])]})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["passed"], result["error"]) == (False, True)
    assert "not good" in result["msg"]


def test_a_server_whose_agent_never_answers_times_out_and_does_not_pass():
    client = ScriptedClient(commands={"s1": ["queued"], "s2": ["completed"]},
                            produced={"s2": [scan("completed_clean")]})
    web1, web2 = run(client, timeout=10)
    assert (web1["status"], web1["timed_out"], web1["error"], web1["passed"]) == ("timed_out", True, True, False)
    assert "is queued" in web1["msg"]
    assert web2["passed"] is True


def test_a_failed_scan_is_started_once_more_then_reported_with_its_reason():
    client = ScriptedClient(commands={"s1": ["started", "failed"]}, produced={})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["status"], result["passed"], result["error"], result["attempts"]) == ("failed", False, True, 2)
    assert "agent crashed" in result["msg"]
    assert client.started == [("s1", "sca"), ("s1", "sca")]


def test_a_scan_that_failed_once_is_judged_by_its_second_run():
    client = ScriptedClient(commands={"s1": ["failed", "completed"]},
                            produced={"s1": [scan("failed"), scan("completed_clean")]})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["scan_id"], result["passed"], result["attempts"]) == ("scan-s1-2", True, 2)


def test_a_scan_with_bad_findings_is_not_started_again():
    client = ScriptedClient(commands={"s1": ["completed"]},
                            produced={"s1": [scan("completed_with_errors", critical=1, findings=[BAD_ROOT_LOGIN])]})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["attempts"], len(client.started)) == (1, 1)


def test_an_api_error_on_one_server_leaves_the_others_judged():
    class Broken(ScriptedClient):
        def start_scan(self, server_id, scan_module):
            if server_id == "s1":
                raise HaloAPIError("POST", "/v1/servers/s1/scans", 404, "no server with id s1")
            return super().start_scan(server_id, scan_module)

    client = Broken(commands={"s2": ["completed"]}, produced={"s2": [scan("completed_clean")]})
    web1, web2 = run(client)
    assert (web1["status"], web1["passed"], web1["error"]) == ("error", False, True)
    assert "no server with id s1" in web1["msg"]
    assert web2["passed"] is True


@pytest.mark.parametrize("stored, verdict", [
    (scan("completed_clean"), True),
    (scan("completed_clean", critical=4), False),  # the real service has stored such scans
    (scan("completed_clean", non_critical=1), False),
    (scan("completed_with_errors"), False),
    (scan("failed"), False),
    (None, False),
])
def test_verdict_needs_clean_status_and_no_findings(stored, verdict):
    assert scan_verdict(stored) is verdict


def test_evidence_needs_a_rule_that_was_evaluated_and_found_good():
    assert missing_evidence(scan("completed_clean")) is None
    assert "evaluated no rule" in missing_evidence(scan("completed_clean", ok=0, findings=[]))
    assert "evaluated no rule" in missing_evidence(scan("completed_clean", ok=3, findings=[]))


NOT_APPLICABLE_RULE = {
    "rule_name": "SSH PermitEmptyPasswords is no", "critical": True, "status": "good",
    "details": [{"type": "applies_to", "target": "openssh-server, /usr/sbin/sshd", "expected": "present",
                 "actual": "absent", "status": "good", "scan_status": "not_applicable",
                 "reason": "not applicable: package openssh-server and file /usr/sbin/sshd are absent"}],
}


def test_not_applicable_findings_are_no_evidence_and_no_obstacle():
    """Every rule not applicable is "no rule evaluated", even if a server counted them ok;
    next to an evaluated good rule they neither block nor are listed as failed."""
    only_na = scan("completed_clean", ok=2, findings=[NOT_APPLICABLE_RULE, NOT_APPLICABLE_RULE])
    assert "evaluated no rule" in missing_evidence(only_na)
    mixed = scan("completed_clean", ok=1, findings=[NOT_APPLICABLE_RULE, GOOD_RULE])
    assert missing_evidence(mixed) is None and scan_verdict(mixed)
    assert failed_rules(mixed) == []
    # a good finding with an ordinary detail is evaluated, not "not applicable"
    evaluated = dict(NOT_APPLICABLE_RULE, details=[dict(NOT_APPLICABLE_RULE["details"][0], scan_status="ok")])
    assert missing_evidence(scan("completed_clean", ok=1, findings=[evaluated])) is None


# What each scan module adds to a result besides failed_rules.
FOUND_BY_MODULE = {"sca": (), "csm": (), "svm": ("vulnerable_packages",), "sva": ("vulnerable_packages",),
                   "fim": ("changed_files",), "sam": ()}


@pytest.mark.parametrize("module", sorted(FOUND_BY_MODULE))
@pytest.mark.parametrize("status, words", [
    ("running", "the scan is running, not finished"),
    ("failed", "the scan failed on the server: no FIM baseline"),
])
def test_an_unfinished_or_failed_scan_is_no_verdict_whatever_its_module(module, status, words):
    # Counts and a good finding that would pass a finished scan of every module.
    stored = dict(scan(status, ok=5, findings=[GOOD_RULE]), id="scan1", module=module, result="no FIM baseline",
                  completed_at="2026-03-01T10:15:02Z")
    result = judge_scan({"passed": True, "error": False, "msg": ""}, stored)
    assert (result["passed"], result["error"], result["msg"]) == (False, True, words)
    assert (result["scan_id"], result["status"], result["ok_findings_count"], result["completed_at"]) == (
        stored["id"], status, 5, "2026-03-01T10:15:02Z")
    assert result["failed_rules"] == []
    assert all(result[key] == [] for key in FOUND_BY_MODULE[module])


@pytest.mark.parametrize("module", sorted(FOUND_BY_MODULE))
def test_a_finished_scan_is_judged_by_its_module(module):
    stored = dict(scan("completed_clean", ok=5, findings=[GOOD_RULE]), module=module)
    result = judge_scan({"passed": False, "error": False, "msg": ""}, stored)
    # A fim scan's good finding is no changed file, an svm scan's no vulnerable package: all pass.
    assert (result["passed"], result["error"]) == (True, False)
    assert set(FOUND_BY_MODULE[module]) <= set(result)


def test_failed_rules_put_critical_and_bad_first():
    findings = [
        {"rule_name": "b-indeterminate", "critical": False, "status": "indeterminate", "details": []},
        {"rule_name": "a-bad", "critical": False, "status": "bad", "details": []},
        {"rule_name": "z-critical", "critical": True, "status": "bad", "details": []},
        {"rule_name": "ok", "critical": True, "status": "good", "details": []},
    ]
    assert [rule["name"] for rule in failed_rules({"findings": findings})] == ["z-critical", "a-bad", "b-indeterminate"]


class UnconfirmedFirstStart(ScriptedClient):
    """The API answers 5xx to the first scan request (whether it queued a scan is unknown)."""

    def start_scan(self, server_id, scan_module):
        command = super().start_scan(server_id, scan_module)
        if len(self.started) == 1:
            raise HaloOutcomeUnknownError("Halo API POST /v1/servers/%s/scans failed with HTTP 502: bad gateway" % server_id)
        return command


def test_a_scan_request_with_an_unknown_outcome_is_made_once_more_and_judged_by_its_own_command():
    client = UnconfirmedFirstStart(commands={"s1": ["completed"]},
                                   produced={"s1": [scan("completed_clean"), scan("completed_with_errors", critical=1)]})
    (result,) = run(client, servers=SERVERS[:1])
    # The second command's scan is judged, never the first (unknown) one's.
    assert (result["scan_id"], result["passed"], result["attempts"]) == ("scan-s1-2", False, 2)
    assert client.started == [("s1", "sca"), ("s1", "sca")]


def test_two_unknown_outcomes_give_no_verdict():
    class AlwaysUnknown(ScriptedClient):
        def start_scan(self, server_id, scan_module):
            super().start_scan(server_id, scan_module)
            raise HaloOutcomeUnknownError("Halo API POST /v1/servers/s1/scans failed with HTTP 500: boom")

    client = AlwaysUnknown(commands={}, produced={}, latest={"s1": scan("completed_clean")})
    (result,) = run(client, servers=SERVERS[:1], timeout=5)
    assert (result["status"], result["passed"], result["error"], result["scan_id"]) == ("error", False, True, None)
    assert "HTTP 500: boom" in result["msg"] and "no verdict" in result["msg"]
    assert len(client.started) == 2


def test_progress_lines_count_finished_passed_kept_and_waiting():
    lines = []
    client = ScriptedClient(commands={"s1": ["completed"], "s2": ["completed"]},
                            produced={"s1": [scan("completed_clean")],
                                      "s2": [scan("completed_with_errors", critical=1, findings=[BAD_ROOT_LOGIN])]})
    clock = FakeClock()
    scanner = Scanner(client, scan_timeout=30, poll_interval=1, max_workers=2, clock=clock, sleep=clock.sleep,
                      progress=lines.append, progress_interval=1)
    scanner.scan(SERVERS)
    assert lines and lines[-1].startswith("2/2 scans finished (1 passed, 1 kept, 0 without verdict), 0 waiting")


def test_running_scans_are_watched_through_one_listing_not_one_call_per_server():
    servers = [{"id": "s%d" % number, "hostname": "web%d" % number} for number in range(1, 31)]
    client = ScriptedClient(commands=dict((server["id"], ["started", "started", "completed"]) for server in servers),
                            produced=dict((server["id"], [scan("completed_clean")]) for server in servers))
    results = run(client, servers=servers)
    assert all(result["passed"] for result in results)
    # Per server: one start and one read of the finished scan; the watching is shared.
    assert client.calls.count("start_scan") == 30 and client.calls.count("get_scan") == 30
    assert client.calls.count("list_scans") == 3
    assert "get_command" not in client.calls and "latest_scan" not in client.calls
