"""HaloClient's errors say what to do: a host that does not resolve or refuses, the wrong
scheme for what the server speaks (the ways real TLS servers answer plain HTTP: a 400 page,
TLS bytes, a closed connection), and a token answer that is not what OAuth promises. Servers
are real sockets on loopback; only name resolution is faked (no DNS leaves the machine)."""

import socket
import ssl
import threading

import pytest

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloClient, HaloError

pytest.importorskip("cryptography")
from halogrid.testing import make_self_signed_cert  # noqa: E402  (needs cryptography)

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
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


def test_a_refused_connection_asks_whether_halo_is_reachable():
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % bound.getsockname()[1]
        with pytest.raises(HaloError) as error:
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
    with pytest.raises(HaloError) as error:
        client("halo.unresolvable.test").list_groups()
    msg = str(error.value)
    assert "halo.unresolvable.test does not resolve" in msg, msg
    assert "is Halo reachable at https://halo.unresolvable.test?" in msg and "POST /oauth/access_token" in msg, msg


def test_https_at_a_plain_http_server_says_to_use_http(fake_halo):
    url = fake_halo.url.replace("http://", "https://")
    with pytest.raises(HaloError) as error:
        client(url).list_groups()
    msg = str(error.value)
    assert "plain HTTP" in msg and "use %s" % fake_halo.url in msg, msg
    assert "ca_path" not in msg and "validate_certs" not in msg, msg


@pytest.mark.parametrize("answer", [NGINX_400, TLS_ALERT, None], ids=["400-page", "tls-bytes", "closed"])
def test_http_at_a_tls_server_says_to_use_https(cert, answer):
    with RawServer(answer, cert=cert) as server:
        with pytest.raises(HaloError) as error:
            client("http://127.0.0.1:%d" % server.port).list_groups()
    msg = str(error.value)
    assert "TLS" in msg and "use https://127.0.0.1:%d" % server.port in msg, msg
    assert "api_key" not in msg, msg  # a 400 is not a credentials problem here


@pytest.mark.parametrize("answer", [SSH_BANNER, None], ids=["ssh-server", "closed"])
def test_a_server_without_tls_that_breaks_off_is_not_called_tls(answer):
    with RawServer(answer) as server:
        with pytest.raises(HaloError) as error:
            client("http://127.0.0.1:%d" % server.port).list_groups()
    assert "https://" not in str(error.value)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
def test_a_tls_server_that_answers_plain_requests_in_http_is_not_called_plain_http(cert):
    """nginx answers a plain request with an HTTP 400 page; a handshake that fails for another
    reason (here: a server stuck at TLS 1.0, below what the client accepts) is no sign of
    plain HTTP."""
    with RawServer(NGINX_400, cert=cert, tls_version=ssl.TLSVersion.TLSv1) as server:
        with pytest.raises(HaloError) as error:
            client("https://127.0.0.1:%d" % server.port).list_groups()
    msg = str(error.value)
    assert "plain HTTP" not in msg and "http://" not in msg.replace("https://", ""), msg


def test_a_server_that_stays_silent_is_not_probed():
    """A read timeout is no sign of TLS; probing would only add to a bounded task's time."""
    with RawServer(silent=True) as server:
        with pytest.raises(HaloError) as error:
            client("http://127.0.0.1:%d" % server.port, timeout=1).list_groups()
        assert server.connections == 1  # the token request alone, no probe
    assert "https://" not in str(error.value)


def test_an_untrusted_certificate_still_points_to_ca_path(cert):
    with RawServer(NGINX_400, cert=cert) as server:
        with pytest.raises(HaloError, match="ca_path"):
            client("https://127.0.0.1:%d" % server.port).list_groups()


@pytest.mark.parametrize("body, what", [
    ({"access_token": "t", "token_type": "bearer", "expires_in": "soon"}, "expires_in"),
    ({"token_type": "bearer", "expires_in": 900}, "access_token"),
    ({"access_token": {"value": "t"}, "expires_in": 900}, "access_token"),
    (["token"], "not a JSON object"),
])
def test_a_malformed_token_answer_is_named(fake_halo, body, what):
    fake_halo.on("POST", "/oauth/access_token", (200, body))
    with pytest.raises(HaloError) as error:
        client(fake_halo.url).list_groups()
    msg = str(error.value)
    assert "token answer" in msg and "malformed" in msg and what in msg, msg
    assert "s3cret" not in msg


def test_a_token_answer_that_is_not_json_is_named():
    page = b"<html>sign in</html>"
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
              % (len(page), page))
    with RawServer(answer) as server:
        with pytest.raises(HaloError) as error:
            client("http://127.0.0.1:%d" % server.port).list_groups()
    msg = str(error.value)
    assert "token answer" in msg and "malformed" in msg and "not JSON" in msg and "text/html" in msg, msg
