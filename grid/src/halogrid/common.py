"""What the API routers share: dependencies (session, caller, settings), rows by id,
pagination, query parameters, times, events."""
from __future__ import annotations

import datetime as _dt
import functools
import inspect
import json
import re
import time
from contextlib import contextmanager
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Literal, Optional, Type,
                    TypeVar)

from fastapi import Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session
from typing_extensions import Annotated

from .auth import Principal, api_reader, api_writer
from .config import Config
from .db import transaction
from .errors import BadRequest, NotFound, invalid
from .models import Event, Group, Server, new_id, utcnow
from .schemas import QueryText

DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
# (page - 1) * per_page must stay a 64-bit OFFSET on every engine
MAX_PAGE = 2 ** 31 - 1


@contextmanager
def tx(request: Request) -> Iterator[Session]:
    """One DB transaction for one request; commits when the block ends without error."""
    with transaction(request.app.state.grid.Session) as db:
        yield db


# -- dependencies of the public API -------------------------------------------------------
def get_grid(request: Request) -> Any:
    return request.app.state.grid


GridDep = Annotated[Any, Depends(get_grid)]


def get_settings(g: GridDep) -> Config:
    return g.config


Settings = Annotated[Config, Depends(get_settings)]


def get_db(request: Request, g: GridDep) -> Iterator[Session]:
    """One transaction per request: committed when the route returns (HaloRoute commits it in
    the route's thread), rolled back if it raises; what the route asked for with
    `after_commit` runs once the commit is done. GET reads only (and so takes no write lock
    on SQLite)."""
    with transaction(g.Session, read_only=request.method in ("GET", "HEAD")) as db:
        yield db


# scope="function": the commit happens before the response is sent, so a client that got
# its 201 reads what it wrote, and a failed commit is the answer
DB = Annotated[Session, Depends(get_db, scope="function")]
Reader = Annotated[Principal, Depends(api_reader)]
Writer = Annotated[Principal, Depends(api_writer)]


def after_commit(db: Session, fn: Callable[[], None]) -> None:
    db.info.setdefault("after_commit", []).append(fn)


def wake_agents(db: Session, g: Any, server_id: Optional[str] = None) -> None:
    """Wake long-polling agents once the change is committed (they re-read their state):
    one server, or every one (prefer `wake`, which wakes only those a change concerns)."""
    if server_id is None:
        after_commit(db, g.notifier.notify_all)
    else:
        after_commit(db, lambda: g.notifier.notify(server_id))


def wake(db: Session, g: Any, servers: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
    """Once the change is committed, wake the long-polls of `servers` and of the members of
    `groups` (resolved_firewall.affected_groups tells which groups a firewall change
    concerns)."""
    servers, groups = list(servers), list(groups)
    if servers or groups:
        after_commit(db, lambda: g.notifier.notify_many(servers, groups))


def commit_in_route(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Commit the request's transaction (DB) in the route's own worker thread, when it returns.

    FastAPI leaves a dependency's exit until the response is validated, and validates it in
    the worker-thread pool: a transaction committed there held SQLite's write lock while it
    waited for a thread, and the threads waited for that lock (every write stalled 30 s and
    failed with "database is locked" under 100 agents)."""
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session) and value.in_transaction():
                value.commit()
                for fn in value.info.pop("after_commit", []):
                    fn()
        return result
    return run


class HaloRoute(APIRoute):
    """Responses hold the fields the route set, no nulls for fields it left out (Halo omits
    e.g. `findings` in scan lists and `next` on the last page); the route commits its own
    transaction (commit_in_route)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model_exclude_unset"] = True
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = commit_in_route(endpoint)
        super().__init__(path, endpoint, **kwargs)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def json_body(request: Request) -> Any:
    """Dependency of the agent protocol (api/agent.py): the request's JSON body (400 if it is
    not JSON). The public API reads its bodies through the models in schemas.py."""
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


def csv_param(value: Optional[str]) -> List[str]:
    if value is None:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


# -- times --------------------------------------------------------------------------------
def iso(dt: Optional[_dt.datetime]) -> Optional[str]:
    if dt is None:
        return None
    # isoformat: the same text as strftime, in a fraction of its time (4 times per server)
    return dt.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_time(value: Optional[str], field: str) -> Optional[_dt.datetime]:
    """ISO 8601 (a date, or date and time, `Z` or an offset) -> naive UTC."""
    if value is None or value == "":
        return None
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = _dt.datetime.fromisoformat(text)
        if dt.tzinfo is not None:
            dt = dt.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out of range
        raise invalid(field, value, "invalid", "%s must be an ISO 8601 date or time" % field)
    return dt


# -- rows by id ---------------------------------------------------------------------------
T = TypeVar("T")
_HEX32 = re.compile(r"[0-9a-f]{32}")


def get_by_id(db: Session, model: Type[T], obj_id: str) -> Optional[T]:
    """The row with this id; None for an id that cannot be one (not 32 hex characters), so
    odd path segments never reach the database."""
    if not _HEX32.fullmatch(obj_id or ""):
        return None
    return db.get(model, obj_id)


def get_or_404(db: Session, model: Type[T], obj_id: str, resource: str) -> T:
    obj = get_by_id(db, model, obj_id)
    if obj is None or getattr(obj, "state", None) == "deleted":
        raise NotFound(resource, obj_id)
    return obj


# -- pagination ---------------------------------------------------------------------------
class PageParams:
    def __init__(self, page: int, per_page: int) -> None:
        self.page, self.per_page = page, min(per_page, MAX_PER_PAGE)


def page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1")] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PAGE,
                                   description="Objects per page; more than 100 means 100")
                        ] = DEFAULT_PER_PAGE,
) -> PageParams:
    return PageParams(page, per_page)


Paging = Annotated[PageParams, Depends(page_params)]


def count_of(db: Session, stmt: Select) -> int:
    """How many rows `stmt` selects: a plain `SELECT count(*) ... WHERE` (an index answers
    it) unless the statement groups, is distinct or limited."""
    if (stmt._group_by_clauses or stmt._distinct or stmt._limit_clause is not None
            or stmt._offset_clause is not None):
        return db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    return db.scalar(stmt.with_only_columns(func.count(), maintain_column_froms=True)
                     .order_by(None)) or 0


def paginate(request: Request, db: Session, stmt: Select, key: str,
             render: Optional[Callable[[Any], Dict[str, Any]]], paging: PageParams,
             render_page: Optional[Callable[[List[Any]], List[Dict[str, Any]]]] = None
             ) -> Dict[str, Any]:
    """Run `stmt` one page at a time: `{key: [...], "count": N, "pagination": {...}}`.

    `page` starts at 1, `per_page` defaults to 10 and is capped at 100 (like Halo);
    `pagination.next` / `previous` are absolute URLs, `next` is absent on the last page.
    `render` turns one row into its object, or `render_page` a page of rows at once (it
    can read what the rows refer to in one query rather than one per row).
    """
    page, per_page = paging.page, paging.per_page
    total = count_of(db, stmt)
    offset = (page - 1) * per_page
    rows = db.scalars(stmt.offset(offset).limit(per_page)).all() if offset < total else []
    pagination: Dict[str, str] = {}
    if page * per_page < total:
        pagination["next"] = str(request.url.include_query_params(page=page + 1,
                                                                   per_page=per_page))
    if page > 1:
        pagination["previous"] = str(request.url.include_query_params(page=page - 1,
                                                                       per_page=per_page))
    objects = render_page(rows) if render_page is not None else [render(r) for r in rows]
    return {key: objects, "count": total, "pagination": pagination}


def answer_as_built(body: Dict[str, Any]) -> Response:
    """`body` sent as JSON as it is, without FastAPI's validation against the route's
    response model and its encoding: on a page of 100 servers those cost more than reading
    and building it. Only for objects built field for field to their model (the models
    forbid extra fields; the contract tests validate these answers against the schema)."""
    return JSONResponse(body)


# -- shared query parameters --------------------------------------------------------------
SortBy = Annotated[Literal["created_at", "created_at.asc", "created_at.desc"],
                   Query(description="Oldest first (default) or newest first")]


def sort_order(sort_by: str, column, id_column):
    if sort_by.endswith(".desc"):
        return (column.desc(), id_column.desc())
    return (column.asc(), id_column.asc())


def _q(description: str):
    return Query(max_length=4096, description=description)


CsvQuery = Optional[QueryText]

SERVER_STATES = ("active", "missing", "deactivated")
# accepted in `state` filters: the SDK's migrate_servers asks for "...,retired" too
STATE_ALIASES = {"retired": "deactivated"}
# Halo module names -> the module the grid stores; None: known to Halo, not run by this grid
SCAN_MODULES = {"sca": "sca", "csm": "sca", "svm": "svm", "sva": "svm", "fim": "fim",
                "sam": None, "sv": None}
RESULT_MODULES = {"sca": "sca", "csm": "sca", "svm": "svm", "sva": "svm", "fim": "fim",
                  "sam": "sam"}


class ServerFilters:
    """The filters of `GET /v1/servers` and of a group's server list (`group_id` is the
    route's: a query parameter of one, the path of the other)."""

    def __init__(
        self,
        state: Annotated[CsvQuery, _q("Comma list of active, missing, deactivated "
                                      "(default active)")] = None,
        platform: Annotated[CsvQuery, _q("Comma list")] = None,
        hostname: Annotated[CsvQuery, _q("Comma list")] = None,
        server_label: Annotated[CsvQuery, _q("Comma list")] = None,
        connecting_ip_address: Annotated[CsvQuery, _q("Comma list")] = None,
        primary_ip_address: Annotated[CsvQuery, _q("Comma list")] = None,
        cve: Annotated[CsvQuery, _q("No server has one: this grid runs no "
                                    "vulnerability scans")] = None,
        kb: Annotated[CsvQuery, _q("As cve")] = None,
    ) -> None:
        states = [STATE_ALIASES.get(st, st) for st in csv_param(state)] or ["active"]
        for st in states:
            if st not in SERVER_STATES:
                raise invalid("state", state, "invalid",
                              "state must be a comma list of %s" % ", ".join(SERVER_STATES))
        self.states = states
        self.columns = {"platform": csv_param(platform), "hostname": csv_param(hostname),
                        "server_label": csv_param(server_label),
                        "connecting_ip_address": csv_param(connecting_ip_address),
                        "primary_ip_address": csv_param(primary_ip_address)}
        self.none = bool(cve or kb)

    def query(self, group_ids: List[str]) -> Select:
        stmt = select(Server).where(Server.state.in_(self.states))
        if group_ids:
            stmt = stmt.where(Server.group_id.in_(group_ids))
        for field, vals in self.columns.items():
            if vals:
                stmt = stmt.where(getattr(Server, field).in_(vals))
        if self.none:
            # this grid runs no vulnerability scans: no server is known to have a CVE / miss a KB
            stmt = stmt.where(false())
        return stmt.order_by(Server.created_at, Server.id)


Servers = Annotated[ServerFilters, Depends()]


# -- events -------------------------------------------------------------------------------
def event_fields(type_: str, name: str, message: str, server_id: Optional[str] = None,
                 server_hostname: Optional[str] = None, group_id: Optional[str] = None,
                 group_name: Optional[str] = None, actor: Optional[str] = None,
                 critical: bool = False, object_id: Optional[str] = None,
                 seq: Optional[int] = None,
                 created_at: Optional[_dt.datetime] = None) -> Dict[str, Any]:
    """The columns of one event: record_event adds it as an object, the agents' batched
    reports (agent_logs.py) insert many at once. `seq` orders the events (now unless given:
    a batched report keeps the place of its arrival)."""
    return {"id": new_id(), "type": type_, "name": name, "message": message,
            "critical": critical, "seq": time.time_ns() if seq is None else seq,
            "created_at": created_at or utcnow(), "server_id": server_id,
            "server_hostname": server_hostname, "group_id": group_id, "group_name": group_name,
            "actor": actor, "object_id": object_id}


def record_event(db: Session, type_: str, name: str, message: str,
                 server: Optional[Any] = None, group: Optional[Group] = None,
                 actor: Optional[str] = None, critical: bool = False,
                 object_id: Optional[str] = None, seq: Optional[int] = None,
                 created_at: Optional[_dt.datetime] = None) -> Event:
    """`server`: a Server, or a row with its id, hostname and group_id."""
    if group is None and server is not None:
        group = db.get(Group, server.group_id)
    ev = Event(**event_fields(
        type_, name, message, server_id=server.id if server else None,
        server_hostname=server.hostname if server else None,
        group_id=group.id if group else None, group_name=group.name if group else None,
        actor=actor, critical=critical, object_id=object_id, seq=seq, created_at=created_at))
    db.add(ev)
    return ev
