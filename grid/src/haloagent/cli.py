"""``haloagent run`` (the daemon) and ``haloagent scan`` (a local, offline policy check)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Dict, List, Optional

from . import __version__


def load_policy(path: str) -> Dict[str, Any]:
    """A policy object from a Halo policy JSON file (``{"policy": {...}}`` or the bare object)."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    policy = document.get("policy", document) if isinstance(document, dict) else None
    if not isinstance(policy, dict) or not isinstance(policy.get("rules"), list):
        raise ValueError("%s: not a configuration policy (no rules)" % path)
    policy.setdefault("id", path)
    return policy


def cmd_scan(args: argparse.Namespace) -> int:
    from .checks import ScanContext
    from .scan import scan_policies, summarize

    try:
        policies = [load_policy(path) for path in args.policy]
    except (OSError, ValueError) as exc:
        print("haloagent scan: %s" % exc, file=sys.stderr)
        return 2
    findings = scan_policies(policies, ScanContext(args.root, args.proc_dir), args.scan_timeout)
    summary = summarize(findings)
    json.dump(dict(summary, findings=findings), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if summary["status"] == "completed_clean" else 1


def cmd_run(args: argparse.Namespace) -> int:
    from .agent import Agent, AgentConfig

    if not args.agent_key:
        print("haloagent: the daemon key is required: --agent-key or $HALOAGENT_AGENT_KEY", file=sys.stderr)
        return 2
    config = AgentConfig(
        grid=args.grid.rstrip("/"), agent_key=args.agent_key, tag=args.tag,
        server_label=args.server_label, state_dir=args.state_dir, root=args.root,
        proc_dir=args.proc_dir, ca_file=args.ca_file, insecure=args.insecure,
        firewall=not args.no_firewall, once=args.once, poll_wait=args.poll_wait,
        scan_timeout=args.scan_timeout,
    )
    return Agent(config).run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="haloagent", description=__doc__)
    parser.add_argument("--version", action="version", version="haloagent " + __version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_scan_target(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--root", default="/",
                         help="root of the system whose files are scanned (default /)")
        sub.add_argument("--proc-dir", default="/proc",
                         help="procfs for process and port checks; always the live machine's")
        sub.add_argument("--scan-timeout", type=float, default=240.0,
                         help="time limit of one scan in seconds; checks beyond it are "
                              "indeterminate (0: none; default 240)")

    run = commands.add_parser("run", help="register with a grid and run its commands")
    run.add_argument("--grid", required=True, help="grid URL, e.g. https://grid.example:8443")
    # The key is a secret: on a shared host, prefer the environment to the command line,
    # which every local user can read in ps.
    run.add_argument("--agent-key", default=os.environ.get("HALOAGENT_AGENT_KEY"),
                     help="the grid's daemon key (default: $HALOAGENT_AGENT_KEY)")
    run.add_argument("--tag", help="group tag to join at first registration (e.g. NewDirty)")
    run.add_argument("--server-label", help="label shown for this server")
    run.add_argument("--state-dir", default="/var/lib/haloagent",
                     help="where agent.json (server id and secret) is kept")
    run.add_argument("--ca-file", help="CA bundle to verify the grid's certificate")
    run.add_argument("--insecure", action="store_true",
                     help="do not verify the grid's certificate (tests only)")
    run.add_argument("--no-firewall", action="store_true",
                     help="never touch the host firewall (e.g. when scanning a tree)")
    run.add_argument("--once", action="store_true",
                     help="one poll, run what it brought, then exit")
    run.add_argument("--poll-wait", type=int, default=30, help="long-poll seconds (max 30)")
    add_scan_target(run)
    run.set_defaults(func=cmd_run)

    scan = commands.add_parser("scan", help="evaluate policy files locally, print findings JSON")
    scan.add_argument("--policy", action="append", required=True,
                      help="policy JSON file (repeatable)")
    add_scan_target(scan)
    scan.set_defaults(func=cmd_scan)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
