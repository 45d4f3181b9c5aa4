"""A crafted agent: speaks grid/PROTOCOL.md over HTTP from a thread of the test process and
answers its commands with the results the test chooses, in the order the test chooses.

A real ``haloagent`` scans a tree and answers each command as it comes; the crafted agent lets a
test hold a command, answer two in a chosen order, or send results no honest agent would (a scan
that evaluated no rule). It records what it received and answered, so a test can assert that
the sequence it staged really happened.

    agent = CraftedAgent(env.grid.url, env.grid.agent_key, "crafted", on_command=handler)
    agent.register()
    with agent:                       # the poll loop runs in a thread until the block ends
        ...
"""

import datetime
import threading
import time

import requests

RULE = "SSH root login is disabled or key-only"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bad_critical_finding(policy_id=None, rule_name=RULE):
    """A critical rule that failed: root may log in over ssh with a password."""
    return {"rule_name": rule_name, "policy_id": policy_id, "critical": True, "status": "bad",
            "details": [{"type": "configuration_file_setting", "target": "/etc/ssh/sshd_config",
                         "config_key": "PermitRootLogin", "expected": "no|prohibit-password|without-password",
                         "actual": "yes", "status": "bad", "scan_status": "ok"}]}


def good_finding(policy_id=None, rule_name=RULE):
    """The same rule, passed."""
    return {"rule_name": rule_name, "policy_id": policy_id, "critical": True, "status": "good",
            "details": [{"type": "configuration_file_setting", "target": "/etc/ssh/sshd_config",
                         "config_key": "PermitRootLogin", "expected": "no|prohibit-password|without-password",
                         "actual": "no", "status": "good", "scan_status": "ok"}]}


class CraftedAgent:
    """One server, registered with the daemon key, long-polling in a thread.

    ``on_command(agent, command)`` is called once per command id, in the order the grid hands
    them out (a command the grid hands out again is not passed twice); it may start, answer or
    hold the command. Without it, commands are only recorded.
    """

    def __init__(self, grid_url, daemon_key, label, tag="NewDirty", on_command=None, poll_wait=1,
                 request_timeout=10):
        self.grid_url = grid_url.rstrip("/")
        self.daemon_key = daemon_key
        self.label = label
        self.tag = tag
        self.on_command = on_command
        self.poll_wait = poll_wait
        self.request_timeout = request_timeout
        self.session = requests.Session()
        self.server_id = None
        self._secret = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        # What happened, in order: command ids as received, (command id, label) as answered,
        # and command ids started. Errors in the thread are kept for check().
        self.received = []
        self.commands = {}
        self.answered = []
        self.started = []
        self.errors = []

    # -- protocol ------------------------------------------------------------------------
    def register(self):
        r = self.session.post(self.grid_url + "/agent/v1/register", headers={"X-Daemon-Key": self.daemon_key},
                              json={"hostname": self.label, "reported_fqdn": self.label + ".lab",
                                    "server_label": self.label, "tag": self.tag, "platform": "debian",
                                    "platform_version": "12", "os_version": "6.1.0-18-amd64",
                                    "kernel_name": "Linux", "daemon_version": "0.1.0-crafted",
                                    "interfaces": [{"name": "eth0", "ip": "198.18.0.99"}],
                                    "primary_ip_address": "198.18.0.99"},
                              timeout=self.request_timeout)
        if r.status_code != 201:
            raise AssertionError("crafted agent %s: register -> %d %s" % (self.label, r.status_code, r.text))
        data = r.json()
        self.server_id, self._secret = data["server_id"], data["agent_secret"]
        return self.server_id

    def _auth(self):
        return {"Authorization": "Agent %s:%s" % (self.server_id, self._secret)}

    def poll(self):
        r = self.session.get(self.grid_url + "/agent/v1/poll", params={"wait": self.poll_wait}, headers=self._auth(),
                             timeout=self.poll_wait + self.request_timeout)
        if r.status_code == 204:  # the grid saw us disconnect
            return []
        if r.status_code != 200:
            raise AssertionError("crafted agent %s: poll -> %d %s" % (self.label, r.status_code, r.text))
        return r.json().get("commands") or []

    def start_command(self, command_id):
        r = self.session.post(self.grid_url + "/agent/v1/commands/%s/start" % command_id, headers=self._auth(),
                              timeout=self.request_timeout)
        if r.status_code != 204:
            raise AssertionError("crafted agent %s: start %s -> %d %s" % (self.label, command_id, r.status_code, r.text))
        with self._lock:
            self.started.append(command_id)

    def answer(self, command_id, findings, label=None, status="completed", reason=None):
        """Post the result of ``command_id``; ``label`` names it in ``answered`` (e.g. "dirty")."""
        now = _now()
        body = {"status": status, "scan": {"module": "sca", "agent_started_at": now, "agent_completed_at": now,
                                           "findings": findings}}
        if reason is not None:
            body["result"] = reason
        r = self.session.post(self.grid_url + "/agent/v1/commands/%s/result" % command_id, headers=self._auth(),
                              json=body, timeout=self.request_timeout)
        if r.status_code != 204:
            raise AssertionError("crafted agent %s: result %s -> %d %s" % (self.label, command_id, r.status_code, r.text))
        with self._lock:
            self.answered.append((command_id, label))

    # -- the poll loop -------------------------------------------------------------------
    def _loop(self):
        while not self._stop.is_set():
            try:
                commands = self.poll()
            except requests.RequestException:
                # The grid is away (stopped, frozen, restarting): try again, as haloagent does.
                self._stop.wait(0.5)
                continue
            except Exception as exc:  # noqa: BLE001 - reported by check()
                self.errors.append(exc)
                self._stop.wait(0.5)
                continue
            for command in commands:
                with self._lock:
                    if command["id"] in self.commands:
                        continue
                    self.commands[command["id"]] = command
                    self.received.append(command["id"])
                if self.on_command is None:
                    continue
                try:
                    self.on_command(self, command)
                except Exception as exc:  # noqa: BLE001 - reported by check()
                    self.errors.append(exc)

    def start(self):
        if self.server_id is None:
            self.register()
        self._thread = threading.Thread(target=self._loop, name="crafted-agent-" + self.label, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_wait + self.request_timeout + 5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def check(self):
        """Raise the first error the thread met (a refused answer, a handler that failed)."""
        if self.errors:
            raise AssertionError("crafted agent %s failed: %r" % (self.label, self.errors[0]))

    def wait_until(self, predicate, timeout=30, what="the crafted agent's condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            self.check()
            if time.monotonic() > deadline:
                raise AssertionError("%s not met within %ss (received %s, answered %s)"
                                     % (what, timeout, self.received, self.answered))
            time.sleep(0.05)
