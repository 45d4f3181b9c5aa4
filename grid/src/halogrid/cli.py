"""`halogrid serve | keys create | agent-key show|rotate`"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import List, Optional

from . import __version__


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=os.environ.get("HALOGRID_DB"),
                   help="SQLite file path, or an SQLAlchemy URL such as "
                        "postgresql+psycopg://user:pw@host/db (default: $HALOGRID_DB)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="halogrid", description="A Halo-compatible grid.")
    parser.add_argument("--version", action="version", version="halogrid " + __version__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the grid")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443)
    _db_arg(serve)
    serve.add_argument("--token-ttl", type=int, default=900,
                       help="lifetime of OAuth tokens in seconds (default 900)")
    serve.add_argument("--rate-limit", type=int, default=600,
                       help="API calls per API key in each --rate-window; 0 = no limit (default 600)")
    serve.add_argument("--rate-window", type=float, default=60.0,
                       help="seconds the --rate-limit counts over (default 60: calls per minute)")
    serve.add_argument("--missing-after", type=float, default=90.0,
                       help="seconds without contact before a server is missing (default 90)")
    serve.add_argument("--certfile", help="TLS certificate (PEM); serve HTTPS with --keyfile")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])

    keys = sub.add_parser("keys", help="API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="create an API key (the secret is shown once)")
    kc.add_argument("--read-only", action="store_true", help="a key whose tokens get scope read")
    kc.add_argument("--name", help="a note to remember the key by")
    kc.add_argument("--json", action="store_true", help="print {key_id, secret_key, scope}")
    _db_arg(kc)
    kl = ksub.add_parser("list", help="list API keys (ids and scopes, never secrets)")
    kl.add_argument("--json", action="store_true")
    _db_arg(kl)

    ak = sub.add_parser("agent-key", help="the daemon (agent) key agents register with")
    asub = ak.add_subparsers(dest="agent_key_command", required=True)
    for name, text in (("show", "print the daemon key"),
                       ("rotate", "replace the daemon key (registered agents keep working)")):
        p = asub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true")
        _db_arg(p)
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
                    rate_window=args.rate_window, missing_after=args.missing_after)
    app = create_app(config)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                ssl_certfile=args.certfile, ssl_keyfile=args.keyfile,
                timeout_graceful_shutdown=3, access_log=args.log_level == "debug")
    return 0


def cmd_keys(args) -> int:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from .auth import create_api_key
    from .models import ApiKey

    engine = _engine(args)
    if args.keys_command == "create":
        with Session(engine) as db, db.begin():
            key_id, secret = create_api_key(db, read_only=args.read_only, name=args.name)
        scope = "read" if args.read_only else "read+write"
        if args.json:
            print(json.dumps({"key_id": key_id, "secret_key": secret, "scope": scope}))
        else:
            print("key_id:     %s\nsecret_key: %s\nscope:      %s\n"
                  "(the secret is shown only now)" % (key_id, secret, scope))
        return 0
    with Session(engine) as db:
        rows = db.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        items = [{"key_id": r.key_id, "scope": "read" if r.read_only else "read+write",
                  "name": r.name, "created_at": r.created_at.isoformat() + "Z"} for r in rows]
    if args.json:
        print(json.dumps(items))
    else:
        for it in items:
            print("%s  %-10s  %s" % (it["key_id"], it["scope"], it["name"] or ""))
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


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "keys":
        return cmd_keys(args)
    return cmd_agent_key(args)


if __name__ == "__main__":
    sys.exit(main())
