"""File integrity (fim) on a real grid: policies at /v1/fim_policies and /v2/policies, baselines,
the chunked inventory of the agent protocol, the diff in the database, and fail-closed scans.

A fake agent (gridhelpers.Agent) posts the inventories here, so every case is exact; the
last test runs the real haloagent on a prepared tree when its fim walker is installed.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, List, Optional

import pytest

from gridhelpers import unique, wait_for

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


# -- helpers ------------------------------------------------------------------------------
def fim_policy(api, rules: List[Dict[str, Any]], **extra: Any) -> Dict[str, Any]:
    body = dict(name=unique("fim"), rules=rules, **extra)
    return api.ok("POST", "/v1/fim_policies", {"fim_policy": body})["fim_policy"]


def fim_server(api, make_agent, *policies):
    tag = unique("fimtag")
    group = api.create_group(unique("fimgroup"), tag=tag,
                             fim_policy_ids=[p["id"] for p in policies])
    return make_agent(tag=tag), group


def obj(policy, path, rule=0, sha=SHA_A, mode="0644", uid=0, gid=0, size=1, type_="file",
        link_target=None, error=None):
    return {"policy_id": policy["id"], "rule_id": policy["rules"][rule]["id"], "path": path,
            "type": type_, "sha256": sha if type_ == "file" else None, "mode": mode,
            "uid": uid, "gid": gid, "size": size, "link_target": link_target, "error": error}


def take_command(agent, purpose: str) -> Dict[str, Any]:
    answer = agent.poll(wait=5).json()
    cmds = [c for c in answer["commands"] if c["name"] == "fim"]
    assert len(cmds) == 1, answer
    assert cmds[0]["purpose"] == purpose
    assert agent.post("/agent/v1/commands/%s/start" % cmds[0]["id"]).status_code == 204
    return cmds[0]


def send(agent, command_id: str, chunks: List[List[Dict[str, Any]]],
         objects_sent: Optional[int] = None, status: str = "completed", result: str = None):
    for chunk in chunks:
        r = agent.post("/agent/v1/commands/%s/fim_objects" % command_id, {"objects": chunk})
        assert r.status_code == 204, r.text
    if objects_sent is None:
        objects_sent = sum(len(c) for c in chunks)
    body: Dict[str, Any] = {"status": status, "scan": {
        "module": "fim", "agent_started_at": "2026-01-01T00:00:00Z",
        "agent_completed_at": "2026-01-01T00:00:01Z", "objects_sent": objects_sent}}
    if result is not None:
        body["result"] = result
    r = agent.post("/agent/v1/commands/%s/result" % command_id, body)
    assert r.status_code == 204, r.text


def baseline(api, agent, policy, chunks, prefix="/v1/fim_policies", **kw) -> Dict[str, Any]:
    b = api.ok("POST", "%s/%s/baselines" % (prefix, policy["id"]),
               {"baseline": {"server_id": agent.server_id, "comment": "golden"}})["baseline"]
    assert b["status"] == "pending"
    cmd = take_command(agent, "baseline")
    send(agent, cmd["id"], chunks, **kw)
    return api.ok("GET", "/v1/fim_policies/%s/baselines/%s" % (policy["id"], b["id"]))["baseline"]


def scan(api, agent, chunks, **kw) -> Dict[str, Any]:
    cmd = api.scan(agent.server_id, "fim")
    assert cmd["name"] == "fim" and cmd["status"] == "queued", cmd
    got = take_command(agent, "scan")
    assert got["id"] == cmd["id"]
    send(agent, cmd["id"], chunks, **kw)
    return api.ok("GET", "/v1/scans/%s" % cmd["scan_id"])["scan"]


def by_file(scan_obj) -> Dict[str, Dict[str, Any]]:
    return {f["file"]: f for f in scan_obj["findings"]}


# -- policies -----------------------------------------------------------------------------
def test_policies_at_v1_and_v2(api):
    p = fim_policy(api, [{"target": "/etc/passwd", "critical": True},
                         {"target": "/usr/bin", "recurse": True,
                          "exclusions": "*.pyc, /usr/bin/x"}])
    assert p["module"] == "fim" and p["platform"] == "linux"
    assert p["compare"] == ["content", "mode", "owner", "group", "size", "link_target"]
    assert p["url"].endswith("/v1/fim_policies/%s" % p["id"])
    assert all(len(r["id"]) == 32 for r in p["rules"])
    # the SDK's form: /v2/policies?module=fim, object "policy"
    listed = api.ok("GET", "/v2/policies", params={"module": "fim", "per_page": 100})
    assert p["id"] in [x["id"] for x in listed["policies"]]
    v2 = api.ok("GET", "/v2/policies/%s" % p["id"])["policy"]
    assert v2["module"] == "fim" and v2["url"].endswith("/v2/policies/%s" % p["id"])
    assert v2["rules"] == p["rules"]
    # configuration lists keep configuration policies only
    for path, params in (("/v2/policies", {"module": "csm"}), ("/v1/policies", {}),
                         ("/v2/policies", {})):
        ids = [x["id"] for x in api.ok("GET", path, params=dict(params, per_page=100))["policies"]]
        assert p["id"] not in ids
    assert api.get("/v1/policies/%s" % p["id"]).status_code == 404
    assert api.get("/v2/policies", params={"module": "fim,csm"}).status_code == 422
    # a v2 update that names no module keeps the policy a FIM policy; rule ids survive
    r = api.put("/v2/policies/%s" % p["id"], {"policy": {"description": "via v2"}})
    assert r.status_code == 204, r.text
    again = api.ok("GET", "/v1/fim_policies/%s" % p["id"])["fim_policy"]
    assert again["description"] == "via v2" and again["rules"] == p["rules"]
    # the SDK's update sends back what it is given: rules without module stay FIM rules
    r = api.put("/v2/policies/%s" % p["id"], {"policy": {"id": p["id"], "rules": [
        dict(p["rules"][0], critical=False), p["rules"][1]]}})
    assert r.status_code == 204, r.text
    rules = api.ok("GET", "/v2/policies/%s" % p["id"])["policy"]["rules"]
    assert rules[0]["critical"] is False and [x["id"] for x in rules] == [
        x["id"] for x in p["rules"]]
    r = api.put("/v2/policies/%s" % p["id"], {"policy": {"compare": ["inode"]}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "compare[0]"
    r = api.post("/v2/policies", {"policy": {"module": "fim", "name": "n" * 256}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    created = api.ok("POST", "/v2/policies", {"policy": {
        "name": unique("fimv2"), "module": "fim", "compare": ["content", "mode"],
        "rules": [{"target": "/etc/*.conf"}]}})["policy"]
    assert created["module"] == "fim" and created["compare"] == ["content", "mode"]
    # shapes the models refuse
    for bad in ({"name": "x", "rules": [{"target": "etc/relative"}]},
                {"name": "x", "rules": [{"target": "/etc", "recurse": "maybe"}]},
                {"name": "x", "compare": ["inode"]}):
        assert api.post("/v1/fim_policies", {"fim_policy": bad}).status_code == 422, bad
    dup = api.post("/v1/fim_policies", {"fim_policy": {"name": p["name"], "rules": []}})
    assert dup.status_code == 422 and dup.json()["errors"][0]["code"] == "taken"


def test_groups_take_fim_policy_ids_and_the_alias(api):
    p = fim_policy(api, [{"target": "/etc/hosts"}])
    g = api.create_group(unique("fg"), linux_fim_policy_ids=[p["id"]])
    assert g["fim_policy_ids"] == [p["id"]]
    assert api.ok("GET", "/v1/fim_policies/%s" % p["id"])["fim_policy"]["used_by"] == [
        {"id": g["id"], "type": "Group"}]
    r = api.post("/v1/groups", {"group": {"name": unique("fg"), "fim_policy_ids": ["f" * 32]}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "fim_policy_ids"
    # in use: not deleted
    assert api.delete("/v1/fim_policies/%s" % p["id"]).status_code == 422
    assert api.put("/v1/groups/%s" % g["id"], {"group": {"fim_policy_ids": []}}).status_code == 204
    assert api.delete("/v2/policies/%s" % p["id"]).status_code == 204
    assert api.get("/v1/fim_policies/%s" % p["id"]).status_code == 404


# -- fail closed --------------------------------------------------------------------------
def test_scan_without_policy_or_baseline_fails_with_the_reason(api, make_agent):
    lone = make_agent()
    cmd = api.scan(lone.server_id, "fim")
    assert cmd["status"] == "failed" and "no fim policy" in cmd["result"]
    latest = api.ok("GET", "/v1/servers/%s/fim" % lone.server_id)["scan"]
    assert latest["status"] == "failed" and "no fim policy" in latest["result"]
    assert lone.poll(wait=0).json()["commands"] == []  # nothing handed to the agent

    p = fim_policy(api, [{"target": "/etc/passwd"}])
    agent, _g = fim_server(api, make_agent, p)
    cmd = api.scan(agent.server_id, "fim")
    assert cmd["status"] == "failed"
    assert "no active baseline for policy %s" % p["name"] in cmd["result"]
    scans = api.ok("GET", "/v1/scans", params={"module": "fim", "server_id": agent.server_id})
    assert [s["status"] for s in scans["scans"]] == ["failed"]


# -- baseline, clean scan, changes --------------------------------------------------------
def test_baseline_clean_scan_then_each_kind_of_change(api, make_agent):
    p = fim_policy(api, [{"target": "/etc/passwd", "critical": True},
                         {"target": "/usr/bin", "recurse": True,
                          "exclusions": "*.pyc\n/usr/bin/x"}])
    agent, _g = fim_server(api, make_agent, p)
    base_objs = [obj(p, "/etc/passwd", 0, size=10),
                 obj(p, "/usr/bin", 1, type_="dir", mode="0755", size=4096),
                 obj(p, "/usr/bin/ls", 1, sha=SHA_A, mode="0755"),
                 obj(p, "/usr/bin/sh", 1, type_="link", link_target="dash", mode="0777"),
                 obj(p, "/usr/bin/gone", 1)]
    b = api.ok("POST", "/v1/fim_policies/%s/baselines" % p["id"],
               {"baseline": {"server_id": agent.server_id, "expire_days": 30}})["baseline"]
    cmd = take_command(agent, "baseline")
    # what the agent is told to walk (PROTOCOL.md)
    [sent] = cmd["fim_policies"]
    assert sent["id"] == p["id"] and sent["compare"] == p["compare"]
    assert sent["rules"][1] == {"id": p["rules"][1]["id"], "target": "/usr/bin",
                                "recurse": True, "exclusions": ["*.pyc", "/usr/bin/x"],
                                "critical": False}
    send(agent, cmd["id"], [base_objs[:2], base_objs[2:]])
    b = api.ok("GET", "/v1/fim_policies/%s/baselines/%s" % (p["id"], b["id"]))["baseline"]
    assert (b["status"], b["object_count"]) == ("active", 5)
    assert b["expires_at"] and b["server_id"] == agent.server_id
    details = api.ok("GET", "/v2/policies/%s/baselines/%s/details" % (p["id"], b["id"]))
    assert [o["path"] for o in details["baseline"]["objects"]] == sorted(
        o["path"] for o in base_objs)
    assert b["id"] in [x["id"] for x in api.ok(
        "GET", "/v2/policies/%s/baselines" % p["id"])["baselines"]]

    clean = scan(api, agent, [base_objs])
    assert clean["module"] == "fim" and clean["status"] == "completed_clean"
    assert (clean["critical_findings_count"], clean["non_critical_findings_count"],
            clean["ok_findings_count"]) == (0, 0, 5)
    assert clean["findings"] == []

    now = [obj(p, "/etc/passwd", 0, sha=SHA_B, size=11),          # content: critical rule
           obj(p, "/usr/bin", 1, type_="dir", mode="0755", size=4096),
           obj(p, "/usr/bin/ls", 1, sha=SHA_A, mode="4755"),      # setuid bit
           obj(p, "/usr/bin/sh", 1, type_="link", link_target="bash", mode="0777"),
           obj(p, "/usr/bin/new", 1, uid=1000)]                   # added; gone: removed
    dirty = scan(api, agent, [now])
    assert dirty["status"] == "completed_with_errors"
    assert (dirty["critical_findings_count"], dirty["non_critical_findings_count"],
            dirty["ok_findings_count"]) == (1, 4, 1)
    f = by_file(dirty)
    assert set(f) == {"/etc/passwd", "/usr/bin/ls", "/usr/bin/sh", "/usr/bin/new",
                      "/usr/bin/gone"}
    passwd = f["/etc/passwd"]
    assert passwd["critical"] is True and passwd["status"] == "bad"
    assert passwd["change"] == "changed" and passwd["target"] == "/etc/passwd"
    assert passwd["rule_id"] == p["rules"][0]["id"]
    assert passwd["details"] == [{"field": "sha256", "baseline": SHA_A, "current": SHA_B},
                                 {"field": "size", "baseline": 10, "current": 11}]
    assert f["/usr/bin/ls"]["details"] == [{"field": "mode", "baseline": "0755",
                                            "current": "4755"}]
    assert f["/usr/bin/sh"]["details"] == [{"field": "link_target", "baseline": "dash",
                                            "current": "bash"}]
    assert f["/usr/bin/new"]["change"] == "added" and f["/usr/bin/new"]["critical"] is False
    assert {"field": "uid", "baseline": None, "current": 1000} in f["/usr/bin/new"]["details"]
    assert f["/usr/bin/gone"]["change"] == "removed"
    assert {"field": "sha256", "baseline": SHA_A, "current": None} in \
        f["/usr/bin/gone"]["details"]
    one = api.ok("GET", "/v1/scans/%s/findings/%s" % (dirty["id"], passwd["id"]))
    assert one["scan_id"] == dirty["id"] and one["file"] == "/etc/passwd"
    latest = api.ok("GET", "/v1/servers/%s/fim" % agent.server_id)["scan"]
    assert latest["id"] == dirty["id"]
    # the scans' inventories are not kept: only the findings (with both sides' values)
    assert api.ok("GET", "/v1/fim_policies/%s/baselines/%s" % (p["id"], b["id"])
                  )["baseline"]["object_count"] == 5


def test_compare_decides_which_fields_count(api, make_agent):
    p = fim_policy(api, [{"target": "/srv"}], compare=["content"])
    agent, _g = fim_server(api, make_agent, p)
    assert baseline(api, agent, p, [[obj(p, "/srv/a"), obj(p, "/srv/b"), obj(p, "/srv/c")]]
                    )["status"] == "active"
    result = scan(api, agent, [[obj(p, "/srv/a", mode="0600", uid=5),   # not compared
                                obj(p, "/srv/b", type_="dir"),            # type: always
                                obj(p, "/srv/c", sha=None, error="permission denied")]])
    f = by_file(result)
    assert set(f) == {"/srv/b", "/srv/c"}
    assert result["ok_findings_count"] == 1
    assert f["/srv/b"]["details"][0] == {"field": "type", "baseline": "file", "current": "dir"}
    # unreadable now, hashed in the baseline: changed (fail closed), with the reason
    assert f["/srv/c"]["error"] == "permission denied"
    assert f["/srv/c"]["details"] == [{"field": "sha256", "baseline": SHA_A, "current": None}]


# -- the chunk protocol -------------------------------------------------------------------
def test_lost_chunk_or_agent_failure_never_yields_clean(api, make_agent):
    p = fim_policy(api, [{"target": "/etc"}])
    agent, _g = fim_server(api, make_agent, p)
    bad = baseline(api, agent, p, [[obj(p, "/etc/a")]], objects_sent=2)
    assert bad["status"] == "failed" and "sent 2 objects but the grid stored 1" in bad["reason"]
    good = baseline(api, agent, p, [[obj(p, "/etc/a")]])
    assert good["status"] == "active"
    lost = scan(api, agent, [[obj(p, "/etc/a")]], objects_sent=5001)
    assert lost["status"] == "failed" and "a chunk was lost" in lost["result"]
    assert lost["findings"] == []
    failed = scan(api, agent, [], status="failed", result="scan timed out after 600 s")
    assert failed["status"] == "failed" and failed["result"] == "scan timed out after 600 s"
    # no objects_sent at all: not trusted either
    cmd = api.scan(agent.server_id, "fim")
    take_command(agent, "scan")
    r = agent.post("/agent/v1/commands/%s/result" % cmd["id"],
                   {"status": "completed", "scan": {"module": "fim"}})
    assert r.status_code == 204
    assert "objects_sent" in api.wait_command(agent.server_id, cmd["id"])["result"]


def test_chunk_bounds_and_refusals(api, make_agent):
    p = fim_policy(api, [{"target": "/opt"}])
    other = fim_policy(api, [{"target": "/opt"}])
    agent, _g = fim_server(api, make_agent, p)
    assert baseline(api, agent, p, [[obj(p, "/opt/x")]])["status"] == "active"
    cmd = api.scan(agent.server_id, "fim")
    take_command(agent, "scan")
    url = "/agent/v1/commands/%s/fim_objects" % cmd["id"]

    def post(objects):
        return agent.post(url, {"objects": objects})

    assert post([obj(other, "/opt/x")]).status_code == 400          # not this command's policy
    wrong_rule = dict(obj(p, "/opt/x"), rule_id=other["rules"][0]["id"])
    assert post([wrong_rule]).status_code == 400
    assert post([dict(obj(p, "/opt/x"), sha256="XYZ")]).status_code == 400
    assert post([dict(obj(p, "/opt/x"), path="relative")]).status_code == 400
    assert post([dict(obj(p, "/opt/x"), uid=-1)]).status_code == 400
    assert post([obj(p, "/opt/x"), obj(p, "/opt/x")]).status_code == 400  # twice in a chunk
    r = post([obj(p, "/opt/" + "x" * 4096)])
    assert r.status_code == 413 and "longer than 4096" in r.json()["error"]
    r = post([obj(p, "/opt/%d" % i) for i in range(5001)])
    assert r.status_code == 413 and "at most 5000" in r.json()["error"]
    # the chunk route has the result's body limit (4 MiB): 5,000 objects with long paths fit
    big = [obj(p, "/opt/%04d/%s" % (i, "d" * 400)) for i in range(5000)]
    assert 3 * 2 ** 20 < len(json.dumps({"objects": big})) < 4 * 2 ** 20
    assert post(big).status_code == 204
    r = agent.post(url, {"objects": [], "pad": "x" * (4 * 2 ** 20)})
    assert r.status_code == 413 and "4194304 bytes" in r.json()["error"]
    assert post([obj(p, "/opt/x")]).status_code == 204
    assert post([obj(p, "/opt/x")]).status_code == 409                 # sent again
    send(agent, cmd["id"], [])  # objects_sent 0, one stored: failed, nothing clean
    assert api.wait_command(agent.server_id, cmd["id"])["status"] == "failed"
    r = post([obj(p, "/opt/y")])
    assert r.status_code == 409 and "already failed" in r.json()["error"]
    # another server's command, an unknown one, a command that is not fim
    assert agent.post("/agent/v1/commands/%s/fim_objects" % ("f" * 32),
                      {"objects": []}).status_code == 404
    sca = api.scan(agent.server_id, "sca")
    agent.poll(wait=5)
    assert agent.post("/agent/v1/commands/%s/fim_objects" % sca["id"],
                      {"objects": []}).status_code == 400


def test_rebaseline_replaces_the_inventory(api, make_agent):
    p = fim_policy(api, [{"target": "/etc/app.conf"}])
    agent, _g = fim_server(api, make_agent, p)
    b = baseline(api, agent, p, [[obj(p, "/etc/app.conf", sha=SHA_A)]], prefix="/v2/policies")
    assert b["status"] == "active"
    assert scan(api, agent, [[obj(p, "/etc/app.conf", sha=SHA_B)]])[
        "status"] == "completed_with_errors"
    again = api.ok("PUT", "/v2/policies/%s/baselines/%s" % (p["id"], b["id"]),
                   {"baseline": {"server_id": agent.server_id}})["baseline"]
    assert again["status"] == "pending"
    # while it is being taken there is no active baseline: a scan fails, never clean
    cmd_scan = api.scan(agent.server_id, "fim")
    assert cmd_scan["status"] == "failed" and "no active baseline" in cmd_scan["result"]
    cmd = take_command(agent, "baseline")
    send(agent, cmd["id"], [[obj(p, "/etc/app.conf", sha=SHA_B)]])
    b2 = api.ok("GET", "/v1/fim_policies/%s/baselines/%s" % (p["id"], b["id"]))["baseline"]
    assert (b2["status"], b2["object_count"]) == ("active", 1)
    assert scan(api, agent, [[obj(p, "/etc/app.conf", sha=SHA_B)]])["status"] == "completed_clean"
    # a change to what the policy watches: the baseline no longer holds (rebaseline)
    r = api.put("/v1/fim_policies/%s" % p["id"], {"fim_policy": {
        "rules": [{"target": "/etc/app.conf"}, {"target": "/etc/other.conf"}]}})
    assert r.status_code == 204
    b3 = api.ok("GET", "/v1/fim_policies/%s/baselines/%s" % (p["id"], b["id"]))["baseline"]
    assert b3["status"] == "failed" and "rebaseline" in b3["reason"]
    assert api.scan(agent.server_id, "fim")["status"] == "failed"
    assert api.delete("/v1/fim_policies/%s/baselines/%s" % (p["id"], b["id"])).status_code == 204
    assert api.get("/v1/fim_policies/%s/baselines/%s" % (p["id"], b["id"])).status_code == 404


def test_deleting_a_pending_baseline_closes_its_command(api, make_agent):
    p = fim_policy(api, [{"target": "/etc/x"}])
    agent, _g = fim_server(api, make_agent, p)
    b = api.ok("POST", "/v1/fim_policies/%s/baselines" % p["id"],
               {"baseline": {"server_id": agent.server_id}})["baseline"]
    cmd = take_command(agent, "baseline")
    assert agent.post("/agent/v1/commands/%s/fim_objects" % cmd["id"],
                      {"objects": [obj(p, "/etc/x")]}).status_code == 204
    assert api.delete("/v1/fim_policies/%s/baselines/%s" % (p["id"], b["id"])).status_code == 204
    closed = api.ok("GET", "/v1/servers/%s/commands/%s" % (agent.server_id, cmd["id"]))
    assert closed["command"]["status"] == "failed"
    assert agent.post("/agent/v1/commands/%s/fim_objects" % cmd["id"],
                      {"objects": [obj(p, "/etc/y")]}).status_code == 409
    # an agent's failure to take one: failed with its reason
    failed = baseline(api, agent, p, [], status="failed", result="root not readable")
    assert failed["status"] == "failed" and failed["reason"] == "root not readable"


def test_twenty_thousand_objects_in_four_chunks(api, make_agent):
    """The diff runs in the database: 20,000 objects, 4 chunks of 5,000 each (the chunk
    limit, realistic path lengths: within the result body limit)."""
    p = fim_policy(api, [{"target": "/usr", "recurse": True, "critical": True}])
    agent, _g = fim_server(api, make_agent, p)
    paths = ["/usr/share/doc/package-%05d/changelog.Debian.gz" % i for i in range(20000)]
    objs = [obj(p, path, sha=hashlib.sha256(path.encode()).hexdigest(), size=i)
            for i, path in enumerate(paths)]
    chunks = [objs[i:i + 5000] for i in range(0, 20000, 5000)]
    b = baseline(api, agent, p, chunks)
    assert (b["status"], b["object_count"]) == ("active", 20000)
    now = list(objs)
    for i in range(0, 1000, 100):      # 10 changed contents
        now[i] = dict(now[i], sha256=SHA_B)
    removed = {now[i]["path"] for i in range(19995, 20000)}
    now = now[:19995]                  # 5 removed
    now += [obj(p, "/usr/share/new-%d" % i) for i in range(5)]  # 5 added
    result = scan(api, agent, [now[i:i + 5000] for i in range(0, len(now), 5000)])
    assert result["status"] == "completed_with_errors"
    assert (result["critical_findings_count"], result["non_critical_findings_count"],
            result["ok_findings_count"]) == (20, 0, 19985)
    kinds = {}
    for f in result["findings"]:
        kinds.setdefault(f["change"], set()).add(f["file"])
    assert kinds["removed"] == removed
    assert len(kinds["changed"]) == 10 and len(kinds["added"]) == 5


# -- the real agent -----------------------------------------------------------------------
def _agent_has_fim() -> bool:
    try:
        import haloagent.fim  # noqa: F401  (built beside this grid side)
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _agent_has_fim(), reason="haloagent.fim is not there yet")
def test_real_agent_baseline_scan_tamper_rebaseline(grid, api, tmp_path):
    from halodev.launchers import AgentProcess

    root = tmp_path / "root"
    (root / "etc" / "app").mkdir(parents=True)
    (root / "etc" / "app" / "app.conf").write_text("listen = 8080\n")
    (root / "etc" / "app" / "users").write_text("alice\n")
    p = fim_policy(api, [{"target": "/etc/app", "recurse": True, "critical": True}])
    tag = unique("fimreal")
    api.create_group(unique("fimreal"), tag=tag, fim_policy_ids=[p["id"]])
    with AgentProcess(grid.url, grid.agent_key, root=root, state_dir=tmp_path / "agent",
                      tag=tag, poll_wait=5) as agent:
        sid = agent.wait_registered(api)["id"]
        b = api.ok("POST", "/v1/fim_policies/%s/baselines" % p["id"],
                   {"baseline": {"server_id": sid}})["baseline"]
        url = "/v1/fim_policies/%s/baselines/%s" % (p["id"], b["id"])
        wait_for(agent.log, lambda: api.ok("GET", url)["baseline"]["status"] != "pending", 60, 0.2)
        b = api.ok("GET", url)["baseline"]
        assert b["status"] == "active", (b, agent.log())
        assert b["object_count"] >= 3  # the directory and its two files

        def real_scan():
            cmd = api.scan(sid, "fim")
            done = api.wait_command(sid, cmd["id"], timeout=60)
            assert done["status"] == "completed", (done, agent.log())
            return api.ok("GET", "/v1/scans/%s" % cmd["scan_id"])["scan"]

        clean = real_scan()
        assert clean["status"] == "completed_clean", clean
        assert clean["ok_findings_count"] == b["object_count"]
        conf = root / "etc" / "app" / "app.conf"
        old_sha = hashlib.sha256(conf.read_bytes()).hexdigest()
        conf.write_text("listen = 0.0.0.0:8080\n")
        os.utime(conf)
        dirty = real_scan()
        assert dirty["status"] == "completed_with_errors"
        [finding] = [f for f in dirty["findings"] if f["file"] == "/etc/app/app.conf"]
        assert finding["critical"] is True and finding["change"] == "changed"
        sha = [d for d in finding["details"] if d["field"] == "sha256"]
        assert sha == [{"field": "sha256", "baseline": old_sha,
                        "current": hashlib.sha256(conf.read_bytes()).hexdigest()}]
        api.ok("PUT", url, {"baseline": {"server_id": sid}})
        wait_for(agent.log, lambda: api.ok("GET", url)["baseline"]["status"] != "pending", 60, 0.2)
        assert api.ok("GET", url)["baseline"]["status"] == "active"
        assert real_scan()["status"] == "completed_clean"
