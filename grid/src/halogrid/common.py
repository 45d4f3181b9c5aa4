"""Helpers shared by the API routers: bodies, pagination, times, events, urls."""
from __future__ import annotations

import datetime as _dt
import json
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional

from fastapi import Request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .errors import BadRequest, invalid
from .models import Event, Group, Server, utcnow

DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100


@contextmanager
def tx(request: Request) -> Iterator[Session]:
    """One DB transaction for one request; commits when the block ends without error."""
    with request.app.state.grid.Session() as db:
        with db.begin():
            yield db


def grid(request: Request):
    return request.app.state.grid


async def json_body(request: Request) -> Any:
    """Dependency: the request's JSON body (400 if it is not JSON)."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest("Malformed JSON in request body: %s" % exc)
    try:
        text = json.dumps(data, ensure_ascii=False)
        text.encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        raise BadRequest("Request body holds text that is not valid Unicode")
    if "\x00" in text or "\\u0000" in text:
        raise BadRequest("Request body holds a NUL character")
    return data


def top_object(body: Any, key: str) -> Dict[str, Any]:
    """The body's top object, e.g. `{"group": {...}}` -> `{...}`; 400 without it."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest("Request body must be a JSON object with a '%s' object" % key)
    return body[key]


# -- field checks -------------------------------------------------------------------------
def opt_str(obj: Dict[str, Any], field: str, required: bool = False, allow_empty: bool = True
            ) -> Optional[str]:
    val = obj.get(field)
    if val is None:
        if required:
            raise invalid(field, val, "required", "%s required" % field.replace("_", " ").capitalize())
        return None
    if not isinstance(val, str):
        raise invalid(field, val, "invalid", "%s must be a string" % field)
    if required and not val.strip():
        raise invalid(field, val, "required", "%s required" % field.replace("_", " ").capitalize())
    if not allow_empty and not val.strip():
        raise invalid(field, val, "invalid", "%s must not be empty" % field)
    return val


def opt_bool(obj: Dict[str, Any], field: str) -> Optional[bool]:
    val = obj.get(field)
    if val is None:
        return None
    if isinstance(val, bool):
        return val
    if isinstance(val, str) and val.lower() in ("true", "false"):
        return val.lower() == "true"
    raise invalid(field, val, "invalid", "%s must be true or false" % field)


def opt_str_list(obj: Dict[str, Any], field: str) -> Optional[List[str]]:
    val = obj.get(field)
    if val is None:
        return None
    if not isinstance(val, list) or not all(isinstance(x, str) for x in val):
        raise invalid(field, val, "invalid", "%s must be a list of ids" % field)
    return list(dict.fromkeys(val))


def csv_param(value: Optional[str]) -> List[str]:
    if value is None:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


# -- times --------------------------------------------------------------------------------
def iso(dt: Optional[_dt.datetime]) -> Optional[str]:
    if dt is None:
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_time(value: Optional[str], field: str) -> Optional[_dt.datetime]:
    """ISO 8601 (a date, or date and time, `Z` or an offset) -> naive UTC."""
    if value is None or value == "":
        return None
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise invalid(field, value, "invalid", "%s must be an ISO 8601 date or time" % field)
    if dt.tzinfo is not None:
        dt = dt.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return dt


# -- urls and pagination ------------------------------------------------------------------
def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _page_params(request: Request):
    def num(name: str, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            val = int(raw)
        except ValueError:
            raise invalid(name, raw, "invalid", "%s must be a positive integer" % name)
        if val < 1:
            raise invalid(name, raw, "invalid", "%s must be a positive integer" % name)
        return val

    page = num("page", 1)
    per_page = min(num("per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    return page, per_page


def paginate(request: Request, db: Session, stmt: Select, key: str,
             render: Callable[[Any], Dict[str, Any]]) -> Dict[str, Any]:
    """Run `stmt` one page at a time: `{key: [...], "count": N, "pagination": {...}}`.

    `page` starts at 1, `per_page` defaults to 10 and is capped at 100 (like Halo);
    `pagination.next` / `previous` are absolute URLs, `next` is absent on the last page.
    """
    page, per_page = _page_params(request)
    total = db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = db.scalars(stmt.offset((page - 1) * per_page).limit(per_page)).all()
    pagination: Dict[str, str] = {}
    if page * per_page < total:
        pagination["next"] = str(request.url.include_query_params(page=page + 1,
                                                                   per_page=per_page))
    if page > 1:
        pagination["previous"] = str(request.url.include_query_params(page=page - 1,
                                                                       per_page=per_page))
    return {key: [render(r) for r in rows], "count": total, "pagination": pagination}


# -- events -------------------------------------------------------------------------------
def record_event(db: Session, type_: str, name: str, message: str,
                 server: Optional[Server] = None, group: Optional[Group] = None,
                 actor: Optional[str] = None, critical: bool = False,
                 object_id: Optional[str] = None) -> Event:
    if group is None and server is not None:
        group = db.get(Group, server.group_id)
    ev = Event(type=type_, name=name, message=message, critical=critical,
               seq=time.time_ns(), created_at=utcnow(),
               server_id=server.id if server else None,
               server_hostname=server.hostname if server else None,
               group_id=group.id if group else None,
               group_name=group.name if group else None,
               actor=actor, object_id=object_id)
    db.add(ev)
    return ev
