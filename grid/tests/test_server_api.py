"""The Halo API subset: groups, servers, policies, scans, events, errors, pagination."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from gridhelpers import register, run_scan, unique

HEX32 = re.compile(r"^[0-9a-f]{32}$")
MISSING = "f" * 32


# -- groups ------------------------------------------------------------------------------
def test_default_group_exists(api):
    groups = api.ok("GET", "/v1/groups", params={"per_page": 100})["groups"]
    names = [g["name"] for g in groups]
    assert "Unassigned" in names


def test_group_crud(api):
    pol = api.ok("POST", "/v1/policies", {"policy": {"name": unique("pol"), "rules": []}})
    parent = api.create_group(unique("parent"))
    r = api.post("/v1/groups", {"group": {"name": "child-x", "tag": "ChildTag",
                                          "parent_id": parent["id"],
                                          "policy_ids": [pol["policy"]["id"]],
                                          "description": "d"}})
    assert r.status_code == 201
    g = r.json()["group"]
    assert HEX32.match(g["id"])
    assert g["url"] == api.url + "/v1/groups/" + g["id"]
    assert g["tag"] == "ChildTag" and g["parent_id"] == parent["id"]
    assert g["policy_ids"] == [pol["policy"]["id"]]
    assert g["server_counts"] == {"active": 0, "missing": 0, "deactivated": 0}
    assert g["has_children"] is False
    assert api.ok("GET", "/v1/groups/%s" % parent["id"])["group"]["has_children"] is True

    r = api.put("/v1/groups/%s" % g["id"], {"group": {"description": "new", "tag": None}})
    assert r.status_code == 204 and r.content == b""
    got = api.ok("GET", "/v1/groups/%s" % g["id"])["group"]
    assert got["description"] == "new" and got["tag"] is None and got["name"] == "child-x"

    # a parent with children cannot go; the child can
    assert api.delete("/v1/groups/%s" % parent["id"]).status_code == 422
    assert api.delete("/v1/groups/%s" % g["id"]).status_code == 204
    r = api.get("/v1/groups/%s" % g["id"])
    assert r.status_code == 404
    assert r.json() == {"resource": "group", "field": "id", "value": g["id"]}


def test_group_validation(api):
    name = unique("dup")
    api.create_group(name, tag=name)
    cases = [
        {"group": {"name": ""}},
        {"group": {"tag": "x"}},
        {"group": {"name": name}},
        {"group": {"name": unique("g"), "tag": name}},
        {"group": {"name": unique("g"), "policy_ids": [MISSING]}},
        {"group": {"name": unique("g"), "policy_ids": "notalist"}},
        {"group": {"name": unique("g"), "parent_id": MISSING}},
        {"group": {"name": unique("g"), "linux_firewall_policy_id": MISSING}},
        {"group": {"name": 12}},
    ]
    for body in cases:
        r = api.post("/v1/groups", body)
        assert r.status_code == 422, (body, r.text)
        data = r.json()
        assert data["message"] == "Validation Failed"
        assert data["errors"] and {"field", "value", "code", "details"} <= set(data["errors"][0])


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'{"name": "x"}', b'{"group": 5}',
                                 b"", b'"group"'])
def test_bad_bodies_are_400(api, raw):
    r = api.request("POST", "/v1/groups", data=raw,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "error" in r.json()


def test_unknown_ids_are_404(api):
    for path, resource in (("/v1/groups/%s", "group"), ("/v1/servers/%s", "server"),
                           ("/v1/scans/%s", "scan"), ("/v2/policies/%s", "policy"),
                           ("/v1/policies/%s", "policy"),
                           ("/v1/firewall_policies/%s", "firewall_policy"),
                           ("/v1/firewall_zones/%s", "firewall_zone"),
                           ("/v1/firewall_services/%s", "firewall_service")):
        r = api.get(path % MISSING)
        assert r.status_code == 404, path
        assert r.json() == {"resource": resource, "field": "id", "value": MISSING}


def test_delete_group_with_servers(api, grid):
    parent = api.create_group(unique("p"))
    tag = unique("tag")
    child = api.create_group(unique("c"), tag=tag, parent_id=parent["id"])
    agent = register(grid, tag=tag)
    assert agent.group_id == child["id"]
    r = api.delete("/v1/groups/%s" % child["id"])
    assert r.status_code == 422
    r = api.delete("/v1/groups/%s" % child["id"], params={"move_to_parent": "true"})
    assert r.status_code == 204
    assert api.ok("GET", "/v1/servers/%s" % agent.server_id)["server"]["group_id"] == parent["id"]


# -- pagination --------------------------------------------------------------------------
def test_pagination(api):
    prefix = unique("page")
    for i in range(23):
        api.create_group("%s-%02d" % (prefix, i))
    first = api.ok("GET", "/v1/groups")
    assert first["count"] >= 24
    assert len(first["groups"]) == 10  # Halo's default page size
    assert "previous" not in first["pagination"]
    nxt = first["pagination"]["next"]
    assert nxt.startswith(api.url + "/v1/groups?")
    assert parse_qs(urlsplit(nxt).query)["page"] == ["2"]
    # follow `next` the way the SDK does (path + query) to the end
    seen, url, pages = [], "/v1/groups?per_page=7", 0
    while url:
        page = api.ok("GET", url)
        seen += [g["id"] for g in page["groups"]]
        pages += 1
        if pages > 1:
            assert page["pagination"]["previous"].startswith(api.url)
        nxt = page["pagination"].get("next")
        url = ("%s?%s" % (urlsplit(nxt).path, urlsplit(nxt).query)) if nxt else None
    assert len(seen) == len(set(seen)) == page["count"]
    assert pages == -(-page["count"] // 7)
    big = api.ok("GET", "/v1/groups", params={"per_page": 1000})
    assert len(big["groups"]) == min(100, big["count"])
    for bad in ("0", "-1", "x"):
        assert api.get("/v1/groups", params={"page": bad}).status_code == 422
        assert api.get("/v1/groups", params={"per_page": bad}).status_code == 422


# -- servers -----------------------------------------------------------------------------
def test_server_object_fields(api, grid):
    agent = register(grid, hostname="fields-host", ip="198.18.0.77")
    s = api.ok("GET", "/v1/servers/%s" % agent.server_id)["server"]
    for field in ("id", "url", "hostname", "server_label", "reported_fqdn",
                  "connecting_ip_address", "primary_ip_address", "interfaces", "group_id",
                  "group_name", "group_path", "state", "platform", "platform_version",
                  "os_version", "kernel_name", "daemon_version", "last_state_change",
                  "firewall_policy", "created_at"):
        assert field in s, field
    assert s["hostname"] == "fields-host" and s["state"] == "active"
    assert s["group_name"] == "Unassigned" and s["group_path"] == "Unassigned"
    assert s["daemon_version"] == "0.1.0" and s["platform"] == "debian"
    assert s["primary_ip_address"] == "198.18.0.77"
    assert s["interfaces"] == [{"name": "eth0", "ip": "198.18.0.77"}]
    assert s["connecting_ip_address"] == "127.0.0.1"
    assert s["created_at"].endswith("Z")


def test_a_listed_server_is_the_server_object_the_model_describes(api, grid):
    """The server list is sent as built (no response validation: it is the hot list): each
    listed server equals the single-server answer and validates against ServerList, with a
    firewall policy and its status too."""
    from halogrid.schemas import ServerList
    tag = unique("listtag")
    fp = api.ok("POST", "/v1/firewall_policies", {"firewall_policy": {
        "name": unique("listfw"), "platform": "linux"}})["firewall_policy"]
    g = api.create_group(unique("listg"), tag=tag)
    api.put("/v1/groups/%s" % g["id"], {"group": {"linux_firewall_policy_id": fp["id"]}})
    agent = register(grid, tag=tag, ip="198.18.0.78")
    page = api.ok("GET", "/v1/servers", params={"group_id": g["id"], "per_page": 100})
    ServerList.model_validate(page)
    one = api.ok("GET", "/v1/servers/%s" % agent.server_id)["server"]
    assert page["servers"] == [one] and page["count"] == 1
    assert one["firewall_policy"]["id"] == fp["id"] and one["firewall_policy"]["status"] == "pending"


def test_server_filters(api, grid):
    tag = unique("ftag")
    g = api.create_group(unique("fgrp"), tag=tag)
    a = register(grid, hostname=unique("fa"), tag=tag)
    b = register(grid, hostname=unique("fb"), tag=tag, platform="centos")
    ids = lambda **p: {s["id"] for s in api.servers(**p)}  # noqa: E731
    assert ids(group_id=g["id"]) == {a.server_id, b.server_id}
    assert ids(group_id=g["id"], platform="centos") == {b.server_id}
    assert ids(hostname="no-such-host") == set()
    s_a = api.ok("GET", "/v1/servers/%s" % a.server_id)["server"]
    assert ids(hostname=s_a["hostname"]) == {a.server_id}
    assert ids(server_label=s_a["server_label"]) == {a.server_id}
    assert ids(group_id=g["id"], cve="CVE-2014-0160") == set()
    gs = api.ok("GET", "/v1/groups/%s/servers" % g["id"])["servers"]
    assert {s["id"] for s in gs} == {a.server_id, b.server_id}
    assert api.ok("GET", "/v1/groups/%s" % g["id"])["group"]["server_counts"]["active"] == 2
    # retire one: default listing hides it, state=deactivated shows it
    r = api.put("/v1/servers/%s" % b.server_id, {"server": {"retire": True}})
    assert r.status_code == 204
    assert ids(group_id=g["id"]) == {a.server_id}
    assert ids(group_id=g["id"], state="deactivated") == {b.server_id}
    assert ids(group_id=g["id"], state="active,deactivated") == {a.server_id, b.server_id}
    assert api.get("/v1/servers", params={"state": "bogus"}).status_code == 422
    # deleted servers vanish
    assert api.delete("/v1/servers/%s" % a.server_id).status_code == 422  # still active
    assert api.delete("/v1/servers/%s" % b.server_id).status_code == 204
    assert api.get("/v1/servers/%s" % b.server_id).status_code == 404
    assert ids(group_id=g["id"], state="active,missing,deactivated") == {a.server_id}


def test_move_server(api, grid):
    src_tag = unique("src")
    src = api.create_group(unique("src"), tag=src_tag)
    dst = api.create_group(unique("dst"))
    agent = register(grid, tag=src_tag)
    r = api.put("/v1/servers/%s" % agent.server_id, {"server": {"group_id": dst["id"]}})
    assert r.status_code == 204 and r.content == b""
    s = api.ok("GET", "/v1/servers/%s" % agent.server_id)["server"]
    assert s["group_id"] == dst["id"] and s["group_name"] == dst["name"]
    ev = api.ok("GET", "/v1/events", params={"server_id": agent.server_id,
                                              "type": "server_moved"})["events"]
    assert len(ev) == 1 and src["name"] in ev[0]["message"] and ev[0]["group_id"] == dst["id"]
    r = api.put("/v1/servers/%s" % agent.server_id, {"server": {"group_id": MISSING}})
    assert r.status_code == 422
    assert api.put("/v1/servers/%s" % agent.server_id, {"server": {}}).status_code == 422
    assert api.put("/v1/servers/%s" % agent.server_id, {"srv": {}}).status_code == 400
    assert api.put("/v1/servers/%s" % MISSING, {"server": {"group_id": dst["id"]}}
                   ).status_code == 404


# -- scans -------------------------------------------------------------------------------
def test_scan_lifecycle_and_results(api, grid):
    agent = register(grid)
    assert api.get("/v1/servers/%s/sca" % agent.server_id).status_code == 404
    findings = [
        {"rule_name": "crit bad", "policy_id": "p", "critical": True, "status": "bad",
         "details": [{"type": "configuration_file_setting", "target": "/etc/ssh/sshd_config",
                      "config_key": "PermitRootLogin", "expected": "no", "actual": "yes",
                      "status": "bad", "scan_status": "ok"}]},
        {"rule_name": "noncrit bad", "policy_id": "p", "critical": False, "status": "bad",
         "details": []},
        {"rule_name": "good", "policy_id": "p", "critical": True, "status": "good",
         "details": []},
    ]
    cmd, _ = run_scan(api, agent, findings)
    c = api.ok("GET", "/v1/servers/%s/commands/%s" % (agent.server_id, cmd["id"]))["command"]
    assert c["status"] == "completed" and c["name"] == "sca"
    for alias in ("sca", "csm"):
        res = api.ok("GET", "/v1/servers/%s/%s" % (agent.server_id, alias))
        assert res["id"] == agent.server_id and "hostname" in res and res["state"] == "active"
        sc = res["scan"]
        assert sc["status"] == "completed_with_errors" and sc["module"] == "sca"
        assert (sc["critical_findings_count"], sc["non_critical_findings_count"],
                sc["ok_findings_count"]) == (1, 1, 1)
        assert sc["agent_started_at"] == "2024-01-01T00:00:00.000Z"
        assert [f["rule_name"] for f in sc["findings"]] == ["crit bad", "noncrit bad", "good"]
    whole = api.ok("GET", "/v1/scans/%s" % sc["id"])
    scan = whole["scan"]
    assert scan["server_id"] == agent.server_id and len(scan["findings"]) == 3
    # sent as built (no response validation): still its model, and the same object the
    # latest-result route gives through FastAPI's validation
    from halogrid.schemas import ScanResponse
    ScanResponse.model_validate(whole)
    assert scan == sc
    fid = scan["findings"][0]["id"]
    f = api.ok("GET", "/v1/scans/%s/findings/%s" % (sc["id"], fid))
    assert f["id"] == fid and f["details"][0]["actual"] == "yes"
    assert api.get("/v1/scans/%s/findings/%s" % (sc["id"], MISSING)).status_code == 404

    # a clean scan, then a failed one
    run_scan(api, agent, [findings[2]])
    assert api.ok("GET", "/v1/servers/%s/sca" % agent.server_id)["scan"]["status"] == \
        "completed_clean"
    cmd3, _ = run_scan(api, agent, [], status="failed", result="disk on fire")
    c3 = api.ok("GET", "/v1/servers/%s/commands/%s" % (agent.server_id, cmd3["id"]))["command"]
    assert c3["status"] == "failed" and c3["result"] == "disk on fire"
    assert api.ok("GET", "/v1/servers/%s/sca" % agent.server_id)["scan"]["status"] == "failed"

    hist = api.ok("GET", "/v1/scans", params={"server_id": agent.server_id})
    assert hist["count"] == 3
    assert [s["status"] for s in hist["scans"]] == ["completed_with_errors", "completed_clean",
                                                    "failed"]
    only = api.ok("GET", "/v1/scans", params={"server_id": agent.server_id,
                                               "status": "completed_clean,failed",
                                               "module": "csm"})
    assert only["count"] == 2
    assert api.ok("GET", "/v1/scans", params={"server_id": agent.server_id,
                                               "since": "2999-01-01"})["count"] == 0
    assert api.ok("GET", "/v1/scans", params={"server_id": agent.server_id,
                                               "until": "2000-01-01T00:00:00Z"})["count"] == 0
    assert api.get("/v1/scans", params={"since": "yesterday"}).status_code == 422
    assert api.get("/v1/scans", params={"status": "weird"}).status_code == 422
    assert api.get("/v1/servers/%s/svm" % agent.server_id).status_code == 404
    types = {e["type"] for e in api.ok("GET", "/v1/events", params={
        "server_id": agent.server_id, "per_page": 100})["events"]}
    assert {"server_registered", "scan_requested", "scan_started", "scan_completed",
            "scan_failed"} <= types


def test_scan_request_validation(api, grid):
    agent = register(grid)
    path = "/v1/servers/%s/scans" % agent.server_id
    assert api.post(path, {"scan": {"module": "sam"}}).status_code == 422  # a module not run here
    r = api.post(path, {"scan": {"module": "nope"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "module"
    assert api.post(path, {"scan": {}}).status_code == 422
    assert api.post(path, {"module": "sca"}).status_code == 400
    assert api.post("/v1/servers/%s/scans" % MISSING, {"scan": {"module": "sca"}}
                    ).status_code == 404
    r = api.post(path, {"scan": {"module": "csm"}})
    assert r.status_code == 202
    cmd = r.json()["command"]
    assert cmd["status"] == "queued" and cmd["name"] == "sca" and HEX32.match(cmd["id"])


# -- policies ----------------------------------------------------------------------------
POLICY = {"policy": {"name": "sshd basics", "platform": "linux", "description": "d",
                     "rules": [{"name": "No root login", "active": True, "critical": True,
                                "checks": [{"object_type": "configuration_file_setting",
                                            "config_file_path": "/etc/ssh/sshd_config",
                                            "config_item": "PermitRootLogin",
                                            "desired_value": "no", "active": True}]}]}}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_policy_crud(api, version):
    body = {"policy": dict(POLICY["policy"], name=unique("pol-" + version))}
    r = api.post("/%s/policies" % version, body)
    assert r.status_code == 201
    pol = r.json()["policy"]
    assert HEX32.match(pol["id"]) and pol["rules"][0]["name"] == "No root login"
    assert pol["module"] == "csm"
    listed = api.ok("GET", "/v2/policies", params={"module": "csm", "per_page": 100})
    assert pol["id"] in [p["id"] for p in listed["policies"]]
    assert api.ok("GET", "/v2/policies", params={"module": "fim"})["count"] == 0
    got = api.ok("GET", "/%s/policies/%s" % (version, pol["id"]))["policy"]
    assert got["description"] == "d"
    r = api.put("/%s/policies/%s" % (version, pol["id"]),
                {"policy": {"description": "changed"}})
    assert r.status_code == 204
    got = api.ok("GET", "/%s/policies/%s" % (version, pol["id"]))["policy"]
    assert got["description"] == "changed" and got["rules"] == pol["rules"]
    # in use by a group -> 422; detached -> deletable
    g = api.create_group(unique("pg"), policy_ids=[pol["id"]])
    assert api.delete("/%s/policies/%s" % (version, pol["id"])).status_code == 422
    api.put("/v1/groups/%s" % g["id"], {"group": {"policy_ids": []}})
    assert api.delete("/%s/policies/%s" % (version, pol["id"])).status_code == 204
    assert api.get("/%s/policies/%s" % (version, pol["id"])).status_code == 404


def test_policy_validation(api):
    name = unique("pv")
    api.ok("POST", "/v2/policies", {"policy": {"name": name}})
    for body in ({"policy": {"name": name}}, {"policy": {"rules": []}},
                 {"policy": {"name": unique("pv"), "rules": "x"}},
                 {"policy": {"name": unique("pv"), "rules": [{"checks": []}]}},
                 # fim is a module of /v2/policies now (test_server_fim.py); others are not
                 {"policy": {"name": unique("pv"), "module": "lids"}}):
        r = api.post("/v2/policies", body)
        assert r.status_code == 422, body
    assert api.post("/v2/policies", {"name": "x"}).status_code == 400


# -- events ------------------------------------------------------------------------------
def test_events_filters(api, grid):
    g = api.create_group(unique("evg"))
    evs = api.ok("GET", "/v1/events", params={"group_id": g["id"]})["events"]
    assert [e["type"] for e in evs] == ["group_created"]
    e = evs[0]
    for field in ("id", "type", "name", "message", "created_at", "server_id", "group_id"):
        assert field in e
    assert api.ok("GET", "/v1/events", params={"type": "group_created",
                                                "since": e["created_at"]})["count"] >= 1
    assert api.ok("GET", "/v1/events", params={"group_id": g["id"],
                                                "until": "2000-01-01"})["count"] == 0
    desc = api.ok("GET", "/v1/events", params={"sort_by": "created_at.desc", "per_page": 2})
    asc = api.ok("GET", "/v1/events", params={"per_page": 2})
    assert desc["events"][0]["created_at"] >= asc["events"][0]["created_at"]
    api.put("/v1/groups/%s" % g["id"], {"group": {"description": "x"}})
    types = [e["type"] for e in api.ok("GET", "/v1/events", params={"group_id": g["id"]})["events"]]
    assert types == ["group_created", "group_modified"]


def test_unknown_route_is_json_404(api):
    r = api.get("/v1/nothing-here")
    assert r.status_code == 404 and "error" in r.json()


def test_wrong_method_is_not_500(api):
    r = api.request("PATCH", "/v1/groups")
    assert r.status_code == 405


def test_unauthenticated_requests(grid):
    assert requests.get(grid.url + "/v1/servers").status_code == 401
    assert requests.post(grid.url + "/v1/groups", data=b"{bad").status_code == 401
