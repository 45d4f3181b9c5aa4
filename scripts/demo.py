#!/usr/bin/env python3
"""`make demo`: Application Membership Control end to end against the embedded grid.

Starts a grid on loopback with a fresh database, sets up the lab's groups and policies with
playbooks/lab.yml, starts two agents tagged NewDirty on prepared root trees (web1 complies
with the policy, web2 allows root logins over ssh and more), runs playbooks/admit.yml and
shows the group membership before and after. Everything it starts, it stops.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from halogrid.testing import AgentProcess, GridProcess

REPO = Path(__file__).resolve().parents[1]
WORKDIR = REPO / ".demo"
BIN = Path(sys.executable).parent


def load_tree_builder():
    # The same stdlib-only builder the tests use: one definition of "compliant".
    path = REPO / "grid" / "tests" / "fixtures" / "trees.py"
    spec = importlib.util.spec_from_file_location("halo_trees", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def banner(text):
    print("\n==> " + text, flush=True)


def playbook(env, name, *args):
    command = [str(BIN / "ansible-playbook"), str(REPO / "playbooks" / name), *args]
    banner(" ".join(["ansible-playbook", "playbooks/" + name, *args]))
    subprocess.run(command, env=env, check=True)


def membership(api):
    servers = api.servers(state="active,missing")
    width = max([len(s["hostname"]) for s in servers] + [8])
    for server in sorted(servers, key=lambda s: s["hostname"]):
        print("  %-*s  %-20s %s" % (width, server["hostname"], server["group_name"], server["state"]))


def wait_for_staging(api, count, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        staged = [s for s in api.servers() if s["group_name"] == "ProdWebDirty"]
        if len(staged) >= count:
            return staged
        time.sleep(0.2)
    raise SystemExit("only %d of %d agents registered into ProdWebDirty" % (len(staged), count))


def main():
    if os.geteuid() != 0:
        print("note: not root, so the prepared trees cannot carry root-owned files; web1 may not pass")
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir()
    trees = load_tree_builder()
    started = time.monotonic()
    agents = []
    with GridProcess(WORKDIR / "grid") as grid:
        try:
            key_id, secret = grid.create_api_key()
            banner("grid %s (database %s), API key %s" % (grid.url, grid.db, key_id))
            env = dict(os.environ, HALO_API_HOST=grid.url, HALO_API_KEY=key_id, HALO_API_SECRET_KEY=secret,
                       ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_LOCALHOST_WARNING="False",
                       ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
            playbook(env, "lab.yml")

            banner("two new workloads install the agent with --tag NewDirty")
            for label, compliant in (("web1", True), ("web2", False)):
                root = WORKDIR / label
                (trees.make_compliant_tree if compliant else trees.make_failing_tree)(str(root))
                (root / "etc" / "hostname").write_text(label + "\n")
                agent = AgentProcess(grid.url, grid.agent_key, root=root, state_dir=WORKDIR / ("state-" + label),
                                     tag="NewDirty", server_label=label)
                agents.append(agent.start())
                print("  %s: haloagent run --root %s --tag NewDirty" % (label, root))
            api = grid.api(key_id, secret)
            wait_for_staging(api, len(agents))
            banner("membership before admission")
            membership(api)

            playbook(env, "admit.yml", "-e", "halo_source_group=ProdWebDirty",
                     "-e", "halo_destination_group=ProdWebClean")
            banner("membership after admission")
            membership(api)
        finally:
            for agent in agents:
                agent.stop()
    banner("done in %.1fs; grid and agents stopped (logs in %s)" % (time.monotonic() - started, WORKDIR))


if __name__ == "__main__":
    main()
