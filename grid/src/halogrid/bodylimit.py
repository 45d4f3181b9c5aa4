"""How large a request body may be, checked before anything parses it.

One ASGI middleware for every route. The limit is enforced when the application reads the
body, not when the request arrives: a route that checks credentials first (agent
registration, agent results) answers 401 without reading a byte of an unauthenticated body.
A declared `Content-Length` above the limit is refused before the first byte is read; a
chunked body is counted as it streams in and refused as soon as it passes the limit.
"""
from __future__ import annotations

import json
import re
from typing import Optional

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import PayloadTooLarge

KIB = 1024
MIB = 1024 * KIB

# route class -> largest body in bytes (API.md, PROTOCOL.md)
SCAN_RESULT_MAX = 4 * MIB     # POST /agent/v1/commands/{id}/result: a scan's findings
POLICY_MAX = 2 * MIB          # /v1|v2/policies: a configuration policy holds many rules
API_MAX = 256 * KIB           # any other /v1 body
SMALL_MAX = 64 * KIB          # registration, OAuth, agent start/firewall status, anything else

_RESULT = re.compile(r"^/agent/v1/commands/[^/]+/result/?$")
_POLICIES = re.compile(r"^/v[12]/policies(/|$)")


def body_limit(path: str) -> int:
    if _RESULT.match(path):
        return SCAN_RESULT_MAX
    if _POLICIES.match(path):
        return POLICY_MAX
    if path.startswith("/v1/"):
        return API_MAX
    return SMALL_MAX


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge("Request body too large: this endpoint takes at most %d bytes"
                           % limit)


def _content_length(scope: Scope) -> Optional[int]:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope.get("path") or "")
        declared = _content_length(scope)
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            if declared is not None and declared > limit:
                raise too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except PayloadTooLarge as exc:
            # raised where no route's handler saw it (the routes' handler renders it itself)
            if started:
                raise
            body = json.dumps({"error": exc.detail}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
