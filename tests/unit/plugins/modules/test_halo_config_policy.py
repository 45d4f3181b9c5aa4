"""halo_config_policy against a scripted API: create, compare on the given fields, update,
check mode, diff, policy from a file, delete."""

import copy
import json

from ansible_collections.cloudpassage.halo.plugins.modules import halo_config_policy

WANTED = {
    "name": "No telnet",
    "platform": "linux",
    "rules": [{"name": "telnet is absent", "critical": True,
               "checks": [{"object_type": "file_presence", "files": ["/usr/bin/telnet"], "present": False}]}],
}
# The same policy as the API returns it: ids, URLs, timestamps and defaults added.
STORED = {
    "id": "p9", "url": "http://halo/v2/policies/p9", "name": "No telnet", "module": "csm", "platform": "linux",
    "description": None, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    "rules": [{"id": "r1", "name": "telnet is absent", "critical": True, "active": True, "alert": False,
               "checks": [{"id": "c1", "object_type": "file_presence", "files": ["/usr/bin/telnet"],
                           "present": False, "active": True}]}],
}
LISTED = {"policies": [{"id": "p1", "name": "CIS Debian baseline"}, {"id": "p9", "name": "No telnet"}]}


def writes(fake):
    return [(r["method"], r["path"]) for r in fake.requests if r["method"] in ("POST", "PUT", "DELETE")
            and r["path"] != "/oauth/access_token"]


def test_creates_a_missing_policy_and_returns_its_id(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v2/policies", (200, {"policies": [{"id": "p1", "name": "CIS Debian baseline"}]}))
    fake_halo.on("POST", "/v2/policies", (201, {"policy": STORED}))
    result, failed = run_module(halo_config_policy, dict(auth, policy={"policy": WANTED}))
    assert not failed and result["changed"] is True
    assert result["policy_id"] == "p9" and result["name"] == "No telnet"
    assert fake_halo.calls("POST", "/v2/policies")[0]["body"] == {"policy": WANTED}
    assert fake_halo.calls("GET", "/v2/policies")[0]["query"]["module"] == "csm"


def test_a_stored_policy_with_api_added_fields_matches(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v2/policies", (200, LISTED))
    fake_halo.on("GET", "/v2/policies/p9", (200, {"policy": STORED}))
    result, failed = run_module(halo_config_policy, dict(auth, policy=WANTED), diff=True)
    assert not failed and result["changed"] is False
    assert result["policy_id"] == "p9"
    assert result["diff"] == {"before": WANTED, "after": WANTED}
    assert writes(fake_halo) == []


def test_an_exported_policy_with_foreign_ids_matches(auth, fake_halo, run_module):
    exported = dict(copy.deepcopy(STORED), id="other-account", url="https://elsewhere")
    exported["rules"][0]["id"] = "other-rule"
    fake_halo.on("GET", "/v2/policies", (200, LISTED))
    fake_halo.on("GET", "/v2/policies/p9", (200, {"policy": STORED}))
    result, failed = run_module(halo_config_policy, dict(auth, policy={"policy": exported}))
    assert not failed and result["changed"] is False


def test_a_changed_check_is_sent_again_with_put(auth, fake_halo, run_module):
    wanted = copy.deepcopy(WANTED)
    wanted["rules"][0]["checks"][0]["files"] = ["/usr/bin/telnet", "/usr/bin/telnet.netkit"]
    fake_halo.on("GET", "/v2/policies", (200, LISTED))
    fake_halo.on("GET", "/v2/policies/p9", (200, {"policy": STORED}))
    fake_halo.on("PUT", "/v2/policies/p9", (204, None))
    result, failed = run_module(halo_config_policy, dict(auth, policy=wanted), diff=True)
    assert not failed and result["changed"] is True
    assert fake_halo.calls("PUT", "/v2/policies/p9")[0]["body"] == {"policy": wanted}
    assert result["diff"]["before"]["rules"][0]["checks"][0]["files"] == ["/usr/bin/telnet"]


def test_an_extra_stored_rule_is_a_difference(auth, fake_halo, run_module):
    stored = copy.deepcopy(STORED)
    stored["rules"].append({"id": "r2", "name": "leftover", "checks": []})
    fake_halo.on("GET", "/v2/policies", (200, LISTED))
    fake_halo.on("GET", "/v2/policies/p9", (200, {"policy": stored}))
    result, failed = run_module(halo_config_policy, dict(auth, policy=WANTED),
                                check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert result["diff"]["before"]["rules"][1] == {"name": "leftover", "checks": []}
    assert writes(fake_halo) == []


def test_reads_the_policy_from_a_file_and_the_name_option_wins(auth, fake_halo, run_module, tmp_path):
    src = tmp_path / "policy.json"
    src.write_text(json.dumps({"policy": WANTED}))
    fake_halo.on("GET", "/v2/policies", (200, LISTED))
    fake_halo.on("POST", "/v2/policies", (201, {"policy": dict(STORED, id="p10", name="Renamed")}))
    result, failed = run_module(halo_config_policy, dict(auth, src=str(src), name="Renamed"))
    assert not failed and result["changed"] is True and result["policy_id"] == "p10"
    assert fake_halo.calls("POST", "/v2/policies")[0]["body"]["policy"]["name"] == "Renamed"


def test_a_file_that_is_not_json_fails_clearly(auth, fake_halo, run_module, tmp_path):
    src = tmp_path / "policy.json"
    src.write_text("{not json")
    result, failed = run_module(halo_config_policy, dict(auth, src=str(src)))
    assert failed and result["msg"].startswith("cannot read the policy JSON from %s" % src)


def test_deletes_by_name(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v2/policies", (200, LISTED))
    fake_halo.on("DELETE", "/v2/policies/p9", (204, None))
    result, failed = run_module(halo_config_policy, dict(auth, name="No telnet", state="absent"))
    assert not failed and result["changed"] is True
    assert writes(fake_halo) == [("DELETE", "/v2/policies/p9")]


def test_deleting_a_missing_policy_is_ok_and_check_mode_deletes_nothing(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v2/policies", (200, LISTED))
    result, failed = run_module(halo_config_policy, dict(auth, name="Gone", state="absent"))
    assert not failed and result["changed"] is False
    result, failed = run_module(halo_config_policy, dict(auth, name="No telnet", state="absent"),
                                check_mode=True)
    assert not failed and result["changed"] is True
    assert writes(fake_halo) == []


def test_a_policy_in_use_reports_the_api_message(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v2/policies", (200, LISTED))
    fake_halo.on("DELETE", "/v2/policies/p9", (422, {"message": "Validation Failed", "errors": [
        {"field": "id", "code": "in_use", "details": "Policy No telnet is used by group(s) ProdWebDirty"}]}))
    result, failed = run_module(halo_config_policy, dict(auth, name="No telnet", state="absent"))
    assert failed and "used by group(s) ProdWebDirty" in result["msg"]
