"""halo_fim_baseline against a scripted API: a server without an active baseline gets one and
the task waits until it is active; an active one is left alone unless rebaseline; a failed one is
taken again; a baseline that fails or stays pending fails the task with the service's reason;
check mode writes nothing; absent deletes."""

from ansible_collections.cloudpassage.halo.plugins.modules import halo_fim_baseline

POLICIES = {"fim_policies": [{"id": "f9", "name": "Core system files"}]}
GROUPS = {"groups": [{"id": "gd", "name": "ProdWebDirty"}]}
WEB1 = {"id": "s1", "hostname": "web1", "group_id": "gd", "state": "active"}
WEB2 = {"id": "s2", "hostname": "web2", "group_id": "gd", "state": "active"}
BASE = "/v1/fim_policies/f9/baselines"


def baseline(bid, server, status, reason=None, effective_at=None):
    return {"id": bid, "policy_id": "f9", "server_id": server["id"], "server_hostname": server["hostname"],
            "status": status, "reason": reason, "object_count": 0 if status == "pending" else 42,
            "comment": None, "expires_at": None, "effective_at": effective_at}


def writes(fake):
    return [(r["method"], r["path"]) for r in fake.requests if r["method"] in ("POST", "PUT", "DELETE")
            and r["path"] != "/oauth/access_token"]


def scripted(fake, servers, baselines):
    fake.on("GET", "/v1/fim_policies", (200, POLICIES))
    fake.on("GET", "/v1/groups", (200, GROUPS))
    fake.on("GET", "/v1/servers", (200, {"servers": servers}))
    fake.on("GET", BASE, (200, {"baselines": baselines}))


def args(auth, **options):
    options.setdefault("policy", "Core system files")
    options.setdefault("poll_interval", 0.01)
    return dict(auth, **options)


def test_a_server_without_a_baseline_gets_one_and_the_task_waits_until_it_is_active(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1, WEB2], [baseline("b2", WEB2, "active", effective_at="T1")])
    fake_halo.on("POST", BASE, (202, {"baseline": baseline("b1", WEB1, "pending")}))
    fake_halo.on("GET", BASE + "/b1", (200, {"baseline": baseline("b1", WEB1, "pending")}),
                 (200, {"baseline": baseline("b1", WEB1, "active", effective_at="T2")}))
    result, failed = run_module(halo_fim_baseline, args(auth, group="ProdWebDirty", comment="first", expires=30))
    assert not failed and result["changed"] is True, result
    assert fake_halo.calls("POST", BASE)[0]["body"] == {"baseline": {"server_id": "s1", "expires": 30,
                                                                     "comment": "first"}}
    assert writes(fake_halo) == [("POST", BASE)]  # web2's active baseline is left alone
    assert result["created"] == [{"server_id": "s1", "hostname": "web1", "baseline_id": "b1"}]
    assert result["rebaselined"] == [] and result["policy_id"] == "f9"
    assert [(b["id"], b["status"]) for b in result["baselines"]] == [("b1", "active"), ("b2", "active")]
    assert len(fake_halo.calls("GET", BASE + "/b1")) == 2


def test_active_baselines_make_a_second_run_change_nothing(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1], [baseline("b1", WEB1, "active")])
    result, failed = run_module(halo_fim_baseline, args(auth, hostname="web1"))
    assert not failed and result["changed"] is False
    assert writes(fake_halo) == []
    assert fake_halo.calls("GET", "/v1/servers")[0]["query"]["hostname"] == "web1"


def test_rebaseline_retakes_the_active_baseline(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1], [baseline("b1", WEB1, "active")])
    fake_halo.on("PUT", BASE + "/b1", (202, {"baseline": baseline("b1", WEB1, "pending")}))
    fake_halo.on("GET", BASE + "/b1", (200, {"baseline": baseline("b1", WEB1, "active", effective_at="T9")}))
    result, failed = run_module(halo_fim_baseline, args(auth, server_ids=["s1"], rebaseline=True, comment="CHG-1"))
    assert not failed and result["changed"] is True
    assert fake_halo.calls("PUT", BASE + "/b1")[0]["body"] == {"baseline": {"server_id": "s1", "comment": "CHG-1"}}
    assert result["rebaselined"] == [{"server_id": "s1", "hostname": "web1", "baseline_id": "b1"}]
    assert result["baselines"][0]["effective_at"] == "T9"


def test_a_failed_baseline_is_taken_again_rather_than_a_second_one_made(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1], [baseline("b1", WEB1, "failed", reason="FIM policy changed: rebaseline")])
    fake_halo.on("PUT", BASE + "/b1", (202, {"baseline": baseline("b1", WEB1, "active")}))
    result, failed = run_module(halo_fim_baseline, args(auth, hostname="web1"))
    assert not failed and result["changed"] is True
    assert writes(fake_halo) == [("PUT", BASE + "/b1")]


def test_a_baseline_that_fails_fails_the_task_with_the_services_reason(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1, WEB2], [])
    fake_halo.on("POST", BASE, (202, {"baseline": baseline("b1", WEB1, "pending")}),
                 (202, {"baseline": baseline("b2", WEB2, "pending")}))
    fake_halo.on("GET", BASE + "/b1", (200, {"baseline": baseline("b1", WEB1, "active")}))
    fake_halo.on("GET", BASE + "/b2", (200, {"baseline": baseline("b2", WEB2, "failed",
                                                                  reason="scan timed out after 60s")}))
    result, failed = run_module(halo_fim_baseline, args(auth, group="ProdWebDirty"))
    assert failed, result
    assert result["msg"] == "the baseline of FIM policy Core system files on web2 is failed: scan timed out after 60s"
    # the baselines are returned with the failure, so a playbook can still read them
    assert [(b["id"], b["status"]) for b in result["baselines"]] == [("b1", "active"), ("b2", "failed")]


def test_a_baseline_still_pending_at_the_deadline_fails_the_task(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1], [])
    fake_halo.on("POST", BASE, (202, {"baseline": baseline("b1", WEB1, "pending")}))
    fake_halo.on("GET", BASE + "/b1", (200, {"baseline": baseline("b1", WEB1, "pending")}))
    result, failed = run_module(halo_fim_baseline, args(auth, hostname="web1", wait_timeout=1, poll_interval=0.2))
    assert failed and "on web1 is still pending (is the agent running?)" in result["msg"], result
    assert 2 <= len(fake_halo.calls("GET", BASE + "/b1"))


def test_without_wait_the_pending_baseline_is_returned_at_once(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1], [])
    fake_halo.on("POST", BASE, (202, {"baseline": baseline("b1", WEB1, "pending")}))
    result, failed = run_module(halo_fim_baseline, args(auth, hostname="web1", wait=False))
    assert not failed and result["changed"] is True
    assert result["baselines"][0]["status"] == "pending"
    assert fake_halo.calls("GET", BASE + "/b1") == []


def test_check_mode_writes_nothing_and_says_what_would_be_done(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1, WEB2], [baseline("b2", WEB2, "active")])
    result, failed = run_module(halo_fim_baseline, args(auth, group="ProdWebDirty", rebaseline=True), check_mode=True)
    assert not failed and result["changed"] is True
    assert writes(fake_halo) == []
    assert result["created"] == [{"server_id": "s1", "hostname": "web1", "baseline_id": None}]
    assert result["rebaselined"] == [{"server_id": "s2", "hostname": "web2", "baseline_id": "b2"}]
    assert [b["id"] for b in result["baselines"]] == ["b2"]


def test_absent_deletes_the_selected_servers_baselines_only(auth, fake_halo, run_module):
    web3 = dict(WEB2, id="s3", hostname="web3", state="deactivated")
    scripted(fake_halo, [WEB1, web3], [baseline("b1", WEB1, "active"), baseline("b2", WEB2, "active"),
                                       baseline("b3", web3, "failed")])
    fake_halo.on("DELETE", BASE + "/b1", (204, None))
    fake_halo.on("DELETE", BASE + "/b3", (204, None))
    result, failed = run_module(halo_fim_baseline, args(auth, server_ids=["s1", "s3"], state="absent"))
    assert not failed and result["changed"] is True
    assert writes(fake_halo) == [("DELETE", BASE + "/b1"), ("DELETE", BASE + "/b3")]
    assert [entry["baseline_id"] for entry in result["deleted"]] == ["b1", "b3"]
    # servers in every state are selected for absent
    assert fake_halo.calls("GET", "/v1/servers")[0]["query"]["state"] == "active,missing,deactivated"


def test_an_empty_server_list_selects_nothing_and_no_selector_is_refused(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1], [])
    result, failed = run_module(halo_fim_baseline, args(auth, server_ids=[]))
    assert not failed and result["changed"] is False and result["baselines"] == []
    assert writes(fake_halo) == []
    result, failed = run_module(halo_fim_baseline, args(auth))
    assert failed and "select servers with at least one of" in result["msg"]


def test_an_unknown_policy_fails_naming_the_known_ones(auth, fake_halo, run_module):
    scripted(fake_halo, [WEB1], [])
    result, failed = run_module(halo_fim_baseline, args(auth, policy="Nope", hostname="web1"))
    assert failed and "no Halo FIM policy named or with id 'Nope'" in result["msg"]
    assert "Core system files" in result["msg"]
