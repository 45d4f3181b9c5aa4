"""The FastAPI application of one grid."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import json
import logging
import os
from contextlib import asynccontextmanager
from typing import Any, Callable, Optional, Set

import anyio
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from . import __version__, resolved_firewall
from .agent_schemas import add_components
from .agentshare import AgentShare
from .bodylimit import BodyLimitMiddleware, BodyLimits
from .api import agent, events, fim, firewall, groups, oauth, policies, scans, servers
from .common import record_event
from .config import Config
from .agent_logs import FLUSH_EVERY, CommandProgressLog, ContactLog, FirewallStatusLog
from .db import POLL_LOOK_THREADS, WORKER_THREADS, init_db, make_engine, session_factory
from .deadlines import schedule_scans, sweep_deadlines
from .errors import install_handlers
from .models import Server, utcnow
from .notify import Notifier, PgWakeups
from .ratelimit import FailureCounter, RateLimiter

log = logging.getLogger("halogrid")

# PostgreSQL advisory lock keys (per database): the schema set-up, and a round of the sweeper
INIT_LOCK = int.from_bytes(b"halogrdI", "big")
SWEEP_LOCK = int.from_bytes(b"halogrdS", "big")
# `halogrid serve --workers N` hands each worker process its Config as JSON in this variable
CONFIG_ENV = "HALOGRID_SERVE_CONFIG"


def _is_pg(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _pg_connect(engine: Engine):
    """A function opening a new psycopg connection in autocommit mode, outside the pool."""
    import psycopg

    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    cparams = {k: v for k, v in cparams.items() if k != "context"}
    return lambda: psycopg.connect(*cargs, autocommit=True, **cparams)


class Grid:
    """Everything a request handler needs: settings, DB sessions, wake-ups, rate limit."""

    def __init__(self, config: Config, engine: Optional[Engine] = None) -> None:
        self.config = config
        self.engine = engine or make_engine(config.db)
        if _is_pg(self.engine):
            # grid processes starting together on a new database create the schema in turn
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": INIT_LOCK})
                conn.commit()
                try:
                    init_db(self.engine)
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": INIT_LOCK})
                    conn.commit()
        else:
            init_db(self.engine)
        self.Session = session_factory(self.engine)
        self.notifier = Notifier()
        self.poll_look_threads: Optional[anyio.CapacityLimiter] = None  # set by the lifespan
        # each group's firewall answer between the polls' looks (valid until a wake-up)
        self.firewall_digests = resolved_firewall.GroupDigests(self.notifier)
        # what agents report that is written once a second (agent_logs.py)
        self.contacts = ContactLog()
        self.firewall_reports = FirewallStatusLog()
        self.command_progress = CommandProgressLog()
        self.wakeups: Optional[PgWakeups] = None  # started by the app's lifespan
        self.limiter = RateLimiter(config.rate_limit, config.rate_window)
        self.auth_failures = FailureCounter(config.auth_fail_limit, config.rate_window)
        self.started_at = utcnow()

    def flush_agent_logs(self) -> None:
        """Write what agents reported since the last round (agent_logs.py). Each log keeps
        what it failed to write for the next round; a failure is raised once all tried."""
        failure = None
        for log_ in (self.contacts, self.firewall_reports, self.command_progress):
            try:
                log_.flush(self.Session)
            except Exception as exc:  # the other logs are still written
                failure = failure or exc
        if failure is not None:
            raise failure

    def sweep_missing(self, polling: Set[str]) -> int:
        """Mark servers not seen for `missing_after` seconds as missing; return how many."""
        cutoff = utcnow() - _dt.timedelta(seconds=self.config.missing_after)
        if self.started_at > cutoff:
            # grace after a (re)start: agents get `missing_after` seconds to come back
            return 0
        n = 0
        self.contacts.flush(self.Session)  # contacts still in the log count
        with self.Session() as db, db.begin():
            rows = db.scalars(select(Server).where(Server.state == "active",
                                                   Server.last_seen_at < cutoff)).all()
            for srv in rows:
                if srv.id in polling:
                    continue
                srv.state = "missing"
                srv.last_state_change = utcnow()
                record_event(db, "server_missing", "Server missing",
                             "Server %s has not been in contact for %g s"
                             % (srv.hostname, self.config.missing_after), server=srv,
                             actor="grid", critical=True)
                n += 1
        return n


def _sweep_steps(grid: Grid) -> None:
    # first: a contact or a command's start still in the logs counts (agent_logs.py)
    try:
        grid.flush_agent_logs()
    except Exception:
        log.exception(AGENT_LOGS_FAILED)
    try:
        grid.sweep_missing(grid.notifier.polling())
    except Exception:  # keep sweeping whatever one round did
        log.exception("missing-server sweep failed")
    try:
        sweep_deadlines(grid.Session, grid.config.command_timeout)
    except Exception:
        log.exception("command deadline sweep failed")
    # after the missing-server sweep: a server just found missing gets its failed scan
    try:
        schedule_scans(grid.Session, None, grid.notifier.notify_many)
    except Exception:
        log.exception("scheduled scans failed")


def sweep_round(grid: Grid) -> bool:
    """One round of the grid's own work. On PostgreSQL several grid processes share the
    database: a round runs under an advisory lock, so two never overlap (a process that finds
    the lock taken skips its round: another one is doing it). False if skipped."""
    if not _is_pg(grid.engine):
        _sweep_steps(grid)
        return True
    with grid.engine.connect() as conn:
        got = conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": SWEEP_LOCK})
        conn.commit()  # the lock belongs to the session, not to a transaction
        if not got:
            return False
        try:
            _sweep_steps(grid)
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SWEEP_LOCK})
                conn.commit()
            except Exception:
                # never give the pool a connection that may still hold the lock
                conn.invalidate()
                raise
    return True


async def _in_thread_logged(failure: str, work: Callable[..., Any], *args: Any) -> None:
    """`work(*args)` in the thread pool; a failure is logged, never raised (a failed contact
    write keeps its contacts in the log for the next round)."""
    try:
        await run_in_threadpool(work, *args)
    except Exception:
        log.exception(failure)


async def _every(seconds: float, failure: str, work: Callable[..., Any], *args: Any) -> None:
    """The grid's background rounds: `work(*args)` every `seconds`, whatever a round did."""
    while True:
        await asyncio.sleep(seconds)
        await _in_thread_logged(failure, work, *args)


AGENT_LOGS_FAILED = "writing what agents reported (agent_logs.py) failed"


def create_app(config: Config, engine: Optional[Engine] = None) -> FastAPI:
    grid = Grid(config, engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        grid.notifier.loop = asyncio.get_running_loop()
        # The thread pool of sync routes stays smaller than the connection pool (db.POOL).
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        grid.poll_look_threads = anyio.CapacityLimiter(POLL_LOOK_THREADS)  # agentshare.py
        if _is_pg(grid.engine):
            try:
                grid.wakeups = PgWakeups(grid.notifier, _pg_connect(grid.engine))
            except ImportError:
                log.warning("psycopg is not installed: long-polls held by other grid "
                            "processes are not woken by this one's changes")
            else:
                # polls are answered once the LISTEN is in place (or after 10 s without it)
                if not await run_in_threadpool(grid.wakeups.start):
                    log.warning("wake-ups: not listening yet; retrying in the background")
        tasks = [asyncio.create_task(_every(grid.config.sweep_every(), "sweep round failed",
                                            sweep_round, grid)),
                 asyncio.create_task(_every(FLUSH_EVERY, AGENT_LOGS_FAILED,
                                            grid.flush_agent_logs))]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
            await _in_thread_logged(AGENT_LOGS_FAILED, grid.flush_agent_logs)
            if grid.wakeups is not None:
                await run_in_threadpool(grid.wakeups.stop)

    # /openapi.json is the machine-readable contract (API.md is the human one); no docs UI:
    # its pages would load scripts from a CDN
    app = FastAPI(title="halogrid", version=__version__, lifespan=lifespan,
                  description="A Halo-compatible API (see API.md in the repository)",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.grid = grid
    install_handlers(app)
    # bodies are limited before anything parses them (bodylimit.py)
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits.of(config))
    # agents cannot take every worker thread from the public API (agentshare.py)
    app.add_middleware(AgentShare)
    # first: most of a fleet's requests are agents' polls, and routes are matched in order
    app.include_router(agent.router)
    app.include_router(oauth.router)
    for router in (groups.router, servers.router, scans.router):
        app.include_router(router)
    # SDK 1.6.5 uses /v2/policies; /v1/policies is Halo's older, deprecated form
    app.include_router(policies.router, prefix="/v2/policies")
    app.include_router(policies.router, prefix="/v1/policies", deprecated=True)
    # FIM: /v1/fim_policies (deprecated form), baselines under both policy prefixes
    app.include_router(fim.policies, deprecated=True)
    app.include_router(fim.baselines, prefix="/v2/policies")
    app.include_router(fim.baselines, prefix="/v1/fim_policies", deprecated=True)
    for router in firewall.routers + (events.router,):
        app.include_router(router)

    # the agent protocol's bodies are read by hand (credentials first): their models are
    # added to the document here (agent_schemas.py)
    def openapi():
        if app.openapi_schema is None:
            app.openapi_schema = add_components(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi

    # async: answered on the event loop, never queued behind database work in the threadpool
    @app.get("/healthz", tags=["grid"])
    async def healthz():
        return {"status": "ok", "version": __version__}

    return app


def create_app_from_env() -> FastAPI:
    """The app of one worker process of `halogrid serve --workers N` (uvicorn imports it by
    name in each worker): the Config comes as JSON in $HALOGRID_SERVE_CONFIG."""
    raw = json.loads(os.environ[CONFIG_ENV])
    names = {f.name for f in dataclasses.fields(Config)}
    config = Config(**{k: v for k, v in raw.items() if k in names})
    level = os.environ.get("HALOGRID_LOG_LEVEL", "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(config)
