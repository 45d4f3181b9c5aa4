"""POST /oauth/access_token?grant_type=client_credentials"""
from __future__ import annotations

from fastapi import APIRouter, Request

from ..auth import check_secret, find_key, issue_token, parse_basic
from ..common import tx
from ..errors import BadRequest, RateLimited, Unauthorized

router = APIRouter()


@router.post("/oauth/access_token")
def access_token(request: Request):
    grid = request.app.state.grid
    # client_credentials is the only grant there is; a missing grant_type means it too
    grant = request.query_params.get("grant_type", "client_credentials")
    creds = parse_basic(request.headers.get("authorization"))
    if creds is None:
        raise Unauthorized("invalid_client")
    if grant != "client_credentials":
        raise BadRequest("unsupported_grant_type")
    key_id, secret = creds
    wait = grid.limiter.hit(key_id)
    if wait is not None:
        raise RateLimited(wait)
    with tx(request) as db:
        key = find_key(db, key_id)
        if key is None or not check_secret(secret, key.secret_hash):
            raise Unauthorized("invalid_client")
        token, scope = issue_token(db, key, grid.config.token_ttl)
    return {"access_token": token, "token_type": "bearer",
            "expires_in": grid.config.token_ttl, "scope": scope}
