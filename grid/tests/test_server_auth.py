"""OAuth tokens, scopes, read-only keys, token expiry and the rate limit."""
from __future__ import annotations

import time

import pytest
import requests

from halogrid.testing import GridProcess


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
