"""Database set-up: engine from a path or URL, schema creation, first-start data."""
from __future__ import annotations

import json
import logging
import os
import secrets
from importlib import resources
from typing import Optional

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import Engine, make_url
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
POOL = dict(pool_size=10, max_overflow=WORKER_THREADS + 10)


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
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    prep = engine.dialect.identifier_preparer
    with engine.begin() as conn:
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
    return sessionmaker(bind=engine, expire_on_commit=False)
