#!/usr/bin/env python3
"""What a configuration scan costs on a host: the bundled policies evaluated against this
machine's root, in-process (no grid), repeated to get a stable figure.

    .venv/bin/python bench/agent_scan.py [--root /] [--repeat 20]

Prints, per policy, the rules and checks evaluated and the median and worst wall time per scan.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from haloagent.checks import ScanContext
from haloagent.scan import scan_policies

POLICIES = Path(__file__).resolve().parents[1] / "grid" / "src" / "halogrid" / "policies"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    for path in sorted(POLICIES.glob("*.json")):
        policy = json.loads(path.read_text())["policy"]
        checks = sum(len(rule.get("checks", [])) for rule in policy["rules"])
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            findings = scan_policies([policy], ScanContext(args.root, "/proc"))
            times.append(time.perf_counter() - started)
        bad = sum(1 for finding in findings if finding["status"] != "good")
        print("%-34s %2d rules %3d checks: median %6.2f ms, worst %6.2f ms per scan (%d not good on %s)"
              % (policy["name"], len(policy["rules"]), checks, statistics.median(times) * 1000,
                 max(times) * 1000, bad, args.root))


if __name__ == "__main__":
    main()
