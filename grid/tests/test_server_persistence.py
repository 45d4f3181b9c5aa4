"""State survives a restart of the grid (only long-poll wake-ups live in memory)."""
from __future__ import annotations

import requests

from gridhelpers import register, run_scan
from halodev.launchers import GridProcess


def test_everything_survives_restart(tmp_path):
    with GridProcess(tmp_path, rate_limit=0) as g:
        api = g.api()
        api.authenticate()
        token = api.token
        agent_key = g.agent_key
        pol = api.ok("POST", "/v2/policies", {"policy": {"name": "keep", "rules": []}})["policy"]
        grp = api.create_group("Keep", tag="KeepTag", policy_ids=[pol["id"]])
        a = register(g, tag="KeepTag")
        cmd, _ = run_scan(api, a, [{"rule_name": "r", "critical": True, "status": "good",
                                    "details": []}])
        queued = api.scan(a.server_id)
        n_events = api.ok("GET", "/v1/events")["count"]

        g.restart()

        # the old token still works: tokens are kept (hashed) in the DB
        r = requests.get(g.url + "/v1/groups/%s" % grp["id"],
                         headers={"Authorization": "Bearer " + token})
        assert r.status_code == 200 and r.json()["group"]["policy_ids"] == [pol["id"]]
        g._agent_key = None
        assert g.agent_key == agent_key
        s = api.ok("GET", "/v1/servers/%s" % a.server_id)["server"]
        assert s["group_id"] == grp["id"] and s["state"] == "active"
        assert api.ok("GET", "/v1/servers/%s/sca" % a.server_id)["scan"]["status"] == \
            "completed_clean"
        assert api.ok("GET", "/v1/servers/%s/commands/%s" % (a.server_id, cmd["id"])
                      )["command"]["status"] == "completed"
        assert api.ok("GET", "/v1/events")["count"] >= n_events
        # the agent's credential still works and the queued command is still there
        ans = a.poll(wait=5).json()
        assert [c["id"] for c in ans["commands"]] == [queued["id"]]
        assert ans["commands"][0]["policies"][0]["id"] == pol["id"]


def test_agent_key_rotation(tmp_path):
    with GridProcess(tmp_path) as g:
        old = g.agent_key
        a = register(g)
        new = g.rotate_agent_key()
        assert new != old and len(new) == 32
        r = requests.post(g.url + "/agent/v1/register", json={"hostname": "x"},
                          headers={"X-Daemon-Key": old})
        assert r.status_code == 401
        register(g)  # with the new key
        assert a.poll().status_code == 200  # registered agents keep working


def test_cli_keys_and_env_db(tmp_path):
    import json
    import os
    import subprocess
    import sys

    db = str(tmp_path / "env.db")
    env = dict(os.environ, HALOGRID_DB=db)
    out = subprocess.run([sys.executable, "-m", "halogrid", "keys", "create", "--json",
                          "--read-only"], capture_output=True, text=True, env=env, check=True)
    data = json.loads(out.stdout)
    assert data["scope"] == "read" and len(data["key_id"]) == 8 and len(data["secret_key"]) == 32
    out = subprocess.run([sys.executable, "-m", "halogrid", "keys", "list", "--json"],
                         capture_output=True, text=True, env=env, check=True)
    listed = json.loads(out.stdout)
    assert [k["key_id"] for k in listed] == [data["key_id"]]
    assert data["secret_key"] not in out.stdout
    out = subprocess.run([sys.executable, "-m", "halogrid", "agent-key", "show"],
                         capture_output=True, text=True, env=env, check=True)
    assert len(out.stdout.strip()) == 32
    env.pop("HALOGRID_DB")
    out = subprocess.run([sys.executable, "-m", "halogrid", "keys", "create"],
                         capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "--db" in out.stderr


def test_sqlite_database_is_private(tmp_path):
    import os
    import stat
    import subprocess
    import sys

    old_umask = os.umask(0o022)  # the usual one, which made the file 0644
    try:
        folder = tmp_path / "state"
        db = folder / "grid.db"
        with GridProcess(tmp_path, db=db) as g:
            g.api().ok("POST", "/v1/groups", {"group": {"name": "private"}})
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            files = [p for p in folder.iterdir() if p.name.startswith("grid.db")]
            assert db in files
            for p in files:  # the database and its -wal / -shm
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        # a database left readable by an older grid is made private by the next start
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o755)
        older = shared / "older.db"
        older.touch()
        os.chmod(older, 0o644)
        subprocess.run([sys.executable, "-m", "halogrid", "keys", "list", "--db", str(older)],
                       check=True, capture_output=True)
        assert stat.S_IMODE(older.stat().st_mode) == 0o600
        # an existing directory (say the working directory) is left as it is
        assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    finally:
        os.umask(old_umask)


def test_database_of_an_older_grid_gains_new_columns(tmp_path):
    """A database created before keys could expire, be revoked or be limited to networks
    keeps its keys and gets the new columns (both engines)."""
    import sqlalchemy

    from halogrid.auth import hash_secret
    from sourceaddr import engine_of, grid_db, token_request

    with grid_db(tmp_path) as (db, opts):
        eng = engine_of(db)
        with eng.begin() as conn:
            conn.execute(sqlalchemy.text(
                "CREATE TABLE api_keys (key_id VARCHAR(32) NOT NULL PRIMARY KEY, "
                "secret_hash VARCHAR(128) NOT NULL, read_only BOOLEAN NOT NULL, "
                "name VARCHAR(255), created_at TIMESTAMP NOT NULL)"))
            conn.execute(sqlalchemy.text(
                "INSERT INTO api_keys VALUES ('0a1b2c3d', :h, false, 'old', :t)"),
                {"h": hash_secret("s" * 32), "t": "2024-01-01 00:00:00"})
        eng.dispose()
        with GridProcess(tmp_path, **opts) as g:
            assert token_request(g.url, "0a1b2c3d", "s" * 32).status_code == 200
            g.cli("keys", "revoke", "0a1b2c3d")
            assert token_request(g.url, "0a1b2c3d", "s" * 32).status_code == 401
