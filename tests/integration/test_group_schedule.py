"""halo_group's scan_interval through real ansible-playbook against a real grid: set once
(changed), set again (unchanged), previewed in check mode (nothing written), and then the grid
scans a real agent of the group by itself."""

import subprocess
import time

import yaml

from playbook_env import ANSIBLE_PLAYBOOK, Admission, PlaybookRun


def run_group_task(env, *args, **options):
    playbook = env.tmp_path / "group.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "schedule", "cloudpassage.halo.halo_group": dict(name="ProdWebClean", **options)}],
    }]))
    completed = subprocess.run([ANSIBLE_PLAYBOOK, str(playbook), *args], env=env.env(),
                               capture_output=True, text=True, timeout=300)
    return PlaybookRun(completed)


def test_scan_interval_is_idempotent_previewed_in_check_mode_and_makes_the_grid_scan(tmp_path):
    with Admission(tmp_path, sweep_interval=0.2) as env:
        agent = env.add_agent("web1", compliant=True)
        env.move("web1", "ProdWebClean")
        scans_before = env.scan_count()

        run = run_group_task(env, "--check", "--diff", scan_interval=30)
        assert (run.rc, run.changed) == (0, 1), run
        assert '+    "scan_interval": 30' in run.output
        assert env.groups()["ProdWebClean"]["scan_interval"] is None

        run = run_group_task(env, scan_interval=30)
        assert (run.rc, run.changed) == (0, 1), run
        assert env.groups()["ProdWebClean"]["scan_interval"] == 30
        run = run_group_task(env, scan_interval=30)
        assert (run.rc, run.changed) == (0, 0), run

        # nobody starts a scan: the grid does, and the real agent runs it
        deadline = time.monotonic() + 60
        while True:
            scans = env.api.ok("GET", "/v1/scans", params={"server_id": agent.server_id,
                                                           "status": "completed_clean"})["scans"]
            if scans:
                break
            assert time.monotonic() < deadline, "no scheduled scan completed"
            time.sleep(0.5)
        assert env.scan_count() > scans_before

        run = run_group_task(env, scan_interval=0)
        assert (run.rc, run.changed) == (0, 1), run
        assert env.groups()["ProdWebClean"]["scan_interval"] is None
