"""SDK conformance: the official `cloudpassage` SDK, unchanged, drives the grid over TLS.

The SDK only talks to `*.cloudpassage.com`; this test process replaces that one check
(`cloudpassage.sanity.validate_api_hostname`) and points the SDK at 127.0.0.1 with a
self-signed certificate it trusts through `requests_ca_bundle`.
"""
from __future__ import annotations

import json
import time

import pytest

from gridhelpers import register
from halodev.launchers import GridProcess, make_self_signed_cert

cloudpassage = pytest.importorskip("cloudpassage")


@pytest.fixture(scope="module")
def tls_grid(tmp_path_factory):
    d = tmp_path_factory.mktemp("tlsgrid")
    cert, key = make_self_signed_cert(d / "tls")
    with GridProcess(d, certfile=cert, keyfile=key, rate_limit=0, token_ttl=3) as g:
        g.cert = cert
        yield g


@pytest.fixture
def session(tls_grid, monkeypatch):
    monkeypatch.setattr(cloudpassage.sanity, "validate_api_hostname", lambda host: True)
    # requests lets these variables override a session's own CA bundle
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    key_id, secret = tls_grid.create_api_key()
    s = cloudpassage.HaloSession(key_id, secret, api_host="127.0.0.1",
                                 api_port=tls_grid.port, requests_ca_bundle=tls_grid.cert,
                                 integration_string="halogrid-tests")
    return s


def test_authenticate_and_scope(session, tls_grid, monkeypatch):
    assert session.authenticate_client() is True
    assert session.auth_scope == "read+write"
    key_id, secret = tls_grid.create_api_key(read_only=True)
    ro = cloudpassage.HaloSession(key_id, secret, api_host="127.0.0.1", api_port=tls_grid.port,
                                  requests_ca_bundle=tls_grid.cert)
    ro.authenticate_client()
    assert ro.auth_scope == "read"
    with pytest.raises(cloudpassage.CloudPassageAuthorization):
        cloudpassage.ServerGroup(ro).create("ro-cannot")
    bad = cloudpassage.HaloSession("nokey", "nosecret", api_host="127.0.0.1",
                                   api_port=tls_grid.port, requests_ca_bundle=tls_grid.cert)
    with pytest.raises(cloudpassage.CloudPassageAuthentication):
        bad.authenticate_client()


def test_groups_servers_scans(session, tls_grid):
    groups = cloudpassage.ServerGroup(session)
    servers = cloudpassage.Server(session)
    scans = cloudpassage.Scan(session)
    policies = cloudpassage.ConfigurationPolicy(session)

    pol_id = policies.create(json.dumps({"policy": {
        "name": "SDK policy", "platform": "linux",
        "rules": [{"name": "root login", "critical": True, "active": True,
                   "checks": [{"object_type": "configuration_file_setting",
                               "config_file_path": "/etc/ssh/sshd_config",
                               "config_item": "PermitRootLogin", "desired_value": "no"}]}]}}))
    assert pol_id in [p["id"] for p in policies.list_all()]
    assert policies.describe(pol_id)["name"] == "SDK policy"
    policies.update({"policy": {"id": pol_id, "description": "via sdk"}})
    assert policies.describe(pol_id)["description"] == "via sdk"

    dirty = groups.create("SdkDirty", tag="SdkDirty", policy_ids=[pol_id])
    prod = groups.create("SdkProd")
    assert groups.describe(dirty)["tag"] == "SdkDirty"
    assert {dirty, prod} <= {g["id"] for g in groups.list_all()}
    groups.update(prod, description="production")
    assert groups.describe(prod)["description"] == "production"

    agent = register(tls_grid, tag="SdkDirty", verify=tls_grid.cert)
    members = groups.list_members(dirty)
    assert [m["id"] for m in members] == [agent.server_id]
    listed = servers.list_all(group_id=dirty)
    assert [s["id"] for s in listed] == [agent.server_id]
    assert servers.describe(agent.server_id)["group_name"] == "SdkDirty"

    cmd = scans.initiate_scan(agent.server_id, "csm")
    assert cmd["status"] == "queued"
    ans = agent.poll(wait=5).json()
    assert ans["commands"][0]["policies"][0]["id"] == pol_id
    agent.post("/agent/v1/commands/%s/start" % cmd["id"])
    agent.post("/agent/v1/commands/%s/result" % cmd["id"], {"status": "completed", "scan": {
        "module": "sca", "findings": [{"rule_name": "root login", "policy_id": pol_id,
                                       "critical": True, "status": "good", "details": []}]}})
    assert servers.command_details(agent.server_id, cmd["id"])["status"] == "completed"
    latest = scans.last_scan_results(agent.server_id, "sca")
    assert latest["scan"]["status"] == "completed_clean"
    assert latest["scan"]["ok_findings_count"] == 1
    hist = scans.scan_history(server_id=agent.server_id, module="sca",
                              status=["completed_clean", "completed_with_errors"])
    assert [h["id"] for h in hist] == [latest["scan"]["id"]]
    detail = scans.scan_details(latest["scan"]["id"])
    fid = detail["findings"][0]["id"]
    assert scans.findings(latest["scan"]["id"], fid)["rule_name"] == "root login"

    # admit: move to prod, as CloudPassage's scan-and-move script does
    assert servers.assign_group(agent.server_id, prod) is True
    assert servers.describe(agent.server_id)["group_id"] == prod
    assert groups.migrate_servers(dirty, [agent.server_id]) == [agent.server_id]

    events = cloudpassage.Event(session).list_all(5, server_id=agent.server_id)
    assert "server_registered" in {e["type"] for e in events}

    with pytest.raises(cloudpassage.CloudPassageResourceExistence):
        servers.describe("f" * 32)
    with pytest.raises(cloudpassage.CloudPassageValidation):
        groups.create("SdkDirty")  # duplicate name -> 422

    assert servers.retire(agent.server_id) is True
    assert servers.list_all(state="deactivated")[0]["id"] == agent.server_id
    assert servers.delete(agent.server_id) is True
    groups.delete(prod, force=True)
    groups.delete(dirty)
    policies.delete(pol_id)


def test_firewall_objects(session):
    fw_policies = cloudpassage.FirewallPolicy(session)
    fw_rules = cloudpassage.FirewallRule(session)
    fw_zones = cloudpassage.FirewallZone(session)
    fw_services = cloudpassage.FirewallService(session)
    groups = cloudpassage.ServerGroup(session)

    zone = fw_zones.create({"firewall_zone": {"name": "sdk-office",
                                              "ip_address": "198.18.5.0/24"}})
    svc = fw_services.create({"firewall_service": {"name": "sdk-ssh", "protocol": "TCP",
                                                   "port": "22"}})
    pol = fw_policies.create({"firewall_policy": {"name": "sdk-fw", "platform": "linux"}})
    web = groups.create("SdkWeb")
    r1 = fw_rules.create(pol, {"firewall_rule": {"chain": "INPUT", "action": "ACCEPT",
                                                 "active": True, "firewall_source":
                                                 {"id": web, "type": "Group"},
                                                 "firewall_service": svc,
                                                 "connection_states": "NEW, ESTABLISHED"}})
    r2 = fw_rules.create(pol, {"firewall_rule": {"chain": "INPUT", "action": "DROP",
                                                 "firewall_source": {"id": zone,
                                                                     "type": "FirewallZone"},
                                                 "position": 1}})
    listed = fw_rules.list_all(pol)
    assert [r["id"] for r in listed] == [r2, r1]
    assert fw_rules.describe(pol, r1)["firewall_source"]["name"] == "SdkWeb"
    fw_rules.update(pol, r1, {"firewall_rule": {"action": "REJECT"}})
    assert fw_rules.describe(pol, r1)["action"] == "REJECT"
    assert fw_policies.describe(pol)["name"] == "sdk-fw"
    assert pol in [p["id"] for p in fw_policies.list_all()]
    assert zone in [z["id"] for z in fw_zones.list_all()]
    assert svc in [s["id"] for s in fw_services.list_all()]
    groups.update(web, linux_firewall_policy_id=pol)
    assert groups.describe(web)["linux_firewall_policy_id"] == pol
    groups.update(web, linux_firewall_policy_id=None)
    fw_rules.delete(pol, r1)
    fw_rules.delete(pol, r2)
    fw_policies.delete(pol)
    fw_zones.delete(zone)
    fw_services.delete(svc)
    groups.delete(web)


def test_fim_policy_baseline_and_scan(session, tls_grid):
    """FimPolicy, FimBaseline and a fim scan through the SDK; the (fake) agent uploads the
    inventory in the protocol's chunks."""
    import hashlib

    fim_policies = cloudpassage.FimPolicy(session)
    baselines = cloudpassage.FimBaseline(session)
    groups = cloudpassage.ServerGroup(session)
    scans = cloudpassage.Scan(session)

    pol_id = fim_policies.create({"policy": {
        "name": "SDK fim", "module": "fim", "platform": "linux", "description": "etc",
        "rules": [{"target": "/etc/passwd", "critical": True, "recurse": False},
                  {"target": "/etc/ssh", "recurse": True, "exclusions": "*.bak"}]}})
    assert pol_id in [p["id"] for p in fim_policies.list_all()]
    described = fim_policies.describe(pol_id)
    assert described["module"] == "fim" and described["name"] == "SDK fim"
    rules = described["rules"]
    group = groups.create("SdkFim", tag="SdkFim", linux_fim_policy_ids=[pol_id])
    assert groups.describe(group)["fim_policy_ids"] == [pol_id]
    agent = register(tls_grid, tag="SdkFim", verify=tls_grid.cert)

    def answer(purpose, objects):
        ans = agent.poll(wait=5).json()
        [cmd] = [c for c in ans["commands"] if c["name"] == "fim"]
        assert cmd["purpose"] == purpose and cmd["fim_policies"][0]["id"] == pol_id
        agent.post("/agent/v1/commands/%s/start" % cmd["id"])
        r = agent.post("/agent/v1/commands/%s/fim_objects" % cmd["id"], {"objects": objects})
        assert r.status_code == 204, r.text
        r = agent.post("/agent/v1/commands/%s/result" % cmd["id"], {
            "status": "completed", "scan": {"module": "fim", "objects_sent": len(objects)}})
        assert r.status_code == 204, r.text

    def objects(passwd_sha):
        return [{"policy_id": pol_id, "rule_id": rules[0]["id"], "path": "/etc/passwd",
                 "type": "file", "sha256": passwd_sha, "mode": "0644", "uid": 0, "gid": 0,
                 "size": 1200, "link_target": None, "error": None},
                {"policy_id": pol_id, "rule_id": rules[1]["id"], "path": "/etc/ssh",
                 "type": "dir", "sha256": None, "mode": "0755", "uid": 0, "gid": 0,
                 "size": 4096, "link_target": None, "error": None}]

    before = hashlib.sha256(b"root:x:0:0").hexdigest()
    after = hashlib.sha256(b"root:x:0:0\nmallory:x:0:0").hexdigest()
    baseline_id = baselines.create(pol_id, agent.server_id, expire_days=10, comment="golden")
    answer("baseline", objects(before))
    assert baseline_id in [b["id"] for b in baselines.list_all(pol_id)]
    detail = baselines.describe(pol_id, baseline_id)
    assert detail["status"] == "active" and detail["object_count"] == 2
    assert {o["path"] for o in detail["objects"]} == {"/etc/passwd", "/etc/ssh"}

    cmd = scans.initiate_scan(agent.server_id, "fim")
    assert cmd["name"] == "fim" and cmd["status"] == "queued"
    answer("scan", objects(after))
    latest = scans.last_scan_results(agent.server_id, "fim")["scan"]
    assert latest["module"] == "fim" and latest["status"] == "completed_with_errors"
    assert (latest["critical_findings_count"], latest["ok_findings_count"]) == (1, 1)
    [finding] = latest["findings"]
    assert finding["file"] == "/etc/passwd" and finding["change"] == "changed"
    assert {"field": "sha256", "baseline": before, "current": after} in finding["details"]
    assert scans.findings(latest["id"], finding["id"])["file"] == "/etc/passwd"
    assert [h["id"] for h in scans.scan_history(server_id=agent.server_id, module="fim")] == [
        latest["id"]]

    baselines.update(pol_id, baseline_id, agent.server_id)  # rebaseline: pending again
    assert baselines.describe(pol_id, baseline_id)["status"] == "pending"
    answer("baseline", objects(after))
    assert baselines.describe(pol_id, baseline_id)["status"] == "active"
    scans.initiate_scan(agent.server_id, "fim")
    answer("scan", objects(after))
    assert scans.last_scan_results(agent.server_id, "fim")["scan"]["status"] == \
        "completed_clean"

    baselines.delete(pol_id, baseline_id)
    assert baselines.list_all(pol_id) == []
    groups.update(group, linux_fim_policy_ids=[])
    fim_policies.delete(pol_id)


def test_sdk_reauthenticates_after_token_expiry(session):
    groups = cloudpassage.ServerGroup(session)
    session.authenticate_client()
    first = session.auth_token
    time.sleep(3.5)  # the grid's tokens live 3 s here
    assert groups.list_all()
    assert session.auth_token != first
