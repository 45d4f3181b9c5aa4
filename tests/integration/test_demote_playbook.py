"""playbooks/demote.yml run by real ansible-playbook against a real grid and real agents: a host
of the production group whose configuration drifted goes back to the staging group, with the
rule that failed; a clean host stays; a host with no verdict stays and fails the job."""

import json
import time

from playbook_env import Admission, add_web_hosts


def break_root_login(env, label):
    """The drift of the lab: root may log in over ssh again."""
    config = env.tmp_path / ("tree-" + label) / "etc" / "ssh" / "sshd_config"
    text = config.read_text()
    assert "PermitRootLogin prohibit-password" in text
    config.write_text(text.replace("PermitRootLogin prohibit-password", "PermitRootLogin yes"))


def wait_for(what, condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting for " + what
        time.sleep(0.2)


def server_id(env, label):
    return next(s["id"] for s in env.servers() if s["server_label"] == label)


def test_a_host_that_drifted_is_demoted_with_the_rule_that_failed(two_hosts):
    assert two_hosts.playbook("admit.yml").rc == 0
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}
    break_root_login(two_hosts, "web1")

    run = two_hosts.playbook("demote.yml")
    assert run.rc == 0, run
    assert two_hosts.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty"}
    assert run.changed == 1, run
    assert "Demoted to ProdWebDirty: web1" in run.output
    assert "PermitRootLogin" in run.output and "actual yes" in run.output

    # nothing left in production: a second run changes nothing and passes
    again = two_hosts.playbook("demote.yml")
    assert (again.rc, again.changed) == (0, 0), again
    assert "Demoted to ProdWebDirty: none" in again.output


def test_a_clean_host_stays_and_check_mode_only_says_what_would_move(two_hosts):
    # web1 passed admission; web2 (failing) is put into production by hand, past admission
    assert two_hosts.playbook("admit.yml").rc == 0
    two_hosts.move("web2", "ProdWebClean")
    scans_before = two_hosts.scan_count()

    run = two_hosts.playbook("demote.yml", "--check", "--diff")
    assert run.rc == 0, run
    assert "Would demote to ProdWebDirty: web2" in run.output
    assert "Still clean in ProdWebClean: web1" in run.output
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebClean"}
    assert two_hosts.scan_count() == scans_before  # check mode starts no scan

    run = two_hosts.playbook("demote.yml")
    assert run.rc == 0 and run.changed == 1, run
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}


def test_without_rescan_the_latest_finished_scan_of_the_named_servers_is_judged(two_hosts):
    # the rulebook's call: one server, the scan that just completed, no new scan
    assert two_hosts.playbook("admit.yml").rc == 0   # scans both: web1 clean, web2 dirty
    two_hosts.move("web2", "ProdWebClean")
    scans_before = two_hosts.scan_count()
    extra = json.dumps({"halo_server_ids": [server_id(two_hosts, "web2")], "halo_rescan": False})

    run = two_hosts.playbook("demote.yml", "-e", extra)
    assert run.rc == 0, run
    assert two_hosts.scan_count() == scans_before
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}
    assert "Demoted to ProdWebDirty: web2" in run.output and "PermitRootLogin" in run.output


def test_a_host_never_scanned_has_no_verdict_without_rescan_and_stays(two_hosts):
    two_hosts.move("web1", "ProdWebClean")
    run = two_hosts.playbook("demote.yml", "-e", "halo_rescan=false")
    assert run.rc != 0, run
    assert "not_scanned" in run.output and "No verdict for web1" in run.output
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}


def test_a_host_whose_agent_stopped_stays_unless_asked_and_fails_the_job(two_hosts):
    two_hosts.move("web1", "ProdWebClean")
    two_hosts.agents["web1"].stop()
    run = two_hosts.playbook("demote.yml", "-e", "halo_scan_timeout=5")
    assert run.rc != 0, run
    assert "timed_out" in run.output and "they stay in ProdWebClean" in run.output
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}
    assert two_hosts.secret not in run.output

    # quarantine on doubt, when asked: moved, and the job still says why it is red
    run = two_hosts.playbook("demote.yml", "-e", "halo_scan_timeout=5", "-e", "halo_demote_no_verdict=true")
    assert run.rc != 0, run
    assert two_hosts.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty"}
    assert "Demoted to ProdWebDirty: web1" in run.output


def test_a_missing_host_in_production_has_no_verdict(tmp_path):
    with Admission(tmp_path, missing_after=3) as env:
        add_web_hosts(env)
        env.move("web1", "ProdWebClean")
        env.agents["web1"].stop()
        # The stopped agent's last long-poll counts as contact until its wait (up to 30 s)
        # ends; then missing_after (3 s) and one sweep: up to about 40 s, not 30.
        wait_for("web1 to be missing",
                 lambda: {s["server_label"]: s["state"] for s in env.servers()}["web1"] == "missing",
                 timeout=60)
        run = env.playbook("demote.yml")
        assert run.rc != 0, run
        assert "web1: missing (no verdict)" in run.output
        assert env.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}
