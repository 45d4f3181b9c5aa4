"""The agent side (PROTOCOL.md): register, long-poll wake-up, commands, firewall, missing."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import requests

from gridhelpers import Agent, register, unique, wait_for
from halodev.launchers import GridProcess


def test_register_needs_the_daemon_key(grid):
    body = {"hostname": "h"}
    assert requests.post(grid.url + "/agent/v1/register", json=body).status_code == 401
    r = requests.post(grid.url + "/agent/v1/register", json=body,
                      headers={"X-Daemon-Key": "0" * 32})
    assert r.status_code == 401 and "error" in r.json()
    r = requests.post(grid.url + "/agent/v1/register", data=b"{x",
                      headers={"X-Daemon-Key": grid.agent_key})
    assert r.status_code == 400
    r = requests.post(grid.url + "/agent/v1/register", json={"hostname": 5},
                      headers={"X-Daemon-Key": grid.agent_key})
    assert r.status_code == 400


def _register_raw(grid, **facts):
    body = dict({"hostname": unique("ipcheck")}, **facts)
    return requests.post(grid.url + "/agent/v1/register", json=body,
                         headers={"X-Daemon-Key": grid.agent_key})


@pytest.mark.parametrize("bad", ["not-an-ip", "0.0.0.0/0", "198.18.0.0/24", "0.0.0.0", "::",
                                 "224.0.0.1", "255.255.255.255", "fe80::1%eth0", " 198.18.0.1",
                                 "198.18.0.300", 7])
def test_register_refuses_what_is_not_one_host_address(grid, api, bad):
    """An address lands in other servers' firewalls (group sources): anything but one host's
    address there breaks their ruleset or matches everybody."""
    for facts in ({"primary_ip_address": bad}, {"interfaces": [{"name": "eth0", "ip": bad}]}):
        r = _register_raw(grid, **facts)
        assert r.status_code == 400, (facts, r.text)
        assert "ip" in r.json()["error"]
    hostnames = {s["hostname"] for s in api.servers(per_page=100)}
    assert not any(h.startswith("ipcheck") for h in hostnames)  # nothing half-stored


def test_register_keeps_valid_addresses_in_canonical_form(grid, api):
    r = _register_raw(grid, primary_ip_address="2001:DB8:0:0::7",
                      interfaces=[{"name": "eth0", "ip": "198.18.0.7"},
                                  {"name": "eth1", "ip": "2001:db8::7"}, {"name": "tun0"}])
    assert r.status_code == 201, r.text
    s = api.ok("GET", "/v1/servers/%s" % r.json()["server_id"])["server"]
    assert s["primary_ip_address"] == "2001:db8::7"
    assert s["interfaces"] == [{"name": "eth0", "ip": "198.18.0.7"},
                               {"name": "eth1", "ip": "2001:db8::7"}, {"name": "tun0", "ip": ""}]
    # no primary address: the grid uses the address the agent connects from
    r = _register_raw(grid, primary_ip_address="")
    assert r.status_code == 201


def test_group_sources_hold_only_host_addresses():
    """Rows stored before registration checked addresses must not reach a firewall."""
    from halogrid import resolved_firewall
    from halogrid.models import Server

    def ips(primary, connecting="198.18.0.9"):
        return resolved_firewall.server_ips(
            Server(primary_ip_address=primary, connecting_ip_address=connecting))

    assert ips("198.18.0.11") == ["198.18.0.11"]
    for bad in ("not-an-ip", "0.0.0.0/0", "0.0.0.0", "::", "198.18.0.0/24", None, ""):
        assert ips(bad) == ["198.18.0.9"], bad
    assert ips("not-an-ip", connecting="0.0.0.0/0") == []
    assert ips("2001:DB8::1") == ["2001:db8::1"]


def test_registrations_are_throttled_per_client_address(tmp_path):
    """The daemon key is shared by the whole fleet: one address cannot register without end."""
    with GridProcess(tmp_path, rate_limit=0, register_limit=3) as g:
        for _ in range(3):
            assert _register_raw(g).status_code == 201
        r = _register_raw(g)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert "error" in r.json()
        api = g.api()
        assert len(api.servers(per_page=100)) == 3  # the refused one was not stored
    # only accepted registrations count: a refused body does not use up the allowance
    with GridProcess(tmp_path / "b", rate_limit=0, register_limit=1) as g:
        assert _register_raw(g, primary_ip_address="not-an-ip").status_code == 400
        assert _register_raw(g).status_code == 201
        assert _register_raw(g).status_code == 429


def test_a_duplicate_hostname_or_label_of_a_live_server_is_an_event(api, grid):
    name = unique("twin")
    first = register(grid, hostname=name)
    assert _events(api, first.server_id) == ["server_registered"]
    second = register(grid, hostname=name, server_label=unique("other-label"))
    assert _events(api, second.server_id) == ["server_registered", "server_duplicate"]
    [event] = [e for e in api.ok("GET", "/v1/events", params={"server_id": second.server_id})["events"]
               if e["type"] == "server_duplicate"]
    assert first.server_id in event["message"] and event["critical"] is True
    label_twin = register(grid, hostname=unique("t"), server_label=name)  # first's label
    assert _events(api, label_twin.server_id) == ["server_registered", "server_duplicate"]
    # a retired server's name is free again
    lone = unique("lone")
    old = register(grid, hostname=lone)
    api.put("/v1/servers/%s" % old.server_id, {"server": {"retire": True}})
    assert _events(api, register(grid, hostname=lone).server_id) == ["server_registered"]


def _events(api, server_id):
    events = api.ok("GET", "/v1/events", params={"server_id": server_id, "per_page": 100,
                                                 "sort_by": "created_at.asc"})["events"]
    return [e["type"] for e in events]


def test_daemon_key_cannot_use_the_api(grid):
    r = requests.get(grid.url + "/v1/servers", headers={"Authorization": "Bearer " + grid.agent_key})
    assert r.status_code == 401


def test_register_joins_group_by_exact_tag(api, grid):
    tag = unique("NewDirty")
    g = api.create_group(unique("dirty"), tag=tag)
    assert register(grid, tag=tag).group_id == g["id"]
    default = [x for x in api.ok("GET", "/v1/groups", params={"per_page": 100})["groups"]
               if x["name"] == "Unassigned"][0]
    assert register(grid, tag=tag.lower()).group_id == default["id"]
    assert register(grid).group_id == default["id"]
    a = register(grid, tag=tag)
    ev = api.ok("GET", "/v1/events", params={"server_id": a.server_id})["events"]
    assert [e["type"] for e in ev] == ["server_registered"]


def test_agent_credential_checks(grid):
    a = register(grid)
    bad = Agent(grid.url, a.server_id, "wrong", a.group_id)
    assert bad.poll().status_code == 401
    assert requests.get(grid.url + "/agent/v1/poll").status_code == 401
    other = register(grid)
    # a's credential cannot touch b's commands
    r = a.post("/agent/v1/commands/%s/start" % ("0" * 32))
    assert r.status_code == 404
    assert other.poll().status_code == 200


def _command_status(api, agent, cmd):
    return api.ok("GET", "/v1/servers/%s/commands/%s" % (agent.server_id, cmd["id"])
                  )["command"]["status"]


def test_long_poll_wakes_up_at_once(api, grid):
    a = register(grid)
    first = a.poll().json()
    fwv = first["firewall_version"]
    result = {}

    def waiter():
        r = a.poll(wait=20, firewall_version=fwv)
        result["answered_at"] = time.monotonic()
        result["answer"] = r.json()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)  # the poll is now waiting
    t_queue = time.monotonic()
    cmd = api.scan(a.server_id)
    t.join(10)
    assert not t.is_alive()
    assert result["answer"]["commands"][0]["id"] == cmd["id"]
    latency = result["answered_at"] - t_queue
    assert latency < 1.0, latency
    # handed out and started: written within a second (agent_logs.py)
    wait_for("the command to show pending", lambda: _command_status(api, a, cmd) == "pending")
    assert a.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    wait_for("the command to show started", lambda: _command_status(api, a, cmd) == "started")
    r = a.post("/agent/v1/commands/%s/result" % cmd["id"], {"status": "completed",
                                                           "scan": {"findings": []}})
    assert r.status_code == 204
    # a second result is refused
    assert a.post("/agent/v1/commands/%s/result" % cmd["id"],
                  {"status": "completed"}).status_code == 409


def test_poll_times_out_empty(grid):
    a = register(grid)
    fwv = a.poll().json()["firewall_version"]
    t0 = time.monotonic()
    r = a.poll(wait=1, firewall_version=fwv)
    assert r.status_code == 200
    assert r.json() == {"commands": [], "firewall_version": fwv}
    assert 0.9 <= time.monotonic() - t0 < 5
    assert a.get("/agent/v1/poll", params={"wait": "x"}).status_code == 400
    assert a.get("/agent/v1/poll", params={"firewall_version": "x"}).status_code == 400


def test_poll_hands_out_policies_of_current_group(api, grid):
    pol = api.ok("POST", "/v2/policies", {"policy": {"name": unique("agentpol"), "rules": [
        {"name": "r", "checks": [{"object_type": "file_presence", "files": ["/etc/x"],
                                  "present": True}]}]}})["policy"]
    g = api.create_group(unique("withpol"), policy_ids=[pol["id"]])
    a = register(grid)
    api.put("/v1/servers/%s" % a.server_id, {"server": {"group_id": g["id"]}})
    api.scan(a.server_id)
    ans = a.poll(wait=5).json()
    pols = ans["commands"][0]["policies"]
    assert [p["id"] for p in pols] == [pol["id"]]
    assert pols[0]["rules"][0]["checks"][0]["object_type"] == "file_presence"


def test_result_validation(api, grid):
    a = register(grid)
    cmd = api.scan(a.server_id)
    a.poll(wait=5)
    path = "/agent/v1/commands/%s/result" % cmd["id"]
    for body in ({"status": "done"}, {"status": "completed", "scan": {"findings": "x"}},
                 {"status": "completed", "scan": {"findings": [{"status": "meh"}]}},
                 {"status": "completed", "scan": {"findings": [{"status": "bad",
                                                                 "critical": "yes"}]}},
                 {"status": "completed", "scan": {"agent_started_at": "soon"}}):
        assert a.post(path, body).status_code == 400, body
    r = requests.post(grid.url + path, data=b"{", headers=a.headers)
    assert r.status_code == 400
    # indeterminate alone makes the scan completed_with_errors
    r = a.post(path, {"status": "completed", "scan": {"findings": [
        {"rule_name": "x", "critical": False, "status": "indeterminate",
         "details": [{"status": "indeterminate", "scan_status": "error", "reason": "no file"}]}]}})
    assert r.status_code == 204
    sc = api.ok("GET", "/v1/servers/%s/sca" % a.server_id)["scan"]
    assert sc["status"] == "completed_with_errors"
    assert (sc["critical_findings_count"], sc["non_critical_findings_count"],
            sc["ok_findings_count"]) == (0, 0, 0)


def test_the_grid_decides_the_scan_status_not_the_agent(api, grid):
    """An agent reports findings; a status or counts it adds to the scan are not trusted."""
    a = register(grid)
    cmd = api.scan(a.server_id)
    a.poll(wait=5)
    r = a.post("/agent/v1/commands/%s/result" % cmd["id"], {"status": "completed", "scan": {
        "status": "completed_clean", "critical_findings_count": 0, "findings": [
            {"rule_name": "root login", "critical": True, "status": "bad",
             "details": [{"status": "bad", "scan_status": "ok"}]}]}})
    assert r.status_code == 204
    sc = api.ok("GET", "/v1/servers/%s/sca" % a.server_id)["scan"]
    assert (sc["status"], sc["critical_findings_count"]) == ("completed_with_errors", 1)


def test_retired_server_gets_410(api, grid):
    a = register(grid)
    api.put("/v1/servers/%s" % a.server_id, {"server": {"retire": True}})
    r = a.poll()
    assert r.status_code == 410 and "error" in r.json()
    assert a.get("/agent/v1/firewall").status_code == 410
    # and a retired server cannot be scanned or moved
    assert api.post("/v1/servers/%s/scans" % a.server_id,
                    {"scan": {"module": "sca"}}).status_code == 422


def test_retire_wakes_a_waiting_poll(api, grid):
    a = register(grid)
    fwv = a.poll().json()["firewall_version"]
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", a.poll(wait=20, firewall_version=fwv)))
    t.start()
    time.sleep(0.5)
    api.put("/v1/servers/%s" % a.server_id, {"server": {"retire": True}})
    t.join(10)
    assert out["r"].status_code == 410


def test_firewall_resolution_and_versions(api, grid):
    web_tag, db_tag = unique("web"), unique("db")
    web = api.create_group(unique("webg"), tag=web_tag)
    dbg = api.create_group(unique("dbg"), tag=db_tag)
    w1 = register(grid, tag=web_tag, ip="198.18.0.11")
    d1 = register(grid, tag=db_tag, ip="198.18.0.21")
    empty = d1.get("/agent/v1/firewall").json()
    assert empty["policy"] is None
    v0 = empty["version"]

    svc = api.ok("POST", "/v1/firewall_services", {"firewall_service": {
        "name": unique("pg"), "protocol": "TCP", "port": "5432"}})["firewall_service"]
    zone = api.ok("POST", "/v1/firewall_zones", {"firewall_zone": {
        "name": unique("office"), "ip_address": "198.18.1.0/24, 198.18.2.5"}})["firewall_zone"]
    fp = api.ok("POST", "/v1/firewall_policies", {"firewall_policy": {
        "name": unique("dbfw"), "platform": "linux"}})["firewall_policy"]
    rules = "/v1/firewall_policies/%s/firewall_rules" % fp["id"]
    r1 = api.ok("POST", rules, {"firewall_rule": {
        "chain": "INPUT", "action": "ACCEPT", "active": True,
        "firewall_source": {"id": web["id"], "type": "Group"}, "firewall_service": svc["id"],
        "connection_states": "NEW, ESTABLISHED"}})["firewall_rule"]
    api.ok("POST", rules, {"firewall_rule": {"chain": "INPUT", "action": "ACCEPT",
                                             "firewall_source": {"id": zone["id"]},
                                             "firewall_service": {"port": "22",
                                                                  "protocol": "tcp"}}})
    api.ok("POST", rules, {"firewall_rule": {"chain": "INPUT", "action": "DROP",
                                             "firewall_source": None, "log": True}})
    assert api.ok("GET", rules)["count"] == 3

    # attach to the db group: d1's answer changes, the poll wakes up
    fwv = d1.poll().json()["firewall_version"]
    assert fwv == v0
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", d1.poll(wait=20, firewall_version=fwv)))
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    api.put("/v1/groups/%s" % dbg["id"], {"group": {"linux_firewall_policy_id": fp["id"]}})
    t.join(10)
    assert time.monotonic() - t0 < 1.0
    v1 = out["r"].json()["firewall_version"]
    assert v1 != fwv and out["r"].json()["commands"] == []

    ans = d1.get("/agent/v1/firewall").json()
    assert ans["version"] == v1
    pr = ans["policy"]["rules"]
    assert [r["position"] for r in pr] == [1, 2, 3]
    assert pr[0]["source"] == {"type": "Group", "id": web["id"], "name": web["name"],
                               "ips": ["198.18.0.11"]}
    assert pr[0]["service"]["port"] == "5432" and pr[0]["service"]["protocol"] == "TCP"
    assert pr[0]["connection_states"] == "NEW, ESTABLISHED"
    assert pr[1]["source"]["ips"] == ["198.18.1.0/24", "198.18.2.5"]
    assert pr[1]["service"] == {"port": "22", "protocol": "TCP"}
    assert pr[2]["source"] is None and pr[2]["action"] == "DROP" and pr[2]["log"] is True

    # membership of the source group changes -> version changes
    w2 = register(grid, tag=web_tag, ip="198.18.0.12")
    ans2 = d1.get("/agent/v1/firewall").json()
    assert ans2["version"] != v1
    assert ans2["policy"]["rules"][0]["source"]["ips"] == ["198.18.0.11", "198.18.0.12"]
    # nothing changed -> same version
    assert d1.get("/agent/v1/firewall").json()["version"] == ans2["version"]
    # a rule edit -> new version; a move out of the source group -> new version
    api.put(rules + "/" + r1["id"], {"firewall_rule": {"position": 3}})
    ans3 = d1.get("/agent/v1/firewall").json()
    assert ans3["version"] != ans2["version"]
    assert ans3["policy"]["rules"][2]["id"] == r1["id"]
    api.put("/v1/servers/%s" % w2.server_id, {"server": {"group_id": dbg["id"]}})
    ans4 = d1.get("/agent/v1/firewall").json()
    assert ans4["version"] != ans3["version"]
    assert ans4["policy"]["rules"][2]["source"]["ips"] == ["198.18.0.11"]

    # status report shows in the API
    s = api.ok("GET", "/v1/servers/%s" % d1.server_id)["server"]
    assert s["firewall_policy"]["id"] == fp["id"] and s["firewall_policy"]["status"] == "pending"
    r = d1.post("/agent/v1/firewall/status", {"version": ans4["version"], "status": "applied",
                                              "message": "ok"})
    assert r.status_code == 204
    # written within a second (agent_logs.py)
    s = wait_for("the status to show applied", lambda: (lambda srv: srv if srv[
        "firewall_policy"]["status"] == "applied" else None)(
        api.ok("GET", "/v1/servers/%s" % d1.server_id)["server"]))
    assert s["firewall_policy"] == {"id": fp["id"], "name": fp["name"], "status": "applied",
                                    "url": api.url + "/v1/firewall_policies/" + fp["id"],
                                    "message": None}
    assert d1.post("/agent/v1/firewall/status", {"version": "x", "status": "applied"}
                   ).status_code == 400
    # the web server has no policy
    assert api.ok("GET", "/v1/servers/%s" % w1.server_id)["server"]["firewall_policy"] is None
    # in-use objects cannot be deleted
    assert api.delete("/v1/firewall_policies/%s" % fp["id"]).status_code == 422
    assert api.delete("/v1/firewall_zones/%s" % zone["id"]).status_code == 422
    assert api.delete("/v1/firewall_services/%s" % svc["id"]).status_code == 422
    full = api.ok("GET", "/v1/firewall_policies/%s" % fp["id"])["firewall_policy"]
    assert len(full["firewall_rules"]) == 3
    assert full["firewall_rules"][0]["firewall_source"]["type"] in ("FirewallZone", "Group")


def test_firewall_rule_validation(api):
    fp = api.ok("POST", "/v1/firewall_policies", {"firewall_policy": {
        "name": unique("fwv")}})["firewall_policy"]
    rules = "/v1/firewall_policies/%s/firewall_rules" % fp["id"]
    for body in ({"firewall_rule": {"chain": "SIDEWAYS"}},
                 {"firewall_rule": {"action": "MAYBE"}},
                 {"firewall_rule": {"firewall_source": {"id": "f" * 32, "type": "Group"}}},
                 {"firewall_rule": {"firewall_service": "f" * 32}},
                 {"firewall_rule": {"position": 0}},
                 {"firewall_rule": {"firewall_source": 7}}):
        assert api.post(rules, body).status_code == 422, body
    assert api.post(rules, {"rule": {}}).status_code == 400
    assert api.post("/v1/firewall_zones", {"firewall_zone": {"name": unique("z"),
                                                             "ip_address": "not-an-ip"}}
                    ).status_code == 422
    src = api.create_group(unique("srcg"))
    r = api.post(rules, {"firewall_rule": {"chain": "OUTPUT", "action": "REJECT",
                                           "firewall_source": src["id"]}})
    assert r.status_code == 201
    assert r.json()["firewall_rule"]["firewall_source"]["type"] == "Group"
    assert api.delete("/v1/groups/%s" % src["id"]).status_code == 422
    rid = r.json()["firewall_rule"]["id"]
    assert api.delete(rules + "/" + rid).status_code == 204
    assert api.get(rules + "/" + rid).status_code == 404
    assert api.delete("/v1/groups/%s" % src["id"]).status_code == 204
    assert api.delete("/v1/firewall_policies/%s" % fp["id"]).status_code == 204


def test_missing_then_active_again(tmp_path):
    with GridProcess(tmp_path, missing_after=1, rate_limit=0) as g:
        api = g.api()
        a = register(g)
        wait_for("the server to go missing", lambda: api.ok(
            "GET", "/v1/servers/%s" % a.server_id)["server"]["state"] == "missing", 10, 0.2)
        assert api.ok("GET", "/v1/servers", params={"state": "missing"})["count"] == 1
        assert api.ok("GET", "/v1/servers")["count"] == 0
        assert a.poll().status_code == 200
        s = api.ok("GET", "/v1/servers/%s" % a.server_id)["server"]
        assert s["state"] == "active"
        types = [e["type"] for e in api.ok("GET", "/v1/events", params={
            "server_id": a.server_id})["events"]]
        assert types == ["server_registered", "server_missing", "server_reactivated"]
        # a server in a long poll is never marked missing
        fwv = a.poll().json()["firewall_version"]
        r = a.poll(wait=3, firewall_version=fwv)
        assert r.status_code == 200
        assert api.ok("GET", "/v1/servers/%s" % a.server_id)["server"]["state"] == "active"


def test_a_command_the_agent_never_started_is_handed_out_again_on_its_next_poll(api, grid):
    """The answer that carried it may never have reached the agent (a grid restart)."""
    a = register(grid)
    cmd = api.scan(a.server_id)
    assert a.poll(wait=5).json()["commands"][0]["id"] == cmd["id"]
    assert a.poll(wait=0).json()["commands"][0]["id"] == cmd["id"]
    # once started, it is the agent's: never handed out again
    assert a.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    assert a.poll(wait=0).json()["commands"] == []


def test_dist_pyz_runs(grid, tmp_path):
    r = requests.get(grid.url + "/agent/v1/dist/haloagent.pyz")
    assert r.status_code == 200
    pyz = tmp_path / "haloagent.pyz"
    pyz.write_bytes(r.content)
    assert r.content[:2] == b"#!"
    out = subprocess.run([sys.executable, str(pyz), "--version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "haloagent" in out.stdout + out.stderr
