"""Admission that cannot be fooled, and a job that says when it did not admit.

playbooks/admit.yml run by real ansible-playbook against a real grid, with real agents or a
crafted agent (crafted_agent.py) that answers its commands as the test chooses. The grid is
observed with the test's own API key, never with the collection's client.
"""

import os
import re
import signal
import subprocess
import time

from crafted_agent import CraftedAgent, bad_critical_finding, good_finding
from playbook_env import ANSIBLE_PLAYBOOK, PLAYBOOKS, PlaybookRun

EXPECTED = {"web1": "ProdWebClean", "web2": "ProdWebDirty"}
PROGRESS = re.compile(r"\d+/\d+ scans finished")


def debian_policy_id(env):
    return env.groups()["ProdWebDirty"]["policy_ids"][0]


def set_policies(env, group_name, policy_ids):
    env.api.ok("PUT", "/v1/groups/%s" % env.group_ids[group_name], {"group": {"policy_ids": policy_ids}})


def create_policy(env, name, rules):
    return env.api.ok("POST", "/v2/policies", {"policy": {"name": name, "platform": "linux", "rules": rules}})["policy"]


def debian_rules(env):
    return env.api.ok("GET", "/v2/policies/%s" % debian_policy_id(env))["policy"]["rules"]


def crafted(env, label, on_command):
    agent = CraftedAgent(env.grid.url, env.grid.agent_key, label, on_command=on_command)
    agent.register()
    return agent


def assert_no_secret(env, run):
    assert env.secret not in run.output


# -- a verdict comes only from the scan the task started ---------------------------------------


def test_an_older_clean_scan_finishing_after_the_tasks_dirty_scan_does_not_admit(admission):
    policy_id = debian_policy_id(admission)
    older = {}

    def on_command(agent, command):
        agent.start_command(command["id"])
        if command["id"] == older["id"]:
            return  # hold the older command until the task's own one arrives
        agent.answer(command["id"], [bad_critical_finding(policy_id)], "dirty")
        time.sleep(0.02)  # the older scan must complete strictly later
        agent.answer(older["id"], [good_finding(policy_id)], "clean")

    agent = crafted(admission, "crafted", on_command)
    older["id"] = admission.api.scan(agent.server_id)["id"]  # queued before the playbook runs
    with agent:
        agent.wait_until(lambda: older["id"] in agent.started, what="the older command being taken")
        run = admission.playbook("admit.yml", "-e", "halo_scan_timeout=30")
        agent.check()

    # The staged sequence really happened: older taken first, the task's command answered
    # dirty, then the older one answered clean.
    assert len(agent.received) == 2, (agent.received, run)
    own = agent.received[1]
    assert agent.received[0] == older["id"] and own != older["id"]
    assert agent.answered == [(own, "dirty"), (older["id"], "clean")], run
    own_scan = admission.api.ok("GET", "/v1/scans/%s" % admission.api.ok(
        "GET", "/v1/servers/%s/commands/%s" % (agent.server_id, own))["command"]["scan_id"])["scan"]
    assert own_scan["status"] == "completed_with_errors" and own_scan["critical_findings_count"] == 1

    assert admission.membership() == {"crafted": "ProdWebDirty"}, run
    assert "Traceback" not in run.output


def test_a_scan_that_evaluated_no_rule_is_not_a_pass(admission):
    def on_command(agent, command):
        agent.start_command(command["id"])
        agent.answer(command["id"], [], "empty")

    with crafted(admission, "crafted", on_command) as agent:
        run = admission.playbook("admit.yml", "-e", "halo_scan_timeout=30")
        agent.check()

    assert [label for _, label in agent.answered] == ["empty"], run
    assert admission.membership() == {"crafted": "ProdWebDirty"}, run
    assert "evaluated no rule" in run.output, run


# -- the job fails when it did not admit ---------------------------------------------------


def test_a_host_with_no_verdict_fails_the_run_and_progress_is_reported_while_waiting(admission):
    admission.add_agent("web1", compliant=True).stop()
    run = admission.playbook("admit.yml", "-e", "halo_scan_timeout=8", "-e", "halo_progress_interval=2")
    assert run.rc != 0, run
    assert admission.membership() == {"web1": "ProdWebDirty"}
    assert len(PROGRESS.findall(run.output)) >= 2, run
    assert_no_secret(admission, run)


def test_fail_on_kept_fails_the_run_after_promoting_the_hosts_that_passed(two_hosts):
    run = two_hosts.playbook("admit.yml", "-e", "halo_scan_timeout=60", "-e", "halo_fail_on_kept=true")
    assert run.rc != 0, run
    assert two_hosts.membership() == EXPECTED, run
    assert_no_secret(two_hosts, run)


def test_kept_hosts_alone_do_not_fail_the_run_by_default(two_hosts):
    run = two_hosts.playbook("admit.yml", "-e", "halo_scan_timeout=60")
    assert run.rc == 0, run
    assert two_hosts.membership() == EXPECTED


# -- checks before any scan ----------------------------------------------------------------


def assert_admit_fails_before_any_scan(admission, words, **options):
    """admit.yml fails saying ``words`` without starting a scan or moving a host."""
    scans_before = admission.scan_count()
    run = admission.playbook("admit.yml", "-e", "halo_scan_timeout=10", **options)
    assert run.rc != 0, run
    assert words in run.output, run
    assert admission.scan_count() == scans_before
    assert admission.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty"}
    assert_no_secret(admission, run)
    return run


def test_a_read_only_key_fails_before_any_scan(two_hosts):
    key_id, secret = two_hosts.grid.create_api_key(read_only=True)
    run = assert_admit_fails_before_any_scan(two_hosts, "read-only",
                                             env=two_hosts.env(HALO_API_KEY=key_id, HALO_API_SECRET_KEY=secret))
    assert secret not in run.output


def test_a_source_group_without_a_configuration_policy_fails_before_any_scan(two_hosts):
    # An agent with no policy evaluates nothing and reports a clean scan: that is no verdict.
    set_policies(two_hosts, "ProdWebDirty", [])
    assert_admit_fails_before_any_scan(two_hosts, "has no configuration policy")


def test_a_source_group_whose_policies_have_no_active_rule_fails_before_any_scan(two_hosts):
    rules = [dict(rule, active=False) for rule in debian_rules(two_hosts)]
    switched_off = create_policy(two_hosts, "Debian, every rule switched off", rules)
    set_policies(two_hosts, "ProdWebDirty", [switched_off["id"]])
    assert_admit_fails_before_any_scan(two_hosts, "no active rule")


def test_a_source_group_with_no_active_server_fails_naming_its_tag(admission):
    run = admission.playbook("admit.yml", "-e", "halo_scan_timeout=10")
    assert run.rc != 0, run
    assert "NewDirty" in run.output and "agent" in run.output, run
    assert admission.scan_count() == 0
    assert_no_secret(admission, run)


def test_different_policies_on_source_and_destination_are_warned_about(admission):
    admission.add_agent("web1", compliant=True)
    other = create_policy(admission, "Debian, first rule only", debian_rules(admission)[:1])
    set_policies(admission, "ProdWebClean", [other["id"]])
    run = admission.playbook("admit.yml", "-e", "halo_scan_timeout=60")
    assert run.rc == 0, run
    assert "policies differ" in run.output.lower(), run
    assert admission.membership() == {"web1": "ProdWebClean"}


# -- move only from where the verdict was made -------------------------------------------


def test_a_host_moved_elsewhere_during_the_scan_wait_is_left_alone(two_hosts):
    env = two_hosts
    env.agents["web2"].stop()  # keeps the run waiting until halo_scan_timeout
    quarantine = env.api.create_group("Quarantine")
    web1 = next(s for s in env.servers() if s["server_label"] == "web1")
    running = env.start_playbook("admit.yml", "-e", "halo_scan_timeout=15")
    try:
        deadline = time.monotonic() + 30
        while not env.api.ok("GET", "/v1/scans", params={"server_id": web1["id"], "per_page": 1,
                                                         "status": "completed_clean,completed_with_errors"})["count"]:
            assert running.process.poll() is None, running.wait()
            assert time.monotonic() < deadline, "web1's scan did not complete"
            time.sleep(0.1)
        env.api.ok("PUT", "/v1/servers/%s" % web1["id"], {"server": {"group_id": quarantine["id"]}})
        # The move happened while the task still waited for web2; else the test proves nothing.
        assert running.process.poll() is None, "the run ended before web1 was moved"
        assert env.membership()["web1"] == "Quarantine"
    finally:
        run = running.wait()

    assert env.membership() == {"web1": "Quarantine", "web2": "ProdWebDirty"}, run
    assert "left alone" in run.output and "Quarantine" in run.output, run
    assert run.rc != 0, run  # web2 timed out
    assert_no_secret(env, run)


# -- a grid that stops answering -------------------------------------------------------------


def test_a_grid_frozen_mid_scan_ends_the_run_on_its_own_and_moves_nobody(admission):
    def on_command(agent, command):
        agent.start_command(command["id"])  # and never answer it

    env = admission
    grid_pid = env.grid.proc.pid
    with crafted(env, "crafted", on_command) as agent:
        # Our own process group, so that a run that has to be killed takes its workers along.
        process = subprocess.Popen([ANSIBLE_PLAYBOOK, str(PLAYBOOKS / "admit.yml"), "-e", "halo_scan_timeout=30"],
                                   env=env.env(HALO_API_TIMEOUT="3"), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        killed = False
        try:
            agent.wait_until(lambda: agent.started, timeout=60, what="the scan starting")
            os.kill(grid_pid, signal.SIGSTOP)
            try:
                stdout, stderr = process.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                killed = True
                os.killpg(process.pid, signal.SIGKILL)
                stdout, stderr = process.communicate()
        finally:
            os.kill(grid_pid, signal.SIGCONT)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
    run = PlaybookRun(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))

    # The task is bounded by what the operator set: the scan wait (30 s) plus one API timeout
    # (3 s), then the next task's first call (3 s), about 40 s. Unbounded, each call waits its
    # timeout and is retried 5 times (when halo_scan's wait replaced the API timeout: 6 x 30 s
    # for a single GET), far past the 120 s after which the run is killed.
    assert not killed, "the run did not end within 120 s of the grid freezing; it had to be killed\n%r" % run
    assert run.rc != 0, run
    assert "Traceback" not in run.output
    assert env.membership() == {"crafted": "ProdWebDirty"}, run
    assert_no_secret(env, run)


# -- check mode ------------------------------------------------------------------------------


def test_check_mode_with_no_stored_scan_succeeds_and_says_so(two_hosts):
    run = two_hosts.playbook("admit.yml", "--check")
    assert run.rc == 0, run
    assert "no sca scan stored" in run.output, run
    assert two_hosts.scan_count() == 0
    assert two_hosts.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty"}

