"""halo_admission_report in-process: the JSON and JUnit files, check mode, idempotence, and
how the notifications behave (what they send is proven against real servers in
tests/integration/test_admission_report.py)."""

import json
import socket
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.cloudpassage.halo.plugins.modules import halo_admission_report

TRICKY = 'Root <login> & "quotes"'


def rule(name, critical=True, expected="no", actual="yes"):
    return {"name": name, "critical": critical, "status": "bad", "checks": [
        {"type": "configuration_file_setting", "target": "/etc/ssh/sshd_config", "config_key": "PermitRootLogin",
         "expected": expected, "actual": actual, "status": "bad", "reason": None}]}


def result(hostname, server_id, passed, status, failed_rules=(), **extra):
    entry = {"server_id": server_id, "hostname": hostname, "server_label": hostname, "group_name": "ProdWebDirty",
             "status": status, "passed": passed, "msg": "", "failed_rules": list(failed_rules), "timed_out": False,
             "attempts": 1, "scan_id": "scan-" + server_id, "command_id": "cmd-" + server_id}
    entry.update(extra)
    return entry


# Deliberately not in host name order: the files must be.
RESULTS = [
    result("web3", "s3", False, "timed_out", timed_out=True, error=True,
           msg="the scan did not finish within 5s (command c3 is started; is the agent running?)"),
    result("web2", "s2", False, "completed_with_errors", [rule(TRICKY), rule("Telnet off", critical=False,
                                                                             expected="absent", actual=None)],
           error=False),
    result("web1", "s1", True, "completed_clean", error=False),
]
MOVED = [{"server_id": "s1", "hostname": "web1", "from_group": "ProdWebDirty", "to_group": "ProdWebClean"}]


def args(tmp_path, **extra):
    base = {"results": RESULTS, "moved": MOVED, "source_group": "ProdWebDirty", "destination_group": "ProdWebClean",
            "json_path": str(tmp_path / "admission.json"), "junit_path": str(tmp_path / "admission.xml")}
    base.update(extra)
    return base


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections (bound, never listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def test_junit_has_a_case_per_server_a_failure_with_expected_and_actual_and_an_error_without_verdict(tmp_path, run_module):
    out, failed = run_module(halo_admission_report, args(tmp_path))
    assert not failed and out["changed"] is True
    raw = (tmp_path / "admission.xml").read_text()
    assert "&lt;login&gt; &amp;" in raw  # escaped in the file, not just tolerated by the parser
    suites = ET.fromstring(raw)
    suite = suites.find("testsuite")
    assert suite.get("name") == "ProdWebDirty -> ProdWebClean"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert [(case.get("classname"), case.get("name")) for case in cases] == [
        ("ProdWebDirty", "web1"), ("ProdWebDirty", "web2"), ("ProdWebDirty", "web3")]
    web1, web2, web3 = cases
    assert list(web1) == []
    assert [child.tag for child in web2] == ["failure"]
    failure = web2.find("failure")
    assert failure.get("message") == "completed_with_errors: %s; Telnet off" % TRICKY
    assert "[critical] %s (bad)" % TRICKY in failure.text
    assert "/etc/ssh/sshd_config PermitRootLogin: expected no, actual yes" in failure.text
    assert "expected absent, actual (not set)" in failure.text
    assert [child.tag for child in web3] == ["error"]
    assert web3.find("error").get("type") == "timed_out"
    assert "did not finish within 5s" in web3.find("error").get("message")


def test_junit_stays_parseable_with_control_characters_in_a_scanned_value(tmp_path, run_module):
    results = [result("web2", "s2", False, "completed_with_errors", [rule("Banner", actual="a\x01b\x1bc")])]
    out, failed = run_module(halo_admission_report, args(tmp_path, results=results, moved=[]))
    assert not failed
    failure = ET.parse(str(tmp_path / "admission.xml")).getroot().find("testsuite/testcase/failure")
    assert "actual a\ufffdb\ufffdc" in failure.text


def test_json_report_holds_the_verdicts_in_host_order_and_nothing_that_changes_every_run(tmp_path, run_module):
    out, failed = run_module(halo_admission_report, args(tmp_path, left_alone=[
        {"server_id": "s9", "hostname": "web9", "group_name": "Elsewhere"}]))
    assert not failed
    report = json.loads((tmp_path / "admission.json").read_text())
    assert report == out["report"]
    assert report["counts"] == {"servers": 3, "passed": 1, "kept": 2, "errors": 1, "promoted": 1}
    assert report["promoted"] == [{"hostname": "web1", "server_id": "s1", "from_group": "ProdWebDirty",
                                   "to_group": "ProdWebClean"}]
    assert report["left_alone"] == [{"hostname": "web9", "server_id": "s9", "group_name": "Elsewhere"}]
    assert [entry["hostname"] for entry in report["passed"]] == ["web1"]
    assert [(entry["hostname"], entry["error"]) for entry in report["kept"]] == [("web2", False), ("web3", True)]
    assert [r["name"] for r in report["kept"][0]["failed_rules"]] == [TRICKY, "Telnet off"]
    assert report["kept"][0]["failed_rules"][0]["checks"][0]["actual"] == "yes"
    text = (tmp_path / "admission.json").read_text()
    for volatile in ("scan_id", "command_id", "attempts", "scan-s2", "cmd-s2"):
        assert volatile not in text


def test_without_the_error_key_a_timed_out_or_failed_scan_counts_as_no_verdict(tmp_path, run_module):
    results = [dict(RESULTS[0]), result("web4", "s4", False, "failed", msg="the scan failed on the server: oops"),
               result("web2", "s2", False, "completed_with_errors", [rule("X")])]
    for entry in results:
        entry.pop("error", None)
    out, failed = run_module(halo_admission_report, args(tmp_path, results=results, moved=[]))
    assert not failed
    assert [(e["hostname"], e["error"]) for e in out["report"]["kept"]] == [
        ("web2", False), ("web3", True), ("web4", True)]


def test_same_verdicts_leave_the_files_untouched_and_new_ones_rewrite_them(tmp_path, run_module):
    assert run_module(halo_admission_report, args(tmp_path))[0]["changed"] is True
    again, failed = run_module(halo_admission_report, args(tmp_path))
    assert not failed and (again["changed"], again["written"]) == (False, [])
    # A later run: web1 is gone from the source group and nothing moved.
    later, failed = run_module(halo_admission_report, args(tmp_path, results=RESULTS[:2], moved=[]))
    assert not failed and later["changed"] is True
    assert sorted(later["written"]) == [str(tmp_path / "admission.json"), str(tmp_path / "admission.xml")]
    assert json.loads((tmp_path / "admission.json").read_text())["promoted"] == []


def test_check_mode_writes_nothing_and_the_diff_shows_the_new_content(tmp_path, run_module):
    out, failed = run_module(halo_admission_report, args(tmp_path), check_mode=True, diff=True)
    assert not failed and out["changed"] is True
    assert out["written"] == [str(tmp_path / "admission.json"), str(tmp_path / "admission.xml")]
    assert list(tmp_path.iterdir()) == []
    assert [d["after_header"] for d in out["diff"]] == out["written"]
    assert out["diff"][0]["before"] == "" and json.loads(out["diff"][0]["after"]) == out["report"]


def test_a_missing_directory_fails_clearly(tmp_path, run_module):
    out, failed = run_module(halo_admission_report, args(tmp_path, json_path=str(tmp_path / "nope" / "r.json")))
    assert failed and out["msg"] == "json_path: the directory %s does not exist" % (tmp_path / "nope")


def test_check_mode_sends_nothing(tmp_path, run_module, closed_port):
    # Both channels point at a port that refuses: any attempt to send would fail the task.
    out, failed = run_module(halo_admission_report, args(
        tmp_path, email={"smtp_host": "127.0.0.1", "smtp_port": closed_port, "from": "a@example.com", "to": ["b@example.com"]},
        webhook={"url": "http://127.0.0.1:%d/hook" % closed_port}), check_mode=True)
    assert not failed, out
    assert (out["email_sent"], out["webhook_sent"]) == (False, False)


def test_nobody_kept_sends_nothing(tmp_path, run_module, closed_port):
    out, failed = run_module(halo_admission_report, args(
        tmp_path, results=[RESULTS[2]],
        email={"smtp_host": "127.0.0.1", "smtp_port": closed_port, "from": "a@example.com", "to": ["b@example.com"]},
        webhook={"url": "http://127.0.0.1:%d/hook" % closed_port}))
    assert not failed, out
    assert (out["email_sent"], out["webhook_sent"]) == (False, False)


def test_unreachable_channels_fail_with_one_line_each_and_no_secret(tmp_path, run_module, closed_port):
    out, failed = run_module(halo_admission_report, args(
        tmp_path,
        email={"smtp_host": "127.0.0.1", "smtp_port": closed_port, "from": "a@example.com", "to": ["b@example.com"],
               "timeout": 5},
        webhook={"url": "http://hookuser:hookpass@127.0.0.1:%d/hooks/T0KEN" % closed_port,
                 "headers": {"Authorization": "Bearer sekrit"}, "timeout": 5}))
    assert failed
    assert out["msg"].startswith("could not send the admission email through 127.0.0.1:%d: " % closed_port)
    assert "; could not reach the webhook at http://127.0.0.1:%d: " % closed_port in out["msg"]
    assert "\n" not in out["msg"]
    for secret in ("T0KEN", "hookpass", "sekrit"):
        assert secret not in out["msg"]
    # The files were written before the notifications, and the result says so.
    assert (tmp_path / "admission.json").exists() and out["written"]
    assert (out["email_sent"], out["webhook_sent"]) == (False, False)


def test_webhook_posts_the_body_with_the_extra_headers(tmp_path, run_module, fake_halo):
    fake_halo.on("POST", "/hook", (204, None))
    out, failed = run_module(halo_admission_report, args(
        tmp_path, json_path=None, junit_path=None,
        webhook={"url": fake_halo.url + "/hook", "headers": {"X-Ticket-Queue": "secops"}}))
    assert not failed and out["webhook_sent"] is True and out["changed"] is False
    [call] = fake_halo.calls("POST", "/hook")
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["headers"]["X-Ticket-Queue"] == "secops"
    assert sorted(call["body"]) == ["destination_group", "kept", "promoted", "source_group"]
    assert [entry["hostname"] for entry in call["body"]["kept"]] == ["web2", "web3"]
    assert call["body"]["kept"][0]["failed_rules"][0]["name"] == TRICKY


@pytest.mark.parametrize("status", [500, 302])
def test_a_webhook_that_does_not_accept_fails_with_its_status(tmp_path, run_module, fake_halo, status):
    # A redirect is a failure too: following it would turn the POST into a GET without the body.
    fake_halo.on("POST", "/hook/T0KEN", (status, {"error": "nope"}, {"Location": fake_halo.url + "/elsewhere"}))
    fake_halo.on("GET", "/elsewhere", (200, {}))
    out, failed = run_module(halo_admission_report, args(tmp_path, json_path=None, junit_path=None,
                                                         webhook={"url": fake_halo.url + "/hook/T0KEN"}))
    assert failed
    assert out["msg"].startswith("the webhook at %s answered HTTP %d" % (fake_halo.url, status))
    assert "T0KEN" not in out["msg"]
    assert fake_halo.calls("GET", "/elsewhere") == []


def test_a_password_without_starttls_is_refused(tmp_path, run_module):
    out, failed = run_module(halo_admission_report, args(tmp_path, email={
        "smtp_host": "127.0.0.1", "from": "a@example.com", "to": ["b@example.com"], "username": "u", "password": "p"}))
    assert failed and "email.username needs email.starttls=true" in out["msg"]
    assert not (tmp_path / "admission.json").exists()


def test_the_email_names_each_kept_host_with_its_failed_rules():
    report = halo_admission_report.build_report({
        "results": RESULTS, "moved": MOVED, "left_alone": [], "source_group": "ProdWebDirty",
        "destination_group": "ProdWebClean"})
    message = halo_admission_report.build_email(
        {"from": "admission@example.com", "to": ["secops@example.com", "oncall@example.com"], "subject": None}, report)
    assert message["Subject"] == "Halo admission: 2 hosts kept in ProdWebDirty"
    assert message["To"] == "secops@example.com, oncall@example.com"
    body = message.get_content()
    assert "Promoted to ProdWebClean: web1" in body
    assert "Kept in ProdWebDirty: web2, web3" in body
    assert "[critical] %s (bad)\n  /etc/ssh/sshd_config PermitRootLogin: expected no, actual yes" % TRICKY in body
    assert "web3 (server s3) stays in ProdWebDirty: timed_out - the scan did not finish" in body
