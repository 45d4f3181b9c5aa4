"""``haloagent run`` (the daemon) and ``haloagent scan`` (a local, offline policy check)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Dict, List, Optional

from . import __version__


def _policies(args: argparse.Namespace) -> List[Dict[str, Any]]:
    from .policysource import KEY_ENV, SECRET_ENV, HaloAPI, PolicyError, group_policies, load_policy

    policies = [load_policy(path) for path in args.policy or []]
    if args.group:
        key_id, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
        if not key_id or not secret:
            raise PolicyError("--group needs an API key: set %s and %s" % (KEY_ENV, SECRET_ENV))
        api = HaloAPI(args.grid, key_id, secret, ca_file=args.ca_file, insecure=args.insecure)
        policies.extend(group_policies(api, args.group))
    return policies


def cmd_scan(args: argparse.Namespace) -> int:
    """Scan a tree or an image; exit 0 pass, 1 a rule failed, 2 no verdict (see report.py)."""
    from . import report
    from .checks import ScanContext
    from .image import ImageError, unpack
    from .policysource import PolicyError
    from .scan import scan_policies, summarize

    def refuse(message: str) -> int:
        print("haloagent scan: %s" % message, file=sys.stderr)
        if args.junit:  # a pipeline's test view fails too, with the reason
            _write(args.junit, report.junit(None, error=message))
        return report.EXIT_NO_VERDICT

    if not args.policy and not args.group:
        return refuse("no policy: give --policy FILE or --grid URL --group NAME")
    if args.group and not args.grid:
        return refuse("--group needs --grid URL")
    if args.image and args.root != "/":
        return refuse("--root and --image exclude each other")
    try:
        policies = _policies(args)
    except PolicyError as exc:
        return refuse(str(exc))
    image = None
    try:
        if args.image:
            image = unpack(args.image, ref=args.image_ref)
            # an image runs no process: process and port checks cannot look at anything
            ctx = ScanContext(image.root, os.path.join(image.root, "no-proc"), live=False)
            ctx.fs = image.fs()
            target = "%s (%s)" % (args.image, image.description)
        else:
            ctx = ScanContext(args.root, args.proc_dir)
            target = args.root
        findings = scan_policies(policies, ctx, args.scan_timeout)
    except ImageError as exc:
        return refuse(str(exc))
    finally:
        if image is not None:
            image.close()
    if args.image:
        for d in (d for f in findings for d in f["details"]):
            if d.get("type") in ("process_presence", "port_process") and d["status"] == "indeterminate":
                d["reason"] = "an image runs no process: process and port checks need a running host"
    built = report.build(findings, summarize(findings), target, policies)
    written = True
    if args.json:
        written = _write(args.json, (json.dumps(built, indent=2) + "\n").encode("utf-8"))
    if args.junit:
        written = _write(args.junit, report.junit(built)) and written
    summary = report.text(built)
    if args.format == "summary":
        sys.stdout.write(summary)
    else:  # stdout stays the findings JSON (its contract), the summary goes to stderr
        json.dump(built, sys.stdout, indent=2)
        sys.stdout.write("\n")
        sys.stderr.write(summary)
    # a report the pipeline asked for and will not find is no verdict either
    return built["verdict"]["exit_code"] if written else report.EXIT_NO_VERDICT


def _write(path: str, data: bytes) -> bool:
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        print("haloagent scan: cannot write %s: %s" % (path, exc.strerror or exc), file=sys.stderr)
        return False
    return True


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

    scan = commands.add_parser(
        "scan", help="evaluate policies on a tree or an image archive (exit 0 pass, 1 fail, "
                     "2 no verdict)")
    scan.add_argument("--policy", action="append",
                      help="policy JSON file (repeatable)")
    scan.add_argument("--grid", help="grid or Halo API URL to take the policies of --group from "
                                     "(API key: $HALO_API_KEY and $HALO_API_SECRET_KEY)")
    scan.add_argument("--group", help="name of the group whose configuration policies are used")
    scan.add_argument("--ca-file", help="CA bundle to verify the grid's certificate")
    scan.add_argument("--insecure", action="store_true",
                      help="do not verify the grid's certificate (tests only)")
    scan.add_argument("--image", help="scan this image archive (oci-archive or docker save tar) "
                                      "instead of --root")
    scan.add_argument("--image-ref", help="which image of an archive holding several (OCI ref "
                                          "name or docker tag)")
    scan.add_argument("--json", metavar="FILE", help="write the JSON report to FILE")
    scan.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    scan.add_argument("--format", choices=("json", "summary"), default="json",
                      help="stdout: the JSON report with the summary on stderr (default), or "
                           "only the summary")
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
