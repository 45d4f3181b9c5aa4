"""Helpers of the grid's tests: unique names, waiting for a state, a fake agent speaking the
protocol over plain HTTP, scans answered by it, a loopback HTTP server for fake grids, and
throw-away PostgreSQL databases. (Kept out of conftest.py: test modules import them by a name
that no other test directory uses.)"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Tuple, Union

import requests

from halodev.launchers import GridAPI, GridProcess

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return "%s-%d" % (prefix, next(_names))


def wait_for(what: Union[str, Callable[[], Any]], probe: Callable[[], Any],
             timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Call `probe` until it returns something true, and return that; fail after `timeout`
    seconds with `what` (a text, or a function giving one, such as an agent's log). A wait
    for a state, never a sleep standing in for an assert."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % (what() if callable(what) else what))
        time.sleep(interval)


PG_ADMIN_URL = os.environ.get("HALOGRID_TEST_PG_URL")


@contextlib.contextmanager
def fresh_pg_database():
    """A new, empty PostgreSQL database (URL) made through HALOGRID_TEST_PG_URL, then dropped."""
    import sqlalchemy

    name = "halogrid_test_" + uuid.uuid4().hex[:12]
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE %s" % name)
    try:
        url = sqlalchemy.engine.make_url(PG_ADMIN_URL).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        admin.dispose()


class Agent:
    """A fake agent speaking the protocol with plain HTTP (for server-side tests)."""

    def __init__(self, url: str, server_id: str, secret: str, group_id: str,
                 verify: Any = True) -> None:
        self.url, self.server_id, self.secret, self.group_id = url, server_id, secret, group_id
        self.headers = {"Authorization": "Agent %s:%s" % (server_id, secret)}
        self.verify = verify

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers, verify=self.verify, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, headers=self.headers, json=body,
                             verify=self.verify, **kw)

    def poll(self, wait: float = 0, firewall_version: Any = None, **kw: Any) -> requests.Response:
        params: Dict[str, Any] = {"wait": wait}
        if firewall_version is not None:
            params["firewall_version"] = firewall_version
        return self.get("/agent/v1/poll", params=params, timeout=wait + 30, **kw)


def register(grid: GridProcess, hostname: str = None, tag: str = None, ip: str = None,
             verify: Any = True, **facts: Any) -> Agent:
    hostname = hostname or unique("host")
    body: Dict[str, Any] = {"hostname": hostname, "reported_fqdn": hostname + ".lab",
                            "server_label": hostname, "platform": "debian",
                            "platform_version": "12", "os_version": "6.1.0-18-amd64",
                            "kernel_name": "Linux", "daemon_version": "0.1.0"}
    if tag is not None:
        body["tag"] = tag
    if ip is not None:
        body["interfaces"] = [{"name": "eth0", "ip": ip}]
        body["primary_ip_address"] = ip
    body.update(facts)
    r = requests.post(grid.url + "/agent/v1/register", json=body,
                      headers={"X-Daemon-Key": grid.agent_key}, timeout=30, verify=verify)
    assert r.status_code == 201, r.text
    data = r.json()
    return Agent(grid.url, data["server_id"], data["agent_secret"], data["group_id"], verify)


def run_scan(api: GridAPI, agent: Agent, findings, status: str = "completed",
             result: str = None) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Queue a scan through the API and answer it as the fake agent; (command, answer)."""
    cmd = api.scan(agent.server_id)
    r = agent.poll(wait=5)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [c["id"] for c in answer["commands"]] == [cmd["id"]]
    assert agent.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    body: Dict[str, Any] = {"status": status,
                            "scan": {"module": "sca", "agent_started_at": "2024-01-01T00:00:00Z",
                                     "agent_completed_at": "2024-01-01T00:00:01Z",
                                     "findings": findings}}
    if result is not None:
        body["result"] = result
    r = agent.post("/agent/v1/commands/%s/result" % cmd["id"], body)
    assert r.status_code == 204, r.text
    return cmd, answer


# -- fake grids: the agent's side against a tiny in-process HTTP server ---------------------
class JsonHandler(BaseHTTPRequestHandler):
    """A quiet request handler with JSON bodies in and out."""

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, code: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")


class LoopbackServer:
    """`handler` served on a free 127.0.0.1 port in a thread while the `with` block runs."""

    def __init__(self, handler: type) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        # a short poll interval: shutdown() waits for it
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "LoopbackServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
