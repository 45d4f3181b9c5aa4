#!/usr/bin/env python3
"""How much halo_scan's bounded pool saves: scan N servers one at a time, then all at once.

Starts a real grid and N real agents (prepared trees, --root) on loopback, then times the
collection's Scanner (what halo_scan runs) with max_workers=1 and max_workers=N.

    make venv && .venv/bin/python bench/scan_concurrency.py [--servers 10] [--poll-interval 0.5]

Prints the wall time of each and the ratio. Not a test: the figures depend on the machine.
"""

import argparse
import tempfile
import time
from pathlib import Path

import halodev
from halodev import trees
from halodev.launchers import AgentProcess, GridProcess

halodev.use_collection()  # the checkout as cloudpassage.halo, through Ansible's collection loader

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import HaloClient  # noqa: E402
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_scanning import Scanner  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        agents = []
        with GridProcess(tmp / "grid", rate_limit=0) as grid:
            try:
                key_id, secret = grid.create_api_key()
                api = grid.api(key_id, secret)
                policy = next(p for p in api.ok("GET", "/v2/policies", params={"module": "csm"})["policies"]
                              if "Debian" in p["name"])
                api.create_group("Bench", tag="Bench", policy_ids=[policy["id"]])
                for index in range(args.servers):
                    root = tmp / ("tree%d" % index)
                    trees.make_compliant_tree(str(root))
                    agents.append(AgentProcess(grid.url, grid.agent_key, root=root, state_dir=tmp / ("state%d" % index),
                                               tag="Bench", server_label="bench%d" % index).start())
                deadline = time.monotonic() + 60
                while len(api.servers()) < args.servers:
                    if time.monotonic() > deadline:
                        raise SystemExit("agents did not register")
                    time.sleep(0.2)
                client = HaloClient(api_host=grid.url, api_key=key_id, api_secret=secret)
                servers = client.list_servers()
                figures = {}
                for workers in (1, args.servers):
                    scanner = Scanner(client, scan_timeout=600, poll_interval=args.poll_interval, max_workers=workers)
                    started = time.monotonic()
                    results = scanner.scan(servers)
                    figures[workers] = time.monotonic() - started
                    passed = sum(result["passed"] for result in results)
                    print("max_workers=%-3d %d servers scanned in %6.2f s (%d passed)"
                          % (workers, len(servers), figures[workers], passed))
                print("speed-up with a pool of %d: %.1fx" % (args.servers, figures[1] / figures[args.servers]))
            finally:
                for agent in agents:
                    agent.stop()


if __name__ == "__main__":
    main()
