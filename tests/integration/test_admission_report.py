"""playbooks/admit.yml with its reports and notifications: real ansible-playbook, a real grid
and agents, a real SMTP server (aiosmtpd) and a real HTTP receiver on loopback."""

import json
import threading
import xml.etree.ElementTree as ET
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from halodev.launchers import free_port


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [message_from_bytes(envelope.original_content, policy=policy.default) for envelope in self.envelopes]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


class Receiver:
    """An HTTP server in a thread that records each POST and answers 204."""

    def __init__(self):
        self.posts = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(raw)})
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hooks/T0KEN" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)


@pytest.fixture
def webhook():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def report_vars(tmp_path, smtp, webhook):
    return json.dumps({
        "halo_report_json": str(tmp_path / "admission.json"),
        "halo_report_junit": str(tmp_path / "admission.xml"),
        "halo_notify_email": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "from": "admission@example.com",
                              "to": ["secops@example.com"], "timeout": 10},
        "halo_notify_webhook": {"url": webhook.url, "headers": {"Authorization": "Bearer sekrit"}, "timeout": 10},
    })


def test_a_run_that_keeps_web2_writes_both_reports_and_sends_one_email_and_one_post(two_hosts, tmp_path, smtp, webhook):
    run = two_hosts.playbook("admit.yml", "-e", report_vars(tmp_path, smtp, webhook))
    assert run.rc == 0, run
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}

    report = json.loads((tmp_path / "admission.json").read_text())
    assert (report["source_group"], report["destination_group"]) == ("ProdWebDirty", "ProdWebClean")
    assert [entry["hostname"] for entry in report["promoted"]] == ["web1"]
    assert [entry["hostname"] for entry in report["kept"]] == ["web2"]
    assert report["kept"][0]["error"] is False
    web2_rules = [rule["name"] for rule in report["kept"][0]["failed_rules"]]
    assert any(name.startswith("SSH root login") for name in web2_rules), web2_rules

    suite = ET.parse(str(tmp_path / "admission.xml")).getroot().find("testsuite")
    assert suite.get("name") == "ProdWebDirty -> ProdWebClean"
    cases = dict((case.get("name"), case) for case in suite.findall("testcase"))
    assert sorted(cases) == ["web1", "web2"]
    assert list(cases["web1"]) == []
    failure = cases["web2"].find("failure")
    assert "SSH root login" in failure.get("message")
    assert "/etc/ssh/sshd_config PermitRootLogin: expected " in failure.text and ", actual yes" in failure.text

    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["secops@example.com"]
    [message] = smtp.messages()
    assert message["Subject"] == "Halo admission: 1 host kept in ProdWebDirty"
    body = message.get_content().replace("\r\n", "\n")  # SMTP carries CRLF
    assert "Kept in ProdWebDirty: web2\n" in body
    assert "web2 (server " in body and "SSH root login" in body
    assert "Promoted to ProdWebClean: web1\n" in body

    [post] = webhook.posts
    assert post["path"] == "/hooks/T0KEN"
    assert post["headers"]["Authorization"] == "Bearer sekrit"
    assert post["headers"]["Content-Type"] == "application/json"
    assert [entry["hostname"] for entry in post["body"]["promoted"]] == ["web1"]
    assert [entry["hostname"] for entry in post["body"]["kept"]] == ["web2"]
    assert any(rule["name"].startswith("SSH root login") for rule in post["body"]["kept"][0]["failed_rules"])
    # The webhook's token and header stay out of the job's output.
    assert "sekrit" not in run.output and "T0KEN" not in run.output


def test_a_run_where_nobody_is_kept_sends_nothing(two_hosts, tmp_path, smtp, webhook):
    # Only web1, which passes, waits in the source group.
    two_hosts.move("web2", "ProdWebClean")
    run = two_hosts.playbook("admit.yml", "-e", report_vars(tmp_path, smtp, webhook))
    assert run.rc == 0, run
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebClean"}
    report = json.loads((tmp_path / "admission.json").read_text())
    assert ([e["hostname"] for e in report["promoted"]], report["kept"]) == (["web1"], [])
    assert smtp.envelopes == []
    assert webhook.posts == []
