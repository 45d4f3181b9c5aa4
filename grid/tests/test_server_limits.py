"""Hostile sizes and bytes (issue 10): body limits before parsing, credentials before bodies,
bounded scan results, non-ASCII credentials, agent-credential failures per address."""
from __future__ import annotations

import contextlib
import json
import re
import socket
from typing import Dict, List, Optional, Tuple

import pytest
import requests

from gridhelpers import (PG_ADMIN_URL, Agent, fresh_pg_database, register, run_scan, unique,
                         wait_for)
from halogrid.bodylimit import API_MAX, SCAN_RESULT_MAX, SMALL_MAX
from halogrid.api import agent as agentmod
from halodev.launchers import AgentProcess, GridProcess

BIG = 17 * 1000 * 1000  # the 17 MB of the issue


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """conftest's grid, without the failed-authentication limit: these tests fail to
    authenticate on purpose, many times (test_failed_agent_credentials_... has its own)."""
    with contextlib.ExitStack() as stack:
        opts = {"rate_limit": 0, "auth_fail_limit": 0}
        if PG_ADMIN_URL:
            opts["db"] = stack.enter_context(fresh_pg_database())
        yield stack.enter_context(GridProcess(tmp_path_factory.mktemp("grid"), **opts))


def _raw(grid, method: str, path: str, headers: Dict[str, str], body: bytes = b"",
         chunks: Optional[List[bytes]] = None, raw_headers: bytes = b"",
         timeout: float = 20) -> Tuple[int, Dict[str, str], bytes]:
    """One request over a plain socket: the body may be shorter than the Content-Length it
    declares (a server that waits for the rest times out: the test fails), or chunked.
    Returns (status, headers, body)."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (grid.host, grid.port)]
    lines += ["%s: %s" % kv for kv in headers.items()]
    if chunks is not None:
        lines.append("Transfer-Encoding: chunked")
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1") + raw_headers + b"\r\n"
    with socket.create_connection((grid.host, grid.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        with contextlib.suppress(OSError):  # the server may answer and close mid-body
            for chunk in chunks or ():
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if chunks is not None:
                sock.sendall(b"0\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            part = sock.recv(65536)
            assert part, "connection closed without an answer: %r" % data
            data += part
        head_raw, rest = data.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head_raw.decode("latin-1").split("\r\n")
        hdrs = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        length = int(hdrs.get("content-length", "0"))
        while len(rest) < length:
            part = sock.recv(65536)
            if not part:
                break
            rest += part
    return int(status_line.split()[1]), hdrs, rest


def _json(body: bytes):
    return json.loads(body.decode())


# -- 1. body limits, credentials first -------------------------------------------------
def test_unauthenticated_huge_register_is_refused_without_reading_it(grid):
    """17 MB declared, a few bytes sent: the grid answers 401 at once (before: it waited for
    the whole body to parse it, then checked the daemon key)."""
    for headers in ({}, {"X-Daemon-Key": "0" * 32}):
        status, _h, body = _raw(grid, "POST", "/agent/v1/register",
                                dict(headers, **{"Content-Type": "application/json",
                                                 "Content-Length": str(BIG)}), b'{"hostname": ')
        assert status == 401 and "error" in _json(body)


def test_unauthenticated_huge_result_is_refused_without_reading_it(grid, make_agent):
    agent = make_agent()
    for auth in ({}, {"Authorization": "Agent %s:%s" % (agent.server_id, "x" * 48)}):
        for path in ("/agent/v1/commands/%s/result" % ("a" * 32), "/agent/v1/firewall/status"):
            status, _h, body = _raw(grid, "POST", path,
                                    dict(auth, **{"Content-Type": "application/json",
                                                  "Content-Length": str(BIG)}), b'{"status"')
            assert status == 401 and "error" in _json(body), (path, auth)


def test_register_body_over_the_limit_is_413_before_reading(grid):
    status, _h, body = _raw(grid, "POST", "/agent/v1/register",
                            {"X-Daemon-Key": grid.agent_key, "Content-Type": "application/json",
                             "Content-Length": str(BIG)}, b'{"hostname": ')
    assert status == 413
    assert str(SMALL_MAX) in _json(body)["error"]


def test_chunked_register_body_is_cut_off_at_the_limit(grid):
    chunk = b" " * 16384
    n = 4 * SMALL_MAX // len(chunk)
    status, _h, body = _raw(grid, "POST", "/agent/v1/register",
                            {"X-Daemon-Key": grid.agent_key, "Content-Type": "application/json"},
                            chunks=[b'{"hostname": "h"'] + [chunk] * n + [b"}"])
    assert status == 413 and "error" in _json(body)
    # a chunked body under the limit is read as usual
    status, _h, body = _raw(grid, "POST", "/agent/v1/register",
                            {"X-Daemon-Key": grid.agent_key, "Content-Type": "application/json"},
                            chunks=[b'{"hostname": "%s"' % unique("chunked").encode(), b"}"])
    assert status == 201, body


def test_oauth_and_api_bodies_are_limited(grid, api):
    status, _h, body = _raw(grid, "POST", "/oauth/access_token?grant_type=client_credentials",
                            {"Content-Length": str(BIG)}, b"x")
    # no valid Basic credential: refused before the body
    assert status == 401
    api.authenticate()
    auth = {"Authorization": "Bearer %s" % api.token, "Content-Type": "application/json"}
    status, _h, body = _raw(grid, "POST", "/v1/groups",
                            dict(auth, **{"Content-Length": str(API_MAX + 1)}), b'{"group"')
    assert status == 413 and str(API_MAX) in _json(body)["error"]
    status, _h, body = _raw(grid, "POST", "/v1/groups", auth,
                            chunks=[b'{"group": {"name": "' + b"n" * 65536] * 8 + [b'"}}'])
    assert status == 413 and "error" in _json(body)
    # the limit is the route's: a policy may be larger than a group
    r = api.post("/v2/policies", {"policy": {"name": unique("big"), "platform": "linux",
                                             "description": "d" * 60000, "rules": []}})
    assert r.status_code != 413, r.text


def test_result_limit_is_larger_than_the_small_one(grid, api, make_agent):
    agent = make_agent()
    status, _h, body = _raw(grid, "POST", "/agent/v1/commands/%s/result" % ("a" * 32),
                            dict(agent.headers, **{"Content-Type": "application/json",
                                                   "Content-Length": str(SCAN_RESULT_MAX + 1)}),
                            b"{")
    assert status == 413 and str(SCAN_RESULT_MAX) in _json(body)["error"]


# -- 2. what a scan result may hold ---------------------------------------------------------
def _open_scan(api, agent: Agent) -> str:
    cmd = api.scan(agent.server_id)
    assert agent.poll(wait=5).status_code == 200
    assert agent.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    return cmd["id"]


def _result(findings) -> dict:
    return {"status": "completed", "scan": {"module": "sca", "findings": findings}}


GOOD = {"rule_name": "r", "policy_id": "p", "critical": False, "status": "good", "details": []}


@pytest.mark.parametrize("findings", [
    [{"status": "good"}] * (agentmod.MAX_FINDINGS + 1),
    [dict(GOOD, details=[{"type": "t"}] * (agentmod.MAX_DETAILS + 1))],
    [dict(GOOD, details=[{"f%d" % i: i for i in range(agentmod.MAX_DETAIL_FIELDS + 1)}])],
    [dict(GOOD, details=[{"actual": list(range(agentmod.MAX_ITEMS + 1))}])],
    [dict(GOOD, details=[{"actual": [[[[["deep"]]]]]}])],
    [dict(GOOD, details=[{"n" * 65: 1}])],
], ids=["findings", "details", "fields", "items", "depth", "name"])
def test_a_result_beyond_the_bounds_is_refused_and_nothing_stored(grid, api, make_agent,
                                                                  findings):
    """Before: 8 MB of tiny findings were stored one by one (35 s) and read back as 47 MB."""
    agent = make_agent()
    cid = _open_scan(api, agent)
    r = agent.post("/agent/v1/commands/%s/result" % cid, _result(findings))
    assert r.status_code == 413, r.text
    assert r.json()["error"].startswith("scan result too large: ")
    # nothing stored: the agent may still answer (its start is written within a second)
    wait_for("the command to show started", lambda: api.ok(
        "GET", "/v1/servers/%s/commands/%s" % (agent.server_id, cid))["command"]["status"]
        == "started")
    r = agent.post("/agent/v1/commands/%s/result" % cid, _result([GOOD]))
    assert r.status_code == 204, r.text


def test_a_result_at_the_bounds_is_stored_and_reads_back_bounded(grid, api, make_agent):
    agent = make_agent()
    cid = _open_scan(api, agent)
    n = agentmod.MAX_FINDINGS
    findings = [{"rule_name": "r%d" % i, "status": "good"} for i in range(n)]
    r = agent.post("/agent/v1/commands/%s/result" % cid, _result(findings))
    assert r.status_code == 204, r.text
    scans = api.ok("GET", "/v1/scans", params={"server_id": agent.server_id})["scans"]
    r = api.get("/v1/scans/%s" % scans[0]["id"])
    assert r.status_code == 200
    scan = r.json()["scan"]
    assert scan["ok_findings_count"] == n and len(scan["findings"]) == n
    assert [f["rule_name"] for f in scan["findings"][:3]] == ["r0", "r1", "r2"]  # in order
    assert len(r.content) < 300 * n  # each finding's id and url, not a blow-up


def test_long_texts_are_cut_with_a_marker(grid, api, make_agent):
    agent = make_agent()
    cid = _open_scan(api, agent)
    long = "x" * 100000
    findings = [{"rule_name": long, "policy_id": "p", "critical": True, "status": "bad",
                 "details": [{"type": "file", "target": "/etc/x", "actual": long,
                              "expected": ["ok", {"deeper": long}], "status": "bad"}]}]
    r = agent.post("/agent/v1/commands/%s/result" % cid, _result(findings))
    assert r.status_code == 204, r.text
    scans = api.ok("GET", "/v1/scans", params={"server_id": agent.server_id})["scans"]
    f = api.ok("GET", "/v1/scans/%s" % scans[0]["id"])["scan"]["findings"][0]
    marker = agentmod.TRUNCATED
    for text in (f["rule_name"], f["details"][0]["actual"],
                 f["details"][0]["expected"][1]["deeper"]):
        assert len(text) == agentmod.MAX_TEXT and text.endswith(marker)
    assert f["details"][0]["target"] == "/etc/x" and f["details"][0]["expected"][0] == "ok"


def test_a_policy_id_longer_than_its_column_is_400(grid, api, make_agent):
    """Before: stored as is, 500 on PostgreSQL (String(64))."""
    agent = make_agent()
    cid = _open_scan(api, agent)
    r = agent.post("/agent/v1/commands/%s/result" % cid, _result([dict(GOOD, policy_id="p" * 65)]))
    assert r.status_code == 400 and "policy_id" in r.json()["error"]


# -- 2b. the agent reports a refused result ----------------------------------------------------
def _rules(n: int) -> List[dict]:
    """n rules the agent answers at once: an unknown check type is indeterminate."""
    return [{"name": "r%d" % i, "active": True, "checks": [{"object_type": "none", "active": True}]}
            for i in range(n)]


def _scan_by_real_agent(grid, api, tmp_path, rules: int) -> Tuple[dict, dict, AgentProcess]:
    """A real haloagent in a group whose policy has `rules` rules, scanned once:
    (the finished command, its scan, the agent)."""
    tag = unique("big")
    pol = api.ok("POST", "/v2/policies", {"policy": {"name": unique("big"), "platform": "linux",
                                                     "rules": _rules(rules)}})["policy"]
    api.create_group(tag, tag=tag, policy_ids=[pol["id"]])
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    with AgentProcess(grid.url, grid.agent_key, root=root, state_dir=tmp_path / "agent",
                      tag=tag, poll_wait=5) as agent:
        server = agent.wait_registered(api)
        cmd = api.scan(server["id"])
        # well within --command-timeout (600 s): a failure is the agent's report, not the
        # grid's deadline (whose reason would say so)
        done = api.wait_command(server["id"], cmd["id"], timeout=120)
        scan = api.ok("GET", "/v1/scans/%s" % cmd["scan_id"])["scan"]
    return done, scan, agent


def test_an_agent_reports_a_result_beyond_the_bounds_as_failed(grid, api, tmp_path):
    """Before: the agent logged the 413 and went on; the command stayed `started` until the
    grid's deadline failed it."""
    n = agentmod.MAX_FINDINGS + 1
    done, scan, agent = _scan_by_real_agent(grid, api, tmp_path, n)
    assert done["status"] == "failed", agent.log()
    assert done["result"].startswith("the grid refused the scan result (%d findings, " % n)
    assert done["result"].endswith("HTTP 413 scan result too large: scan.findings has %d "
                                   "findings (at most %d)" % (n, agentmod.MAX_FINDINGS))
    assert scan["status"] == "failed" and scan["findings"] == []


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_the_agent_reads_a_413_sent_before_its_body(tmp_path, monkeypatch, tls):
    """The grid refuses an oversized body before reading it and closes the connection: the
    agent's client used to fail sending the rest (connection reset, or a TLS EOF) and never
    saw the grid's answer."""
    from haloagent.client import Credentials, GridClient, GridError
    from halodev.launchers import make_self_signed_cert

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    opts = {}
    if tls:
        opts["certfile"], opts["keyfile"] = make_self_signed_cert(tmp_path)
    with contextlib.ExitStack() as stack:
        grid = _grid_with(stack, tmp_path, **opts)
        ca_file = opts.get("certfile")
        agent = register(grid, verify=ca_file or True)
        client = GridClient(grid.url, ca_file=ca_file)
        client.credentials = Credentials(agent.server_id, agent.secret)
        body = {"status": "completed", "scan": {"findings": [], "x": "x" * 3 * SCAN_RESULT_MAX}}
        with pytest.raises(GridError) as refused:
            client.command_result("a" * 32, body)
        assert refused.value.status == 413, refused.value
        assert refused.value.reason == ("Request body too large: this endpoint takes at most "
                                        "%d bytes" % SCAN_RESULT_MAX)


def _grid_with(stack: contextlib.ExitStack, tmp_path, env=None, **opts) -> GridProcess:
    opts.update(rate_limit=0, auth_fail_limit=0)
    if PG_ADMIN_URL:
        opts["db"] = stack.enter_context(fresh_pg_database())
    return stack.enter_context(GridProcess(tmp_path / "grid", env=env or {}, **opts))


def _post_raw(api, path: str, body: bytes):
    return api.request("POST", path, data=body, headers={"Content-Type": "application/json"})


def test_lower_body_limits_give_413(tmp_path):
    """Each route class has its own option; each body here is accepted by the defaults."""
    with contextlib.ExitStack() as stack:
        grid = _grid_with(stack, tmp_path, result_body_limit="16KiB",
                          policy_body_limit="32KiB", api_body_limit="4KiB",
                          other_body_limit=4096)
        api = grid.api()
        pad = b" " * 5000
        r = _post_raw(api, "/v1/groups", b'{"group": {"name": "%s"}}' % unique("g").encode() + pad)
        assert r.status_code == 413 and "at most 4096 bytes" in r.json()["error"], r.text
        policy = {"policy": {"name": unique("p"), "description": "d" * 40000, "rules": []}}
        r = api.post("/v2/policies", policy)
        assert r.status_code == 413 and "at most 32768 bytes" in r.json()["error"], r.text
        policy["policy"]["description"] = "d" * 20000
        assert api.post("/v2/policies", policy).status_code == 201
        facts = {"hostname": unique("h"), "os_version": "v" * 200}
        r = requests.post(grid.url + "/agent/v1/register", headers={
            "X-Daemon-Key": grid.agent_key, "Content-Type": "application/json"},
            data=json.dumps(facts).encode() + pad)
        assert r.status_code == 413 and "at most 4096 bytes" in r.json()["error"], r.text
        # a real agent's result over the result limit: refused before it is read, and the
        # agent reports the command failed with the grid's reason
        done, scan, agent = _scan_by_real_agent(grid, api, tmp_path, 200)
        assert done["status"] == "failed", agent.log()
        assert re.fullmatch(r"the grid refused the scan result \(200 findings, (\d+) bytes\): "
                            r"HTTP 413 Request body too large: this endpoint takes at most "
                            r"16384 bytes", done["result"]), done["result"]
        assert int(re.search(r"(\d+) bytes\)", done["result"]).group(1)) > 16384
        assert scan["status"] == "failed"


def test_higher_body_limits_accept_more_and_the_result_bounds_still_apply(tmp_path):
    """Raised through the environment. A larger result body holds longer texts (cut when
    stored), never more findings or details than the bounds."""
    with contextlib.ExitStack() as stack:
        grid = _grid_with(stack, tmp_path, env={"HALOGRID_RESULT_BODY_LIMIT": "16MiB",
                                                "HALOGRID_API_BODY_LIMIT": "1MiB"})
        api = grid.api()
        r = _post_raw(api, "/v1/groups",
                      b'{"group": {"name": "%s"}}' % unique("g").encode() + b" " * API_MAX)
        assert r.status_code == 201, r.text
        agent = register(grid)
        cid = _open_scan(api, agent)
        long = "x" * (SCAN_RESULT_MAX // 4)
        big = [dict(GOOD, rule_name=long, details=[{"actual": long}]) for _ in range(3)]
        body = _result(big)
        assert len(json.dumps(body)) > SCAN_RESULT_MAX
        r = agent.post("/agent/v1/commands/%s/result" % cid, body)
        assert r.status_code == 204, r.text
        scans = api.ok("GET", "/v1/scans", params={"server_id": agent.server_id})["scans"]
        stored = api.ok("GET", "/v1/scans/%s" % scans[0]["id"])["scan"]["findings"]
        assert [len(f["rule_name"]) for f in stored] == [agentmod.MAX_TEXT] * 3
        cid = _open_scan(api, agent)
        for findings in ([{"status": "good"}] * (agentmod.MAX_FINDINGS + 1),
                         [dict(GOOD, details=[{"t": "x"}] * (agentmod.MAX_DETAILS + 1))]):
            r = agent.post("/agent/v1/commands/%s/result" % cid, _result(findings))
            assert r.status_code == 413, r.text
            assert r.json()["error"].startswith("scan result too large: scan.findings")


# -- 3. credentials with bytes that are not ASCII ---------------------------------------------
NON_ASCII = [b"\xff" * 32, "\u00e9".encode("latin-1") * 32, "\u00e9".encode("utf-8") * 16,
             b"abc\x80def"]


def _auth_routes(grid, agent: Agent):
    cid = "a" * 32
    return [("POST", "/agent/v1/register", b"X-Daemon-Key"),
            ("GET", "/agent/v1/poll?wait=0", b"Authorization"),
            ("GET", "/agent/v1/firewall", b"Authorization"),
            ("POST", "/agent/v1/firewall/status", b"Authorization"),
            ("POST", "/agent/v1/commands/%s/start" % cid, b"Authorization"),
            ("POST", "/agent/v1/commands/%s/result" % cid, b"Authorization"),
            ("POST", "/oauth/access_token?grant_type=client_credentials", b"Authorization"),
            ("GET", "/v1/groups", b"Authorization"),
            ("POST", "/v1/groups", b"Authorization"),
            ("GET", "/v1/servers/%s" % agent.server_id, b"Authorization")]


def test_non_ascii_credentials_are_401_everywhere(grid, make_agent):
    """Before: an X-Daemon-Key with a non-ASCII byte gave 500 (hmac.compare_digest)."""
    agent = make_agent()
    body = b'{"hostname": "h", "status": "applied", "version": 1}'
    for method, path, header in _auth_routes(grid, agent):
        for bad in NON_ASCII:
            values = [bad] if header == b"X-Daemon-Key" else \
                [b"Agent " + bad, b"Agent " + agent.server_id.encode() + b":" + bad,
                 b"Agent " + bad + b":" + bad, b"Bearer " + bad, b"Basic " + bad, bad]
            for value in values:
                status, _h, answer = _raw(
                    grid, method, path, {"Content-Type": "application/json",
                                         "Content-Length": str(len(body))}, body,
                    raw_headers=header + b": " + value + b"\r\n")
                assert status == 401, (method, path, value, status, answer)
                assert "error" in _json(answer)


# -- 4. failed agent credentials count per address ------------------------------------------
def test_failed_agent_credentials_count_against_the_address(tmp_path):
    with contextlib.ExitStack() as stack:
        opts = {"rate_limit": 0, "auth_fail_limit": 3, "register_limit": 0}
        if PG_ADMIN_URL:
            opts["db"] = stack.enter_context(fresh_pg_database())
        grid = stack.enter_context(GridProcess(tmp_path, **opts))
        agent = register(grid)
        guess = Agent(grid.url, agent.server_id, "0" * 48, agent.group_id)
        assert [guess.get("/agent/v1/firewall").status_code for _ in range(3)] == [401] * 3
        # the address is blocked now: guesses, and even a right credential, get 429
        for who in (guess, agent):
            r = who.get("/agent/v1/firewall")
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text
        r = agent.post("/agent/v1/firewall/status", {"version": 1, "status": "applied"})
        assert r.status_code == 429
        # one counter for agent credentials and API tokens (auth.FailureCounter)
        r = requests.post(grid.url + "/oauth/access_token?grant_type=client_credentials",
                          auth=(grid.api().key_id, "0" * 32))
        assert r.status_code == 429


@pytest.mark.parametrize("field, size", [("hostname", 256), ("server_label", 256),
                                         ("tag", 256), ("platform", 65), ("kernel_name", 65)])
def test_register_refuses_text_longer_than_its_column(grid, field, size):
    """Before: stored on SQLite, 500 on PostgreSQL."""
    body = {"hostname": unique("long"), field: "x" * size}
    r = requests.post(grid.url + "/agent/v1/register", json=body,
                      headers={"X-Daemon-Key": grid.agent_key})
    assert r.status_code == 400 and field in r.json()["error"], r.text
    body[field] = "x" * (size - 1)
    r = requests.post(grid.url + "/agent/v1/register", json=body,
                      headers={"X-Daemon-Key": grid.agent_key})
    assert r.status_code == 201, r.text


# -- 5. the agent protocol in the OpenAPI document -------------------------------------------
def test_the_document_publishes_the_agent_bodies(grid, tmp_path):
    """Generated requests (test_server_schemathesis.py) carry real bodies only if the
    document names them; and what haloagent sends fits what it publishes."""
    from halogrid import agent_schemas as doc
    from haloagent.hostinfo import registration
    from haloagent.rootfs import RootFS

    document = requests.get(grid.url + "/openapi.json", timeout=30).json()
    paths = document["paths"]
    for path, model in (("/agent/v1/register", "AgentRegistration"),
                        ("/agent/v1/commands/{command_id}/result", "AgentCommandResult"),
                        ("/agent/v1/firewall/status", "AgentFirewallStatus")):
        schema = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/%s" % model}
        assert model in document["components"]["schemas"]
    ok = paths["/oauth/access_token"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/OAuthAccessToken")
    limits = document["components"]["schemas"]["AgentScan"]["properties"]["findings"]
    assert agentmod.MAX_FINDINGS in [s.get("maxItems") for s in limits["anyOf"]]
    doc.AgentRegistration.model_validate(registration(grid.url, RootFS("/"), "t", None))


def test_firewall_status_version_out_of_range_is_400(grid, make_agent):
    """Found by schemathesis once the body was published: a version beyond the Integer
    column was a 500."""
    agent = make_agent()
    for version in (2 ** 85, -1):
        r = agent.post("/agent/v1/firewall/status", {"version": version, "status": "applied"})
        assert r.status_code == 400 and "version" in r.json()["error"], r.text
    r = agent.post("/agent/v1/firewall/status",
                   {"version": 0, "status": "failed", "message": "m" * 20000})
    assert r.status_code == 204, r.text
