"""Generated requests from the grid's own OpenAPI document: no operation answers 5xx.

schemathesis reads `/openapi.json` of a real grid and, for every operation, sends a bounded,
reproducible set of requests (`derandomize`) with a real API token, or the agent credential
for the agent protocol. Half of the path ids are replaced by ids of objects that exist, so
the generated bodies reach the routes' own checks and the database, not only the 404s.
Public API answers must also match the response schemas the document publishes.
"""
from __future__ import annotations

import zlib

import pytest
import requests

import schemathesis  # requirements-dev.txt / grid[test]: make test must not skip this
from hypothesis import HealthCheck, Phase, given, settings  # schemathesis brings hypothesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from gridhelpers import register, run_scan, unique

MAX_EXAMPLES = 20


@pytest.fixture(scope="module")
def grid_schema(grid):
    return schemathesis.openapi.from_url(grid.url + "/openapi.json")


@pytest.fixture(scope="module")
def known(grid, api):
    """Objects that exist, by path parameter name, and the credentials to use."""
    # one agent is the caller of the agent protocol, the other the target of /v1/servers:
    # generated requests may retire or delete the target without locking the caller out
    caller = register(grid)
    target = register(grid)
    cmd, _answer = run_scan(api, target, [{"rule_name": "r", "policy_id": "p",
                                           "critical": True, "status": "bad", "details": []}])
    scan = api.ok("GET", "/v1/scans", params={"server_id": target.server_id})["scans"][0]
    finding = api.ok("GET", "/v1/scans/%s" % scan["id"])["scan"]["findings"][0]
    group = api.create_group(unique("st"), tag=unique("st"))
    policy = api.ok("POST", "/v2/policies", {"policy": {"name": unique("st"), "rules": []}})
    fw = api.ok("POST", "/v1/firewall_policies", {"firewall_policy": {"name": unique("st")}})
    fwid = fw["firewall_policy"]["id"]
    rule = api.ok("POST", "/v1/firewall_policies/%s/firewall_rules" % fwid,
                  {"firewall_rule": {"action": "ACCEPT"}})
    zone = api.ok("POST", "/v1/firewall_zones", {"firewall_zone": {
        "name": unique("st"), "ip_address": "198.18.0.0/24"}})
    svc = api.ok("POST", "/v1/firewall_services", {"firewall_service": {
        "name": unique("st"), "port": "22"}})
    fim = api.ok("POST", "/v1/fim_policies", {"fim_policy": {
        "name": unique("st"), "rules": [{"target": "/etc/hosts"}]}})["fim_policy"]
    baseline = api.ok("POST", "/v1/fim_policies/%s/baselines" % fim["id"],
                      {"baseline": {"server_id": target.server_id}})["baseline"]
    event = api.ok("GET", "/v1/events", params={"per_page": 1})["events"][0]
    api.authenticate()
    return {
        "ids": {"group_id": group["id"], "server_id": target.server_id,
                "command_id": cmd["id"], "scan_id": scan["id"], "finding_id": finding["id"],
                "rule_id": rule["firewall_rule"]["id"], "zone_id": zone["firewall_zone"]["id"],
                "service_id": svc["firewall_service"]["id"], "event_id": event["id"],
                "baseline_id": baseline["id"]},
        "policy_ids": {"firewall": fwid, "config": policy["policy"]["id"],
                       "fim": fim["id"]},
        "api_headers": {"Authorization": "Bearer %s" % api.token},
        "agent_headers": {"Authorization": "Agent %s:%s" % (caller.server_id, caller.secret),
                          "X-Daemon-Key": grid.agent_key},
        "agent_command": cmd["id"],
    }


def _pick(generated, real):
    """Deterministically the real id for about half of the generated values."""
    return real if zlib.crc32(repr(generated).encode()) % 2 == 0 else generated


def _endpoints():
    """The operations to test, from grid/API.md's list (test_server_contract.py checks it is
    the document's): one pytest test each, named by method and path."""
    from test_server_contract import documented_endpoints
    # deletes last: the objects the other operations are pointed at must still exist
    return sorted(documented_endpoints(), key=lambda e: (e[0] == "DELETE", e[1], e[0]))


def _prepare(case, known):
    path = case.path
    params = dict(case.path_parameters or {})
    for name, value in params.items():
        if name == "policy_id":
            kind = ("firewall" if path.startswith("/v1/firewall") else
                    "fim" if path.startswith("/v1/fim") or "/baselines" in path else "config")
            params[name] = _pick(value, known["policy_ids"][kind])
        elif name in known["ids"]:
            params[name] = _pick(value, known["ids"][name])
    case.path_parameters = params
    if path == "/agent/v1/poll":
        case.query = {"wait": "0"}  # a long poll would only make the run slow


# (schemathesis' own pytest loader, from_fixture, does not run on pytest 9: the operations
# are driven with hypothesis here, from the document the running grid publishes)
@pytest.mark.parametrize("method, path", _endpoints(),
                         ids=["%s %s" % endpoint for endpoint in _endpoints()])
def test_no_server_errors(method, path, grid, grid_schema, known):
    operation = grid_schema[path][method]
    agent = path.startswith("/agent/")
    headers = known["agent_headers"] if agent else known["api_headers"]
    # every operation, the agent protocol's and OAuth's included: their answers have models
    # in the document too (agent_schemas.py)
    checks = [not_a_server_error, response_schema_conformance]

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case):
        _prepare(case, known)
        response = case.call(base_url=grid.url, headers=headers, timeout=30)
        case.validate_response(response, checks=checks, headers=headers)

    run()


def test_the_document_covers_both_credentials(grid):
    """The run above means something only if it reaches both kinds of endpoint."""
    paths = requests.get(grid.url + "/openapi.json", timeout=30).json()["paths"]
    assert any(p.startswith("/agent/v1/") for p in paths)
    assert sum(p.startswith(("/v1/", "/v2/")) for p in paths) >= 20


def test_every_json_answer_has_a_schema(grid):
    """response_schema_conformance accepts anything against an empty schema: every JSON
    answer the document names, the agent protocol's and OAuth's included, has a real one.
    (Before: poll, firewall, ping and the agent download were documented as `{}`.)"""
    paths = requests.get(grid.url + "/openapi.json", timeout=30).json()["paths"]
    empty = [(method.upper(), path, code)
             for path, ops in paths.items() for method, op in ops.items()
             for code, answer in op["responses"].items()
             for media, content in (answer.get("content") or {}).items()
             if media == "application/json" and not content.get("schema")]
    # the grid's liveness answer belongs to neither contract
    assert empty == [("GET", "/healthz", "200")]
