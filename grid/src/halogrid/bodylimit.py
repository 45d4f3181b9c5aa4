"""How large a request body may be, checked before anything parses it.

One ASGI middleware for every route. The limit is enforced when the application reads the
body, not when the request arrives: a route that checks credentials first (agent
registration, agent results) answers 401 without reading a byte of an unauthenticated body.
A declared `Content-Length` above the limit is refused before the first byte is read; a
chunked body is counted as it streams in and refused as soon as it passes the limit.

The limits are settings of the grid (`halogrid serve --result-body-limit ...`, config.py);
the constants below are their defaults. The body limit of a scan result only decides how many
bytes are read: what a result may hold (10,000 findings, ...) is bounded on its own
(agent_schemas.py, api/agent.py), whatever the body limit.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import PayloadTooLarge

KIB = 1024
MIB = 1024 * KIB

# route class -> largest body in bytes by default (API.md, PROTOCOL.md)
SCAN_RESULT_MAX = 4 * MIB     # POST /agent/v1/commands/{id}/result: a scan's findings,
                              # and .../fim_objects: a chunk of 5,000 fim objects
POLICY_MAX = 2 * MIB          # /v1|v2/policies: a configuration policy holds many rules
API_MAX = 256 * KIB           # any other /v1 body
SMALL_MAX = 64 * KIB          # registration, OAuth, agent start/firewall status, anything else

# what a limit may be set to: at least what a registration or an agent's short `failed`
# result needs, at most what one request may reasonably hold in memory
LIMIT_MIN = 4 * KIB
LIMIT_MAX = 1024 * MIB

_RESULT = re.compile(r"^/agent/v1/commands/[^/]+/(result|fim_objects)/?$")
_POLICIES = re.compile(r"^/v[12]/policies(/|$)")


@dataclass(frozen=True)
class BodyLimits:
    result: int = SCAN_RESULT_MAX
    policy: int = POLICY_MAX
    api: int = API_MAX
    other: int = SMALL_MAX

    @classmethod
    def of(cls, config: Any) -> "BodyLimits":
        """The limits a grid's Config sets (config.py)."""
        return cls(result=config.result_body_limit, policy=config.policy_body_limit,
                   api=config.api_body_limit, other=config.other_body_limit)

    def for_path(self, path: str) -> int:
        if _RESULT.match(path):
            return self.result
        if _POLICIES.match(path):
            return self.policy
        if path.startswith("/v1/"):
            return self.api
        return self.other


_UNITS = {"": 1, "k": KIB, "kib": KIB, "m": MIB, "mib": MIB}


def parse_size(text: str) -> int:
    """`65536`, `64KiB`, `64k`, `4MiB`, `4m` -> bytes (binary units); ValueError otherwise
    or outside LIMIT_MIN..LIMIT_MAX."""
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text or "")
    unit = match and _UNITS.get(match.group(2).lower())
    if not unit:
        raise ValueError("not a size in bytes (such as 65536, 64KiB or 4MiB): %r" % text)
    size = int(match.group(1)) * unit
    if not LIMIT_MIN <= size <= LIMIT_MAX:
        raise ValueError("a body limit must be %d bytes (4KiB) to %d bytes (1024MiB): %r"
                         % (LIMIT_MIN, LIMIT_MAX, text))
    return size


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
    def __init__(self, app: ASGIApp, limits: Optional[BodyLimits] = None) -> None:
        self.app = app
        self.limits = limits or BodyLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope.get("path") or "")
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
