"""Odd bodies and parameters never make the grid answer 500."""
from __future__ import annotations

import json

import pytest

from gridhelpers import register, unique

BODIES = [b"", b"null", b"{", b"[]", b"123", b'"x"', b"{}", b'{"x": 1}',
          b'{"%(key)s": null}', b'{"%(key)s": []}', b'{"%(key)s": "str"}',
          b'{"%(key)s": {}}',
          b'{"%(key)s": {"name": 5, "tag": [], "policy_ids": {}, "parent_id": 3,'
          b' "group_id": 7, "retire": "maybe", "module": [], "rules": {}, "chain": 1,'
          b' "action": {}, "firewall_source": [], "firewall_service": 3.5, "position": "1",'
          b' "ip_address": 4, "port": [], "protocol": 9, "platform": 1, "active": "x"}}',
          b'{"%(key)s": {"name": "\\u0000\\ud800", "description": null}}',
          b'\xff\xfe\x00garbage']
QUERIES = [{"page": "-5"}, {"per_page": "1e9"}, {"state": ",,,"}, {"since": "2024-13-45"},
           {"until": "T"}, {"sort_by": "name"}, {"group_id": "'; drop table servers; --"},
           {"status": "x"}, {"module": ""}, {"type": "%00"}]


@pytest.fixture(scope="module")
def targets(api, grid):
    pol = api.ok("POST", "/v2/policies", {"policy": {"name": unique("fz"), "rules": []}})
    fp = api.ok("POST", "/v1/firewall_policies", {"firewall_policy": {"name": unique("fz")}})
    fpid = fp["firewall_policy"]["id"]
    rule = api.ok("POST", "/v1/firewall_policies/%s/firewall_rules" % fpid,
                  {"firewall_rule": {"chain": "INPUT", "action": "ACCEPT"}})
    zone = api.ok("POST", "/v1/firewall_zones", {"firewall_zone": {
        "name": unique("fz"), "ip_address": "198.18.9.9"}})
    svc = api.ok("POST", "/v1/firewall_services", {"firewall_service": {
        "name": unique("fz"), "port": "1"}})
    grp = api.create_group(unique("fz"))
    agent = register(grid)
    return {
        ("POST", "/v1/groups"): "group",
        ("PUT", "/v1/groups/%s" % grp["id"]): "group",
        ("PUT", "/v1/servers/%s" % agent.server_id): "server",
        ("POST", "/v1/servers/%s/scans" % agent.server_id): "scan",
        ("POST", "/v2/policies"): "policy",
        ("POST", "/v1/policies"): "policy",
        ("PUT", "/v2/policies/%s" % pol["policy"]["id"]): "policy",
        ("POST", "/v1/firewall_policies"): "firewall_policy",
        ("PUT", "/v1/firewall_policies/%s" % fpid): "firewall_policy",
        ("POST", "/v1/firewall_policies/%s/firewall_rules" % fpid): "firewall_rule",
        ("PUT", "/v1/firewall_policies/%s/firewall_rules/%s"
         % (fpid, rule["firewall_rule"]["id"])): "firewall_rule",
        ("POST", "/v1/firewall_zones"): "firewall_zone",
        ("PUT", "/v1/firewall_zones/%s" % zone["firewall_zone"]["id"]): "firewall_zone",
        ("POST", "/v1/firewall_services"): "firewall_service",
        ("PUT", "/v1/firewall_services/%s" % svc["firewall_service"]["id"]): "firewall_service",
    }, agent


def test_odd_bodies(api, targets):
    endpoints, _agent = targets
    for (method, path), key in endpoints.items():
        for raw in BODIES:
            data = raw.replace(b"%(key)s", key.encode())
            r = api.request(method, path, data=data, headers={"Content-Type": "application/json"})
            assert r.status_code < 500, (method, path, data, r.status_code, r.text)
            if r.status_code >= 400:
                json.loads(r.text)  # always a JSON error body


def test_odd_queries(api):
    for path in ("/v1/groups", "/v1/servers", "/v1/scans", "/v1/events", "/v2/policies",
                 "/v1/firewall_policies"):
        for q in QUERIES:
            r = api.get(path, params=q)
            assert r.status_code in (200, 422), (path, q, r.status_code, r.text)


def test_odd_agent_bodies(grid, targets):
    _endpoints, agent = targets
    import requests
    for raw in BODIES:
        data = raw.replace(b"%(key)s", b"scan")
        for path in ("/agent/v1/register", "/agent/v1/firewall/status",
                     "/agent/v1/commands/%s/result" % ("0" * 32)):
            headers = dict(agent.headers, **{"X-Daemon-Key": grid.agent_key,
                                             "Content-Type": "application/json"})
            r = requests.post(grid.url + path, data=data, headers=headers)
            assert r.status_code < 500, (path, data, r.status_code, r.text)
    for q in ({"wait": "nan"}, {"wait": "-1"}, {"wait": "inf"}, {"firewall_version": "1.5"}):
        r = agent.get("/agent/v1/poll", params=q, timeout=40)
        assert r.status_code in (200, 400), (q, r.status_code, r.text)
