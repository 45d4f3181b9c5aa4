"""Integration fixtures: a real grid process on loopback, real agent processes scanning
prepared root trees, and real ``ansible-playbook`` runs against them. Nothing here fakes HTTP."""

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloClient
from halogrid.testing import AgentProcess, GridProcess

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _load_trees():
    spec = importlib.util.spec_from_file_location("halo_trees", REPO / "grid/tests/fixtures/trees.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


trees = _load_trees()


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
        self.client = HaloClient(api_host=self.grid.url, api_key=self.key_id, api_secret=self.secret,
                                 ca_path=self.grid.opts.get("certfile"))
        return self

    def __exit__(self, *exc):
        self.grid.__exit__(*exc)

    def membership(self):
        """Server label -> group name, from the API."""
        return {server["server_label"]: server["group_name"]
                for server in self.client.list_servers(state=["active", "missing"])}

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
        policies = self.client.paginate("/v2/policies", "policies", {"module": "csm"})
        debian = next(p for p in policies if "Debian" in p["name"])
        self.groups = {}
        for name, tag in (("ProdWebDirty", "NewDirty"), ("ProdWebClean", None)):
            body = {"group": {"name": name, "tag": tag, "policy_ids": [debian["id"]]}}
            self.groups[name] = self.client.post("/v1/groups", body)["group"]["id"]
        return self

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
            servers = self.client.list_servers(state=["active"])
            if len(servers) >= count:
                return servers
            time.sleep(0.2)
        raise AssertionError("only %d of %d agents registered" % (len(servers), count))


@pytest.fixture
def grid(tmp_path):
    with Grid(tmp_path) as env:
        yield env


@pytest.fixture
def admission(tmp_path):
    with Admission(tmp_path) as env:
        yield env


def add_web_hosts(admission):
    """web1 complies with the policy; web2 allows root logins over ssh (and more)."""
    admission.add_agent("web1", compliant=True)
    admission.add_agent("web2", compliant=False)
    return admission


@pytest.fixture
def two_hosts(admission):
    return add_web_hosts(admission)
