"""Application Membership Control on real lab hosts, shared by `make demo` and
tests/integration/test_e2e_lab.py.

Five lab hosts (web1 to web4 and app1; halodev.lab) and a real grid listening on the lab's
controller address, so that the hosts' agents reach it and Ansible reaches the hosts over
ssh; the grid has imported FEED (vulnerable packages). The steps are the collection's own
playbooks plus WORKLOADS, INTEGRITY, TAMPER and DRIFT (this package's playbooks, the lab's
scaffolding); this module only starts things, runs playbooks and looks at the hosts:

    with WorkloadLab(workdir) as lab:
        lab.playbook("playbooks/lab.yml")
        lab.playbook(WORKLOADS)
        lab.playbook("playbooks/provision.yml", "-e", "halo_provision_admit=false")
        lab.wait_for_pings({"web1": False, "web2": False, "web3": False, "web4": False})

Everything it starts (lab hosts, grid) is stopped on leaving the `with`, also on failure.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from halodev import COLLECTIONS, REPO
from halodev.lab.labctl import Lab
from halodev.launchers import GridProcess

HERE = Path(__file__).resolve().parent
# Steps 4-7: harden web1, web3 and web4, let root log in on web2, an openssh-server with a
# known CVE on web3, the agent on app1 in CriticalApplication.
WORKLOADS = HERE / "workloads.yml"
# After provisioning: a FIM policy on the staging group and a baseline of each host there.
INTEGRITY = HERE / "integrity.yml"
# Then a binary of web4 changes (what the admission's fim scan must catch).
TAMPER = HERE / "tamper.yml"
# An admitted web host drifts: root may log in over ssh again (what demote.yml must catch).
DRIFT = HERE / "drift.yml"
# The vulnerability feed the grid imports at start (`halogrid feed import`): two published
# Debian advisories in OSV form, the grid's own svm test feed (its README says where from).
FEED = REPO / "grid" / "tests" / "fixtures" / "osv" / "debian-dsa.json"

BIN = Path(sys.executable).parent
# The new workloads: web1 passes every scan, web2 fails its configuration scan, web3 has a
# vulnerable package, web4 has a binary changed after its FIM baseline.
WEB_HOSTS = ("web1", "web2", "web3", "web4")
APP_HOST = "app1"  # the application in CriticalApplication
INVENTORY_GROUPS = {
    "halo_new_hosts": list(WEB_HOSTS),  # what playbooks/provision.yml provisions
    "lab_hardened": ["web1", "web3", "web4"],  # pass the configuration policy
    "lab_compliant": ["web1"],  # pass every scan (drift.yml makes it drift)
    "lab_noncompliant": ["web2"],
    "lab_vulnerable": ["web3"],
    "lab_tampered": ["web4"],
    "lab_application": [APP_HOST],
}
# What the hardened host needs that this machine's root does not have (staged once).
RSYSLOG_DEBS = ("rsyslog", "libestr0", "libfastjson4", "liblognorm5")
DEB_CACHE = REPO / ".lab" / "debs"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def missing_requirements():
    """Why lab hosts cannot run here (a list of reasons; empty when they can)."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("not root")
    for tool in ("ip", "nsenter", "unshare", "sshd", "nft", "ping"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            reasons.append("%s not installed" % tool)
    if not reasons:
        # Root without the capabilities (some containers) cannot create namespaces: try it.
        probe = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "true"],
                               capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            reasons.append("cannot create namespaces: %s" % probe.stderr.strip())
    return reasons


def stage_debs(cache=DEB_CACHE):
    """The rsyslog packages for the hardened host, downloaded on the controller once."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache.with_name(cache.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # labs of parallel test workers share the cache
        have = {path.name.split("_")[0] for path in cache.glob("*.deb")}
        if not set(RSYSLOG_DEBS) <= have:
            subprocess.run(["apt-get", "download", "-q", *RSYSLOG_DEBS], cwd=cache, check=True,
                           stdout=subprocess.DEVNULL)
    return cache


class PlaybookRun:
    """An ansible-playbook run: its exit code, output and PLAY RECAP (per host and summed)."""

    def __init__(self, rc, output):
        self.rc = rc
        self.output = output
        self.recap = {host: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, counts)))
                      for host, *counts in RECAP.findall(output)}
        self.changed = sum(host["changed"] for host in self.recap.values()) if self.recap else None

    def __repr__(self):
        return "PlaybookRun(rc=%s)\n%s" % (self.rc, self.output)


class WorkloadLab:
    """Lab hosts web1 to web4 and app1, and a grid on the lab's controller address with FEED imported."""

    def __init__(self, workdir, echo=False, deb_cache=DEB_CACHE):
        self.workdir = Path(workdir)
        self.echo = echo  # stream playbook output to stdout (the demo) or only capture it (tests)
        self.deb_cache = deb_cache
        self.lab = Lab(self.workdir / "lab")
        self.grid = None
        self.vars_file = self.workdir / "lab-vars.json"

    def __enter__(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        debs = stage_debs(self.deb_cache)
        try:
            self.lab.up([*WEB_HOSTS, APP_HOST], groups=INVENTORY_GROUPS)
            shutil.rmtree(self.workdir / "grid", ignore_errors=True)  # a fresh database: no hosts of earlier runs
            self.grid = GridProcess(self.workdir / "grid", host=self.lab.controller_ip, log_level="warning")
            self.grid.start()
            self.feed = json.loads(self.grid.cli("feed", "import", "--json", str(FEED)))
            self.key_id, self.secret = self.grid.create_api_key()
            self.api = self.grid.api(self.key_id, self.secret)
            # Secrets reach ansible-playbook in a private file, not on its command line.
            self.vars_file.touch(mode=0o600)
            self.vars_file.chmod(0o600)
            self.vars_file.write_text(json.dumps({
                "halo_agent_key": self.grid.agent_key,
                "halo_agent_grid_url": self.grid.url,
                "halo_agent_source": "open",
                "lab_deb_dir": str(debs),
            }))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.grid is not None:
            self.grid.stop()
        self.lab.down()
        self.vars_file.unlink(missing_ok=True)

    @property
    def hosts(self):
        return self.lab.hosts

    def env(self):
        return dict(os.environ, HALO_API_HOST=self.grid.url, HALO_API_KEY=self.key_id,
                    HALO_API_SECRET_KEY=self.secret, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
                    ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
                    ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_DISPLAY_SKIPPED_HOSTS="False",
                    ANSIBLE_PIPELINING="True")  # one ssh round trip per task

    def playbook(self, path, *args):
        """Run a playbook (a path relative to the repo, or WORKLOADS, DRIFT) against the lab's inventory."""
        command = [str(BIN / "ansible-playbook"), "-i", str(self.lab.inventory), "-e", "@" + str(self.vars_file),
                   str(REPO / path), *args]
        proc = subprocess.Popen(command, env=self.env(), cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        try:
            for line in proc.stdout:
                lines.append(line)
                if self.echo:
                    sys.stdout.write(line)
            proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: no ansible left running against a lab going down
                proc.terminate()
                proc.wait()
            proc.stdout.close()
        return PlaybookRun(proc.returncode, "".join(lines))

    def membership(self):
        """Host name -> group name, from the Halo API."""
        return {server["hostname"]: server["group_name"] for server in self.api.servers()}

    def failed_rules(self, hostname):
        """Names of the rules that failed in the host's latest configuration scan."""
        scan = self.latest_scan(hostname, "sca")
        return sorted(finding["rule_name"] for finding in scan["findings"] if finding["status"] != "good")

    def latest_scan(self, hostname, module):
        """The host's latest finished scan of `module` (sca, svm, fim), from the Halo API."""
        server = next(s for s in self.api.servers() if s["hostname"] == hostname)
        return self.api.ok("GET", "/v1/servers/%s/%s" % (server["id"], module))["scan"]

    def vulnerable_packages(self, hostname):
        """The vulnerable packages of the host's latest svm scan, one line each: package,
        installed version, CVEs, advisories and the fixed version."""
        return ["%s %s: %s (%s), fixed in %s" % (
                    f["package_name"], f["package_version"],
                    ", ".join(c["cve_entry"] for c in f["cve_entries"]),
                    ", ".join(a["id"] for a in f["advisories"]), f["fixed_version"] or "no fixed version")
                for f in self.latest_scan(hostname, "svm")["findings"] if f["status"] == "bad"]

    def changed_files(self, hostname):
        """The objects of the host's latest fim scan that differ from its baseline, one line
        each: path, how it changed and each field's baseline and current value."""
        def short(value):
            return value[:12] + "..." if isinstance(value, str) and len(value) == 64 else value

        return ["%s %s%s" % (f["file"], f["change"], "".join(
                    "; %s %s -> %s" % (d["field"], short(d["baseline"]), short(d["current"])) for d in f["details"]))
                for f in self.latest_scan(hostname, "fim")["findings"] if f["status"] == "bad"]

    def ping(self, source, target=APP_HOST):
        """Does one ping from `source` to `target` get an answer within a second?"""
        return self.lab.exec(source, ["ping", "-c1", "-W1", "-n", self.hosts[target]]).returncode == 0

    def pings(self, sources=WEB_HOSTS, target=APP_HOST):
        """Source -> reached `target`, pinged from all sources at once."""
        with ThreadPoolExecutor(len(sources)) as pool:
            return dict(zip(sources, pool.map(lambda source: self.ping(source, target), sources)))

    def wait_for_pings(self, expected, target=APP_HOST, attempts=10):
        """Ping until the answers are `expected` (source -> reached): the agent on `target`
        applies a membership change within seconds. Returns the last answers."""
        for _ in range(attempts):
            answers = self.pings(list(expected), target)
            if answers == expected:
                break
            time.sleep(0.5)
        return answers
