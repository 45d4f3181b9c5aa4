"""The contract in the code and in the repository: /openapi.json, API.md, and what the
models refuse (422, never 500 and never stored), on SQLite and on PostgreSQL."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import requests

from gridhelpers import register, unique

API_MD = Path(__file__).resolve().parents[1] / "API.md"
MISSING = "f" * 32


def documented_endpoints():
    text = API_MD.read_text(encoding="utf-8")
    block = re.search(r"```endpoints\n(.*?)```", text, re.S)
    assert block, "API.md has no ```endpoints block"
    return {tuple(line.split(None, 1)) for line in block.group(1).splitlines() if line.strip()}


@pytest.fixture(scope="module")
def openapi(grid):
    r = requests.get(grid.url + "/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_openapi_and_api_md_name_the_same_endpoints(openapi):
    served = {(method.upper(), path) for path, ops in openapi["paths"].items()
              for method in ops if method in ("get", "put", "post", "delete", "patch")}
    documented = documented_endpoints()
    assert served - documented == set(), "served but not in grid/API.md"
    assert documented - served == set(), "in grid/API.md but not served"


def test_readme_links_the_contract_in_the_repository():
    readme = (API_MD.parent / "README.md").read_text(encoding="utf-8")
    assert "(API.md)" in readme and "shared/halo-api.md" not in readme


def test_openapi_describes_bodies_and_halo_errors(openapi):
    op = openapi["paths"]["/v1/groups"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/GroupCreateBody")
    comps = openapi["components"]["schemas"]
    name = comps["GroupCreate"]["properties"]["name"]
    assert (name["minLength"], name["maxLength"]) == (1, 255)
    assert "name" in comps["GroupCreate"]["required"]
    rule = comps["FirewallRuleIn"]["properties"]
    assert "pattern" in str(rule["connection_states"])
    assert op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ValidationFailedOut")
    assert "201" in op["responses"]


# -- Halo's error shapes through the one handler -------------------------------------------
def test_validation_errors_keep_halos_shape(api):
    r = api.post("/v1/groups", {"group": {"name": 12, "parent_id": "nothex"}})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["message"] == "Validation Failed" and set(body) == {"message", "errors"}
    fields = {e["field"]: e for e in body["errors"]}
    assert set(fields) == {"name", "parent_id"}
    assert fields["name"]["value"] == 12 and fields["parent_id"]["value"] == "nothex"
    for err in body["errors"]:
        assert set(err) == {"field", "value", "code", "details"} and err["details"]
    r = api.post("/v1/groups", {"group": {"name": ""}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "required"
    # a query parameter: the same shape
    r = api.get("/v1/events", params={"critical": "maybe"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "critical"
    # a body the API does not understand stays 400 {"error"}
    r = api.post("/v1/groups", {"grp": {"name": "x"}})
    assert r.status_code == 400 and "'group'" in r.json()["error"]


def test_odd_path_ids_are_404_not_500(api):
    for path in ("/v1/groups/%00", "/v1/servers/%F0%9F%92%A3", "/v1/events/" + "a" * 300,
                 "/v1/scans/%s/findings/%%00" % MISSING):
        r = api.get(path)
        assert r.status_code == 404, (path, r.text)
        assert set(r.json()) == {"resource", "field", "value"}


# -- firewall rules the agent could not apply never get in ---------------------------------
@pytest.fixture(scope="module")
def fw_policy(api):
    return api.ok("POST", "/v1/firewall_policies",
                  {"firewall_policy": {"name": unique("contract-fw")}})["firewall_policy"]


@pytest.mark.parametrize("rule, field", [
    ({"connection_states": "FOO"}, "connection_states"),
    ({"connection_states": "NEW, BOGUS"}, "connection_states"),
    ({"firewall_service": {"port": "abc; drop", "protocol": "TCP"}}, "firewall_service.port"),
    ({"firewall_service": {"port": "1-2-3", "protocol": "TCP"}}, "firewall_service.port"),
    ({"firewall_service": {"port": "0", "protocol": "TCP"}}, "firewall_service.port"),
    ({"firewall_service": {"port": 65536, "protocol": "UDP"}}, "firewall_service.port"),
    ({"firewall_service": {"port": "90-80", "protocol": "TCP"}}, "firewall_service.port"),
    ({"firewall_service": {"port": "22", "protocol": "SCTP"}}, "firewall_service.protocol"),
    ({"chain": "FORWARD"}, "chain"),
    ({"action": "LOG"}, "action"),
    ({"position": 0}, "position"),
    ({"log_prefix": "x" * 256}, "log_prefix"),
])
def test_firewall_rules_the_agent_cannot_apply_are_422(api, fw_policy, rule, field):
    path = "/v1/firewall_policies/%s/firewall_rules" % fw_policy["id"]
    before = api.ok("GET", path)["count"]
    r = api.post(path, {"firewall_rule": dict({"chain": "INPUT", "action": "ACCEPT"}, **rule)})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field, r.text
    assert api.ok("GET", path)["count"] == before  # nothing half-stored


def test_firewall_rule_values_are_normalised(api, fw_policy):
    path = "/v1/firewall_policies/%s/firewall_rules" % fw_policy["id"]
    rule = api.ok("POST", path, {"firewall_rule": {
        "chain": "input", "action": "accept", "connection_states": "new, established",
        "firewall_service": {"port": "8000:8080", "protocol": "tcp"}}})["firewall_rule"]
    assert (rule["chain"], rule["action"]) == ("INPUT", "ACCEPT")
    assert rule["connection_states"] == "NEW, ESTABLISHED"
    assert rule["firewall_service"]["port"] == "8000:8080"
    assert rule["firewall_service"]["protocol"] == "TCP"
    anyr = api.ok("POST", path, {"firewall_rule": {"action": "DROP", "connection_states": "ANY",
                                                   "firewall_service": {"port": 22}}})
    assert anyr["firewall_rule"]["connection_states"] is None
    assert anyr["firewall_rule"]["firewall_service"]["port"] == "22"
    # the rule update path checks the same
    rid = rule["id"]
    r = api.put("%s/%s" % (path, rid), {"firewall_rule": {"connection_states": "FOO"}})
    assert r.status_code == 422
    assert api.ok("GET", "%s/%s" % (path, rid))["firewall_rule"]["connection_states"] == \
        "NEW, ESTABLISHED"


def test_firewall_services_and_zones_check_ports_and_networks(api):
    for port in ("abc; drop", "1-2-3", "0", "70000"):
        r = api.post("/v1/firewall_services", {"firewall_service": {
            "name": unique("svc"), "port": port}})
        assert r.status_code == 422, (port, r.text)
        assert r.json()["errors"][0]["field"] == "port"
    ok = api.ok("POST", "/v1/firewall_services", {"firewall_service": {
        "name": unique("svc"), "port": "22,80-90", "protocol": "tcp"}})["firewall_service"]
    assert ok["port"] == "22,80-90" and ok["protocol"] == "TCP"
    r = api.post("/v1/firewall_zones", {"firewall_zone": {"name": unique("z"),
                                                           "ip_address": "198.19.0.1, nope"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "ip_address"


def test_firewall_policy_with_bad_rule_stores_nothing(api):
    name = unique("fwp")
    r = api.post("/v1/firewall_policies", {"firewall_policy": {"name": name, "firewall_rules": [
        {"action": "ACCEPT"}, {"action": "DROP", "connection_states": "FOO"}]}})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "firewall_rules[1].connection_states"
    names = [p["name"] for p in api.ok("GET", "/v1/firewall_policies",
                                       params={"per_page": 100})["firewall_policies"]]
    assert name not in names


# -- lengths and numbers the database cannot hold ------------------------------------------
def test_names_over_255_characters_are_422(api, grid):
    long = "n" * 256
    agent = register(grid)
    cases = [
        ("POST", "/v1/groups", {"group": {"name": long}}, "name"),
        ("POST", "/v1/groups", {"group": {"name": unique("g"), "tag": long}}, "tag"),
        ("PUT", "/v1/servers/%s" % agent.server_id, {"server": {"server_label": long}},
         "server_label"),
        ("POST", "/v2/policies", {"policy": {"name": long}}, "name"),
        ("POST", "/v2/policies", {"policy": {"name": unique("p"), "platform": "p" * 65}},
         "platform"),
        ("POST", "/v1/firewall_policies", {"firewall_policy": {"name": long}}, "name"),
        ("POST", "/v1/firewall_zones", {"firewall_zone": {"name": long,
                                                           "ip_address": "198.19.0.1"}}, "name"),
        ("POST", "/v1/firewall_services", {"firewall_service": {"name": long}}, "name"),
    ]
    for method, path, body, field in cases:
        r = api.request(method, path, json=body)
        assert r.status_code == 422, (path, r.status_code, r.text)
        err = r.json()["errors"][0]
        assert err["field"] == field and err["code"] == "too_long", (path, err)
    ok = api.create_group("n" * 255, tag="t" * 255)
    assert len(ok["name"]) == 255


def test_nul_and_lone_surrogates_are_422(api):
    for raw in (b'{"group": {"name": "a\\u0000b"}}', b'{"group": {"name": "a\\ud800"}}',
                b'{"policy": {"name": "p", "rules": [{"name": "r", "x": "\\u0000"}]}}'):
        path = "/v2/policies" if b"policy" in raw else "/v1/groups"
        r = api.request("POST", path, data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (raw, r.text)
    r = api.get("/v1/groups", params={"name": "a\x00b"})
    assert r.status_code == 422


def test_huge_page_numbers_are_422_on_every_list(grid, api, openapi):
    lists = [p for p, ops in openapi["paths"].items() if "get" in ops and any(
        q.get("name") == "page" for q in ops["get"].get("parameters", []))]
    assert len(lists) >= 10
    fp = api.ok("POST", "/v1/firewall_policies",
                {"firewall_policy": {"name": unique("pg")}})["firewall_policy"]
    group = api.create_group(unique("pg"))
    fim = api.ok("POST", "/v1/fim_policies", {"fim_policy": {"name": unique("pg")}})
    fim_id = fim["fim_policy"]["id"]
    baseline = api.ok("POST", "/v1/fim_policies/%s/baselines" % fim_id,
                      {"baseline": {"server_id": register(grid).server_id}})["baseline"]
    ids = {"policy_id": fp["id"], "group_id": group["id"], "baseline_id": baseline["id"]}
    for path in lists:
        fim_path = path.startswith("/v1/fim_policies/") or "/baselines" in path
        url = path.format(**dict(ids, policy_id=fim_id if fim_path else fp["id"]))
        for page in (2 ** 63, 2 ** 31):
            r = api.get(url, params={"page": page})
            assert r.status_code == 422, (url, page, r.text)
            assert r.json()["errors"][0]["field"] == "page"
        r = api.get(url, params={"per_page": 2 ** 63})
        assert r.status_code == 422, (url, r.text)
        assert api.get(url, params={"page": 2 ** 31 - 1}).status_code == 200


# -- concurrent creates: one wins, the others get 422 --------------------------------------
def _race(api, bodies):
    barrier = threading.Barrier(len(bodies))
    results = [None] * len(bodies)

    def go(i):
        barrier.wait()
        results[i] = api.post("/v1/groups", bodies[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return [r.status_code for r in results], results


def test_concurrent_group_creates_with_one_name(api):
    name = unique("race")
    codes, results = _race(api, [{"group": {"name": name}} for _ in range(8)])
    assert sorted(codes) == [201] + [422] * 7, [r.text for r in results]
    for r in results:
        if r.status_code == 422:
            assert r.json()["errors"][0]["code"] == "taken"
    assert api.ok("GET", "/v1/groups", params={"name": name})["count"] == 1


def test_concurrent_group_creates_with_one_tag(api, grid):
    tag = unique("racetag")
    codes, results = _race(api, [{"group": {"name": unique("rt"), "tag": tag}}
                                 for _ in range(8)])
    assert sorted(codes) == [201] + [422] * 7, [r.text for r in results]
    groups = api.ok("GET", "/v1/groups", params={"tag": tag})["groups"]
    assert len(groups) == 1
    # a host started with that tag joins that one group
    assert register(grid, tag=tag).group_id == groups[0]["id"]
