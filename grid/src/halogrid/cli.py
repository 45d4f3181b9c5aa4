"""`halogrid serve | keys create|list|revoke | agent-key show|rotate | feed import|status`"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import logging
import os
import sys
from typing import List, Optional

from . import __version__


# seconds an idle keep-alive connection stays open (see cmd_serve)
KEEP_ALIVE_SECONDS = 65


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=os.environ.get("HALOGRID_DB"),
                   help="SQLite file path, or an SQLAlchemy URL such as "
                        "postgresql+psycopg://user:pw@host/db (default: $HALOGRID_DB)")


def _positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number of days: %r" % text)
    if not 0 < days <= 36500:
        raise argparse.ArgumentTypeError("days must be more than 0 and at most 36500")
    return days


def _future_time(text: str) -> _dt.datetime:
    """ISO 8601 -> naive UTC (the database's clock), in the future."""
    try:
        when = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("not an ISO 8601 time: %r" % text)
    if when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    if when <= _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None):
        raise argparse.ArgumentTypeError("%s is not in the future" % text)
    return when


def _network(text: str) -> str:
    from .auth import parse_networks
    try:
        return parse_networks([text])[0]
    except ValueError:
        raise argparse.ArgumentTypeError("not a network (CIDR) or address: %r" % text)


def _size(text: str) -> int:
    from .bodylimit import parse_size
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number of processes: %r" % text)
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError("workers must be from 1 to 64")
    return n


def _iso(when) -> Optional[str]:
    return None if when is None else when.isoformat() + "Z"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="halogrid", description="A Halo-compatible grid.")
    parser.add_argument("--version", action="version", version="halogrid " + __version__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the grid")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--workers", type=_workers, default=1, metavar="N",
                       help="grid processes serving the port; more than 1 needs PostgreSQL "
                            "(--db postgresql+psycopg://...) (default 1)")
    _db_arg(serve)
    serve.add_argument("--token-ttl", type=int, default=900,
                       help="lifetime of OAuth tokens in seconds (default 900)")
    serve.add_argument("--rate-limit", type=int, default=600,
                       help="API calls per API key in each --rate-window; 0 = no limit (default 600)")
    serve.add_argument("--rate-window", type=float, default=60.0,
                       help="seconds the --rate-limit counts over (default 60: calls per minute)")
    serve.add_argument("--auth-fail-limit", type=int, default=20,
                       help="failed authentications (token requests, tokens) per client "
                            "address in each --rate-window before it gets 429s; 0 = no limit "
                            "(default 20)")
    serve.add_argument("--register-limit", type=int, default=60,
                       help="agent registrations per client address in each --rate-window; "
                            "0 = no limit (default 60)")
    serve.add_argument("--command-timeout", type=float, default=600.0,
                       help="seconds a command and its scan may stay open (queued: from its "
                            "creation, started: from its start) before they are failed; "
                            "0 = never (default 600)")
    serve.add_argument("--forwarded-allow-ips",
                       help="comma list of proxy addresses whose X-Forwarded-For is trusted "
                            "as the client address (default: none, the TCP peer counts)")
    serve.add_argument("--missing-after", type=float, default=90.0,
                       help="seconds without contact before a server is missing (default 90)")
    serve.add_argument("--sweep-interval", type=float, default=0.0,
                       help="seconds between two rounds of the grid's own work (missing "
                            "servers, command deadlines, scheduled scans); 0 = a quarter of "
                            "--missing-after, 0.2 to 5 s (default 0)")
    for name, default, what in (
            ("result", "4MiB", "an agent's command result (a scan's findings)"),
            ("policy", "2MiB", "a configuration policy (/v1 and /v2/policies)"),
            ("api", "256KiB", "any other /v1 request"),
            ("other", "64KiB", "agent registration and status, OAuth, anything else")):
        env = "HALOGRID_%s_BODY_LIMIT" % name.upper()
        serve.add_argument("--%s-body-limit" % name, type=_size, metavar="BYTES",
                           default=os.environ.get(env, default),
                           help="largest body of %s, in bytes or with KiB/MiB; larger: 413 "
                                "(default $%s, else %s)" % (what, env, default))
    serve.add_argument("--certfile", help="TLS certificate (PEM); serve HTTPS with --keyfile")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])

    keys = sub.add_parser("keys", help="API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="create an API key (the secret is shown once)")
    kc.add_argument("--read-only", action="store_true", help="a key whose tokens get scope read")
    kc.add_argument("--name", help="a note to remember the key by")
    exp = kc.add_mutually_exclusive_group()
    exp.add_argument("--expires-in", type=_positive_days, metavar="DAYS",
                     help="the key (and its tokens) stop working DAYS days from now")
    exp.add_argument("--expires-at", type=_future_time, metavar="TIME",
                     help="the key stops working at TIME (ISO 8601; without an offset: UTC)")
    kc.add_argument("--allow-from", action="append", type=_network, metavar="CIDR",
                    default=[], help="a client network the key may be used from (repeat for "
                                     "more); elsewhere token requests and calls get 403")
    kc.add_argument("--json", action="store_true",
                    help="print {key_id, secret_key, scope, expires_at, allow_from}")
    _db_arg(kc)
    kl = ksub.add_parser("list", help="list API keys (ids, scopes, states, never secrets)")
    kl.add_argument("--json", action="store_true")
    _db_arg(kl)
    kr = ksub.add_parser("revoke", help="revoke an API key: its tokens stop working at once")
    kr.add_argument("key_id")
    kr.add_argument("--json", action="store_true")
    _db_arg(kr)

    ak = sub.add_parser("agent-key", help="the daemon (agent) key agents register with")
    asub = ak.add_subparsers(dest="agent_key_command", required=True)
    for name, text in (("show", "print the daemon key"),
                       ("rotate", "replace the daemon key (registered agents keep working)")):
        p = asub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true")
        _db_arg(p)

    feed = sub.add_parser("feed", help="the vulnerability feed svm scans match packages with")
    fsub = feed.add_subparsers(dest="feed_command", required=True)
    fi = fsub.add_parser("import", help="import OSV records, offline: a .json file (a record, "
                                        "a list of records or an OSV API answer), a .zip of "
                                        "them as the ecosystems publish (all.zip) or a folder")
    fi.add_argument("files", nargs="+", metavar="FILE")
    fi.add_argument("--id-prefix", action="append", default=[], metavar="PREFIX",
                    help="import only the records whose id starts so (repeat for more), e.g. "
                         "DSA- and DLA- for Debian's fixed security updates without its "
                         "per-CVE DEBIAN-CVE- records")
    fi.add_argument("--json", action="store_true")
    _db_arg(fi)
    fs = fsub.add_parser("status", help="advisories and affected packages per ecosystem")
    fs.add_argument("--json", action="store_true")
    _db_arg(fs)
    return parser


def _engine(args):
    if not args.db:
        raise SystemExit("halogrid: --db (or HALOGRID_DB) is required")
    from .db import init_db, make_engine
    engine = make_engine(args.db)
    init_db(engine)
    return engine


def cmd_serve(args) -> int:
    import uvicorn

    from .app import create_app
    from .config import Config

    if bool(args.certfile) != bool(args.keyfile):
        raise SystemExit("halogrid: --certfile and --keyfile go together")
    if not args.db:
        raise SystemExit("halogrid: --db (or HALOGRID_DB) is required")
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config(db=args.db, token_ttl=args.token_ttl, rate_limit=args.rate_limit,
                    rate_window=args.rate_window, missing_after=args.missing_after,
                    auth_fail_limit=args.auth_fail_limit, command_timeout=args.command_timeout,
                    register_limit=args.register_limit, sweep_interval=args.sweep_interval,
                    result_body_limit=args.result_body_limit,
                    policy_body_limit=args.policy_body_limit,
                    api_body_limit=args.api_body_limit, other_body_limit=args.other_body_limit)
    if args.workers > 1:
        from .db import db_url
        if not db_url(args.db).startswith("postgresql"):
            # SQLite's one write lock is handed on by a lock inside the process
            # (db._one_writer_at_a_time): several processes would fight over it
            raise SystemExit("halogrid: --workers %d needs PostgreSQL (--db postgresql+psycopg"
                             "://user:pw@host/db); with SQLite the grid runs one process"
                             % args.workers)
        if args.missing_after <= config.max_poll_wait:
            logging.getLogger("halogrid").warning(
                "--missing-after %g is not above the longest long-poll (%g s): with several "
                "processes, a server waiting on another process may be marked missing",
                args.missing_after, config.max_poll_wait)
        # uvicorn starts the workers by importing the app factory: the Config goes along
        # in the environment
        from .app import CONFIG_ENV
        os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
        os.environ["HALOGRID_LOG_LEVEL"] = args.log_level
        app = "halogrid.app:create_app_from_env"
    else:
        app = create_app(config)
    # The client address decides allowed networks and failure counts: X-Forwarded-For is
    # believed only from the proxies named (uvicorn would believe any local caller).
    uvicorn.run(app, factory=args.workers > 1, workers=args.workers,
                host=args.host, port=args.port, log_level=args.log_level,
                ssl_certfile=args.certfile, ssl_keyfile=args.keyfile,
                proxy_headers=bool(args.forwarded_allow_ips),
                forwarded_allow_ips=args.forwarded_allow_ips or "",
                timeout_graceful_shutdown=3, access_log=args.log_level == "debug",
                # idle keep-alive connections live longer than a client's poll interval (the
                # EDA source reads events every 5 s): at uvicorn's 5 s the grid closed them
                # just as the client reused them, and the client saw "connection reset"
                timeout_keep_alive=KEEP_ALIVE_SECONDS)
    return 0


def cmd_keys(args) -> int:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from .auth import create_api_key, key_state, revoke_api_key
    from .models import ApiKey

    engine = _engine(args)
    if args.keys_command == "create":
        expires_at = args.expires_at
        if args.expires_in is not None:
            expires_at = (_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
                          + _dt.timedelta(days=args.expires_in)).replace(microsecond=0)
        with Session(engine) as db, db.begin():
            key_id, secret = create_api_key(db, read_only=args.read_only, name=args.name,
                                            expires_at=expires_at, allow_from=args.allow_from)
        scope = "read" if args.read_only else "read+write"
        if args.json:
            print(json.dumps({"key_id": key_id, "secret_key": secret, "scope": scope,
                              "expires_at": _iso(expires_at), "allow_from": args.allow_from}))
        else:
            print("key_id:     %s\nsecret_key: %s\nscope:      %s" % (key_id, secret, scope))
            if expires_at is not None:
                print("expires_at: %s" % _iso(expires_at))
            if args.allow_from:
                print("allow_from: %s" % ", ".join(args.allow_from))
            print("(the secret is shown only now)")
        return 0
    if args.keys_command == "revoke":
        with Session(engine) as db, db.begin():
            key = revoke_api_key(db, args.key_id)
            revoked_at = key.revoked_at if key is not None else None
        if key is None:
            print("halogrid: no API key %s" % args.key_id, file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({"key_id": args.key_id, "state": "revoked",
                              "revoked_at": _iso(revoked_at)}))
        else:
            print("API key %s revoked at %s; its tokens no longer work"
                  % (args.key_id, _iso(revoked_at)))
        return 0
    with Session(engine) as db:
        rows = db.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        items = [{"key_id": r.key_id, "scope": "read" if r.read_only else "read+write",
                  "name": r.name, "state": key_state(r),
                  "created_at": _iso(r.created_at), "expires_at": _iso(r.expires_at),
                  "revoked_at": _iso(r.revoked_at), "allow_from": list(r.allow_from or [])}
                 for r in rows]
    if args.json:
        print(json.dumps(items))
    else:
        for it in items:
            extra = []
            if it["expires_at"]:
                extra.append("expires %s" % it["expires_at"])
            if it["allow_from"]:
                extra.append("from %s" % ",".join(it["allow_from"]))
            print("%s  %-10s  %-7s  %s%s" % (it["key_id"], it["scope"], it["state"],
                                             it["name"] or "",
                                             "  (%s)" % "; ".join(extra) if extra else ""))
    return 0


def cmd_agent_key(args) -> int:
    from sqlalchemy.orm import Session

    from .db import get_setting, new_agent_key, set_setting

    engine = _engine(args)
    with Session(engine) as db, db.begin():
        if args.agent_key_command == "rotate":
            set_setting(db, "agent_key", new_agent_key())
        key = get_setting(db, "agent_key")
    print(json.dumps({"agent_key": key}) if args.json else key)
    return 0


def cmd_feed(args) -> int:
    from sqlalchemy.orm import Session

    from .svm import feed_status, import_feed, read_records

    engine = _engine(args)
    if args.feed_command == "import":
        for path in args.files:
            if not os.path.exists(path):
                raise SystemExit("halogrid: no such file: %s" % path)
        try:
            with Session(engine) as db, db.begin():  # all files or nothing
                records = (r for path in args.files for r in read_records(path)
                           if not args.id_prefix or (isinstance(r, dict) and str(r.get("id", ""))
                                                     .startswith(tuple(args.id_prefix))))
                stats = import_feed(db, records)
        except (ValueError, OSError) as exc:  # not JSON, a broken zip: nothing imported
            raise SystemExit("halogrid: cannot import the feed: %s" % exc)
        if args.json:
            print(json.dumps(stats))
        else:
            print("imported %d advisories (%d affected packages), %d withdrawn, %d skipped "
                  "(no system package)" % (stats["advisories"], stats["packages"],
                                           stats["withdrawn"], stats["skipped"]))
            for name, count in sorted(stats["ecosystems"].items()):
                print("  %-32s %d" % (name, count))
        return 0
    with Session(engine) as db:
        status = feed_status(db)
    if args.json:
        print(json.dumps(status))
    else:
        print("%d advisories" % status["advisories"])
        for name, count in status["ecosystems"].items():
            print("  %-32s %d affected packages" % (name, count))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "keys":
        return cmd_keys(args)
    if args.command == "feed":
        return cmd_feed(args)
    return cmd_agent_key(args)


if __name__ == "__main__":
    sys.exit(main())
