"""Commands and scans have a deadline: an agent killed mid-scan or a server that never polls
again leaves them `failed` with a reason, never open forever; retiring a server closes its
open commands at once."""
from __future__ import annotations


from gridhelpers import register, run_scan, wait_for
from halodev.launchers import GridProcess
from sourceaddr import grid_db


def wait_status(api, path, key, statuses, timeout=60.0):
    def settled():
        obj = api.ok("GET", path)[key]
        return obj if obj["status"] in statuses else None
    return wait_for("%s to be %s" % (path, " or ".join(statuses)), settled, timeout, 0.2)


def scan_failed_events(api, scan_id):
    events = api.ok("GET", "/v1/events", params={"type": "scan_failed", "per_page": 100})
    return [e for e in events["events"] if e["object_id"] == scan_id]


def test_scan_of_a_killed_agent_and_a_silent_server_fail_after_the_deadline(tmp_path):
    # missing_after 2: the grid sweeps every 0.5 s
    with grid_db(tmp_path) as (_db, opts), \
            GridProcess(tmp_path, rate_limit=0, command_timeout=3, missing_after=2,
                        **opts) as g:
        api = g.api()
        a = register(g)
        done, _ = run_scan(api, a, [])
        # the agent starts a scan, then dies: no result ever comes
        cmd = api.scan(a.server_id)
        assert [c["id"] for c in a.poll(wait=5).json()["commands"]] == [cmd["id"]]
        assert a.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
        # another server never polls at all
        silent = register(g)
        queued = api.scan(silent.server_id)

        path = "/v1/servers/%s/commands/%s" % (a.server_id, cmd["id"])
        got = wait_status(api, path, "command", ("completed", "failed"))
        assert got["status"] == "failed"
        assert "timed out" in got["result"] and "start" in got["result"]
        scan = api.ok("GET", "/v1/scans/%s" % got["scan_id"])["scan"]
        assert scan["status"] == "failed" and scan["result"] == got["result"]
        assert scan["completed_at"]
        ev = scan_failed_events(api, scan["id"])
        assert len(ev) == 1 and ev[0]["actor"] == "grid" and ev[0]["critical"]

        path = "/v1/servers/%s/commands/%s" % (silent.server_id, queued["id"])
        got = wait_status(api, path, "command", ("completed", "failed"))
        assert got["status"] == "failed" and "did not start" in got["result"]
        assert api.ok("GET", "/v1/scans/%s" % got["scan_id"])["scan"]["status"] == "failed"

        # a late answer is refused; the finished command is left as it was
        r = a.post("/agent/v1/commands/%s/result" % cmd["id"], {"status": "completed"})
        assert r.status_code == 409
        assert api.ok("GET", "/v1/servers/%s/commands/%s" % (a.server_id, done["id"])
                      )["command"]["status"] == "completed"


def test_retiring_a_server_closes_its_open_commands(tmp_path):
    with grid_db(tmp_path) as (_db, opts), GridProcess(tmp_path, rate_limit=0, **opts) as g:
        api = g.api()
        a = register(g)
        started = api.scan(a.server_id)
        a.poll(wait=5)
        assert a.post("/agent/v1/commands/%s/start" % started["id"]).status_code == 204
        queued = api.scan(a.server_id)
        other = register(g)
        untouched = api.scan(other.server_id)

        assert api.put("/v1/servers/%s" % a.server_id,
                       {"server": {"retire": True}}).status_code == 204

        for cmd in (started, queued):
            got = api.ok("GET", "/v1/servers/%s/commands/%s" % (a.server_id, cmd["id"])
                         )["command"]
            assert got["status"] == "failed" and "retired" in got["result"]
            scan = api.ok("GET", "/v1/scans/%s" % got["scan_id"])["scan"]
            assert scan["status"] == "failed" and "retired" in scan["result"]
            assert len(scan_failed_events(api, scan["id"])) == 1
        got = api.ok("GET", "/v1/servers/%s/commands/%s" % (other.server_id, untouched["id"])
                     )["command"]
        assert got["status"] == "queued"
