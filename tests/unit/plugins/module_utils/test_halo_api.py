"""HaloClient (plugins/module_utils/halo_api.py) against a scripted API on loopback: tokens,
pagination, retries, API errors, proxies and time limits; connection options no call could
use; the collection version in the User-Agent.

HaloClient's errors say what to do: a host that does not resolve or refuses, the wrong
scheme for what the server speaks (the ways real TLS servers answer plain HTTP: a 400 page,
TLS bytes, a closed connection), and a token answer that is not what OAuth promises. Servers
are real sockets on loopback; only name resolution is faked (no DNS leaves the machine).
"""

import base64
import json
import os
import re
import socket
import ssl
import threading

import pytest
import yaml

from ansible_collections.cloudpassage.halo.plugins.module_utils import halo_api
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import (
    HaloAPIError,
    HaloAuthError,
    HaloClient,
    HaloClientError,
    HaloOutcomeUnknownError,
    build_base_url,
    check_connection_options,
    collection_version,
    user_agent,
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
    with pytest.raises(HaloClientError, match="neither a host name"):
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
    with pytest.raises(HaloClientError, match="502"):
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
    with pytest.raises(HaloClientError, match="cannot reach the Halo API at http://127.0.0.1:9"):
        client.list_groups()


def test_unknown_group_lists_the_known_ones(fake_halo):
    groups = [{"id": "1", "name": "ProdWebDirty"}, {"id": "2", "name": "ProdWebClean"}]
    fake_halo.on("GET", "/v1/groups", (200, {"groups": groups}))
    client = client_for(fake_halo)
    assert client.find_group("ProdWebClean")["id"] == "2"
    assert client.find_group("1")["name"] == "ProdWebDirty"
    with pytest.raises(HaloClientError, match="no Halo server group named or with id 'Nope'; known groups: "
                                              "ProdWebClean, ProdWebDirty"):
        client.find_group("Nope")


def test_read_only_keys_are_refused_before_any_write(fake_halo):
    fake_halo.scope = "read"
    with pytest.raises(HaloClientError, match="read-only"):
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
    with pytest.raises(HaloClientError, match="cannot reach the Halo API at http://halo.invalid:8080"):
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
        with pytest.raises(HaloClientError) as failure:
            client.get("/v1/servers")
        # Without the limit, a GET that times out is retried 5 times, 300 s each.
        assert requests_seen.count(b"GET /v1/servers HTTP/1.1") == 1
        assert "timed out" in str(failure.value) or "time limit" in str(failure.value)
        with pytest.raises(HaloClientError, match="time limit ran out"):
            client.get("/v1/groups")
        assert not [line for line in requests_seen if b"/v1/groups" in line]
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


# -- the collection version in the User-Agent ----------------------------------------------

def test_the_user_agent_carries_the_version_of_the_collection_metadata():
    """galaxy.yml in a checkout (pytest here), MANIFEST.json in a built collection (ansible-test)."""
    root = halo_api._COLLECTION_ROOT
    if os.path.exists(os.path.join(root, "MANIFEST.json")):
        with open(os.path.join(root, "MANIFEST.json")) as manifest:
            written = json.load(manifest)["collection_info"]["version"]
    else:
        with open(os.path.join(root, "galaxy.yml")) as galaxy:
            written = yaml.safe_load(galaxy)["version"]
    assert written and halo_api.USER_AGENT == "ansible-collection-cloudpassage.halo/%s" % written


def test_an_installed_collection_reads_its_manifest_first(tmp_path):
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"collection_info": {"version": "2.3.4"}}))
    (tmp_path / "galaxy.yml").write_text("version: 9.9.9\n")
    assert collection_version(str(tmp_path)) == "2.3.4"


@pytest.mark.parametrize("galaxy, expected", [
    ("namespace: cloudpassage\nname: halo\nversion: 1.2.0\nreadme: README.md\n", "1.2.0"),
    ("version: '1.2.0-dev0'  # next release\n", "1.2.0-dev0"),
    ("name: halo\ndependencies:\n  version: 5.0.0\n", None),  # only a top-level version counts
])
def test_a_checkout_reads_galaxy_yml(tmp_path, galaxy, expected):
    (tmp_path / "galaxy.yml").write_text(galaxy)
    assert collection_version(str(tmp_path)) == expected


def test_a_broken_manifest_falls_back_to_galaxy_yml(tmp_path):
    (tmp_path / "MANIFEST.json").write_text("{not json")
    (tmp_path / "galaxy.yml").write_text("version: 1.0.1\n")
    assert collection_version(str(tmp_path)) == "1.0.1"


def test_without_metadata_the_user_agent_has_no_version(tmp_path):
    """A module's AnsiballZ payload carries neither file."""
    assert collection_version(str(tmp_path)) is None
    assert user_agent(None) == "ansible-collection-cloudpassage.halo"
    assert user_agent("1.0.0") == "ansible-collection-cloudpassage.halo/1.0.0"


# -- connection options ---------------------------------------------------------------------

@pytest.mark.parametrize("params, message", [
    ({"api_port": 70000}, "api_port must be between 1 and 65535 (or 0 for the port of api_host), not 70000"),
    ({"api_port": -1}, "api_port must be between 1 and 65535 (or 0 for the port of api_host), not -1"),
    ({"timeout": 0}, "timeout must be at least 1"),
    ({"timeout": -1}, "timeout must be at least 1"),
    ({"max_retries": -1}, "max_retries must be 0 or more, not -1"),
])
def test_connection_options_no_call_could_use_are_named(params, message):
    with pytest.raises(HaloClientError, match=re.escape(message)):
        check_connection_options(params)
    with pytest.raises(HaloClientError, match=re.escape(message)):
        HaloClient.from_params(dict(dict(api_host="http://127.0.0.1:1", api_key="k", api_secret="s"), **params))


def test_connection_options_at_their_limits_are_fine():
    check_connection_options({"api_port": 65535, "timeout": 1, "max_retries": 0})
    check_connection_options({"api_port": 0})  # AWX's credential type injects 0 for "the port of api_host"
    check_connection_options({"api_port": None, "timeout": None, "max_retries": None})


def test_a_port_out_of_range_in_the_url_is_named():
    with pytest.raises(HaloClientError, match="port of api_host"):
        HaloClient(api_host="http://127.0.0.1:70000", api_key="k", api_secret="s")


# -- what a failed connection or token answer says (real sockets on loopback) -------------

NGINX_400 = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 58\r\nConnection: close\r\n\r\n"
             b"<html>The plain HTTP request was sent to HTTPS port</html>")
TLS_ALERT = b"\x15\x03\x01\x00\x02\x02\x50"  # what OpenSSL's s_server answers to plain HTTP
SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1\r\n"  # api_host pointed at an ssh port


class RawServer:
    """A loopback server that answers every plain-HTTP request with ``answer`` (raw bytes, or
    None to close without a word) and, given a certificate, completes TLS handshakes on the
    same port, as a TLS server does."""

    def __init__(self, answer=None, cert=None, tls_version=None, silent=False):
        self.answer = answer
        self.silent = threading.Event() if silent else None
        self.context = None
        if cert:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(*cert)
            if tls_version:
                self.context.set_ciphers("DEFAULT:@SECLEVEL=0")
                self.context.minimum_version = self.context.maximum_version = tls_version
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            try:
                self._answer(conn)
            except (OSError, ssl.SSLError):
                pass

    def _answer(self, conn):
        conn.settimeout(5)
        first = conn.recv(1, socket.MSG_PEEK)
        if first == b"\x16" and self.context:  # a TLS ClientHello
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1024)
            return
        request = b""
        while b"\r\n\r\n" not in request and first != b"\x16":  # a plain server rejects a ClientHello at once
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        self.requests.append(request)
        if self.silent:
            self.silent.wait(10)
        if self.answer:
            conn.sendall(self.answer)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.silent:
            self.silent.set()
        self.sock.close()


def client(url, **kwargs):
    return HaloClient(api_host=url, api_key="key-id", api_secret="s3cret", max_retries=0, backoff_factor=0, **kwargs)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    pytest.importorskip("cryptography")
    from halodev.launchers import make_self_signed_cert  # needs cryptography

    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


def test_a_refused_connection_asks_whether_halo_is_reachable():
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % bound.getsockname()[1]
        with pytest.raises(HaloClientError) as error:
            client(url).list_groups()
    msg = str(error.value)
    assert "connection refused" in msg.lower() and "is Halo reachable at %s?" % url in msg, msg
    assert "POST /oauth/access_token" in msg and "Max retries" not in msg, msg


def test_a_host_name_that_does_not_resolve_asks_whether_halo_is_reachable(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "halo.unresolvable.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(HaloClientError) as error:
        client("halo.unresolvable.test").list_groups()
    msg = str(error.value)
    assert "halo.unresolvable.test does not resolve" in msg, msg
    assert "is Halo reachable at https://halo.unresolvable.test?" in msg and "POST /oauth/access_token" in msg, msg


def test_https_at_a_plain_http_server_says_to_use_http(fake_halo):
    url = fake_halo.url.replace("http://", "https://")
    with pytest.raises(HaloClientError) as error:
        client(url).list_groups()
    msg = str(error.value)
    assert "plain HTTP" in msg and "use %s" % fake_halo.url in msg, msg
    assert "ca_path" not in msg and "validate_certs" not in msg, msg


@pytest.mark.parametrize("answer", [NGINX_400, TLS_ALERT, None], ids=["400-page", "tls-bytes", "closed"])
def test_http_at_a_tls_server_says_to_use_https(cert, answer):
    with RawServer(answer, cert=cert) as server:
        with pytest.raises(HaloClientError) as error:
            client("http://127.0.0.1:%d" % server.port).list_groups()
    msg = str(error.value)
    assert "TLS" in msg and "use https://127.0.0.1:%d" % server.port in msg, msg
    assert "api_key" not in msg, msg  # a 400 is not a credentials problem here


@pytest.mark.parametrize("answer", [SSH_BANNER, None], ids=["ssh-server", "closed"])
def test_a_server_without_tls_that_breaks_off_is_not_called_tls(answer):
    with RawServer(answer) as server:
        with pytest.raises(HaloClientError) as error:
            client("http://127.0.0.1:%d" % server.port).list_groups()
    assert "https://" not in str(error.value)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
def test_a_tls_server_that_answers_plain_requests_in_http_is_not_called_plain_http(cert):
    """nginx answers a plain request with an HTTP 400 page; a handshake that fails for another
    reason (here: a server stuck at TLS 1.0, below what the client accepts) is no sign of
    plain HTTP."""
    with RawServer(NGINX_400, cert=cert, tls_version=ssl.TLSVersion.TLSv1) as server:
        with pytest.raises(HaloClientError) as error:
            client("https://127.0.0.1:%d" % server.port).list_groups()
    msg = str(error.value)
    assert "plain HTTP" not in msg and "http://" not in msg.replace("https://", ""), msg


def test_a_server_that_stays_silent_is_not_probed():
    """A read timeout is no sign of TLS; probing would only add to a bounded task's time."""
    with RawServer(silent=True) as server:
        with pytest.raises(HaloClientError) as error:
            client("http://127.0.0.1:%d" % server.port, timeout=1).list_groups()
        assert server.connections == 1  # the token request alone, no probe
    assert "https://" not in str(error.value)


def test_an_untrusted_certificate_still_points_to_ca_path(cert):
    with RawServer(NGINX_400, cert=cert) as server:
        with pytest.raises(HaloClientError, match="ca_path"):
            client("https://127.0.0.1:%d" % server.port).list_groups()


@pytest.mark.parametrize("body, what", [
    ({"access_token": "t", "token_type": "bearer", "expires_in": "soon"}, "expires_in"),
    ({"token_type": "bearer", "expires_in": 900}, "access_token"),
    ({"access_token": {"value": "t"}, "expires_in": 900}, "access_token"),
    (["token"], "not a JSON object"),
])
def test_a_malformed_token_answer_is_named(fake_halo, body, what):
    fake_halo.on("POST", "/oauth/access_token", (200, body))
    with pytest.raises(HaloClientError) as error:
        client(fake_halo.url).list_groups()
    msg = str(error.value)
    assert "token answer" in msg and "malformed" in msg and what in msg, msg
    assert "s3cret" not in msg


def test_a_token_answer_that_is_not_json_is_named():
    page = b"<html>sign in</html>"
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
              % (len(page), page))
    with RawServer(answer) as server:
        with pytest.raises(HaloClientError) as error:
            client("http://127.0.0.1:%d" % server.port).list_groups()
    msg = str(error.value)
    assert "token answer" in msg and "malformed" in msg and "not JSON" in msg and "text/html" in msg, msg
