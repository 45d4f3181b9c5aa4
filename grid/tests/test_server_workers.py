"""Several grid processes on one PostgreSQL database (issue 12): a change made through one
process wakes the long-polls held by another (LISTEN/NOTIFY), `halogrid serve --workers N`
runs N processes on one port, and refuses to with SQLite.

The PostgreSQL tests run with HALOGRID_TEST_PG_URL set (grid/tests/with_postgresql.sh)."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import uuid
from typing import Any, Dict, Iterator

import pytest
import requests

from gridhelpers import PG_ADMIN_URL, Agent, fresh_pg_database, register, wait_for
from halogrid.notify import MAX_PAYLOAD, Notifier, PgWakeups, parse_payload, wake_payloads
from halodev.launchers import GridProcess, free_port

needs_pg = pytest.mark.skipif(not PG_ADMIN_URL, reason="HALOGRID_TEST_PG_URL is not set")

# A poll asks to wait 20 s; the test gives up after 10. A poll that returns the command in
# time was woken by the change: without a wake-up it would answer (empty) only after 20 s.
POLL_WAIT = 20
HTTP_TIMEOUT = 10


@pytest.fixture
def pg_url() -> Iterator[str]:
    pytest.importorskip("psycopg")
    with fresh_pg_database() as url:
        yield url


def _engine(url: str):
    import sqlalchemy
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)


def _last_seen(engine, server_id: str):
    from sqlalchemy import text
    with engine.connect() as conn:
        return conn.scalar(text("SELECT last_seen_at FROM servers WHERE id = :i"),
                           {"i": server_id})


@contextlib.contextmanager
def long_poll(agent: Agent, **params: Any) -> Iterator[Dict[str, Any]]:
    """Start a long-poll (wait=POLL_WAIT, HTTP timeout HTTP_TIMEOUT) in a thread; the dict
    gets "response" or "error" once the `with` block's end has joined it."""
    out: Dict[str, Any] = {}

    def run() -> None:
        try:
            out["response"] = agent.get("/agent/v1/poll", params=dict(params, wait=POLL_WAIT),
                                        timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield out
    finally:
        t.join(HTTP_TIMEOUT + 5)


def woken_answer(engine, poller: Agent, change, **params: Any) -> Dict[str, Any]:
    """Start `poller`'s long-poll, let its first look commit (its last contact moves in the
    database), then make `change`; return the poll's answer. The look saw nothing to
    answer, so only a wake-up can bring an answer before the HTTP timeout."""
    before = _last_seen(engine, poller.server_id)
    with long_poll(poller, **params) as out:
        wait_for("the poll's first look",
                 lambda: _last_seen(engine, poller.server_id) != before, interval=0.05)
        change()
    assert "error" not in out, "the poll was not woken: %r" % out.get("error")
    r = out["response"]
    assert r.status_code == 200, r.text
    return r.json()


def scan_reaches(engine, api, poller: Agent) -> None:
    """A scan queued through `api` reaches `poller`'s waiting long-poll."""
    queued: Dict[str, Any] = {}
    answer = woken_answer(engine, poller, lambda: queued.update(api.scan(poller.server_id)))
    assert [c["id"] for c in answer["commands"]] == [queued["id"]]
    # answered, so that the next scan of the server is a new one
    assert poller.post("/agent/v1/commands/%s/start" % queued["id"]).status_code == 204
    r = poller.post("/agent/v1/commands/%s/result" % queued["id"], {
        "status": "completed", "scan": {"module": "sca", "findings": [],
                                        "agent_started_at": "2024-01-01T00:00:00Z",
                                        "agent_completed_at": "2024-01-01T00:00:01Z"}})
    assert r.status_code == 204, r.text


@needs_pg
def test_command_queued_on_one_process_wakes_poll_on_another(tmp_path, pg_url):
    engine = _engine(pg_url)
    try:
        with GridProcess(tmp_path / "a", db=pg_url, rate_limit=0) as a, \
                GridProcess(tmp_path / "b", db=pg_url, rate_limit=0) as b:
            agent = register(a)
            on_a = Agent(a.url, agent.server_id, agent.secret, agent.group_id)
            on_b = Agent(b.url, agent.server_id, agent.secret, agent.group_id)
            scan_reaches(engine, a.api(), on_b)
            # and the other way round
            scan_reaches(engine, b.api(), on_a)
    finally:
        engine.dispose()


@needs_pg
def test_group_change_on_one_process_wakes_poll_on_another(tmp_path, pg_url):
    """A firewall policy given through A to the poller's group reaches its poll on B: a
    wake-up by group, not by server id."""
    engine = _engine(pg_url)
    try:
        with GridProcess(tmp_path / "a", db=pg_url, rate_limit=0) as a, \
                GridProcess(tmp_path / "b", db=pg_url, rate_limit=0) as b:
            api = a.api()
            grp = api.create_group("WakeByGroup", tag="WakeByGroup")
            fp = api.ok("POST", "/v1/firewall_policies", {"firewall_policy": {
                "name": "wake-by-group", "platform": "linux"}})["firewall_policy"]
            agent = register(a, tag="WakeByGroup")
            on_b = Agent(b.url, agent.server_id, agent.secret, agent.group_id)
            version = on_b.poll(firewall_version=-1).json()["firewall_version"]

            def change() -> None:
                r = api.put("/v1/groups/%s" % grp["id"],
                            {"group": {"linux_firewall_policy_id": fp["id"]}})
                assert r.status_code in (200, 204), r.text

            answer = woken_answer(engine, on_b, change, firewall_version=version)
            assert answer["commands"] == [] and answer["firewall_version"] != version
    finally:
        engine.dispose()


@needs_pg
def test_serve_workers_on_postgresql(tmp_path, pg_url):
    """`--workers 2`: two processes, each LISTENing, answer on one port; a poll is woken
    whichever process holds it and whichever one queued the command."""
    from sqlalchemy import text

    engine = _engine(pg_url)

    def listeners() -> int:
        with engine.connect() as conn:
            return conn.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'LISTEN halogrid_wake%'"))

    try:
        with GridProcess(tmp_path, db=pg_url, rate_limit=0, workers=2) as g:
            wait_for("two worker processes listening", lambda: listeners() == 2, interval=0.05)
            api = g.api()
            agent = register(g)
            for _ in range(3):
                scan_reaches(engine, api, agent)
            assert listeners() == 2
    finally:
        engine.dispose()


def test_serve_workers_refused_with_sqlite(tmp_path):
    out = subprocess.run([sys.executable, "-m", "halogrid", "serve", "--workers", "2",
                          "--port", str(free_port()), "--db", str(tmp_path / "grid.db")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "--workers 2 needs PostgreSQL" in out.stderr
    assert not (tmp_path / "grid.db").exists()


# -- the payloads and the listener's filter (no database needed) ----------------------------

def test_payloads_split_below_the_notify_limit():
    servers = [uuid.uuid4().hex for _ in range(1000)]
    groups = [uuid.uuid4().hex for _ in range(300)]
    payloads = list(wake_payloads("me", servers, groups, False))
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD for p in payloads)
    parsed = [parse_payload(p) for p in payloads]
    assert [s for p in parsed for s in p[1]] == servers
    assert [g for p in parsed for g in p[2]] == groups
    assert [parse_payload(p) for p in wake_payloads("me", [], [], True)] == [("me", [], [], True)]
    assert parse_payload("not json") is None and parse_payload("[1]") is None


def test_listener_wakes_for_others_only():
    notifier = Notifier()
    calls = []
    notifier.wake_local = lambda s=(), g=(): calls.append((list(s), list(g)))
    w = PgWakeups(notifier, connect=lambda: None)
    w._received(json.dumps({"o": w.origin, "s": ["x"], "g": []}))
    assert calls == [] and w.received == 0
    w._received(json.dumps({"o": "other", "s": ["x"], "g": ["y"]}))
    assert calls == [(["x"], ["y"])] and w.received == 1
