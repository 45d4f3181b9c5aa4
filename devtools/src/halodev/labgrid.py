"""Lab hosts plus a real grid on the lab's controller address, for the molecule scenarios
(extensions/molecule/default/create.yml and destroy.yml run it).

    python -m halodev.labgrid up   WORKDIR HOST...   # lab in WORKDIR/lab, grid on https://198.18.N.1:<port>
    python -m halodev.labgrid down WORKDIR           # stops the grid (by PID) and the lab; safe to repeat

The grid serves HTTPS with a certificate of its own CA, as a production grid would; the
agents must be given that CA. `up` writes WORKDIR/scenario.json (mode 0600): the grid URL
and CA file, its daemon key, an API key and the staging group (tag NewDirty) that new
hosts must join.
"""

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from halodev.lab.labctl import Lab, kill_recorded, process_start_time, wait_gone
from halodev.launchers import free_port, make_self_signed_cert

HALOGRID = Path(sys.executable).with_name("halogrid")
STAGING_GROUP = {"name": "ProdWebDirty", "tag": "NewDirty"}


def halogrid(workdir, *args):
    out = subprocess.run([str(HALOGRID), *args, "--db", str(workdir / "grid.db")],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def start_grid(workdir, address):
    """Start `halogrid serve` over HTTPS; returns its URL and CA file."""
    port = free_port(address)
    cert, key = make_self_signed_cert(workdir / "tls", host=address)
    with open(workdir / "grid.log", "ab") as log:
        proc = subprocess.Popen(
            [str(HALOGRID), "serve", "--host", address, "--port", str(port),
             "--db", str(workdir / "grid.db"), "--certfile", cert, "--keyfile", key,
             "--log-level", "warning"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # outlives this script; `down` stops it by PID
    (workdir / "grid.json").write_text(json.dumps(
        {"pid": proc.pid, "start": process_start_time(proc.pid)}))
    url = f"https://{address}:{port}"
    tls = ssl.create_default_context(cafile=cert)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"halogrid exited:\n{(workdir / 'grid.log').read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2, context=tls):
                return url, cert
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def create_group(url, tls, api_key, group):
    """Create a server group through the Halo API; returns it."""
    credentials = base64.b64encode(f"{api_key['key_id']}:{api_key['secret_key']}".encode())
    token_request = urllib.request.Request(
        url + "/oauth/access_token?grant_type=client_credentials", method="POST",
        headers={"Authorization": "Basic " + credentials.decode()})
    with urllib.request.urlopen(token_request, timeout=10, context=tls) as answer:
        token = json.load(answer)["access_token"]
    group_request = urllib.request.Request(
        url + "/v1/groups", method="POST", data=json.dumps({"group": group}).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(group_request, timeout=10, context=tls) as answer:
        return json.load(answer)["group"]


def up(workdir, hosts):
    workdir.mkdir(parents=True, exist_ok=True)
    lab = Lab(workdir / "lab")
    seconds = lab.up(hosts)
    print(f"lab up: {len(hosts)} hosts in {seconds:.2f} s")
    url, ca_file = start_grid(workdir, lab.controller_ip)
    api_key = halogrid(workdir, "keys", "create", "--json", "--name", "molecule")
    group = create_group(url, ssl.create_default_context(cafile=ca_file), api_key, STAGING_GROUP)
    scenario = {
        "grid_url": url,
        "ca_file": ca_file,
        "agent_key": halogrid(workdir, "agent-key", "show", "--json")["agent_key"],
        "api_key_id": api_key["key_id"],
        "api_secret": api_key["secret_key"],
        "staging_group_id": group["id"],
        "staging_tag": STAGING_GROUP["tag"],
        "inventory": str(lab.inventory),
    }
    (workdir / "scenario.json").write_text(json.dumps(scenario, indent=2))
    os.chmod(workdir / "scenario.json", 0o600)
    print(f"grid at {url}")


def down(workdir):
    try:
        grid = json.loads((workdir / "grid.json").read_text())
    except FileNotFoundError:
        grid = None
    if grid:
        if process_start_time(grid["pid"]) == grid["start"]:
            os.kill(grid["pid"], signal.SIGTERM)
            try:
                wait_gone([grid["pid"]], timeout=10)
            except Exception:  # noqa: BLE001 - escalate whatever kept it alive
                kill_recorded(grid["pid"], grid["start"])
                wait_gone([grid["pid"]])
        (workdir / "grid.json").unlink()
    seconds = Lab(workdir / "lab").down()
    print(f"lab down in {seconds:.2f} s")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "up":
        up(Path(sys.argv[2]).resolve(), sys.argv[3:] or ["web1"])
    elif len(sys.argv) == 3 and sys.argv[1] == "down":
        down(Path(sys.argv[2]).resolve())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
