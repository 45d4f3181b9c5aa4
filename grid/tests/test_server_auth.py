"""OAuth tokens, scopes, read-only keys, token expiry and the rate limit."""
from __future__ import annotations

import time

import pytest
import requests

from halodev.launchers import GridProcess


def token(grid, key_id, secret, **kw):
    return requests.post(grid.url + "/oauth/access_token",
                         params={"grant_type": "client_credentials"},
                         auth=(key_id, secret), **kw)


def test_token_for_read_write_key(grid):
    key_id, secret = grid.create_api_key()
    r = token(grid, key_id, secret)
    assert r.status_code == 200
    data = r.json()
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == 900
    assert data["scope"] == "read+write"
    assert len(data["access_token"]) >= 32


def test_token_for_read_only_key(grid):
    key_id, secret = grid.create_api_key(read_only=True)
    assert token(grid, key_id, secret).json()["scope"] == "read"


@pytest.mark.parametrize("creds", [("nokey", "nosecret"), None])
def test_bad_credentials_are_401(grid, creds):
    if creds is None:
        r = requests.post(grid.url + "/oauth/access_token?grant_type=client_credentials")
    else:
        r = token(grid, *creds)
    assert r.status_code == 401
    assert "error" in r.json()


def test_wrong_secret_is_401(grid):
    key_id, _secret = grid.create_api_key()
    assert token(grid, key_id, "0" * 32).status_code == 401


def test_unsupported_grant_type_is_400(grid):
    key_id, secret = grid.create_api_key()
    r = requests.post(grid.url + "/oauth/access_token", params={"grant_type": "password"},
                      auth=(key_id, secret))
    assert r.status_code == 400


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_api_without_valid_token_is_401(grid, header):
    headers = {"Authorization": header} if header else {}
    r = requests.get(grid.url + "/v1/groups", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_token"}


def test_read_only_key_reads_but_cannot_write(grid, api, ro_api):
    group = api.create_group("ro-target")
    assert ro_api.get("/v1/groups").status_code == 200
    assert ro_api.get("/v1/groups/%s" % group["id"]).status_code == 200
    writes = [
        ("POST", "/v1/groups", {"group": {"name": "ro-new"}}),
        ("PUT", "/v1/groups/%s" % group["id"], {"group": {"name": "x"}}),
        ("DELETE", "/v1/groups/%s" % group["id"], None),
        ("POST", "/v1/policies", {"policy": {"name": "p"}}),
        ("POST", "/v2/policies", {"policy": {"name": "p"}}),
        ("POST", "/v1/firewall_policies", {"firewall_policy": {"name": "f"}}),
        ("POST", "/v1/firewall_zones", {"firewall_zone": {"name": "z", "ip_address": "1.2.3.4"}}),
        ("POST", "/v1/servers/%s/scans" % ("0" * 32), {"scan": {"module": "sca"}}),
        ("PUT", "/v1/servers/%s" % ("0" * 32), {"server": {"group_id": group["id"]}}),
        ("DELETE", "/v1/servers/%s" % ("0" * 32), None),
    ]
    for method, path, body in writes:
        r = ro_api.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert "read-only" in r.json()["error"]
    # nothing changed
    assert api.ok("GET", "/v1/groups/%s" % group["id"])["group"]["name"] == "ro-target"


def test_tokens_expire(tmp_path):
    with GridProcess(tmp_path, token_ttl=1) as g:
        key_id, secret = g.create_api_key()
        data = token(g, key_id, secret).json()
        assert data["expires_in"] == 1
        headers = {"Authorization": "Bearer " + data["access_token"]}
        assert requests.get(g.url + "/v1/groups", headers=headers).status_code == 200
        time.sleep(1.5)
        r = requests.get(g.url + "/v1/groups", headers=headers)
        assert r.status_code == 401
        assert r.json() == {"error": "invalid_token"}


def test_rate_limit_per_key(tmp_path):
    with GridProcess(tmp_path, rate_limit=5) as g:
        a = g.api()
        b = g.api()
        a.authenticate()  # the token call counts too
        for _ in range(4):
            assert a.get("/v1/groups").status_code == 200
        r = a.get("/v1/groups")
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert "error" in r.json()
        # another key is not limited by the first one's calls
        assert b.get("/v1/groups").status_code == 200


# -- failed authentication counts per client address, never per key -----------------------
def test_wrong_secrets_lock_out_the_address_not_the_key(tmp_path):
    from sourceaddr import bearer, call, token_request

    # rate_limit 30 < 40: counted against the key, the guesses used to lock its owner out;
    # the default --auth-fail-limit is 20 per minute
    with GridProcess(tmp_path, rate_limit=30) as g:
        key_id, secret = g.create_api_key()
        codes = [token_request(g.url, key_id, "0" * 32, source="127.0.0.2").status_code
                 for _ in range(40)]
        assert codes[:20] == [401] * 20
        assert set(codes[20:]) == {429}
        blocked = token_request(g.url, key_id, secret, source="127.0.0.2")
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        # the key's owner, elsewhere, is not affected
        r = token_request(g.url, key_id, secret, source="127.0.0.1")
        assert r.status_code == 200, r.body
        tok = r.json()["access_token"]
        assert call(g.url + "/v1/groups", headers=bearer(tok)).status_code == 200
        # and the blocked address cannot use a token either (it could test guesses with it)
        assert call(g.url + "/v1/groups", source="127.0.0.2",
                    headers=bearer(tok)).status_code == 429


def test_guessed_tokens_lock_out_the_address(tmp_path):
    from sourceaddr import bearer, call

    with GridProcess(tmp_path) as g:
        api = g.api()
        api.authenticate()
        codes = [call(g.url + "/v1/groups", source="127.0.0.3",
                      headers=bearer("%032x" % i)).status_code for i in range(23)]
        assert codes == [401] * 20 + [429] * 3
        assert api.get("/v1/groups").status_code == 200


def test_expired_tokens_are_not_counted_as_guesses(tmp_path):
    """A client whose token expired is told apart from one guessing: it re-authenticates."""
    import datetime as _dt

    import sqlalchemy

    from sourceaddr import engine_of

    with GridProcess(tmp_path, auth_fail_limit=3) as g:
        api = g.api()
        api.authenticate()
        old = api.token
        eng = engine_of(g.db)
        with eng.begin() as conn:
            conn.execute(sqlalchemy.text("UPDATE tokens SET expires_at = :t"),
                         {"t": _dt.datetime.utcnow() - _dt.timedelta(seconds=5)})
        eng.dispose()
        headers = {"Authorization": "Bearer " + old}
        codes = [requests.get(g.url + "/v1/groups", headers=headers).status_code
                 for _ in range(6)]
        assert codes == [401] * 6
        api.authenticate()  # the expired token is kept a while, not deleted by this
        assert requests.get(g.url + "/v1/groups", headers=headers).status_code == 401
        assert api.get("/v1/groups").status_code == 200


def test_made_up_key_ids_leave_no_counters(tmp_path):
    """Only keys that authenticated are counted: made-up ids cannot grow the grid."""
    from fastapi.testclient import TestClient

    from halogrid.app import create_app
    from halogrid.config import Config

    app = create_app(Config(db=str(tmp_path / "g.db"), rate_limit=600, auth_fail_limit=10**6))
    grid = app.state.grid
    client = TestClient(app)
    for i in range(300):
        r = client.post("/oauth/access_token?grant_type=client_credentials",
                        auth=("made-up-%d" % i, "x"))
        assert r.status_code == 401
    assert len(grid.limiter) == 0
    assert len(grid.auth_failures) == 1  # one client address


def test_failure_counters_are_bounded():
    from halogrid.ratelimit import FailureCounter, RateLimiter, client_key

    fc = FailureCounter(limit=3, window=60, max_entries=100)
    for i in range(5000):
        fc.fail("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255))
    assert len(fc) == 100
    for _ in range(3):
        fc.fail("192.0.2.1")
    assert fc.blocked("192.0.2.1") is not None
    assert fc.blocked("192.0.2.2") is None
    # one IPv6 host owns its /64: rotating addresses inside it does not escape the count
    for i in range(3):
        fc.fail("2001:db8::%x" % (i + 1))
    assert fc.blocked("2001:db8::ffff") is not None
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    rl = RateLimiter(limit=5, window=60, max_keys=10)
    for i in range(1000):
        rl.hit("k%d" % i)
    assert len(rl) == 10


def test_read_only_keys_see_no_key_ids_in_events(grid, api, ro_api):
    group = api.create_group("evt-actor")
    mine = [e for e in api.ok("GET", "/v1/events", params={"type": "group_created",
                                                           "per_page": 100})["events"]
            if e["group_id"] == group["id"]]
    assert [e["actor"] for e in mine] == [api.key_id]
    r = ro_api.get("/v1/events", params={"type": "group_created", "per_page": 100})
    assert r.status_code == 200
    theirs = [e for e in r.json()["events"] if e["group_id"] == group["id"]]
    assert [e["actor"] for e in theirs] == ["api_key"]
    assert api.key_id not in r.text
    one = ro_api.get("/v1/events/%s" % mine[0]["id"])
    assert one.json()["event"]["actor"] == "api_key" and api.key_id not in one.text
