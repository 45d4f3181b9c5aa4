"""Scans the grid runs by itself: a group's `scan_interval` (stored, served by the group API,
kept across a restart) makes the grid queue an sca scan on each member whose latest one is
older than that; a member whose agent is missing gets the scan recorded as failed with the
reason, never skipped in silence. The scheduling itself is tested in-process with a given
clock (no sleeps); the grid process tests prove the periodic sweep runs it."""
from __future__ import annotations

import datetime as _dt

import pytest
from sqlalchemy import select

from gridhelpers import register, unique, wait_for
from halogrid.db import init_db, make_engine, session_factory
from halogrid.deadlines import schedule_scans
from halogrid.models import Command, Event, Group, Scan, Server, new_id
from halodev.launchers import GridProcess
from sourceaddr import grid_db

T = _dt.datetime(2030, 1, 1, 12, 0, 0)


def ago(seconds: float) -> _dt.datetime:
    return T - _dt.timedelta(seconds=seconds)


@pytest.fixture
def Session(tmp_path):
    with grid_db(tmp_path) as (db, _opts):
        engine = make_engine(db)
        init_db(engine)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()


def add_group(db, name, interval):
    g = Group(name=name, policy_ids=[], fim_policy_ids=[], scan_interval=interval)
    db.add(g)
    db.flush()
    return g


def add_server(db, group, hostname, state="active", last_seen=None):
    s = Server(secret_hash="x", hostname=hostname, group_id=group.id, state=state,
               last_seen_at=last_seen or T, created_at=ago(86400))
    db.add(s)
    db.flush()
    return s


def add_scan(db, server, created, status="completed_clean", module="sca"):
    db.add(Scan(id=new_id(), server_id=server.id, module=module, status=status,
                created_at=created, group_id=server.group_id))


def scans_of(db, server_id):
    return db.query(Scan).filter(Scan.server_id == server_id).order_by(Scan.created_at).all()


class Woken:
    def __init__(self):
        self.calls = []

    def __call__(self, servers, groups):
        self.calls.append((list(servers), list(groups)))


def test_due_members_get_a_scan_and_a_missing_one_a_failed_scan_with_the_reason(Session):
    with Session() as db, db.begin():
        sched = add_group(db, "Scheduled", 60)
        plain = add_group(db, "Plain", None)
        ids = {}
        ids["fresh"] = add_server(db, sched, "fresh").id              # never scanned
        recent = add_server(db, sched, "recent")
        add_scan(db, recent, ago(30))                                 # within the interval
        old = add_server(db, sched, "old")
        add_scan(db, old, ago(120))                                   # older than it
        add_scan(db, old, ago(10), module="svm")                      # another module: no
        busy = add_server(db, sched, "busy")
        add_scan(db, busy, ago(600), status="running")                # one still open
        gone = add_server(db, sched, "gone", state="missing", last_seen=ago(3600))
        retired = add_server(db, sched, "retired", state="deactivated")
        other = add_server(db, plain, "other")                        # no schedule
        ids.update(recent=recent.id, old=old.id, busy=busy.id, gone=gone.id,
                   retired=retired.id, other=other.id)

    woken = Woken()
    assert schedule_scans(Session, now=T, notify=woken) == 3
    # only agents that can run them are woken, once, after the commit
    assert len(woken.calls) == 1 and sorted(woken.calls[0][0]) == sorted(
        [ids["fresh"], ids["old"]])

    with Session() as db:
        for name in ("fresh", "old"):
            sc = scans_of(db, ids[name])[-1]
            assert (sc.status, sc.module, sc.created_at) == ("queued", "sca", T)
            cmd = db.get(Command, sc.command_id)
            assert (cmd.name, cmd.status, cmd.scan_id) == ("sca", "queued", sc.id)
        for name in ("recent", "busy", "retired", "other"):
            assert all(sc.created_at < T for sc in scans_of(db, ids[name])), name
        # the missing server: recorded as failed, with why, in the command, scan and events
        [sc] = scans_of(db, ids["gone"])
        cmd = db.get(Command, sc.command_id)
        assert sc.status == "failed" and cmd.status == "failed" and sc.completed_at == T
        assert sc.result == cmd.result
        assert "agent is missing" in sc.result and "Scheduled" in sc.result
        events = {e.type: e for e in db.query(Event).filter(Event.object_id == sc.id)}
        assert set(events) == {"scan_requested", "scan_failed"}
        assert events["scan_failed"].critical and events["scan_failed"].actor == "grid"
        assert "scheduled: every 60 s" in events["scan_requested"].message

    # the same moment again: nothing is due any more
    assert schedule_scans(Session, now=T, notify=woken) == 0
    assert len(woken.calls) == 1

    # an interval later: the missing server gets another failed scan, the one scanned 30 s
    # before T is due; the queued ones are not queued twice
    later = T + _dt.timedelta(seconds=61)
    assert schedule_scans(Session, now=later) == 2
    with Session() as db:
        assert [sc.status for sc in scans_of(db, ids["gone"])] == ["failed", "failed"]
        assert scans_of(db, ids["recent"])[-1].created_at == later
        assert len(scans_of(db, ids["fresh"])) == 1

    # no schedule: nothing, however much time passed
    with Session() as db, db.begin():
        db.scalars(select(Group).where(Group.name == "Scheduled")).one().scan_interval = None
    assert schedule_scans(Session, now=T + _dt.timedelta(days=30)) == 0


def test_a_round_is_bounded_and_the_rest_come_next_round(Session):
    with Session() as db, db.begin():
        g = add_group(db, "Big", 60)
        servers = [add_server(db, g, "h%d" % i) for i in range(3)]
        add_scan(db, servers[0], ago(100))
        add_scan(db, servers[1], ago(900))
        ids = [s.id for s in servers]
    assert schedule_scans(Session, now=T, limit=2) == 2
    with Session() as db:
        got = {i for i in ids if any(sc.created_at == T for sc in scans_of(db, i))}
    assert len(got) == 2
    assert schedule_scans(Session, now=T, limit=2) == 1
    assert schedule_scans(Session, now=T, limit=2) == 0


# -- the group API ------------------------------------------------------------------------
def test_scan_interval_is_set_read_cleared_and_checked_through_the_group_api(api):
    g = api.create_group(unique("Sched"), scan_interval=3600)
    assert g["scan_interval"] == 3600
    path = "/v1/groups/%s" % g["id"]
    assert api.ok("GET", path)["group"]["scan_interval"] == 3600
    listed = api.ok("GET", "/v1/groups", params={"name": g["name"]})["groups"]
    assert [x["scan_interval"] for x in listed] == [3600]
    # a partial update leaves it alone; a new value and null replace it
    assert api.put(path, {"group": {"description": "d"}}).status_code == 204
    assert api.ok("GET", path)["group"]["scan_interval"] == 3600
    assert api.put(path, {"group": {"scan_interval": 60}}).status_code == 204
    assert api.ok("GET", path)["group"]["scan_interval"] == 60
    assert api.put(path, {"group": {"scan_interval": None}}).status_code == 204
    assert api.ok("GET", path)["group"]["scan_interval"] is None
    assert api.create_group(unique("NoSched"))["scan_interval"] is None
    # whole seconds from 10 s to a year: 422 with Halo's error shape, nothing stored
    for bad in (0, -5, 9, 365 * 86400 + 1, 2 ** 40, "60", True, 1.5, [60]):
        r = api.put(path, {"group": {"scan_interval": bad}})
        assert r.status_code == 422, (bad, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["scan_interval"], r.text
    r = api.post("/v1/groups", {"group": {"name": unique("Bad"), "scan_interval": 5}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scan_interval"
    assert api.ok("GET", path)["group"]["scan_interval"] is None


# -- the grid process ---------------------------------------------------------------------
def test_the_grid_scans_by_itself_and_keeps_the_schedule_across_a_restart(tmp_path):
    with grid_db(tmp_path) as (_db, opts), \
            GridProcess(tmp_path, rate_limit=0, sweep_interval=0.2, **opts) as g:
        api = g.api()
        grp = api.create_group(unique("Nightly"), tag="nightly")
        a = register(g, tag="nightly")
        assert api.put("/v1/groups/%s" % grp["id"],
                       {"group": {"scan_interval": 3600}}).status_code == 204

        g.restart()

        assert api.ok("GET", "/v1/groups/%s" % grp["id"])["group"]["scan_interval"] == 3600
        # nobody asks for a scan: the grid queues one and wakes the agent's long-poll
        cmds = wait_for("a scheduled command",
                        lambda: a.poll(wait=5).json()["commands"])
        assert [c["name"] for c in cmds] == ["sca"]
        scans = api.ok("GET", "/v1/scans", params={"server_id": a.server_id})["scans"]
        assert len(scans) == 1 and scans[0]["command_id"] == cmds[0]["id"]
        ev = api.ok("GET", "/v1/events", params={"type": "scan_requested",
                                                 "server_id": a.server_id})["events"]
        assert [e["actor"] for e in ev] == ["grid"]


def test_a_missing_servers_scheduled_scan_is_recorded_as_failed(tmp_path):
    with grid_db(tmp_path) as (_db, opts), \
            GridProcess(tmp_path, rate_limit=0, missing_after=2, sweep_interval=0.2,
                        **opts) as g:
        api = g.api()
        grp = api.create_group(unique("Sched"), tag="sched")
        a = register(g, tag="sched")   # and never heard of again
        wait_for("the server to be missing", lambda: api.ok(
            "GET", "/v1/servers/%s" % a.server_id)["server"]["state"] == "missing")
        assert api.put("/v1/groups/%s" % grp["id"],
                       {"group": {"scan_interval": 600}}).status_code == 204
        scan = wait_for("a failed scan", lambda: api.ok(
            "GET", "/v1/scans", params={"server_id": a.server_id})["scans"])[0]
        assert scan["status"] == "failed" and "agent is missing" in scan["result"]
        # the latest result says so too: a reader of /sca sees why there is no fresh verdict
        latest = api.ok("GET", "/v1/servers/%s/sca" % a.server_id)["scan"]
        assert latest["id"] == scan["id"] and latest["status"] == "failed"
