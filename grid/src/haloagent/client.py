"""The grid's agent API (PROTOCOL.md) over urllib.

urllib's default opener honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment.
"""
from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional
from urllib.parse import urlencode


class GridError(Exception):
    """The grid answered with an error status (``status``) or could not be reached (None).
    ``reason`` is the grid's own text of the error (its ``{"error": ...}``), if it gave one."""

    def __init__(self, message: str, status: Optional[int] = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class _AnswerBeforeBody:
    """A connection that reads the answer the grid sent before taking the whole body.

    The grid refuses a body over its limit (413) or without a valid credential (401) without
    reading it, and closes the connection: sending the rest of the body then fails with a
    reset, and urllib would report that instead of the grid's answer. Here a failed send
    stops sending and the answer is read all the same; if there is none, reading it fails
    as the send would have."""

    _refused = False

    def send(self, data: Any) -> None:
        if self._refused:
            return
        if self.sock is None:  # connecting (and a proxy tunnel) fails as usual
            self.connect()  # type: ignore[attr-defined]
        try:
            super().send(data)  # type: ignore[misc]
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            self._refused = True  # (TLS: the peer's close shows as an EOF)


class _HTTPConnection(_AnswerBeforeBody, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_AnswerBeforeBody, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._grid_context = context

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_HTTPSConnection, req, context=self._grid_context)


class Credentials:
    def __init__(self, server_id: str, agent_secret: str) -> None:
        self.server_id = server_id
        self.agent_secret = agent_secret

    def header(self) -> str:
        return "Agent %s:%s" % (self.server_id, self.agent_secret)


class GridClient:
    def __init__(self, base_url: str, ca_file: Optional[str] = None, insecure: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        context = ssl.create_default_context(cafile=ca_file)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        # subclasses of the default handlers replace them (proxies are handled as before)
        self._opener = urllib.request.build_opener(_HTTPHandler(), _HTTPSHandler(context))
        self.credentials: Optional[Credentials] = None

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30,
                headers: Optional[Dict[str, str]] = None) -> Any:
        """The decoded JSON answer (None when empty). Raises GridError."""
        all_headers = {"Accept": "application/json", "User-Agent": "haloagent"}
        if self.credentials is not None:
            all_headers["Authorization"] = self.credentials.header()
        data = b"" if method != "GET" else None  # an explicit Content-Length: 0
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers=all_headers)
        try:
            with self._opener.open(request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            reason = _error_text(exc)
            raise GridError("%s %s: HTTP %s %s" % (method, path, exc.code, reason),
                            exc.code, reason) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # refused, DNS, TLS, timeout, a connection closed without or during an answer
            reason = getattr(exc, "reason", exc)
            raise GridError("%s %s: %s" % (method, path, reason)) from exc
        return json.loads(payload) if payload.strip() else None

    # -- endpoints ------------------------------------------------------------------------
    def register(self, agent_key: str, facts: Dict[str, Any]) -> Dict[str, Any]:
        return self.request("POST", "/agent/v1/register", facts,
                            headers={"X-Daemon-Key": agent_key})

    def poll(self, wait: int, firewall_version: int) -> Dict[str, Any]:
        query = urlencode({"wait": wait, "firewall_version": firewall_version})
        # the grid holds the request up to `wait` seconds: allow for that plus a slow network
        return self.request("GET", "/agent/v1/poll?" + query, timeout=wait + 30) or {}

    def start_command(self, command_id: str) -> None:
        self.request("POST", "/agent/v1/commands/%s/start" % command_id)

    def command_result(self, command_id: str, result: Dict[str, Any]) -> None:
        self.request("POST", "/agent/v1/commands/%s/result" % command_id, result)

    def fim_objects(self, command_id: str, objects: List[Dict[str, Any]]) -> None:
        """One chunk (at most 5,000) of a fim command's objects."""
        self.request("POST", "/agent/v1/commands/%s/fim_objects" % command_id, {"objects": objects},
                     timeout=120)

    def firewall(self) -> Dict[str, Any]:
        return self.request("GET", "/agent/v1/firewall") or {}

    def firewall_status(self, version: int, status: str, message: str = "") -> None:
        self.request("POST", "/agent/v1/firewall/status",
                     {"version": version, "status": status, "message": message})


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        return exc.reason or ""
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return exc.reason or ""
