"""The integration tests' environment: a real grid process on loopback, real agent processes
scanning prepared root trees, and real ``ansible-playbook`` runs against them. Nothing here fakes HTTP.

The tests read the grid's state with ``halodev.launchers.GridAPI``, not with the collection's
client, so that what they assert does not depend on the code under test."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from halodev import trees
from halodev.launchers import AgentProcess, GridProcess

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class PlaybookRun:
    def __init__(self, completed):
        self.rc = completed.returncode
        self.output = completed.stdout + completed.stderr
        recap = RECAP.search(completed.stdout)
        self.ok, self.changed, self.unreachable, self.failed = (int(n) for n in recap.groups()) if recap else (None,) * 4

    def __repr__(self):
        return "PlaybookRun(rc=%s)\n%s" % (self.rc, self.output)


class RunningPlaybook:
    def __init__(self, command, env):
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(self, timeout=300):
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
        return PlaybookRun(subprocess.CompletedProcess(self.process.args, self.process.returncode, stdout, stderr))


class Grid:
    """A real grid on loopback with a read+write API key, and playbook runs against it."""

    def __init__(self, tmp_path, **grid_options):
        self.tmp_path = tmp_path
        self.grid = GridProcess(tmp_path / "grid", **grid_options)

    def __enter__(self):
        self.grid.__enter__()
        self.key_id, self.secret = self.grid.create_api_key()
        # The tests observe with a key of their own (rate limits count per key) and wait out
        # the rate limit themselves, so that only the code under test meets the 429s.
        self.api = self.grid.api(rate_limit_retries=20)
        return self

    def __exit__(self, *exc):
        self.grid.__exit__(*exc)

    def servers(self):
        return self.api.servers(state="active,missing")

    def membership(self):
        """Server label -> group name, from the API."""
        return {server["server_label"]: server["group_name"] for server in self.servers()}

    def groups(self):
        """Group name -> group."""
        return {group["name"]: group for group in self.api.ok("GET", "/v1/groups", params={"per_page": 100})["groups"]}

    def scan_count(self):
        return self.api.ok("GET", "/v1/scans", params={"per_page": 1})["count"]

    def env(self, **overrides):
        env = dict(os.environ)
        env.update(HALO_API_HOST=self.grid.url, HALO_API_KEY=self.key_id, HALO_API_SECRET_KEY=self.secret,
                   ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="False")
        env.update(overrides)
        return env

    def playbook(self, name, *args, env=None):
        return self.start_playbook(name, *args, env=env).wait()

    def start_playbook(self, name, *args, env=None):
        """ansible-playbook running in the background; ``.wait()`` gives its PlaybookRun."""
        return RunningPlaybook([ANSIBLE_PLAYBOOK, str(PLAYBOOKS / name), *args], env or self.env())


class Admission(Grid):
    """The grid with ProdWebDirty (tag NewDirty) and ProdWebClean carrying the default
    Debian policy, and one agent per prepared tree."""

    def __init__(self, tmp_path, **grid_options):
        super().__init__(tmp_path, **grid_options)
        self.agents = {}

    def __enter__(self):
        super().__enter__()
        policies = self.api.ok("GET", "/v2/policies", params={"module": "csm", "per_page": 100})["policies"]
        debian = next(p for p in policies if "Debian" in p["name"])
        self.group_ids = {}
        for name, tag in (("ProdWebDirty", "NewDirty"), ("ProdWebClean", None)):
            self.group_ids[name] = self.api.create_group(name, tag=tag, policy_ids=[debian["id"]])["id"]
        return self

    def move(self, label, group_name):
        server = next(s for s in self.servers() if s["server_label"] == label)
        self.api.ok("PUT", "/v1/servers/%s" % server["id"], {"server": {"group_id": self.group_ids[group_name]}})

    def __exit__(self, *exc):
        for agent in self.agents.values():
            agent.stop()
        super().__exit__(*exc)

    def add_agent(self, label, compliant):
        root = self.tmp_path / ("tree-" + label)
        (trees.make_compliant_tree if compliant else trees.make_failing_tree)(str(root))
        (root / "etc" / "hostname").write_text(label + "\n")
        agent = AgentProcess(self.grid.url, self.grid.agent_key, root=root, state_dir=self.tmp_path / ("state-" + label),
                             tag="NewDirty", server_label=label)
        agent.start()
        self.agents[label] = agent
        self.wait_for_servers(len(self.agents))
        return agent

    def wait_for_servers(self, count, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            servers = self.api.servers(state="active")
            if len(servers) >= count:
                return servers
            time.sleep(0.2)
        raise AssertionError("only %d of %d agents registered" % (len(servers), count))


def add_web_hosts(admission):
    """web1 complies with the policy; web2 allows root logins over ssh (and more)."""
    admission.add_agent("web1", compliant=True)
    admission.add_agent("web2", compliant=False)
    return admission
