"""Event-driven membership control for real: ansible-rulebook (with its Java rules engine) runs
extensions/eda/rulebooks/membership_control.yml against a real grid with real agents, and the
collection's playbooks move the servers. The event source's restart guarantees are checked
against the same real grid, restarted too."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from halodev.launchers import kill_group

# The event source as ansible-rulebook loads it: from the collection (pytest.ini's pythonpath).
from ansible_collections.cloudpassage.halo.extensions.eda.plugins.event_source import halo_events as source
from playbook_env import REPO, Admission, Grid

RULEBOOK = "cloudpassage.halo.membership_control"
ANSIBLE_RULEBOOK = str(Path(sys.executable).with_name("ansible-rulebook"))
HAS_DEMOTE = (REPO / "playbooks" / "demote.yml").exists()


def wait_for(what, condition, timeout, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError("%s within %ss\n%s" % (what, timeout, log()))


class Rulebook:
    """ansible-rulebook running the membership-control rulebook in its own process group."""

    def __init__(self, env, tmp_path):
        self.state_file = tmp_path / "halo_events.json"
        self.log_path = tmp_path / "rulebook.log"
        variables = tmp_path / "membership.yml"
        variables.write_text(yaml.safe_dump({
            "halo_staging_group": "ProdWebDirty", "halo_production_group": "ProdWebClean",
            "halo_events_state_file": str(self.state_file)}))
        # run_playbook needs an inventory; the playbooks run on the controller
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}))
        self.env = env.env(PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        self.command = [ANSIBLE_RULEBOOK, "-r", RULEBOOK, "-i", str(inventory), "--vars", str(variables)]
        self.proc = None

    def __enter__(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(self.log_path.parent))
        # The source writes its cursor as soon as it reads: from then on no event is missed.
        wait_for("the event source did not start", lambda: self.state_file.exists() or self.exited(), 120, self.tail)
        assert not self.exited(), self.tail()
        return self

    def exited(self):
        return self.proc.poll() is not None

    def log(self):
        return self.log_path.read_text(errors="replace")

    def tail(self):
        return self.log()[-6000:]

    def __exit__(self, *exc):
        if self.proc is not None:
            kill_group(self.proc, timeout=15)


def scans_of(env, server_id):
    return env.api.ok("GET", "/v1/scans", params={"server_id": server_id, "per_page": 100})["count"]


def test_a_clean_host_registering_in_staging_is_admitted_and_a_failing_one_kept(tmp_path):
    with Admission(tmp_path) as env:
        web0 = env.add_agent("web0", compliant=True)  # registered before the rulebook started
        with Rulebook(env, tmp_path) as rulebook:
            web2 = env.add_agent("web2", compliant=False)
            env.add_agent("web1", compliant=True)
            # sequential rules: web2's playbook has ended when web1's moves it
            wait_for("web1 was not admitted", lambda: rulebook.exited() or env.membership().get("web1") == "ProdWebClean",
                     240, rulebook.tail)
            # the membership changes before the playbook prints its summary
            wait_for("web1's admission did not finish", lambda: rulebook.log().count("PLAY RECAP") >= 2,
                     60, rulebook.tail)
            output = rulebook.log()
        assert env.membership() == {"web0": "ProdWebDirty", "web1": "ProdWebClean", "web2": "ProdWebDirty"}
        assert scans_of(env, web2.server_id) >= 1, output  # the rulebook ran admission for it, which kept it
        assert scans_of(env, web0.server_id) == 0, output  # only the server that registered is scanned
        assert "Promoted to ProdWebClean: " in output and "PermitRootLogin" in output
        assert env.secret not in output
        assert "Traceback" not in output


@pytest.mark.skipif(not HAS_DEMOTE, reason="playbooks/demote.yml is not there yet")
def test_a_production_host_that_drifts_is_demoted_when_its_scan_completes(tmp_path):
    with Admission(tmp_path) as env:
        web1 = env.add_agent("web1", compliant=True)
        env.move("web1", "ProdWebClean")
        with Rulebook(env, tmp_path) as rulebook:
            # drift: root logins over ssh turned on, then the server's next scan
            sshd = tmp_path / "tree-web1" / "etc" / "ssh" / "sshd_config"
            sshd.write_text(sshd.read_text().replace("PermitRootLogin prohibit-password", "PermitRootLogin yes"))
            env.api.scan(web1.server_id)
            wait_for("web1 was not demoted", lambda: rulebook.exited() or env.membership().get("web1") == "ProdWebDirty",
                     240, rulebook.tail)
            wait_for("the demotion did not finish", lambda: "PLAY RECAP" in rulebook.log(), 60, rulebook.tail)
            output = rulebook.log()
        assert env.membership() == {"web1": "ProdWebDirty"}
        assert "PermitRootLogin" in output
        assert "Traceback" not in output


def test_restarting_the_source_and_the_grid_with_the_same_state_file_repeats_and_skips_nothing(tmp_path, monkeypatch):
    state = str(tmp_path / "state.json")

    class Reader(source.EventReader):
        """The real reader, counting the polls it completed."""

        polls = 0

        async def poll(self):
            await super(Reader, self).poll()
            self.polls += 1

    class Ids(list):
        """The queue: the ids handed over, in order."""

        async def put(self, item):
            self.append(item["halo"]["id"])

    def run_source(queue, until):
        """Run the source until ``until(reader)``, then cancel it as ansible-rulebook does."""
        async def go():
            reader = Reader(source.make_client({}), queue, state_file=state, per_page=4, interval=0.2,
                            lookback=2, start="earliest", max_backoff=1)
            task = asyncio.ensure_future(reader.run())
            while not task.done() and not until(reader):
                await asyncio.sleep(0.05)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        asyncio.run(go())

    with Grid(tmp_path) as env:
        monkeypatch.setenv("HALO_API_HOST", env.grid.url)
        monkeypatch.setenv("HALO_API_KEY", env.key_id)
        monkeypatch.setenv("HALO_API_SECRET_KEY", env.secret)

        def stored():
            return [e["id"] for e in env.api.ok("GET", "/v1/events", params={"per_page": 100})["events"]]

        for n in range(10):
            env.api.create_group("before-%d" % n)
        first = Ids()
        run_source(first, lambda reader: len(first) >= 6)  # the rulebook stops mid-stream
        for n in range(5):
            env.api.create_group("down-%d" % n)  # stored while the source is down

        second = Ids()
        phase = {"grid_down": False, "expected": None, "polls_then": 0}

        def until(reader):
            if not phase["grid_down"]:
                if len(first) + len(second) < 15:
                    return False
                env.grid.stop()  # the grid goes away under a running source ...
                phase["grid_down"] = True
                return False
            if phase["expected"] is None:
                if reader.failures == 0:
                    return False
                env.grid.start()  # ... and comes back with its database, and new events
                for n in range(3):
                    env.api.create_group("after-restart-%d" % n)
                phase["expected"] = stored()
                return False
            if len(first) + len(second) < len(phase["expected"]):
                phase["polls_then"] = reader.polls
                return False
            # everything handed over; three more polls must repeat nothing
            return reader.polls >= phase["polls_then"] + 3

        run_source(second, until)
        everything = stored()

    assert len(first) >= 6 and len(everything) >= 18
    assert phase["expected"] == everything
    assert first + second == everything
