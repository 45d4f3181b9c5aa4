"""Halo-shaped errors and the handlers that render them.

Bodies follow the contract: 404 `{"resource","field","value"}`, 422 `{"message":
"Validation Failed","errors":[...]}`, 401 `{"error":"invalid_token"}`, 500 `{"code":500,
"message":"Internal Server Error"}`, anything else `{"error": "<text>"}`.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("halogrid")


class HaloError(Exception):
    status_code = 400

    def __init__(self, body: Dict[str, Any], status_code: Optional[int] = None,
                 headers: Optional[Dict[str, str]] = None):
        super().__init__(body)
        self.body = body
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}


class NotFound(HaloError):
    status_code = 404

    def __init__(self, resource: str, value: Any, field: str = "id"):
        super().__init__({"resource": resource, "field": field, "value": value})


class ValidationFailed(HaloError):
    status_code = 422

    def __init__(self, errors: List[Dict[str, Any]]):
        super().__init__({"message": "Validation Failed", "errors": errors})


def invalid(field: str, value: Any, code: str, details: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "value": value, "code": code, "details": details}])


class BadRequest(HaloError):
    status_code = 400

    def __init__(self, message: str):
        super().__init__({"error": message})


class Unauthorized(HaloError):
    status_code = 401

    def __init__(self, error: str = "invalid_token"):
        super().__init__({"error": error}, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HaloError):
    status_code = 403

    def __init__(self, message: str):
        super().__init__({"error": message})


class Gone(HaloError):
    status_code = 410

    def __init__(self, message: str):
        super().__init__({"error": message})


class Conflict(HaloError):
    status_code = 409

    def __init__(self, message: str):
        super().__init__({"error": message})


class RateLimited(HaloError):
    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__({"error": "Rate limit exceeded; retry after %d s" % retry_after},
                         headers={"Retry-After": str(retry_after)})


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(HaloError)
    async def _halo(_request: Request, exc: HaloError):
        return JSONResponse(exc.body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
            errors.append({"field": ".".join(loc) or "body", "value": err.get("input"),
                           "code": "invalid", "details": err.get("msg", "invalid")})
        body = {"message": "Validation Failed", "errors": errors}
        try:
            return JSONResponse(body, status_code=422)
        except (TypeError, ValueError):
            for e in errors:
                e["value"] = repr(e["value"])
            return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        text = exc.detail if isinstance(exc.detail, str) else "HTTP %d" % exc.status_code
        return JSONResponse({"error": text}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception):
        log.exception("internal error: %s", exc)
        return JSONResponse({"code": 500, "message": "Internal Server Error"}, status_code=500)
