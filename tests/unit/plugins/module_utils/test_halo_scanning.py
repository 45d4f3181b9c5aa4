import pytest

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloAPIError, HaloOutcomeUnknownError
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_scanning import Scanner, failed_rules, scan_verdict

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
    """Per server: the command states it goes through and the scans it has stored."""

    def __init__(self, commands, scans_before, scans_after):
        self.commands = commands
        self.scans = dict(scans_before)
        self.scans_after = scans_after
        self.started = []

    def latest_scan(self, server_id, module):
        return self.scans.get(server_id)

    def start_scan(self, server_id, module):
        self.started.append((server_id, module))
        return {"id": "cmd-" + server_id, "status": "queued"}

    def get_command(self, server_id, command_id):
        states = self.commands[server_id]
        status = states.pop(0) if len(states) > 1 else states[0]
        if status == "completed" and server_id in self.scans_after:
            self.scans[server_id] = self.scans_after[server_id]
        return {"id": command_id, "status": status, "result": "agent crashed" if status == "failed" else None}


def scan(id_, status, critical=0, non_critical=0, findings=()):
    return {"id": id_, "status": status, "critical_findings_count": critical,
            "non_critical_findings_count": non_critical, "ok_findings_count": 20, "findings": list(findings)}


SERVERS = [{"id": "s1", "hostname": "web1"}, {"id": "s2", "hostname": "web2"}]


def run(client, servers=None, timeout=30):
    clock = FakeClock()
    scanner = Scanner(client, timeout=timeout, poll_interval=1, max_workers=1, clock=clock, sleep=clock.sleep)
    return scanner.scan(SERVERS if servers is None else servers)


def test_clean_server_passes_and_dirty_server_reports_its_failed_rule():
    client = ScriptedClient(
        commands={"s1": ["pending", "started", "completed"], "s2": ["completed"]},
        scans_before={},
        scans_after={"s1": scan("new1", "completed_clean"),
                     "s2": scan("new2", "completed_with_errors", critical=1, findings=[BAD_ROOT_LOGIN])},
    )
    web1, web2 = run(client)
    assert (web1["passed"], web1["scan_id"], web1["status"]) == (True, "new1", "completed_clean")
    assert (web2["passed"], web2["critical_findings_count"]) == (False, 1)
    assert web2["failed_rules"] == [{
        "name": "SSH root login disabled", "critical": True, "status": "bad",
        "checks": [{"type": "configuration_file_setting", "target": "/etc/ssh/sshd_config",
                    "config_key": "PermitRootLogin", "expected": "no", "actual": "yes", "status": "bad",
                    "reason": None}]}]
    assert client.started == [("s1", "sca"), ("s2", "sca")]


def test_an_old_clean_scan_never_admits_a_server():
    client = ScriptedClient(commands={"s1": ["completed"]},
                            scans_before={"s1": scan("old", "completed_clean")}, scans_after={})
    (result,) = run(client, servers=SERVERS[:1], timeout=5)
    assert result["passed"] is False
    assert result["timed_out"] is True
    assert "no new scan result" in result["msg"]


def test_a_server_whose_agent_never_answers_times_out_and_does_not_pass():
    client = ScriptedClient(commands={"s1": ["queued"], "s2": ["completed"]}, scans_before={},
                            scans_after={"s2": scan("new2", "completed_clean")})
    web1, web2 = run(client, timeout=10)
    assert (web1["status"], web1["timed_out"], web1["passed"]) == ("timed_out", True, False)
    assert "is queued" in web1["msg"]
    assert web2["passed"] is True


def test_a_failed_scan_is_started_once_more_then_reported_with_its_reason():
    client = ScriptedClient(commands={"s1": ["started", "failed"]}, scans_before={}, scans_after={})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["status"], result["passed"], result["attempts"]) == ("failed", False, 2)
    assert "agent crashed" in result["msg"]
    assert client.started == [("s1", "sca"), ("s1", "sca")]


def test_a_scan_that_failed_once_is_judged_by_its_second_run():
    client = ScriptedClient(commands={"s1": ["failed", "completed"]}, scans_before={},
                            scans_after={"s1": scan("second", "completed_clean")})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["scan_id"], result["passed"], result["attempts"]) == ("second", True, 2)


def test_a_scan_with_bad_findings_is_not_started_again():
    client = ScriptedClient(commands={"s1": ["completed"]}, scans_before={},
                            scans_after={"s1": scan("n", "completed_with_errors", critical=1)})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["attempts"], len(client.started)) == (1, 1)


def test_an_api_error_on_one_server_leaves_the_others_judged():
    class Broken(ScriptedClient):
        def start_scan(self, server_id, module):
            if server_id == "s1":
                raise HaloAPIError("POST", "/v1/servers/s1/scans", 404, "no server with id s1")
            return super().start_scan(server_id, module)

    client = Broken(commands={"s2": ["completed"]}, scans_before={}, scans_after={"s2": scan("n", "completed_clean")})
    web1, web2 = run(client)
    assert (web1["status"], web1["passed"]) == ("error", False)
    assert "no server with id s1" in web1["msg"]
    assert web2["passed"] is True


@pytest.mark.parametrize("stored, verdict", [
    (scan("a", "completed_clean"), True),
    (scan("a", "completed_clean", critical=4), False),  # the real service has stored such scans
    (scan("a", "completed_clean", non_critical=1), False),
    (scan("a", "completed_with_errors"), False),
    (scan("a", "failed"), False),
    (None, False),
])
def test_verdict_needs_clean_status_and_no_findings(stored, verdict):
    assert scan_verdict(stored) is verdict


def test_failed_rules_put_critical_and_bad_first():
    findings = [
        {"rule_name": "b-indeterminate", "critical": False, "status": "indeterminate", "details": []},
        {"rule_name": "a-bad", "critical": False, "status": "bad", "details": []},
        {"rule_name": "z-critical", "critical": True, "status": "bad", "details": []},
        {"rule_name": "ok", "critical": True, "status": "good", "details": []},
    ]
    assert [rule["name"] for rule in failed_rules({"findings": findings})] == ["z-critical", "a-bad", "b-indeterminate"]


class UnconfirmedStart(ScriptedClient):
    """The API answers 5xx to the scan request although it queued the scan."""

    def start_scan(self, server_id, module):
        super().start_scan(server_id, module)
        self.scans[server_id] = self.scans_after[server_id]
        raise HaloOutcomeUnknownError("Halo API POST /v1/servers/%s/scans failed with HTTP 502: bad gateway" % server_id)


def test_a_scan_whose_start_is_unconfirmed_is_judged_by_its_result_not_started_twice():
    client = UnconfirmedStart(commands={}, scans_before={"s1": scan("old", "completed_with_errors")},
                              scans_after={"s1": scan("new", "completed_clean")})
    (result,) = run(client, servers=SERVERS[:1])
    assert (result["scan_id"], result["passed"]) == ("new", True)
    assert client.started == [("s1", "sca")]


def test_an_unconfirmed_start_without_a_result_is_an_error_not_a_pass():
    class NothingQueued(UnconfirmedStart):
        def start_scan(self, server_id, module):
            self.started.append((server_id, module))
            raise HaloOutcomeUnknownError("Halo API POST /v1/servers/s1/scans failed with HTTP 500: boom")

    client = NothingQueued(commands={}, scans_before={"s1": scan("old", "completed_clean")}, scans_after={})
    (result,) = run(client, servers=SERVERS[:1], timeout=5)
    assert (result["status"], result["passed"], result["scan_id"]) == ("error", False, None)
    assert "HTTP 500: boom" in result["msg"] and "not started again" in result["msg"]
    assert client.started == [("s1", "sca")]
