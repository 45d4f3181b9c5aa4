"""Shared pieces of the scale benchmarks (bench/admission_scale.py, bench/fleet_poll.py):
a real grid on SQLite or on a fresh PostgreSQL database, the descriptor limit, percentiles,
a counting reverse proxy, and the figures written as JSON for bench/run_all.py.

Benchmarks print figures and assert nothing."""

import contextlib
import datetime
import http.client
import json
import os
import re
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
WITH_POSTGRESQL = REPO / "grid" / "tests" / "with_postgresql.sh"
# High enough that no bench meets it, low enough that the grid's limiter still counts every
# call (0 would switch it off and hide its cost).
BENCH_RATE_LIMIT = 10_000_000


def raise_nofile(needed):
    """Raise this process's descriptor limit (children, such as the grid, inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:  # root may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
        except (ValueError, OSError):
            needed = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


def _proc_stat(pid):
    """(parent pid, CPU seconds) of a running process, None if it is gone."""
    try:
        fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds(pid=None):
    """CPU time (user + system) used so far by process `pid` and its live descendants (the
    worker processes of `halogrid serve --workers N`); default: this process alone."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    stats = {int(p.name): _proc_stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    stats = {p: st for p, st in stats.items() if st is not None}
    if pid not in stats:
        return None
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += stats[current][1]
        todo += [p for p, (parent, _) in stats.items() if parent == current]
    return total


def percentile(values, q):
    """The q-th percentile (0..100, nearest rank) of values, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def summary(values):
    return {"count": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": max(values) if values else None}


def parse_iso(value):
    """The grid's ISO 8601 UTC time ("...Z") as a POSIX timestamp."""
    dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def fmt(value, unit="s", digits=2):
    if value is None:
        return "-"
    if unit == "ms":
        return "%.0f ms" % (value * 1000)
    return ("%." + str(digits) + "f %s") % (value, unit)


# -- PostgreSQL ---------------------------------------------------------------------------
def reexec_with_postgresql():
    """Run this script again under grid/tests/with_postgresql.sh (a throw-away cluster whose
    URL arrives in HALOGRID_TEST_PG_URL) unless that already happened."""
    if os.environ.get("HALOGRID_TEST_PG_URL"):
        return os.environ["HALOGRID_TEST_PG_URL"]
    argv = [str(WITH_POSTGRESQL), sys.executable] + sys.argv
    os.execv(argv[0], argv)


_db_counter = 0


def fresh_pg_database(base_url):
    """A new, empty database on the server of `base_url` (which needs CREATEDB): every run
    starts from nothing. Returns its SQLAlchemy URL."""
    global _db_counter
    import psycopg

    _db_counter += 1
    name = "halobench_%d_%d" % (os.getpid(), _db_counter)
    parts = urlsplit(base_url)
    conninfo = base_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "%s"' % name)
    path = "/" + name
    return parts._replace(path=path).geturl()


_serve_help = None


def grid_options(args):
    """GridProcess options for a bench: the API rate limit from --rate-limit and, where this
    grid has them, per-address limits lifted (every simulated agent comes from 127.0.0.1,
    where a real fleet comes from as many addresses as it has hosts)."""
    global _serve_help
    if _serve_help is None:
        import subprocess

        _serve_help = subprocess.run([sys.executable, "-m", "halogrid", "serve", "--help"],
                                     capture_output=True, text=True).stdout
    options = {"rate_limit": args.rate_limit}
    if getattr(args, "workers", 1) > 1:
        if not (args.postgresql or args.db_url):
            raise SystemExit("--workers needs --postgresql or --db-url: SQLite runs one process")
        options["workers"] = args.workers
    if "--register-limit" in _serve_help:
        options["register_limit"] = BENCH_RATE_LIMIT
    return options


def database_for(args, tmp):
    """--db-url / --postgresql / SQLite (a file under tmp), and a label for the table."""
    if args.db_url:
        return fresh_pg_database(args.db_url), "postgresql"
    if args.postgresql:
        return fresh_pg_database(reexec_with_postgresql()), "postgresql"
    return str(Path(tmp) / "grid.db"), "sqlite"


def parse_db_arguments(parser):
    """The bench's arguments with the database ones (add_db_arguments); with --postgresql the
    bench runs again under a throw-away cluster (reexec_with_postgresql) before anything else."""
    add_db_arguments(parser)
    args = parser.parse_args()
    if args.postgresql:
        reexec_with_postgresql()
    return args


@contextlib.contextmanager
def grid_database(args):
    """(work directory, database for the grid, label) of one bench run: SQLite under a fresh
    work directory or a fresh PostgreSQL database (database_for); the label also names the
    grid processes (--workers)."""
    with workdir(args.keep) as tmp:
        db, name = database_for(args, tmp)
        yield tmp, db, name + (" x%d processes" % args.workers if args.workers > 1 else "")


def add_db_arguments(parser):
    parser.add_argument("--postgresql", action="store_true",
                        help="PostgreSQL instead of SQLite: a throw-away cluster as "
                             "grid/tests/with_postgresql.sh makes it (run as root)")
    parser.add_argument("--db-url", help="an existing PostgreSQL server (postgresql+psycopg://...) "
                                         "on which a fresh database is created per run")
    parser.add_argument("--rate-limit", type=int, default=BENCH_RATE_LIMIT,
                        help="the grid's --rate-limit (calls per key per minute; default %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="grid processes (halogrid serve --workers; PostgreSQL only)")
    parser.add_argument("--json", help="also write the figures to this file (bench/run_all.py reads it)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (grid log, DB)")


@contextlib.contextmanager
def workdir(keep):
    path = tempfile.mkdtemp(prefix="halobench.")
    try:
        yield Path(path)
    finally:
        if keep:
            print("work directory kept: %s" % path)
        else:
            import shutil

            shutil.rmtree(path, ignore_errors=True)


def write_json(path, figures):
    if path:
        Path(path).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


# -- the public API, paged ------------------------------------------------------------------
def with_timeout(api, seconds=120.0):
    """A halodev.launchers.GridAPI whose calls give up after `seconds` (a wedged grid must not
    hang the bench)."""
    original = api.session.request

    def request(*args, **kw):
        kw.setdefault("timeout", seconds)
        return original(*args, **kw)

    api.session.request = request
    return api


def list_all(api, path, key, **params):
    """Every object of a list endpoint, following pagination.next; (objects, pages)."""
    params.setdefault("per_page", 100)
    objects, pages = [], 0
    answer = api.ok("GET", path, params=params)
    while True:
        pages += 1
        objects.extend(answer[key])
        nxt = (answer.get("pagination") or {}).get("next")
        if not nxt:
            return objects, pages
        parts = urlsplit(nxt)
        answer = api.ok("GET", parts.path + ("?" + parts.query if parts.query else ""))


# -- a reverse proxy that counts calls ------------------------------------------------------
ID = re.compile(r"/[0-9a-f]{32}(?=/|$)")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "content-length"}


class CountingProxy:
    """HTTP reverse proxy on loopback in front of the grid for ONE client (the collection's
    playbook): the grid logs no request per API key, so its calls are counted here, by
    method and path (ids replaced by {id}) and by status."""

    def __init__(self, upstream):
        self.upstream = urlsplit(upstream)
        self.calls = Counter()
        self.statuses = Counter()
        self.spans = {}  # "METHOD /path" -> [monotonic time of the first answer, of the last]
        self.latencies = {}  # "METHOD /path" -> [seconds from the request to the grid's answer]
        self.client_gone = 0  # answers the client no longer waited for
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn = getattr(self, "_upstream", None)
                started = time.monotonic()
                for attempt in (1, 2):  # a kept-alive upstream connection may have closed
                    if conn is None:
                        conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port,
                                                          timeout=600)
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                        data = resp.read()
                        break
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        conn = None
                        if attempt == 2:
                            try:
                                self.send_error(502)
                            except OSError:
                                self.close_connection = True
                            return
                self._upstream = conn
                path = ID.sub("/{id}", self.path.split("?", 1)[0])
                with proxy.lock:
                    endpoint = "%s %s" % (self.command, path)
                    proxy.calls[endpoint] += 1
                    proxy.statuses[resp.status] += 1
                    now = time.monotonic()
                    proxy.spans.setdefault(endpoint, [now, now])[1] = now
                    proxy.latencies.setdefault(endpoint, []).append(now - started)
                try:
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP_BY_HOP:
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except OSError:  # the client gave up waiting (its own timeout)
                    self.close_connection = True
                    with proxy.lock:
                        proxy.client_gone += 1

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="proxy", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def total(self):
        with self.lock:
            return sum(self.calls.values())

    def reset(self):
        with self.lock:
            self.calls.clear()
            self.statuses.clear()


class Stopwatch:
    def __init__(self):
        self.started = time.monotonic()

    def __call__(self):
        return time.monotonic() - self.started
