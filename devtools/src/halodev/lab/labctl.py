"""Lab hosts: several real Linux hosts on this machine, reachable by ssh.

Each host is its own network namespace plus a mount/UTS/IPC/PID namespace with a
copy-on-write root (see host-init.sh) running sshd. The hosts' veths meet on a bridge
inside a "hub" namespace that has no uplink; the controller (this machine's root
namespace) gets one veth onto that bridge so Ansible can reach the hosts and the hosts
can reach a grid listening on the controller address.

Several labs can run at once (one per work directory): each takes a free *slot* N in
0..511, which names everything it creates (``halolab<N>``) and gives it the /24 number N
inside 198.18.0.0/15 (controller .1, hosts .11, .12, ...). Everything the lab creates is
either recorded in ``<workdir>/state.json`` or derivable from its slot, so ``down``
removes it all, also after a crash, and is harmless to repeat.

Standard library only. The demo, the tests and molecule import it; `halolab` (or
`python -m halodev.lab.labctl`) is its command line:

    halolab -w DIR up web1 web2 app1     # writes DIR/inventory.yml
    halolab -w DIR exec web1 -- hostname
    halolab -w DIR status
    halolab -w DIR down
"""

import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from halodev import REPO

LAB_NETWORK = ipaddress.ip_network("198.18.0.0/15")
SLOT_COUNT = 2 ** (24 - LAB_NETWORK.prefixlen)  # one /24 per slot
CONTROLLER_OFFSET = 1
FIRST_HOST_OFFSET = 11
# Machine-wide bookkeeping shared by all labs: which slots are taken, and the
# ssh ControlPath directories (a socket path must stay under 108 bytes, which a
# deep work directory would not).
REGISTRY = Path("/run/halolab")
HOST_INIT = Path(__file__).resolve().with_name("host-init.sh")
STATE_FILE = "state.json"  # in the work directory
# A host's name is also its veth's name in the hub namespace (IFNAMSIZ: 15).
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,14}$")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SSH_TIMEOUT = 20.0


class LabError(Exception):
    """A lab could not be brought up, used or torn down."""


def run(*argv, check=True, timeout=30):
    """Run a command, raising LabError with its stderr when it fails and check is set."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{shlex.join(argv)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def process_start_time(pid):
    """The kernel's start time of a process (clock ticks since boot), None if it is gone.

    Recorded next to each PID so that a later ``down`` never kills a recycled PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name in field 2 may itself hold spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_running(pid):
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_recorded(pid, start_time):
    """SIGKILL a recorded process unless its PID now belongs to another process."""
    if process_start_time(pid) == start_time:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while any(is_running(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise LabError(f"processes still running after SIGKILL: {sorted(pids)}")
        time.sleep(0.01)


def netns_names():
    return [line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines()]


def netns_pids(netns):
    proc = run("ip", "netns", "pids", netns, check=False)
    return [int(pid) for pid in proc.stdout.split()]


def slot_subnet(slot):
    """The slot-th /24 of the lab network."""
    return ipaddress.ip_network((int(LAB_NETWORK.network_address) + slot * 256, 24))


def slot_prefix(slot):
    """The name of a slot's hub namespace and controller veth, and the prefix of its hosts."""
    return f"halolab{slot}"


@contextlib.contextmanager
def registry_lock():
    """Serialise slot allocation and the shared route between labs of all processes."""
    REGISTRY.mkdir(mode=0o700, exist_ok=True)
    with open(REGISTRY / "lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def slot_dir(slot):
    return REGISTRY / f"slot-{slot}"


def slot_owner(slot):
    """The work directory that holds a slot, or None when nobody claims it any more."""
    try:
        owner = Path((slot_dir(slot) / "owner").read_text().strip())
        state = json.loads((owner / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return owner if state.get("slot") == slot else None


def teardown_slot(slot, recorded_pids=()):
    """Remove everything a lab in this slot can have created, in an order that works
    whatever state a crash left it in. Each step tolerates the thing being gone."""
    close_ssh_masters(slot_dir(slot) / "cp")
    prefix = slot_prefix(slot)
    namespaces = [ns for ns in netns_names() if ns == prefix or ns.startswith(prefix + "-")]
    # The namespaces tell which processes are ours even if state.json was never written;
    # killing a host's PID 1 takes its whole PID namespace with it.
    victims = set()
    for ns in namespaces:
        for pid in netns_pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            victims.add(pid)
    for pid, start_time in recorded_pids:
        kill_recorded(pid, start_time)
        victims.add(pid)
    wait_gone(victims)
    for ns in namespaces:
        run("ip", "netns", "delete", ns, check=False)
    # Namespaces are freed asynchronously; delete the controller's veth now so the slot
    # can be reused at once (this also removes its peer and the /24 route).
    if Path(f"/sys/class/net/{prefix}").exists():
        run("ip", "link", "delete", prefix, check=False)


def close_ssh_masters(control_dir):
    """Stop ssh ControlMaster processes of a lab: a master left behind makes the next
    connection to a re-created host with the same address hang for minutes."""
    if not control_dir.is_dir():
        return
    for sock in control_dir.iterdir():
        # A master that does not answer is left to its ControlPersist timeout; without its
        # socket no new connection can reach it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            run("ssh", "-o", f"ControlPath={sock}", "-O", "exit", "halolab", check=False,
                timeout=10)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
    control_dir.rmdir()


def claim_slot(workdir, wanted=None):
    """Take a free slot for workdir (or exactly `wanted`), reclaiming stale ones.

    The claim is the slot's owner file plus the owner's state.json naming the slot, both
    written under the lock: with either missing, another `up` would take the slot over."""
    with registry_lock():
        candidates = [wanted] if wanted is not None else range(SLOT_COUNT)
        for slot in candidates:
            if not 0 <= slot < SLOT_COUNT:
                raise LabError(f"slot must be in 0..{SLOT_COUNT - 1}")
            path = slot_dir(slot)
            if path.exists():
                if slot_owner(slot) is not None:
                    continue
                teardown_slot(slot)  # its owner vanished without `down`
            else:
                path.mkdir()
            (path / "owner").write_text(f"{workdir}\n")
            (workdir / STATE_FILE).write_text(json.dumps({"slot": slot, "hosts": {}}) + "\n")
            # The lab's /24 is routed to its veth; the rest of 198.18.0.0/15 must never
            # follow the default route out of this machine.
            run("ip", "route", "replace", "unreachable", str(LAB_NETWORK))
            return slot
    raise LabError(f"slot {wanted} is in use" if wanted is not None else "no free lab slot")


def release_slot(slot):
    with registry_lock():
        path = slot_dir(slot)
        with contextlib.suppress(FileNotFoundError):
            (path / "owner").unlink()
        with contextlib.suppress(FileNotFoundError):
            path.rmdir()
        if not any(REGISTRY.glob("slot-*")):
            run("ip", "route", "delete", "unreachable", str(LAB_NETWORK), check=False)


class Lab:
    """One lab, kept in a work directory.

    >>> lab = Lab("/tmp/lab1")
    >>> lab.up(["web1", "web2"])        # doctest: +SKIP
    >>> lab.exec("web1", ["hostname"]).stdout   # doctest: +SKIP
    >>> lab.down()                       # doctest: +SKIP
    """

    def __init__(self, workdir):
        self.workdir = Path(workdir).resolve()
        self.state_file = self.workdir / STATE_FILE
        self.inventory = self.workdir / "inventory.yml"
        self.key = self.workdir / "id_ed25519"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.down()

    # -- state -----------------------------------------------------------------
    def state(self):
        """The recorded state, or None when the lab is down."""
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def _save(self, state):
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)

    def _require_state(self):
        state = self.state()
        if state is None:
            raise LabError(f"no lab is up in {self.workdir}")
        return state

    @property
    def hosts(self):
        """Host name -> address."""
        return {name: host["ip"] for name, host in self._require_state()["hosts"].items()}

    @property
    def controller_ip(self):
        return self._require_state()["controller_ip"]

    @property
    def control_dir(self):
        return slot_dir(self._require_state()["slot"]) / "cp"

    # -- up --------------------------------------------------------------------
    def up(self, hosts, groups=None, slot=None):
        """Bring hosts up; `groups` maps inventory group names to host names.

        Returns the seconds it took."""
        started = time.monotonic()
        hosts = list(hosts)
        groups = dict(groups or {})
        self._validate(hosts, groups)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.state() is not None:
            if self.status()["running"]:
                raise LabError(f"a lab is already up in {self.workdir}; run down first")
            self.down()  # leftovers of a crashed lab
        slot = claim_slot(self.workdir, slot)
        subnet = slot_subnet(slot)
        state = {
            "slot": slot,
            "subnet": str(subnet),
            "controller_ip": str(subnet[CONTROLLER_OFFSET]),
            "hosts": {name: {"ip": str(subnet[FIRST_HOST_OFFSET + i])}
                      for i, name in enumerate(hosts)},
            "groups": groups,
        }
        self._save(state)
        try:
            self._make_key()
            self._write_etc_hosts(state)
            self._make_hub(state)
            children = {name: self._start_host(state, name) for name in hosts}
            self._wait_ready(state, children)
            self._write_inventory(state)
        except BaseException:
            self.down()
            raise
        return time.monotonic() - started

    @staticmethod
    def _validate(hosts, groups):
        if not hosts:
            raise LabError("no hosts given")
        for name in hosts:
            if not HOST_NAME.match(name):
                raise LabError(f"bad host name {name!r}: lower-case letters, digits and '-', "
                               "at most 15 characters, starting with a letter")
        if len(set(hosts)) != len(hosts):
            raise LabError("duplicate host names")
        if len(hosts) > 254 - FIRST_HOST_OFFSET:
            raise LabError("too many hosts for one /24")
        for group, members in groups.items():
            unknown = set(members) - set(hosts)
            if unknown:
                raise LabError(f"group {group} names unknown hosts: {sorted(unknown)}")

    def _make_key(self):
        if not self.key.exists():
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"halolab {self.workdir}",
                "-f", str(self.key))

    def _write_etc_hosts(self, state):
        """The hosts' /etc/hosts: every lab host and the controller by name."""
        lines = ["127.0.0.1\tlocalhost", f"{state['controller_ip']}\tcontroller"]
        lines += [f"{host['ip']}\t{name}" for name, host in state["hosts"].items()]
        (self.workdir / "hosts.txt").write_text("\n".join(lines) + "\n")

    def _make_hub(self, state):
        hub = slot_prefix(state["slot"])
        run("ip", "netns", "add", hub)
        run("ip", "-n", hub, "link", "set", "lo", "up")
        run("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", hub, "link", "set", "br0", "up")
        # The controller's veth: its root-namespace end carries the controller address.
        run("ip", "link", "add", hub, "type", "veth", "peer", "name", "controller",
            "netns", hub)
        run("ip", "-n", hub, "link", "set", "controller", "master", "br0", "up")
        # Hosts may talk to the controller, never through it to anywhere else; the lab
        # speaks IPv4 only.
        Path(f"/proc/sys/net/ipv4/conf/{hub}/forwarding").write_text("0\n")
        ipv6 = Path(f"/proc/sys/net/ipv6/conf/{hub}/disable_ipv6")
        if ipv6.exists():
            ipv6.write_text("1\n")
        prefixlen = ipaddress.ip_network(state["subnet"]).prefixlen
        run("ip", "addr", "add", f"{state['controller_ip']}/{prefixlen}", "dev", hub)
        run("ip", "link", "set", hub, "up")

    def _start_host(self, state, name):
        """Create a host's network and start its init; returns the Popen of `unshare`."""
        hub = slot_prefix(state["slot"])
        netns = f"{hub}-{name}"
        address = state["hosts"][name]["ip"]
        prefixlen = ipaddress.ip_network(state["subnet"]).prefixlen
        run("ip", "netns", "add", netns)
        run("ip", "-n", hub, "link", "add", name, "type", "veth", "peer", "name", "eth0",
            "netns", netns)
        run("ip", "-n", hub, "link", "set", name, "master", "br0", "up")
        run("ip", "-n", netns, "addr", "add", f"{address}/{prefixlen}", "dev", "eth0")
        run("ip", "-n", netns, "link", "set", "eth0", "up")
        run("ip", "-n", netns, "link", "set", "lo", "up")

        host_dir = self.workdir / "hosts" / name
        mountpoint = host_dir / "mnt"
        mountpoint.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": HOST_PATH, "LANG": "C.UTF-8", "HALOLAB_HOST": name,
            "HALOLAB_IP": address, "HALOLAB_PUBKEY": f"{self.key}.pub",
            "HALOLAB_HOSTS": str(self.workdir / "hosts.txt"), "HALOLAB_MNT": str(mountpoint),
            "HALOLAB_PYTHON": sys.executable,  # has halodev and haloagent: runs halodev.lab.boot_sysctl
        }
        with open(host_dir / "init.log", "wb") as log:
            child = subprocess.Popen(
                ["ip", "netns", "exec", netns,
                 "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child",
                 "sh", str(HOST_INIT)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)  # outlives `halolab up`, immune to its Ctrl-C
        state["hosts"][name]["unshare_pid"] = child.pid
        state["hosts"][name]["unshare_start"] = process_start_time(child.pid)
        self._save(state)
        return child

    def _wait_ready(self, state, children):
        """Wait until every host's init is known and its sshd accepts connections."""
        deadline = time.monotonic() + SSH_TIMEOUT
        pending = dict(children)
        while pending:
            for name, child in list(pending.items()):
                host = state["hosts"][name]
                if child.poll() is not None:
                    log = (self.workdir / "hosts" / name / "init.log").read_text(errors="replace")
                    raise LabError(f"host {name} failed to start:\n{log}")
                if "pid" not in host:
                    init_pid = self._init_pid(child.pid)
                    if init_pid is None:
                        continue
                    host["pid"] = init_pid
                    host["start"] = process_start_time(init_pid)
                    self._save(state)
                with socket.socket() as sock:
                    sock.settimeout(0.2)
                    if sock.connect_ex((host["ip"], 22)) == 0:
                        del pending[name]
            if pending and time.monotonic() > deadline:
                raise LabError(f"sshd did not come up on: {', '.join(pending)}")
            time.sleep(0.01)

    @staticmethod
    def _init_pid(unshare_pid):
        """The PID (as seen from here) of the host's PID 1: unshare's only child."""
        try:
            children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text()
        except OSError:
            return None
        return int(children.split()[0]) if children.split() else None

    def ssh_common_args(self, state=None):
        state = state or self._require_state()
        control_path = slot_dir(state["slot"]) / "cp" / "%C"
        return (f"-o ControlPath={control_path} -o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o IdentitiesOnly=yes")

    def _write_inventory(self, state):
        (slot_dir(state["slot"]) / "cp").mkdir(mode=0o700, exist_ok=True)
        q = json.dumps  # a JSON string is a valid YAML scalar, quoting included
        lines = ["# Written by halodev.lab.labctl; removed by `halolab down`.", "all:",
                 "  vars:",
                 "    ansible_user: root",
                 f"    ansible_ssh_private_key_file: {q(str(self.key))}",
                 f"    ansible_ssh_common_args: {q(self.ssh_common_args(state))}",
                 "    ansible_python_interpreter: /usr/bin/python3",
                 f"    halolab_controller_ip: {q(state['controller_ip'])}",
                 "  hosts:"]
        for name, host in state["hosts"].items():
            lines += [f"    {name}:", f"      ansible_host: {q(host['ip'])}"]
        if state["groups"]:
            lines.append("  children:")
            for group, members in state["groups"].items():
                lines += [f"    {group}:", "      hosts:"]
                lines += [f"        {member}: {{}}" for member in members]
        self.inventory.write_text("\n".join(lines) + "\n")

    # -- use -------------------------------------------------------------------
    def exec(self, host, argv, check=False, timeout=120, input=None):
        """Run argv inside a host (all its namespaces, its root) without ssh."""
        state = self._require_state()
        if host not in state["hosts"] or "pid" not in state["hosts"][host]:
            raise LabError(f"no host {host} in this lab")
        pid = state["hosts"][host]["pid"]
        if process_start_time(pid) != state["hosts"][host]["start"]:
            raise LabError(f"host {host} is not running")
        return subprocess.run(
            ["nsenter", f"--target={pid}", "--all", "--root", "--wd", "--", *argv],
            env={"PATH": HOST_PATH, "LANG": "C.UTF-8", "HOME": "/root"},
            capture_output=True, text=True, timeout=timeout, input=input, check=check)

    def status(self):
        """{"running": bool, "slot":..., "hosts": {name: {"ip", "running", "ssh"}}}."""
        state = self.state()
        if state is None:
            return {"running": False, "hosts": {}}
        hosts = {}
        for name, host in state["hosts"].items():
            # A killed host is a zombie until its parent reaps it: that is not running.
            alive = ("pid" in host and process_start_time(host["pid"]) == host["start"]
                     and is_running(host["pid"]))
            ssh = False
            if alive:
                with socket.socket() as sock:
                    sock.settimeout(0.5)
                    ssh = sock.connect_ex((host["ip"], 22)) == 0
            hosts[name] = {"ip": host["ip"], "running": alive, "ssh": ssh}
        return {"running": any(h["running"] for h in hosts.values()), "slot": state["slot"],
                "controller_ip": state["controller_ip"], "inventory": str(self.inventory),
                "hosts": hosts}

    # -- down ------------------------------------------------------------------
    def down(self):
        """Remove everything the lab made. Returns the seconds it took."""
        started = time.monotonic()
        state = self.state()
        if state is None:
            return 0.0
        recorded = []
        for host in state["hosts"].values():
            for pid_key, start_key in (("pid", "start"), ("unshare_pid", "unshare_start")):
                if host.get(pid_key) and host.get(start_key) is not None:
                    recorded.append((host[pid_key], host[start_key]))
        teardown_slot(state["slot"], recorded)
        release_slot(state["slot"])
        with contextlib.suppress(FileNotFoundError):
            self.inventory.unlink()
        self.state_file.unlink()
        return time.monotonic() - started


def parse_groups(specs):
    groups = {}
    for spec in specs:
        name, equals, members = spec.partition("=")
        if not (name and equals and members):
            raise LabError(f"bad --group {spec!r}: use NAME=host1,host2")
        groups[name] = members.split(",")
    return groups


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("-w", "--workdir", type=Path,
                        default=os.environ.get("HALOLAB_WORKDIR", REPO / ".lab"),
                        help="the lab's directory (default: $HALOLAB_WORKDIR or <repo>/.lab)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="bring hosts up and write <workdir>/inventory.yml")
    up.add_argument("hosts", nargs="+", metavar="HOST")
    up.add_argument("--group", action="append", default=[], metavar="NAME=HOST,...",
                    help="an inventory group (repeatable)")
    up.add_argument("--slot", type=int, help=f"use this slot (0..{SLOT_COUNT - 1}), "
                                             "i.e. the /24 198.18.0.0/15's N-th")
    commands.add_parser("down", help="remove everything the lab made")
    status = commands.add_parser("status", help="show the hosts")
    status.add_argument("--json", action="store_true")
    execute = commands.add_parser("exec", help="run a command in a host (no ssh)")
    execute.add_argument("host")
    execute.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    args = parser.parse_args(argv)

    lab = Lab(args.workdir)
    try:
        if args.command == "up":
            seconds = lab.up(args.hosts, parse_groups(args.group), args.slot)
            state = lab.state()
            print(f"lab {state['slot']} up: {len(args.hosts)} hosts in {seconds:.2f} s; "
                  f"controller {state['controller_ip']}, inventory {lab.inventory}")
        elif args.command == "down":
            state = lab.state()
            seconds = lab.down()
            if state is None:
                print(f"no lab in {lab.workdir}")
            else:
                print(f"lab {state['slot']} down in {seconds:.2f} s")
        elif args.command == "status":
            status = lab.status()
            if args.json:
                print(json.dumps(status, indent=2))
            elif not status["hosts"]:
                print(f"no lab in {lab.workdir}")
            else:
                print(f"lab {status['slot']}: controller {status['controller_ip']}, "
                      f"inventory {status['inventory']}")
                for name, host in status["hosts"].items():
                    print(f"  {name:15} {host['ip']:15} "
                          f"{'running' if host['running'] else 'STOPPED'}"
                          f"{'' if host['ssh'] else ', ssh down'}")
            return 0 if status["running"] else 3
        elif args.command == "exec":
            argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not argv:
                parser.error("exec needs a command")
            proc = lab.exec(args.host, argv)
            sys.stdout.write(proc.stdout)
            sys.stderr.write(proc.stderr)
            return proc.returncode
    except LabError as err:
        print(f"halolab: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
