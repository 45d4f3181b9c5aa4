"""API keys: revocation, expiry and the client networks a key may be used from."""
from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys

import sqlalchemy

from halodev.launchers import GridProcess
from sourceaddr import bearer, call, engine_of, grid_db, token_request


def cli(g, *args):
    return subprocess.run([sys.executable, "-m", "halogrid", *args, "--db", g.db],
                          capture_output=True, text=True, env=g.env, timeout=60)


def create_key(g, *args):
    out = cli(g, "keys", "create", "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def listed(g):
    out = cli(g, "keys", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {k["key_id"]: k for k in json.loads(out.stdout)}


def test_revoked_key_and_its_tokens_stop_at_once(tmp_path):
    with grid_db(tmp_path) as (_db, opts), GridProcess(tmp_path, rate_limit=0, **opts) as g:
        key = create_key(g)
        other = create_key(g)
        r = token_request(g.url, key["key_id"], key["secret_key"])
        assert r.status_code == 200
        tok = r.json()["access_token"]
        other_tok = token_request(g.url, other["key_id"], other["secret_key"]).json()
        assert call(g.url + "/v1/groups", headers=bearer(tok)).status_code == 200

        out = cli(g, "keys", "revoke", key["key_id"], "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["state"] == "revoked"

        r = call(g.url + "/v1/groups", headers=bearer(tok))
        assert r.status_code == 401 and r.json() == {"error": "invalid_token"}
        assert token_request(g.url, key["key_id"], key["secret_key"]).status_code == 401
        keys = listed(g)
        assert keys[key["key_id"]]["state"] == "revoked"
        assert keys[key["key_id"]]["revoked_at"]
        # other keys are untouched
        assert keys[other["key_id"]]["state"] == "active"
        assert call(g.url + "/v1/groups",
                    headers=bearer(other_tok["access_token"])).status_code == 200
        # revoking again is harmless, an unknown key is an error
        assert cli(g, "keys", "revoke", key["key_id"]).returncode == 0
        out = cli(g, "keys", "revoke", "deadbeef")
        assert out.returncode == 1 and "deadbeef" in out.stderr


def test_key_expiry(tmp_path):
    with grid_db(tmp_path) as (db, opts), GridProcess(tmp_path, rate_limit=0, **opts) as g:
        soon = (_dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=120)).isoformat()
        short = create_key(g, "--expires-at", soon)
        assert short["expires_at"]
        # a token never outlives its key
        r = token_request(g.url, short["key_id"], short["secret_key"])
        assert r.status_code == 200 and 0 < r.json()["expires_in"] <= 120

        key = create_key(g, "--expires-in", "30")
        exp = _dt.datetime.fromisoformat(key["expires_at"].rstrip("Z"))
        assert _dt.timedelta(days=29) < exp - _dt.datetime.utcnow() <= _dt.timedelta(days=30)
        r = token_request(g.url, key["key_id"], key["secret_key"])
        assert r.status_code == 200 and r.json()["expires_in"] == 900
        tok = r.json()["access_token"]
        assert call(g.url + "/v1/groups", headers=bearer(tok)).status_code == 200
        assert listed(g)[key["key_id"]]["state"] == "active"

        # thirty days pass (for this key)
        eng = engine_of(db)
        with eng.begin() as conn:
            conn.execute(sqlalchemy.text("UPDATE api_keys SET expires_at = :t WHERE key_id = :k"),
                         {"t": _dt.datetime.utcnow() - _dt.timedelta(seconds=1),
                          "k": key["key_id"]})
        eng.dispose()
        assert call(g.url + "/v1/groups", headers=bearer(tok)).status_code == 401
        assert token_request(g.url, key["key_id"], key["secret_key"]).status_code == 401
        assert listed(g)[key["key_id"]]["state"] == "expired"

        # nonsense expiries are refused by the CLI
        for args in (["--expires-at", "2001-01-01T00:00:00Z"], ["--expires-in", "0"],
                     ["--expires-in", "-3"], ["--expires-at", "tomorrow"],
                     ["--expires-in", "1", "--expires-at", soon]):
            out = cli(g, "keys", "create", *args)
            assert out.returncode == 2, (args, out.stdout)


def test_allow_from_networks(tmp_path):
    with grid_db(tmp_path) as (_db, opts), GridProcess(tmp_path, rate_limit=0, **opts) as g:
        key = create_key(g, "--allow-from", "127.0.0.2/32", "--allow-from", "198.18.2.3/15")
        assert key["allow_from"] == ["127.0.0.2/32", "198.18.0.0/15"]
        assert listed(g)[key["key_id"]]["allow_from"] == ["127.0.0.2/32", "198.18.0.0/15"]
        kid, secret = key["key_id"], key["secret_key"]

        r = token_request(g.url, kid, secret, source="127.0.0.1")
        assert r.status_code == 403 and "127.0.0.1" in r.json()["error"]
        r = token_request(g.url, kid, secret, source="127.0.0.2")
        assert r.status_code == 200
        tok = r.json()["access_token"]
        assert call(g.url + "/v1/groups", source="127.0.0.2",
                    headers=bearer(tok)).status_code == 200
        # a token taken elsewhere is refused too
        assert call(g.url + "/v1/groups", source="127.0.0.1",
                    headers=bearer(tok)).status_code == 403
        # a local caller cannot claim another address with X-Forwarded-For
        spoof = dict(bearer(tok), **{"X-Forwarded-For": "127.0.0.2"})
        assert call(g.url + "/v1/groups", source="127.0.0.1", headers=spoof).status_code == 403
        # a wrong secret is still 401 (the key's networks are not revealed)
        assert token_request(g.url, kid, "0" * 32, source="127.0.0.1").status_code == 401
        # a key without networks works from anywhere
        free = create_key(g)
        assert token_request(g.url, free["key_id"], free["secret_key"],
                             source="127.0.0.3").status_code == 200

        for bad in ("198.18.0.300/15", "example.org", "198.18.0.0/40"):
            out = cli(g, "keys", "create", "--allow-from", bad)
            assert out.returncode == 2 and "allow-from" in out.stderr, bad


def test_forwarded_for_is_believed_from_named_proxies_only(tmp_path):
    with GridProcess(tmp_path, rate_limit=0, forwarded_allow_ips="127.0.0.1") as g:
        key = create_key(g, "--allow-from", "192.0.2.0/24")
        basic = {"X-Forwarded-For": "192.0.2.7"}
        r = token_request(g.url, key["key_id"], key["secret_key"])
        assert r.status_code == 403
        import base64
        basic["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % (key["key_id"], key["secret_key"])).encode()).decode()
        r = call(g.url + "/oauth/access_token", "POST", headers=basic)
        assert r.status_code == 200
        r = call(g.url + "/oauth/access_token", "POST", source="127.0.0.2", headers=basic)
        assert r.status_code == 403
