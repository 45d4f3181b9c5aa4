"""API keys, OAuth tokens, agent credentials, scopes and the rate limit."""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Optional, Tuple

from fastapi import Request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .errors import Forbidden, Gone, RateLimited, Unauthorized
from .models import ApiKey, Server, Token, utcnow

log = logging.getLogger(__name__)


def hash_secret(secret: str) -> str:
    """Secrets are long random strings, so a plain SHA-256 is enough to keep them unreadable."""
    return "sha256$" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_secret(secret: str, stored: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored or "")


def create_api_key(db: Session, read_only: bool = False, name: Optional[str] = None
                   ) -> Tuple[str, str]:
    while True:
        key_id = secrets.token_hex(4)
        if db.get(ApiKey, key_id) is None:
            break
    secret = secrets.token_hex(16)
    db.add(ApiKey(key_id=key_id, secret_hash=hash_secret(secret), read_only=read_only,
                  name=name))
    return key_id, secret


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


def issue_token(db: Session, key: ApiKey, ttl: int) -> Tuple[str, str]:
    now = utcnow()
    db.execute(delete(Token).where(Token.expires_at < now))
    token = secrets.token_hex(16)
    scope = "read" if key.read_only else "read+write"
    db.add(Token(token_hash=hash_secret(token), key_id=key.key_id, scope=scope,
                 expires_at=now + _dt.timedelta(seconds=ttl)))
    return token, scope


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


def authenticate(request: Request) -> Principal:
    grid = request.app.state.grid
    token = _bearer(request)
    if not token:
        raise Unauthorized("invalid_token")
    with grid.Session() as db:
        row = db.get(Token, hash_secret(token))
        if row is None or row.expires_at <= utcnow():
            raise Unauthorized("invalid_token")
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


def agent_server(db: Session, request: Request) -> Server:
    """The server named by `Authorization: Agent <server_id>:<secret>` (401 / 410)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("agent "):
        raise Unauthorized("missing agent credential")
    cred = header[6:].strip()
    if ":" not in cred:
        raise Unauthorized("malformed agent credential")
    server_id, secret = cred.split(":", 1)
    srv = db.get(Server, server_id)
    if srv is None or not check_secret(secret, srv.secret_hash):
        raise Unauthorized("invalid agent credential")
    if srv.state in ("deactivated", "deleted"):
        raise Gone("server %s was %s; register again"
                   % (server_id, "retired" if srv.state == "deactivated" else "deleted"))
    return srv


def find_key(db: Session, key_id: str) -> Optional[ApiKey]:
    return db.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
