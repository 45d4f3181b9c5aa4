"""halo_fim_policy against a scripted API (/v1/fim_policies): create, compare on the managed
settings (exclusions as Halo's list, API-added fields ignored), update only what differs with the
stored rules' ids kept, check mode, diff, compare not stored by the service, delete."""

import copy

from ansible_collections.cloudpassage.halo.plugins.modules import halo_fim_policy

RULES = [
    {"target": "/usr/bin", "recurse": True, "critical": True},
    {"target": "/etc/*.conf", "exclusions": ["/etc/ld.so.conf", "*.dpkg-*"]},
]
# The same policy as the grid returns it: ids, URLs, defaults, exclusions as a newline list.
STORED = {
    "id": "f9", "url": "http://halo/v1/fim_policies/f9", "name": "Core system files", "module": "fim",
    "description": "Binaries", "platform": "linux", "used_by": [], "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z", "compare": ["content", "mode", "owner", "group", "size", "link_target"],
    "rules": [
        {"id": "r1", "target": "/usr/bin", "description": None, "recurse": True, "critical": True, "alert": False,
         "exclusions": None},
        {"id": "r2", "target": "/etc/*.conf", "description": None, "recurse": False, "critical": False,
         "alert": False, "exclusions": "/etc/ld.so.conf\n*.dpkg-*"},
    ],
}
LISTED = {"fim_policies": [{"id": "f1", "name": "Web content"}, {"id": "f9", "name": "Core system files"}]}


def writes(fake):
    return [(r["method"], r["path"]) for r in fake.requests if r["method"] in ("POST", "PUT", "DELETE")
            and r["path"] != "/oauth/access_token"]


def args(auth, **options):
    return dict(auth, name="Core system files", **options)


def test_creates_a_missing_policy_in_halos_form(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/fim_policies", (200, {"fim_policies": [{"id": "f1", "name": "Web content"}]}))
    fake_halo.on("POST", "/v1/fim_policies", (201, {"fim_policy": STORED}))
    fake_halo.on("GET", "/v1/fim_policies/f9", (200, {"fim_policy": STORED}))
    result, failed = run_module(halo_fim_policy, args(auth, description="Binaries", rules=RULES), diff=True)
    assert not failed and result["changed"] is True, result
    assert (result["policy_id"], result["policy"]["rules"][0]["id"]) == ("f9", "r1")
    body = fake_halo.calls("POST", "/v1/fim_policies")[0]["body"]
    assert body == {"fim_policy": {
        "name": "Core system files", "description": "Binaries", "platform": "linux",
        "rules": [{"target": "/usr/bin", "description": None, "recurse": True, "critical": True, "alert": False,
                   "exclusions": None},
                  {"target": "/etc/*.conf", "description": None, "recurse": False, "critical": False, "alert": False,
                   "exclusions": "/etc/ld.so.conf\n*.dpkg-*"}]}}
    assert result["diff"]["before"] == {} and result["diff"]["after"]["rules"][1]["exclusions"] == [
        "/etc/ld.so.conf", "*.dpkg-*"]


def test_the_stored_policy_matches_and_nothing_is_written(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/fim_policies", (200, LISTED))
    fake_halo.on("GET", "/v1/fim_policies/f9", (200, {"fim_policy": STORED}))
    # exclusions given as Halo's comma list match the stored newline list
    rules = copy.deepcopy(RULES)
    rules[1]["exclusions"] = "/etc/ld.so.conf, *.dpkg-*"
    result, failed = run_module(halo_fim_policy, args(auth, description="Binaries", platform="linux", rules=rules,
                                                      compare=["link_target", "content", "mode", "owner", "group",
                                                               "size"]), diff=True)
    assert not failed and result["changed"] is False, result
    assert result["diff"]["before"] == result["diff"]["after"]
    assert result["policy_id"] == "f9" and result["policy"]["id"] == "f9"
    assert writes(fake_halo) == []


def test_only_what_differs_is_sent_and_stored_rules_keep_their_ids(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/fim_policies", (200, LISTED))
    updated = dict(STORED, rules=STORED["rules"] + [{"id": "r3", "target": "/etc/passwd", "description": None,
                                                     "recurse": False, "critical": True, "alert": True,
                                                     "exclusions": None}])
    fake_halo.on("GET", "/v1/fim_policies/f9", (200, {"fim_policy": STORED}), (200, {"fim_policy": updated}))
    fake_halo.on("PUT", "/v1/fim_policies/f9", (204, None))
    rules = RULES + [{"target": "/etc/passwd", "critical": True, "alert": True}]
    result, failed = run_module(halo_fim_policy, args(auth, description="Binaries", rules=rules), diff=True)
    assert not failed and result["changed"] is True
    (put,) = fake_halo.calls("PUT", "/v1/fim_policies/f9")
    assert list(put["body"]["fim_policy"]) == ["rules"]  # the description was equal: not sent
    assert [rule.get("id") for rule in put["body"]["fim_policy"]["rules"]] == ["r1", "r2", None]
    assert len(result["diff"]["before"]["rules"]) == 2 and len(result["diff"]["after"]["rules"]) == 3
    assert result["policy"]["rules"][2]["id"] == "r3"


def test_a_rule_too_many_on_the_service_is_a_difference(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/fim_policies", (200, LISTED))
    fake_halo.on("GET", "/v1/fim_policies/f9", (200, {"fim_policy": STORED}))
    result, failed = run_module(halo_fim_policy, args(auth, rules=RULES[:1]), check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert [rule["target"] for rule in result["diff"]["before"]["rules"]] == ["/usr/bin", "/etc/*.conf"]
    assert writes(fake_halo) == []  # check mode


def test_compare_is_sent_in_the_services_order(auth, fake_halo, run_module):
    stored_after = dict(STORED, compare=["content", "mode"])
    fake_halo.on("GET", "/v1/fim_policies", (200, LISTED))
    fake_halo.on("GET", "/v1/fim_policies/f9", (200, {"fim_policy": STORED}), (200, {"fim_policy": stored_after}))
    fake_halo.on("PUT", "/v1/fim_policies/f9", (204, None))
    result, failed = run_module(halo_fim_policy, args(auth, compare=["mode", "content", "mode"]))
    assert not failed and result["changed"] is True, result
    assert fake_halo.calls("PUT", "/v1/fim_policies/f9")[0]["body"] == {"fim_policy": {"compare": ["content", "mode"]}}


def test_a_service_that_does_not_store_compare_fails_the_task(auth, fake_halo, run_module):
    halo_style = dict((key, value) for key, value in STORED.items() if key != "compare")
    fake_halo.on("GET", "/v1/fim_policies", (200, LISTED))
    fake_halo.on("GET", "/v1/fim_policies/f9", (200, {"fim_policy": halo_style}))
    fake_halo.on("PUT", "/v1/fim_policies/f9", (204, None))
    result, failed = run_module(halo_fim_policy, args(auth, compare=["content"]))
    assert failed and "did not store compare for FIM policy Core system files" in result["msg"], result


def test_deletes_by_name_and_a_missing_policy_is_ok(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/fim_policies", (200, LISTED))
    fake_halo.on("GET", "/v1/fim_policies/f9", (200, {"fim_policy": STORED}))
    fake_halo.on("DELETE", "/v1/fim_policies/f9", (204, None))
    result, failed = run_module(halo_fim_policy, args(auth, state="absent"), check_mode=True, diff=True)
    assert not failed and result["changed"] is True and writes(fake_halo) == []
    assert result["diff"]["after"] == {} and result["diff"]["before"]["rules"][0]["target"] == "/usr/bin"
    result, failed = run_module(halo_fim_policy, args(auth, state="absent"))
    assert not failed and result["changed"] is True
    assert writes(fake_halo) == [("DELETE", "/v1/fim_policies/f9")]
    result, failed = run_module(halo_fim_policy, dict(auth, name="Gone", state="absent"))
    assert not failed and result["changed"] is False


def test_a_policy_in_use_reports_the_api_message(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/fim_policies", (200, LISTED))
    fake_halo.on("DELETE", "/v1/fim_policies/f9", (422, {"message": "Validation Failed", "errors": [
        {"field": "id", "value": "f9", "code": "in_use",
         "details": "FIM policy Core system files is used by group(s) ProdWebDirty"}]}))
    result, failed = run_module(halo_fim_policy, args(auth, state="absent"))
    assert failed and "is used by group(s) ProdWebDirty" in result["msg"]


def test_a_rule_without_a_target_is_refused_before_any_call(auth, fake_halo, run_module):
    result, failed = run_module(halo_fim_policy, args(auth, rules=[{"recurse": True}]))
    assert failed and "target" in result["msg"]
    assert fake_halo.calls("GET", "/v1/fim_policies") == []
