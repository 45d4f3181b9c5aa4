"""Halo-shaped errors and the handlers that render them.

Bodies follow the contract: 404 `{"resource","field","value"}`, 422 `{"message":
"Validation Failed","errors":[...]}`, 401 `{"error":"invalid_token"}`, 500 `{"code":500,
"message":"Internal Server Error"}`, anything else (413 of bodylimit.py included)
`{"error": "<text>"}`.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger("halogrid")


class ApiError(Exception):
    """An HTTP error answer with a body in one of Halo's shapes (the grid's, unrelated to the
    collection's HaloClientError)."""
    status_code = 400

    def __init__(self, body: Dict[str, Any], status_code: Optional[int] = None,
                 headers: Optional[Dict[str, str]] = None):
        super().__init__(body)
        self.body = body
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}


class NotFound(ApiError):
    status_code = 404

    def __init__(self, resource: str, value: Any, field: str = "id"):
        super().__init__({"resource": resource, "field": field, "value": value})


class ValidationFailed(ApiError):
    status_code = 422

    def __init__(self, errors: List[Dict[str, Any]]):
        super().__init__({"message": "Validation Failed", "errors": errors})


def invalid(field: str, value: Any, code: str, details: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "value": value, "code": code, "details": details}])


class BadRequest(ApiError):
    status_code = 400

    def __init__(self, message: str):
        super().__init__({"error": message})


class Unauthorized(ApiError):
    status_code = 401

    def __init__(self, error: str = "invalid_token"):
        super().__init__({"error": error}, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status_code = 403

    def __init__(self, message: str):
        super().__init__({"error": message})


class Gone(ApiError):
    status_code = 410

    def __init__(self, message: str):
        super().__init__({"error": message})


class Conflict(ApiError):
    status_code = 409

    def __init__(self, message: str):
        super().__init__({"error": message})


class PayloadTooLarge(HTTPException):
    """413 `{"error": "..."}`. A FastAPI HTTPException, not an ApiError: FastAPI passes it on
    unchanged when it is raised while FastAPI reads a body (bodylimit.py raises it there)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class RateLimited(ApiError):
    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__({"error": "Rate limit exceeded; retry after %d s" % retry_after},
                         headers={"Retry-After": str(retry_after)})


# pydantic error types that mean "this body is not the object the API expects" (400) when
# they concern the body itself or its top object, not one of its fields (422)
_NOT_UNDERSTOOD = {"json_invalid", "missing", "model_type", "model_attributes_type",
                   "dict_type", "json_type"}
# pydantic error types -> Halo error codes (anything else is "invalid")
_CODES = {"missing": "required", "required": "required", "string_too_short": "required",
          "string_too_long": "too_long",
          "too_long": "too_long", "taken": "taken"}
# parts of an error location that name a type of a union, not a field
_TYPE_TAGS = {"str", "int", "bool", "float", "list", "dict", "none", "constrained-str",
              "lax-or-strict", "is-instance", "literal"}


def _plain(value: Any, depth: int = 0) -> Any:
    """A value as JSON can carry it back: bounded, valid Unicode, no objects."""
    if isinstance(value, str):
        value = value.encode("utf-8", "replace").decode("utf-8")
        return value if len(value) <= 256 else value[:256] + "..."
    if value is None or isinstance(value, (bool, int, float)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2 ** 63:
            return str(value)[:64]
        return value
    if depth > 3:
        return "..."
    if isinstance(value, dict):
        return {str(_plain(k, depth + 1)): _plain(v, depth + 1)
                for k, v in list(value.items())[:20]}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in list(value)[:20]]
    return _plain(repr(value), depth + 1)


def _field(loc: Any) -> str:
    parts = [p for p in loc if isinstance(p, int) or
             (isinstance(p, str) and p not in _TYPE_TAGS and p.replace("_", "").isalnum()
              and not p[:1].isupper())]
    out = ""
    for p in parts:
        out += "[%d]" % p if isinstance(p, int) else ("." + p if out else p)
    return out


def _envelope_key(request: Request) -> Optional[str]:
    """The key of the route's body object (`group` of `{"group": {...}}`), if it has one."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None) or \
        getattr(field, "type_", None)
    keys = list(getattr(model, "model_fields", {}) or {})
    return keys[0] if len(keys) == 1 else None


def validation_response(request: Request, exc: RequestValidationError) -> ApiError:
    """FastAPI's validation errors in Halo's shapes: 400 for a body the API cannot read as
    its object, else 422 `Validation Failed` with one {field, value, code, details} each."""
    key = _envelope_key(request)
    errors = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        if loc[:1] == ("body",):
            if kind == "json_invalid":
                ctx = err.get("ctx") or {}
                return BadRequest("Malformed JSON in request body: %s" % ctx.get("error", kind))
            if len(loc) <= 2 and kind in _NOT_UNDERSTOOD:
                return BadRequest("Request body must be a JSON object with a '%s' object"
                                  % (key or "resource"))
            field = _field(loc[2:]) or (loc[1] if len(loc) > 1 else "body")
            value = err.get("input")
        else:
            field = _field(loc[1:]) or str(loc[-1] if loc else "parameter")
            value = err.get("input")
        details = err.get("msg", "invalid")
        if details.startswith("Value error, "):
            details = details[len("Value error, "):]
        last = str(field).rsplit(".", 1)[-1]
        if last.lower() not in details.lower():
            details = "%s: %s" % (field, details)
        errors.append({"field": str(field), "value": _plain(value),
                       "code": _CODES.get(kind, "invalid"), "details": details})
    return ValidationFailed(errors)


def conflict_response(exc: IntegrityError) -> ApiError:
    """A unique constraint hit by a concurrent write: the same 422 as the route's own check."""
    text = str(getattr(exc, "orig", exc))
    m = re.search(r"Key \((\w+)\)=\((.*)\) already exists", text) or \
        re.search(r"UNIQUE constraint failed: \w+\.(\w+)()", text)
    field = m.group(1) if m else "id"
    value = m.group(2) if m and m.group(2) else None
    return ValidationFailed([{"field": field, "value": value, "code": "taken",
                              "details": "%s has already been taken" % field.capitalize()}])


def install_handlers(app: FastAPI) -> None:
    """The one place errors become responses (every body is one of the contract's shapes)."""

    @app.exception_handler(Exception)
    async def _any(request: Request, exc: Exception):
        if isinstance(exc, ClientDisconnect):
            # the client hung up before its request was read: nothing failed here, and
            # nobody is left to answer (499: nginx's "client closed request")
            log.info("client %s disconnected during %s %s", request.client.host
                     if request.client else "?", request.method, request.url.path)
            return Response(status_code=499)
        if isinstance(exc, RequestValidationError):
            exc = validation_response(request, exc)
        elif isinstance(exc, IntegrityError):
            exc = conflict_response(exc)
        elif isinstance(exc, StarletteHTTPException):
            text = exc.detail if isinstance(exc.detail, str) else "HTTP %d" % exc.status_code
            exc = ApiError({"error": text}, exc.status_code, getattr(exc, "headers", None))
        if isinstance(exc, ApiError):
            return JSONResponse(exc.body, status_code=exc.status_code, headers=exc.headers)
        log.exception("internal error: %s", exc)
        return JSONResponse({"code": 500, "message": "Internal Server Error"}, status_code=500)

    # Starlette looks handlers up by class: route these to the one above
    for cls in (ApiError, RequestValidationError, IntegrityError, StarletteHTTPException,
                ClientDisconnect):
        app.add_exception_handler(cls, _any)
