"""POST /oauth/access_token?grant_type=client_credentials"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from ..agent_schemas import AgentError, OAuthAccessToken
from ..auth import (check_blocked, check_network, check_secret, client_host, find_key,
                    issue_token, key_state, parse_basic)
from ..common import tx
from ..errors import BadRequest, RateLimited, Unauthorized

log = logging.getLogger(__name__)

router = APIRouter()


@router.post("/oauth/access_token", response_model=OAuthAccessToken,
             responses={400: {"model": AgentError}, 401: {"model": AgentError},
                        403: {"model": AgentError}, 429: {"model": AgentError}})
def access_token(request: Request):
    grid = request.app.state.grid
    # client_credentials is the only grant there is; a missing grant_type means it too
    grant = request.query_params.get("grant_type", "client_credentials")
    creds = parse_basic(request.headers.get("authorization"))
    if creds is None:
        raise Unauthorized("invalid_client")
    if grant != "client_credentials":
        raise BadRequest("unsupported_grant_type")
    # Failures count against the caller's address, never against the key id it names:
    # anyone can name a key id, and the key's owner must not be locked out by that.
    check_blocked(request)
    key_id, secret = creds
    with tx(request) as db:
        # a key id is 8 hex characters; anything else (too long, NUL) cannot be a key
        key = find_key(db, key_id) if len(key_id) <= 32 and "\x00" not in key_id else None
        good = check_secret(secret, key.secret_hash if key is not None else "")
        state = key_state(key) if key is not None and good else None
        if state != "active":
            grid.auth_failures.fail(client_host(request))
            if state is not None:
                log.info("token refused: API key %s is %s", key.key_id, state)
            raise Unauthorized("invalid_client")
        check_network(request, key)
        # a token request is an API call of the key (Halo counts it too)
        wait = grid.limiter.hit(key.key_id)
        if wait is not None:
            raise RateLimited(wait)
        token, scope, ttl = issue_token(db, key, grid.config.token_ttl)
    return {"access_token": token, "token_type": "bearer",
            "expires_in": ttl, "scope": scope}
