#!/usr/bin/env python3
"""The admission as CloudPassage's scan-and-move script does it: one server at a time.

The seed's script (/work/shared/seeds: "Application Membership Control with CloudPassage Halo")
builds a list of all workloads in the source group, makes each run its configuration checks,
moves it to the destination group if it passes, and leaves it where it is if not. This is
that logic with plain ``requests`` (the official SDK insists on HTTPS and *.cloudpassage.com
hosts): check the key is read+write, list the source group's servers (following pagination),
then for each server in turn: start an ``sca`` scan, poll its command until it finishes, read
the server's latest result (``GET /v1/servers/{id}/sca``) and move the server when the scan is
``completed_clean`` with no critical finding. The baseline for bench/admission_scale.py's ratio.

    .venv/bin/python bench/seed_style.py --api-host http://127.0.0.1:8080 --api-key ID --api-secret S \\
        [-s ProdWebDirty -d ProdWebClean] [--limit N] [--poll-interval 1]
"""

import argparse
import os
import sys
import time
from urllib.parse import urlsplit

import requests


class Halo:
    def __init__(self, host, key, secret):
        self.host, self.key, self.secret = host.rstrip("/"), key, secret
        self.session = requests.Session()
        self.token = None
        self.calls = 0

    def authenticate(self):
        self.calls += 1
        r = self.session.post(self.host + "/oauth/access_token", params={"grant_type": "client_credentials"},
                              auth=(self.key, self.secret), timeout=60)
        r.raise_for_status()
        data = r.json()
        self.token = data["access_token"]
        return data

    def call(self, method, path, body=None, params=None):
        if self.token is None:
            self.authenticate()
        for attempt in range(6):
            self.calls += 1
            r = self.session.request(method, self.host + path, json=body, params=params, timeout=120,
                                     headers={"Authorization": "Bearer %s" % self.token})
            if r.status_code == 401:
                self.authenticate()
                continue
            if r.status_code == 429:
                time.sleep(float(r.headers.get("Retry-After") or 1))
                continue
            return r
        return r

    def ok(self, method, path, body=None, params=None):
        r = self.call(method, path, body, params)
        r.raise_for_status()
        return r.json() if r.content else None


def group_id(halo, name):
    for group in halo.ok("GET", "/v1/groups", params={"per_page": 100})["groups"]:
        if group["name"] == name or group["id"] == name:
            return group["id"]
    raise SystemExit("no group %s" % name)


def members(halo, gid):
    servers = []
    answer = halo.ok("GET", "/v1/servers", params={"group_id": gid, "per_page": 100})
    while True:
        servers.extend(answer["servers"])
        nxt = (answer.get("pagination") or {}).get("next")
        if not nxt:
            return servers
        parts = urlsplit(nxt)
        answer = halo.ok("GET", parts.path + "?" + parts.query)


def admit(halo, source, destination, limit=None, poll_interval=1.0, scan_timeout=300.0, echo=print):
    """Returns {"servers", "moved", "kept", "failed", "seconds", "calls"}."""
    started = time.monotonic()
    if "write" not in halo.authenticate().get("scope", ""):
        raise SystemExit("the API key is read-only: nothing can be moved")
    src, dst = group_id(halo, source), group_id(halo, destination)
    servers = members(halo, src)
    if limit:
        servers = servers[:limit]
    moved = kept = failed = 0
    for server in servers:
        command = halo.ok("POST", "/v1/servers/%s/scans" % server["id"], {"scan": {"module": "sca"}})["command"]
        deadline = time.monotonic() + scan_timeout
        while command["status"] not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(poll_interval)
            command = halo.ok("GET", "/v1/servers/%s/commands/%s" % (server["id"], command["id"]))["command"]
        if command["status"] != "completed":
            failed += 1
            echo("%s: scan %s" % (server["hostname"], command["status"]))
            continue
        scan = halo.ok("GET", "/v1/servers/%s/sca" % server["id"])["scan"]
        if scan["status"] == "completed_clean" and not scan.get("critical_findings_count"):
            halo.ok("PUT", "/v1/servers/%s" % server["id"], {"server": {"group_id": dst}})
            moved += 1
        else:
            kept += 1
    return {"servers": len(servers), "moved": moved, "kept": kept, "failed": failed,
            "seconds": time.monotonic() - started, "calls": halo.calls}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-host", default=os.environ.get("HALO_API_HOST"))
    parser.add_argument("--api-key", default=os.environ.get("HALO_API_KEY"))
    parser.add_argument("--api-secret", default=os.environ.get("HALO_API_SECRET_KEY"))
    parser.add_argument("-s", "--source", default="ProdWebDirty")
    parser.add_argument("-d", "--destination", default="ProdWebClean")
    parser.add_argument("--limit", type=int, help="only the first N servers of the source group")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    args = parser.parse_args()
    if not (args.api_host and args.api_key and args.api_secret):
        sys.exit("--api-host, --api-key and --api-secret (or HALO_API_*) are required")
    out = admit(Halo(args.api_host, args.api_key, args.api_secret), args.source, args.destination,
                args.limit, args.poll_interval)
    print("%(servers)d servers: %(moved)d moved, %(kept)d kept, %(failed)d without verdict, "
          "%(seconds).1f s, %(calls)d API calls" % out)


if __name__ == "__main__":
    main()
