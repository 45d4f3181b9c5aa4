#!/usr/bin/env python3
"""How fast the agent's fim walker and hasher read a tree, beside coreutils' sha256sum.

    .venv/bin/python bench/fim_hash_ratio.py [--tree /usr] [--repeat 3] [--threads N ...]

Times haloagent.fim's walk + hash of DIR (one recursive rule, --root /, objects counted and
dropped as the agent would upload them) and `find DIR -type f -print0 | xargs -0 sha256sum
> /dev/null`. Both run once to warm the page cache first, then the best of --repeat runs is
taken. Prints files, bytes, wall times, MB/s and the ratio of fim's throughput to
sha256sum's (target: >= 0.80). fim also stats and reports directories and symlinks,
sha256sum only reads files. Prints figures, asserts nothing.
"""

import argparse
import os
import subprocess
import time

from haloagent import fim  # the venv's (make venv installs grid/ editable)
from haloagent.scan import Deadline

from benchlib import write_json


def run_fim(tree, threads):
    """(wall seconds, files, bytes hashed, objects, unreadable files)."""
    policies = fim.parse_policies({"fim_policies": [
        {"id": "bench", "rules": [{"id": "r", "target": tree, "recurse": True}]}]})
    files = size = count = errors = 0
    started = time.perf_counter()
    for obj in fim.objects(policies, "/", Deadline(None), threads):
        count += 1
        if obj["type"] == "file":
            if obj["sha256"] is None:
                errors += 1
            else:
                files += 1
                size += obj["size"]
    return time.perf_counter() - started, files, size, count, errors


def run_sha256sum(tree):
    started = time.perf_counter()
    # xargs exits 123 when sha256sum failed on some file (unreadable): that is no bench error
    subprocess.run("find %s -type f -print0 | xargs -0 sha256sum > /dev/null" % _quote(tree),
                   shell=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _quote(text):
    import shlex

    return shlex.quote(text)


def rate(size, seconds):
    return size / seconds / 1e6 if seconds else float("inf")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default="/usr", help="directory to hash (default /usr)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each; best taken")
    parser.add_argument("--threads", type=int, nargs="*",
                        help="fim hashing thread counts to time (default: the agent's, %d here)"
                             % fim.default_threads())
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    tree = os.path.abspath(args.tree)
    thread_counts = args.threads or [fim.default_threads()]
    print("tree %s, %d cores, load average %.1f" % (tree, os.cpu_count() or 0, os.getloadavg()[0]))

    run_sha256sum(tree)  # warm the page cache for both
    sha_times = []
    for _ in range(args.repeat):
        sha_times.append(run_sha256sum(tree))
    sha_best = min(sha_times)

    figures = {"tree": tree, "sha256sum_seconds": sha_best, "fim": []}
    for threads in thread_counts:
        run_fim(tree, threads)  # warm
        runs = [run_fim(tree, threads) for _ in range(args.repeat)]
        best = min(runs)
        seconds, files, size, count, errors = best
        figures["files"], figures["bytes"] = files, size
        figures["fim"].append({"threads": threads, "seconds": seconds, "objects": count,
                               "unreadable": errors, "ratio": sha_best / seconds})
        print("fim (%d threads): %d files, %d bytes (%.2f GB), %d objects, %d unreadable: "
              "best %.2f s of %s, %.0f MB/s"
              % (threads, files, size, size / 1e9, count, errors, seconds,
                 ", ".join("%.2f" % r[0] for r in runs), rate(size, seconds)))
    size = figures["bytes"]
    print("sha256sum (find | xargs -0): best %.2f s of %s, %.0f MB/s"
          % (sha_best, ", ".join("%.2f" % t for t in sha_times), rate(size, sha_best)))
    for run in figures["fim"]:
        print("ratio fim/sha256sum throughput (%d threads): %.2f (target >= 0.80)"
              % (run["threads"], run["ratio"]))
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
