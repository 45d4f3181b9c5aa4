import base64

import pytest

from ansible_collections.cloudpassage.halo.plugins.module_utils import halo_api
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import (
    HaloAPIError,
    HaloAuthError,
    HaloClient,
    HaloError,
    HaloOutcomeUnknownError,
    build_base_url,
)


def client_for(fake, **kwargs):
    kwargs.setdefault("max_retries", 2)
    kwargs.setdefault("backoff_factor", 0)
    return HaloClient(api_host=fake.url, api_key="key-id", api_secret="s3cret", **kwargs)


@pytest.mark.parametrize("host, port, expected", [
    ("api.cloudpassage.com", None, "https://api.cloudpassage.com"),
    ("api.cloudpassage.com", 8443, "https://api.cloudpassage.com:8443"),
    ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080"),
    ("https://grid.example:9443/", 443, "https://grid.example:443"),
])
def test_base_url_from_host_or_url(host, port, expected):
    assert build_base_url(host, port) == expected


def test_base_url_rejects_other_schemes():
    with pytest.raises(HaloError, match="neither a host name"):
        build_base_url("ftp://example")


def test_token_is_fetched_once_with_basic_auth_and_reused(fake_halo):
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [], "count": 0}))
    client = client_for(fake_halo)
    client.get("/v1/groups")
    client.get("/v1/groups")
    token_calls = fake_halo.calls("POST", "/oauth/access_token")
    assert len(token_calls) == 1
    assert token_calls[0]["query"] == {"grant_type": "client_credentials"}
    expected = "Basic " + base64.b64encode(b"key-id:s3cret").decode()
    assert token_calls[0]["headers"]["Authorization"] == expected
    for call in fake_halo.calls("GET", "/v1/groups"):
        assert call["headers"]["Authorization"] == "Bearer token-1"
        assert call["headers"]["User-Agent"].startswith("ansible-collection-cloudpassage.halo/")


def test_token_is_renewed_when_it_expires(fake_halo, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(halo_api.time, "time", lambda: now[0])
    fake_halo.token_lifetime = 60
    fake_halo.on("GET", "/v1/groups", (200, {"groups": []}))
    client = client_for(fake_halo)
    client.get("/v1/groups")
    now[0] += 29  # inside the lifetime minus the safety margin
    client.get("/v1/groups")
    assert fake_halo.tokens_issued == 1
    now[0] += 2  # within TOKEN_EXPIRY_MARGIN of expiry: renew before the API refuses it
    client.get("/v1/groups")
    assert fake_halo.tokens_issued == 2


def test_a_401_renews_the_token_once_and_repeats_the_call(fake_halo):
    fake_halo.on("GET", "/v1/servers/abc", (401, {"error": "invalid_token"}), (200, {"server": {"id": "abc"}}))
    client = client_for(fake_halo)
    assert client.get_server("abc") == {"id": "abc"}
    assert fake_halo.tokens_issued == 2
    assert [c["headers"]["Authorization"] for c in fake_halo.calls("GET")] == ["Bearer token-1", "Bearer token-2"]


def test_a_second_401_is_an_auth_error(fake_halo):
    fake_halo.on("GET", "/v1/servers/abc", (401, {"error": "invalid_token"}))
    with pytest.raises(HaloAuthError, match="invalid_token"):
        client_for(fake_halo).get_server("abc")
    assert len(fake_halo.calls("GET")) == 2


def test_wrong_credentials_give_one_clear_line_without_the_secret(fake_halo):
    fake_halo.on("POST", "/oauth/access_token", (401, {"error": "invalid_client"}))
    with pytest.raises(HaloAuthError) as info:
        client_for(fake_halo).list_groups()
    message = str(info.value)
    assert "401" in message and "invalid_client" in message and "api_key" in message
    assert "s3cret" not in message and "\n" not in message


def test_pagination_follows_next_to_the_last_page_on_our_own_host(fake_halo):
    fake_halo.routes[("GET", "/v1/servers")] = [
        (200, {"servers": [{"id": "1"}, {"id": "2"}], "count": 5,
               "pagination": {"next": "https://elsewhere.example/v1/servers?page=2&per_page=2&state=active"}}),
        (200, {"servers": [{"id": "3"}, {"id": "4"}], "count": 5,
               "pagination": {"next": "https://elsewhere.example/v1/servers?page=3&per_page=2&state=active",
                              "previous": "https://elsewhere.example/v1/servers?page=1&per_page=2"}}),
        (200, {"servers": [{"id": "5"}], "count": 5, "pagination": {"previous": "x"}}),
    ]
    servers = client_for(fake_halo).list_servers(state=["active"])
    assert [s["id"] for s in servers] == ["1", "2", "3", "4", "5"]
    pages = fake_halo.calls("GET", "/v1/servers")
    assert [p["query"].get("page") for p in pages] == [None, "2", "3"]
    assert pages[0]["query"] == {"per_page": "100", "state": "active"}


@pytest.mark.parametrize("status, body, expected", [
    (404, {"resource": "group", "field": "id", "value": "nope"}, "HTTP 404: no group with id nope"),
    (422, {"message": "Validation Failed",
           "errors": [{"field": "name", "value": "", "code": "required", "details": "Name required"}]},
     "HTTP 422: Validation Failed (Name required)"),
    (403, {"error": "Forbidden: read-only key"}, "HTTP 403: Forbidden: read-only key"),
    (400, {"error": "group object missing"}, "HTTP 400: group object missing"),
])
def test_api_errors_carry_method_path_status_and_the_api_text(fake_halo, status, body, expected):
    fake_halo.on("PUT", "/v1/groups/nope", (status, body))
    with pytest.raises(HaloAPIError) as info:
        client_for(fake_halo).put("/v1/groups/nope", {"group": {"name": ""}})
    assert str(info.value) == "Halo API PUT /v1/groups/nope failed with " + expected
    assert info.value.status == status


def test_idempotent_calls_are_retried_on_gateway_errors(fake_halo):
    fake_halo.on("GET", "/v1/groups", (503, {"error": "busy"}), (200, {"groups": [{"id": "g"}]}))
    assert client_for(fake_halo).list_groups() == [{"id": "g"}]
    assert len(fake_halo.calls("GET", "/v1/groups")) == 2


def test_retries_are_bounded(fake_halo):
    fake_halo.on("GET", "/v1/groups", (502, {"error": "bad gateway"}))
    with pytest.raises(HaloError, match="502"):
        client_for(fake_halo, max_retries=2).list_groups()
    assert len(fake_halo.calls("GET", "/v1/groups")) == 3  # the call and two retries


def test_starting_a_scan_is_not_repeated_after_a_server_error(fake_halo):
    fake_halo.on("POST", "/v1/servers/s1/scans", (503, {"error": "busy"}), (202, {"command": {"id": "c"}}))
    with pytest.raises(HaloOutcomeUnknownError, match="HTTP 503: busy"):
        client_for(fake_halo).start_scan("s1", "sca")
    assert len(fake_halo.calls("POST", "/v1/servers/s1/scans")) == 1


def test_a_rate_limited_post_is_repeated_after_retry_after(fake_halo):
    fake_halo.on("POST", "/v1/servers/s1/scans", (429, {"error": "slow down"}, {"Retry-After": "1"}),
                 (202, {"command": {"id": "c1", "status": "queued"}}))
    assert client_for(fake_halo).start_scan("s1", "sca") == {"id": "c1", "status": "queued"}
    assert len(fake_halo.calls("POST", "/v1/servers/s1/scans")) == 2


def test_an_unreachable_api_is_one_clear_error():
    client = HaloClient(api_host="http://127.0.0.1:9", api_key="k", api_secret="s", max_retries=0)
    with pytest.raises(HaloError, match="cannot reach the Halo API at http://127.0.0.1:9"):
        client.list_groups()


def test_unknown_group_lists_the_known_ones(fake_halo):
    groups = [{"id": "1", "name": "ProdWebDirty"}, {"id": "2", "name": "ProdWebClean"}]
    fake_halo.on("GET", "/v1/groups", (200, {"groups": groups}))
    client = client_for(fake_halo)
    assert client.find_group("ProdWebClean")["id"] == "2"
    assert client.find_group("1")["name"] == "ProdWebDirty"
    with pytest.raises(HaloError, match="no Halo server group named or with id 'Nope'; known groups: "
                                        "ProdWebClean, ProdWebDirty"):
        client.find_group("Nope")


def test_read_only_keys_are_refused_before_any_write(fake_halo):
    fake_halo.scope = "read"
    with pytest.raises(HaloError, match="read-only"):
        client_for(fake_halo).require_write_scope()


def test_latest_scan_is_none_before_the_first_scan(fake_halo):
    fake_halo.on("GET", "/v1/servers/s1/sca", (404, {"resource": "scan", "field": "server_id", "value": "s1"}))
    assert client_for(fake_halo).latest_scan("s1", "sca") is None


def test_the_proxy_from_the_environment_carries_the_calls(fake_halo, monkeypatch):
    # The fake answers absolute-form proxy requests like direct ones, so it can stand in for a proxy.
    monkeypatch.setenv("HTTP_PROXY", fake_halo.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fake_halo.on("GET", "/v1/groups", (200, {"groups": [{"id": "g"}]}))
    client = HaloClient(api_host="http://halo.invalid:8080", api_key="k", api_secret="s", max_retries=0)
    assert client.list_groups() == [{"id": "g"}]
    assert {call["headers"]["Host"] for call in fake_halo.requests} == {"halo.invalid:8080"}


def test_no_proxy_bypasses_the_proxy(fake_halo, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", fake_halo.url)
    monkeypatch.setenv("NO_PROXY", "halo.invalid")
    client = HaloClient(api_host="http://halo.invalid:8080", api_key="k", api_secret="s", max_retries=0)
    with pytest.raises(HaloError, match="cannot reach the Halo API at http://halo.invalid:8080"):
        client.list_groups()
    assert fake_halo.requests == []


def test_a_time_limit_stops_a_call_and_its_retries_at_the_deadline(fake_halo):
    """An API that accepts requests but never answers (a frozen grid) must not hold a bounded
    task: the call waits only until the deadline, and no retry starts after it."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted, requests_seen = [], []

    def accept_and_stay_silent():
        while True:
            try:
                connection, dummy = listener.accept()
            except OSError:
                return
            accepted.append(connection)
            connection.settimeout(5)
            try:
                requests_seen.append(connection.recv(4096).split(b"\r\n", 1)[0])
            except OSError:
                pass

    threading.Thread(target=accept_and_stay_silent, daemon=True).start()
    client = HaloClient(api_host="http://127.0.0.1:%d" % listener.getsockname()[1], api_key="key-id",
                        api_secret="s3cret", timeout=300, max_retries=5, backoff_factor=0)
    client._token, client._token_expires = "token", float("inf")  # the token is not what is tested
    client.limit_total_time(0.5)
    try:
        with pytest.raises(HaloError) as failure:
            client.get("/v1/servers")
        # Without the limit, a GET that times out is retried 5 times, 300 s each.
        assert requests_seen.count(b"GET /v1/servers HTTP/1.1") == 1
        assert "timed out" in str(failure.value) or "time limit" in str(failure.value)
        with pytest.raises(HaloError, match="time limit ran out"):
            client.get("/v1/groups")
        assert not [line for line in requests_seen if b"/v1/groups" in line]
    finally:
        listener.close()
        for connection in accepted:
            connection.close()
