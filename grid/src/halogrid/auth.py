"""API keys, OAuth tokens, agent credentials, scopes and the rate limit."""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Dict, Iterable, List, Optional, Tuple

from fastapi import Request
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from .errors import Forbidden, Gone, RateLimited, Unauthorized
from .db import transaction
from .models import ApiKey, Server, Token, utcnow

log = logging.getLogger(__name__)


# Expired tokens are kept this long, so that a client presenting one (it re-authenticates
# then) is told from one guessing tokens, whose failures count against its address.
EXPIRED_TOKEN_KEPT = _dt.timedelta(hours=1)


def hash_secret(secret: str) -> str:
    """Secrets are long random strings, so a plain SHA-256 is enough to keep them unreadable."""
    return "sha256$" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_secret(secret: str, stored: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored or "")


def parse_networks(values: Optional[Iterable[str]]) -> List[str]:
    """CIDR strings (or single addresses) -> normalised network strings; ValueError if one
    is not a network."""
    out: List[str] = []
    for raw in values or ():
        net = ipaddress.ip_network(str(raw).strip(), strict=False)
        if str(net) not in out:
            out.append(str(net))
    return out


def address_allowed(host: Optional[str], networks: Optional[Iterable[str]]) -> bool:
    """Whether a client address lies in one of `networks` (none given: anywhere)."""
    networks = list(networks or ())
    if not networks:
        return True
    try:
        addr = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for raw in networks:
        try:
            if addr in ipaddress.ip_network(raw, strict=False):
                return True
        except (ValueError, TypeError):
            continue
    return False


def create_api_key(db: Session, read_only: bool = False, name: Optional[str] = None,
                   expires_at: Optional[_dt.datetime] = None,
                   allow_from: Optional[Iterable[str]] = None) -> Tuple[str, str]:
    while True:
        key_id = secrets.token_hex(4)
        if db.get(ApiKey, key_id) is None:
            break
    secret = secrets.token_hex(16)
    db.add(ApiKey(key_id=key_id, secret_hash=hash_secret(secret), read_only=read_only,
                  name=name, expires_at=expires_at,
                  allow_from=parse_networks(allow_from) or None))
    return key_id, secret


def revoke_api_key(db: Session, key_id: str) -> Optional[ApiKey]:
    """Revoke a key and drop its tokens (they stop working at once); None if no such key."""
    key = db.get(ApiKey, key_id)
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    db.execute(delete(Token).where(Token.key_id == key_id))
    return key


def key_state(key: Any, now: Optional[_dt.datetime] = None) -> str:
    """active | revoked | expired (`key`: an ApiKey, or anything with its revoked_at and
    expires_at)"""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def parse_basic(header: Optional[str]) -> Optional[Tuple[str, str]]:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if ":" not in raw:
        return None
    key_id, secret = raw.split(":", 1)
    return key_id, secret


def issue_token(db: Session, key: ApiKey, ttl: int) -> Tuple[str, str, int]:
    """A new token of `key`: (token, scope, seconds it lives). A token never outlives its key."""
    now = utcnow()
    db.execute(delete(Token).where(Token.expires_at < now - EXPIRED_TOKEN_KEPT))
    token = secrets.token_hex(16)
    scope = "read" if key.read_only else "read+write"
    expires = now + _dt.timedelta(seconds=ttl)
    if key.expires_at is not None and key.expires_at < expires:
        expires = key.expires_at
        ttl = max(1, int((expires - now).total_seconds()))
    db.add(Token(token_hash=hash_secret(token), key_id=key.key_id, scope=scope,
                 expires_at=expires))
    return token, scope, ttl


def client_host(request: Request) -> Optional[str]:
    """The caller's address (the TCP peer; behind a proxy only with --forwarded-allow-ips)."""
    return request.client.host if request.client else None


def check_blocked(request: Request) -> None:
    """429 for an address that failed to authenticate too often (per address, not per key:
    guessing at a key never locks its owner out)."""
    grid = request.app.state.grid
    wait = grid.auth_failures.blocked(client_host(request))
    if wait is not None:
        log.info("rate limit: %s failed to authenticate too often (429, Retry-After %ss)",
                 client_host(request), wait)
        raise RateLimited(wait)


def check_network(request: Request, key: Any) -> None:
    """403 when the key (an ApiKey, or anything with its key_id and allow_from) may be used
    only from networks the caller is not in."""
    host = client_host(request)
    if not address_allowed(host, key.allow_from):
        log.info("API key %s refused from %s: not in its allowed networks", key.key_id, host)
        raise Forbidden("This API key may not be used from %s" % (host or "this address"))


@dataclass
class Principal:
    key_id: str
    scope: str

    @property
    def can_write(self) -> bool:
        return self.scope == "read+write"


def _bearer(request: Request) -> Optional[str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


# a token and its key, in one statement made once (see agent_lookup): every API call runs it
_TOKEN_AND_KEY = (
    select(Token.key_id, Token.scope, Token.expires_at, ApiKey.key_id.label("key_found"),
           ApiKey.revoked_at, ApiKey.expires_at.label("key_expires_at"), ApiKey.allow_from)
    .outerjoin(ApiKey, ApiKey.key_id == Token.key_id)
    .where(Token.token_hash == bindparam("token_hash")))


def authenticate(request: Request) -> Principal:
    grid = request.app.state.grid
    token = _bearer(request)
    if not token:
        raise Unauthorized("invalid_token")
    check_blocked(request)
    with transaction(grid.Session, read_only=True) as db:
        now = utcnow()
        # the key is read on every call: a revoked or expired key's tokens stop at once
        row = db.connection().execute(_TOKEN_AND_KEY, {"token_hash": hash_secret(token)}).first()
    if row is None:
        grid.auth_failures.fail(client_host(request))
        raise Unauthorized("invalid_token")
    if row.expires_at <= now:  # a real token, only old: its client re-authenticates
        raise Unauthorized("invalid_token")
    key = SimpleNamespace(key_id=row.key_id, revoked_at=row.revoked_at,
                          expires_at=row.key_expires_at, allow_from=row.allow_from)
    if row.key_found is None or key_state(key, now) != "active":
        raise Unauthorized("invalid_token")
    check_network(request, key)
    principal = Principal(key_id=row.key_id, scope=row.scope)
    wait = grid.limiter.hit(principal.key_id)
    if wait is not None:
        log.info("rate limit: API key %s throttled (429, Retry-After %ss)", principal.key_id, wait)
        raise RateLimited(wait)
    return principal


def api_reader(request: Request) -> Principal:
    """Dependency: any valid token."""
    return authenticate(request)


def api_writer(request: Request) -> Principal:
    """Dependency: a token of a read+write key."""
    principal = authenticate(request)
    if not principal.can_write:
        raise Forbidden("This API key is read-only: scope %s cannot %s %s"
                        % (principal.scope, request.method, request.url.path))
    return principal


def secret_matches(presented: str, expected: str) -> bool:
    """Constant-time comparison of a secret from a header with a stored one. Header values
    arrive decoded as Latin-1, so any byte is a character: compared as bytes, a non-ASCII
    byte is simply a wrong secret (hmac.compare_digest refuses non-ASCII text)."""
    return bool(presented) and hmac.compare_digest(presented.encode("latin-1", "replace"),
                                                   (expected or "").encode("utf-8"))


def _agent_credential(request: Request) -> Tuple[Optional[str], str]:
    """(server id, secret) of `Authorization: Agent <server_id>:<secret>`; the id is None
    when it cannot name a server (401 without a credential, 429 for a blocked address)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("agent "):
        raise Unauthorized("missing agent credential")
    check_blocked(request)
    server_id, _, secret = header[6:].strip().partition(":")
    # a server id is 32 hex characters; anything else (too long, NUL) names no server
    if secret and 0 < len(server_id) <= 32 and server_id.isascii() and server_id.isalnum():
        return server_id, secret
    return None, secret


def _agent_verified(request: Request, server_id: Optional[str], secret: str,
                    found: Any) -> Any:
    """`found` (a Server or a row with secret_hash and state) if the secret is its own and
    the server is not retired or deleted (401 / 410)."""
    if found is None or not check_secret(secret, found.secret_hash):
        request.app.state.grid.auth_failures.fail(client_host(request))
        raise Unauthorized("invalid agent credential")
    if found.state in ("deactivated", "deleted"):
        raise Gone("server %s was %s; register again"
                   % (server_id, "retired" if found.state == "deactivated" else "deleted"))
    return found


def agent_server(db: Session, request: Request) -> Server:
    """The server named by `Authorization: Agent <server_id>:<secret>` (401 / 410).

    A wrong credential counts as a failed authentication of the caller's address, like a
    wrong token: an address that failed too often gets 429 (check_blocked)."""
    server_id, secret = _agent_credential(request)
    srv = db.get(Server, server_id) if server_id else None
    return _agent_verified(request, server_id, secret, srv)


def agent_lookup(*columns: Any) -> Any:
    """The statement `agent_row` runs to read `columns` of the caller's server besides its
    id, secret_hash and state. Made once, as a constant of its caller's module: SQLAlchemy
    then keeps its cache key, which it otherwise makes again for every statement built (on
    an idle poll, more than the lookup itself)."""
    return select(Server.id, Server.secret_hash, Server.state, *columns).where(
        Server.id == bindparam("agent_server_id"))


AGENT_CREDENTIAL = agent_lookup()


def agent_row(db: Session, request: Request, lookup: Any = AGENT_CREDENTIAL) -> Any:
    """`agent_server`'s checks, on one row of the caller's server read by `lookup`
    (agent_lookup) rather than as an ORM object: for the agent routes that need no Server
    object (the long-poll's look, which most of a fleet's requests are, and the writes that
    leave the server row alone)."""
    server_id, secret = _agent_credential(request)
    row = None
    if server_id:
        # a plain statement on the session's connection: no ORM step for a row of columns
        row = db.connection().execute(lookup, {"agent_server_id": server_id}).first()
    return _agent_verified(request, server_id, secret, row)


def agent_checked(request: Request) -> Any:
    """Dependency of the agent routes that take a body: the agent credential is checked
    (401 / 410 / 429) before the body is read. The caller's server as a row (agent_row:
    id, secret_hash, state)."""
    with transaction(request.app.state.grid.Session, read_only=True) as db:
        return agent_row(db, request)


def find_key(db: Session, key_id: str) -> Optional[ApiKey]:
    return db.scalar(select(ApiKey).where(ApiKey.key_id == key_id))


# Actors of events that are not API keys.
SYSTEM_ACTORS = ("agent", "grid")


def redact_event(event: Dict[str, Any], principal: Principal) -> Dict[str, Any]:
    """An event as `principal` may see it: only a read+write key sees which key acted (a key
    id is half of a credential)."""
    actor = event.get("actor")
    if not principal.can_write and actor is not None and actor not in SYSTEM_ACTORS:
        event["actor"] = "api_key"
    return event
