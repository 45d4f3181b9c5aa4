"""The admission job against a grid that behaves like the real world: tokens that expire
mid-run, TLS, a grid restarted while scans run. Each run either completes or fails with a
message that names what happened; never a traceback, never a dirty host promoted."""

import time

from playbook_env import Admission, add_web_hosts
from halodev.launchers import make_self_signed_cert

EXPECTED = {"web1": "ProdWebClean", "web2": "ProdWebDirty"}


def test_tokens_that_expire_during_the_run_are_renewed(tmp_path):
    with Admission(tmp_path, token_ttl=2) as env:
        add_web_hosts(env)
        # poll slowly so the run outlives several tokens
        run = env.playbook("admit.yml", "-e", "halo_scan_timeout=60")
        assert run.rc == 0, run
        assert env.membership() == EXPECTED


def test_admission_over_tls_verifies_the_grid_with_the_given_ca(tmp_path):
    certfile, keyfile = make_self_signed_cert(tmp_path / "tls")
    with Admission(tmp_path, certfile=certfile, keyfile=keyfile) as env:
        add_web_hosts(env)
        assert env.grid.url.startswith("https://")

        untrusted = env.playbook("admit.yml")
        assert untrusted.rc != 0
        assert "TLS error" in untrusted.output and "ca_path" in untrusted.output
        assert "Traceback" not in untrusted.output

        trusted = env.playbook("admit.yml", env=env.env(HALO_CA_PATH=certfile))
        assert trusted.rc == 0, trusted
        assert env.membership() == EXPECTED


def test_a_grid_restarted_while_scans_run_does_not_break_admission(tmp_path):
    with Admission(tmp_path) as env:
        add_web_hosts(env)
        scans_before = env.scan_count()
        running = env.start_playbook("admit.yml", "-e", "halo_scan_timeout=120")
        deadline = time.monotonic() + 60
        while env.scan_count() == scans_before:
            assert time.monotonic() < deadline, "no scan started"
            time.sleep(0.05)
        env.grid.restart()  # same port and database; the client's connection retries carry it over

        run = running.wait()
        assert "Traceback" not in run.output
        assert env.membership()["web2"] == "ProdWebDirty"  # never a dirty host promoted
        assert run.rc == 0, run
        assert env.membership() == EXPECTED


def test_a_rate_limited_run_waits_as_told_and_completes(tmp_path):
    # 4 calls per 2 s: halo_scan alone makes a dozen within seconds, so it is throttled.
    with Admission(tmp_path, rate_limit=4, rate_window=2) as env:
        add_web_hosts(env)
        run = env.playbook("admit.yml", "-e", "halo_scan_timeout=120")
        assert run.rc == 0, run
        assert env.membership() == EXPECTED
        throttled = [line for line in env.grid.log().splitlines() if "rate limit: API key %s throttled" % env.key_id in line]
        assert throttled, "the grid never answered 429, so the test proved nothing"
