"""playbooks/admit.yml run by real ansible-playbook against a real grid and real agents."""


def test_first_run_promotes_exactly_the_compliant_host_and_names_the_failed_rule(two_hosts):
    run = two_hosts.playbook("admit.yml")
    assert run.rc == 0, run
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}
    assert run.changed == 1, run
    assert "Promoted to ProdWebClean: " in run.output
    assert "PermitRootLogin" in run.output


def test_second_run_changes_nothing(two_hosts):
    assert two_hosts.playbook("admit.yml").rc == 0
    second = two_hosts.playbook("admit.yml")
    assert (second.rc, second.changed) == (0, 0), second
    assert two_hosts.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}


def test_check_mode_moves_nothing_and_says_what_would_move(two_hosts):
    # A first real scan gives check mode stored results to judge from; then undo the move.
    assert two_hosts.playbook("admit.yml").rc == 0
    two_hosts.move("web1", "ProdWebDirty")
    scans_before = two_hosts.scan_count()

    run = two_hosts.playbook("admit.yml", "--check")
    assert run.rc == 0, run
    assert "Would promote to ProdWebClean: " in run.output
    assert two_hosts.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty"}
    assert two_hosts.scan_count() == scans_before


def test_a_wrong_secret_fails_with_one_clear_line_and_moves_nothing(two_hosts):
    run = two_hosts.playbook("admit.yml", env=two_hosts.env(HALO_API_SECRET_KEY="not-the-secret"))
    assert run.rc != 0
    assert "failed with HTTP 401" in run.output and "check api_key and api_secret" in run.output
    assert "not-the-secret" not in run.output
    assert "Traceback" not in run.output
    assert two_hosts.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty"}


def test_an_unknown_group_fails_naming_the_known_groups(two_hosts):
    run = two_hosts.playbook("admit.yml", "-e", "halo_destination_group=ProdWebCleen")
    assert run.rc != 0
    assert "no Halo server group named or with id 'ProdWebCleen'" in run.output
    assert "ProdWebClean, ProdWebDirty" in run.output
    assert two_hosts.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty"}


def test_a_host_whose_agent_stopped_stays_and_is_reported_as_timed_out(two_hosts):
    two_hosts.agents["web1"].stop()
    run = two_hosts.playbook("admit.yml", "-e", "halo_scan_timeout=5")
    # A host that got no verdict fails the job: a scheduler must see that admission did not happen.
    assert run.rc != 0, run
    assert two_hosts.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty"}
    assert "timed_out" in run.output
    assert two_hosts.secret not in run.output
