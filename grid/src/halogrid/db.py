"""Database set-up: engine from a path or URL, schema creation, first-start data."""
from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from importlib import resources
from typing import Iterator, Optional

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .models import Base, Group, Policy, Setting, ensure_indexes, utcnow

log = logging.getLogger("halogrid")

DEFAULT_GROUP_NAME = "Unassigned"


def db_url(path_or_url: str) -> str:
    """A plain path means an SQLite file; anything with `://` is an SQLAlchemy URL."""
    if "://" in path_or_url:
        return path_or_url
    return "sqlite:///" + os.path.abspath(os.path.expanduser(path_or_url))


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file (and a missing directory) readable by the grid's user only: it
    holds the daemon key and every hash. An existing file (and its -wal/-shm, which SQLite
    gives the file's mode) loses group and other access; an existing directory is left alone,
    it may be a shared one such as the working directory."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # makedirs' mode is filtered by the umask
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    for name in (path, path + "-wal", path + "-shm", path + "-journal"):
        try:
            st = os.stat(name)
        except FileNotFoundError:
            continue
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.chmod(name, st.st_mode & 0o700)


# FastAPI runs sync routes and the teardown of the per-request session (which commits and
# gives the connection back) in the same thread pool, 40 threads by default. With fewer pooled
# connections than threads, 40 routes can wait for a connection while the sessions holding
# them wait for a thread to commit: a deadlock until the pool's timeout. So the pool can
# always hold more connections than there are threads.
WORKER_THREADS = 40
POLL_LOOK_THREADS = 16  # the long-polls' looks have threads of their own (agentshare.py)
POOL = dict(pool_size=10, max_overflow=WORKER_THREADS + POLL_LOOK_THREADS + 10)


READ_ONLY_OPTION = "halogrid_read_only"


@contextmanager
def transaction(factory: sessionmaker, read_only: bool = False) -> Iterator[Session]:
    """A session in one transaction, committed when the block ends without error. A read-only
    one does not take SQLite's write lock, so it reads beside a writer (and a write in it may
    fail with "database is locked")."""
    # the read-only maker's engine carries the option; the connection is still taken only at
    # the first query (taken early, it waited with the request for a worker thread)
    with (factory.read_only if read_only else factory)() as db, db.begin():
        yield db


SQLITE_WRITE_WAIT = 30.0  # seconds, as SQLite's busy timeout


def _one_writer_at_a_time(engine: Engine) -> None:
    """SQLite has one write lock. A transaction that may write takes it when it starts
    (BEGIN IMMEDIATE), after its turn on a lock of this process, which hands the turn on the
    moment the previous writer's connection goes back to the pool (after its commit).

    SQLite's own busy handler polls with sleeps of up to 100 ms, so the lock can sit idle
    while forty waiting threads sleep, and a waiter can lose every round until its timeout.
    With the sqlite3 module's deferred transactions, a request that had read first could
    also not upgrade to a write once another had committed. Read-only transactions
    (`transaction(read_only=True)`) take neither lock: they read a snapshot beside the
    writer. (A writer must still never wait for a worker thread while it holds its turn: see
    common.commit_in_route.)"""
    turn = threading.Lock()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
            return
        if not turn.acquire(timeout=SQLITE_WRITE_WAIT):
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(
                "database is locked: no turn to write within %g s" % SQLITE_WRITE_WAIT))
        conn.info["halogrid_write_turn"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            conn.info.pop("halogrid_write_turn", None)
            turn.release()
            raise

    @event.listens_for(engine, "checkin")
    def _end(_dbapi_conn, record):
        # the connection comes back after its commit or rollback (or when it is invalidated)
        if record.info.pop("halogrid_write_turn", False):
            turn.release()


def make_engine(path_or_url: str) -> Engine:
    url = db_url(path_or_url)
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **POOL)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # SQLAlchemy, not the sqlite3 module, starts the transactions (_one_writer_at_a_time)
            dbapi_conn.isolation_level = None

        _one_writer_at_a_time(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True, **POOL)
    return engine


def get_setting(db: Session, key: str) -> Optional[str]:
    row = db.get(Setting, key)
    return row.value if row else None


def set_setting(db: Session, key: str, value: str) -> None:
    row = db.get(Setting, key)
    if row is None:
        db.add(Setting(key=key, value=value))
    else:
        row.value = value


def new_agent_key() -> str:
    return secrets.token_hex(16)


def default_group(db: Session) -> Group:
    grp = db.scalar(select(Group).where(Group.is_default.is_(True)))
    if grp is None:
        grp = db.scalar(select(Group).where(Group.name == DEFAULT_GROUP_NAME))
        if grp is None:
            grp = Group(name=DEFAULT_GROUP_NAME, description="Servers whose tag matches no group",
                        policy_ids=[], fim_policy_ids=[], is_default=True)
            db.add(grp)
            db.flush()
        else:
            grp.is_default = True
    return grp


def _bundled_policies():
    """Yield (file name, policy dict) for every policies/*.json shipped in the package."""
    try:
        folder = resources.files("halogrid") / "policies"
        entries = sorted((p for p in folder.iterdir() if p.name.endswith(".json")),
                         key=lambda p: p.name)
    except (FileNotFoundError, NotADirectoryError, ModuleNotFoundError):
        return
    for entry in entries:
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("skipping bundled policy %s: %s", entry.name, exc)
            continue
        pol = data.get("policy") if isinstance(data, dict) else None
        if not isinstance(pol, dict) or not pol.get("name"):
            log.warning("skipping bundled policy %s: no policy object with a name", entry.name)
            continue
        yield entry.name, pol


def _add_missing_columns(engine: Engine) -> None:
    """A database made by an older grid lacks columns added since (create_all adds tables,
    never columns): add the missing nullable ones, so an upgrade keeps its data."""
    prep = engine.dialect.identifier_preparer
    with engine.begin() as conn:
        # read through the same connection: on SQLite a second one would wait for its lock
        insp = inspect(conn)
        tables = set(insp.get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name not in tables:
                continue
            have = {c["name"] for c in insp.get_columns(table.name)}
            for col in table.columns:
                if col.name in have:
                    continue
                if not col.nullable:
                    log.warning("table %s lacks column %s and it cannot be added",
                                table.name, col.name)
                    continue
                log.info("adding column %s.%s", table.name, col.name)
                conn.execute(text("ALTER TABLE %s ADD COLUMN %s %s" % (
                    prep.format_table(table), prep.format_column(col),
                    col.type.compile(dialect=engine.dialect))))


def init_db(engine: Engine) -> None:
    """Create the schema and the first-start data (idempotent)."""
    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    ensure_indexes(engine)
    with Session(engine) as db, db.begin():
        default_group(db)
        if get_setting(db, "agent_key") is None:
            set_setting(db, "agent_key", new_agent_key())
        if get_setting(db, "policies_loaded") is None:
            for _fname, pol in _bundled_policies():
                if db.scalar(select(Policy).where(Policy.name == pol["name"])) is not None:
                    continue
                body = {k: v for k, v in pol.items() if k not in ("id", "url")}
                db.add(Policy(name=body["name"], module="csm", platform=body.get("platform"),
                              body=body))
            set_setting(db, "policies_loaded", utcnow().isoformat())


def session_factory(engine: Engine) -> sessionmaker:
    """Sessions on `engine`; `.read_only` makes sessions whose transactions only read."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    factory.read_only = sessionmaker(bind=engine.execution_options(**{READ_ONLY_OPTION: True}),
                                     expire_on_commit=False)
    return factory
