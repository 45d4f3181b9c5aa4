"""The lab hosts tool (halodev.lab.labctl) against the real kernel: needs root."""

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from halodev.lab import labctl

VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="lab hosts need root")


def ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def ssh(lab, host, command):
    """A plain ssh call, the way Ansible connects (no ControlMaster)."""
    return subprocess.run(
        ["ssh", "-i", str(lab.key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
         f"root@{lab.hosts[host]}", command],
        capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with labctl.Lab(tmp_path_factory.mktemp("lab")) as lab:
        lab.up(["web1", "web2"], groups={"web": ["web1"]})
        yield lab


def test_hosts_answer_ssh_with_their_own_name_and_address(lab):
    for name, address in lab.hosts.items():
        result = ssh(lab, name, "hostname; ip -4 -o addr show dev eth0")
        assert result.returncode == 0, result.stderr
        hostname, addr_line = result.stdout.splitlines()
        assert hostname == name
        assert f"inet {address}/24" in addr_line
    assert len(set(lab.hosts.values())) == 2


def test_addresses_sit_in_the_lab_subnet(lab):
    state = lab.state()
    subnet = labctl.ipaddress.ip_network(state["subnet"])
    assert subnet.subnet_of(labctl.LAB_NETWORK)
    assert lab.controller_ip == str(subnet[1])
    assert all(labctl.ipaddress.ip_address(a) in subnet for a in lab.hosts.values())


def test_host_filesystems_are_private_copies(lab):
    marker = f"/etc/halolab-test-{os.getpid()}"
    assert lab.exec("web1", ["sh", "-c", f"echo web1 > {marker}"]).returncode == 0
    assert lab.exec("web1", ["cat", marker]).stdout == "web1\n"
    assert lab.exec("web2", ["test", "-e", marker]).returncode == 1
    assert not Path(marker).exists()
    # The machine's files are visible underneath, but not its scratch space.
    assert lab.exec("web2", ["test", "-x", "/usr/bin/python3"]).returncode == 0
    with tempfile.NamedTemporaryFile(dir="/tmp") as machine_tmp:
        assert lab.exec("web2", ["test", "-e", machine_tmp.name]).returncode == 1


def test_hosts_have_their_own_pid_namespace_and_identity(lab):
    comm = lab.exec("web1", ["cat", "/proc/1/comm"]).stdout.strip()
    assert comm == "sh"  # host-init.sh, not the machine's init
    ids = {name: lab.exec(name, ["cat", "/etc/machine-id"]).stdout for name in lab.hosts}
    assert ids["web1"] != ids["web2"]
    assert lab.exec("web1", ["ls", "/root/.ssh/authorized_keys"]).returncode == 0


def test_hosts_reach_each_other_and_the_controller_but_nothing_else(lab):
    web1 = lab.hosts["web1"]
    for target in ("web2", "controller"):  # by name: the lab's /etc/hosts
        assert lab.exec("web1", ["ping", "-c1", "-W2", target]).returncode == 0, target
    resolved = lab.exec("web1", ["getent", "hosts", "web2", "controller"]).stdout.split()
    assert resolved == [lab.hosts["web2"], "web2", lab.controller_ip, "controller"]
    # No route out of the lab from a host ...
    assert lab.exec("web1", ["ip", "route", "get", "192.0.2.1"]).returncode != 0
    # ... nor through the controller (no forwarding on its veth) ...
    veth = labctl.slot_prefix(lab.state()["slot"])
    assert Path(f"/proc/sys/net/ipv4/conf/{veth}/forwarding").read_text().strip() == "0"
    assert Path(f"/proc/sys/net/ipv6/conf/{veth}/disable_ipv6").read_text().strip() == "1"
    # ... and the machine routes the rest of 198.18.0.0/15 nowhere.
    assert "unreachable 198.18.0.0/15" in ip("route", "show", "198.18.0.0/15").stdout
    assert ip("route", "get", web1).returncode == 0


def test_inventory_drives_ansible(lab):
    inventory = json.loads(subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(lab.inventory), "--list"],
        capture_output=True, text=True, check=True).stdout)
    hostvars = inventory["_meta"]["hostvars"]
    assert {name: hostvars[name]["ansible_host"] for name in lab.hosts} == lab.hosts
    assert inventory["web"]["hosts"] == ["web1"]
    result = subprocess.run(
        [str(VENV_BIN / "ansible"), "-i", str(lab.inventory), "all", "-m", "command",
         "-a", "hostname"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False"})
    assert result.returncode == 0, result.stdout + result.stderr
    for name in lab.hosts:
        assert f"{name} | CHANGED | rc=0 >>\n{name}" in result.stdout
    # Ansible's ControlMasters sit in the lab's own directory, where `down` finds them.
    assert len(list(lab.control_dir.iterdir())) == len(lab.hosts)


def test_parallel_labs_get_separate_subnets_and_cannot_reach_each_other(lab, tmp_path):
    with labctl.Lab(tmp_path / "other") as other:
        other.up(["web1"])
        assert other.state()["slot"] != lab.state()["slot"]
        assert other.hosts["web1"] != lab.hosts["web1"]
        assert other.exec("web1", ["hostname"]).stdout == "web1\n"
        unreachable = other.exec("web1", ["ping", "-c1", "-W1", lab.hosts["web1"]])
        assert unreachable.returncode != 0


def test_labs_started_at_once_get_different_slots(tmp_path):
    labs = [labctl.Lab(tmp_path / f"lab{i}") for i in range(3)]
    try:
        with ThreadPoolExecutor(len(labs)) as pool:
            list(pool.map(lambda lab: lab.up(["h1"]), labs))
        assert len({lab.state()["slot"] for lab in labs}) == len(labs)
        for lab in labs:
            assert lab.exec("h1", ["hostname", "-I"]).stdout.split() == [lab.hosts["h1"]]
    finally:
        for lab in labs:
            lab.down()


def lab_traces(slot):
    """Everything of a slot that down must remove: namespaces, veth, processes, slot claim."""
    prefix = labctl.slot_prefix(slot)
    namespaces = [ns for ns in labctl.netns_names()
                  if ns == prefix or ns.startswith(prefix + "-")]
    return {
        "namespaces": namespaces,
        "veth": Path(f"/sys/class/net/{prefix}").exists(),
        "slot claim": labctl.slot_dir(slot).exists(),
    }


def test_down_removes_everything_and_can_repeat(tmp_path):
    lab = labctl.Lab(tmp_path / "lab")
    lab.up(["h1", "h2"])
    slot = lab.state()["slot"]
    pids = [host["pid"] for host in lab.state()["hosts"].values()]
    assert lab_traces(slot)["namespaces"]
    assert ssh(lab, "h1", "true").returncode == 0

    lab.down()

    assert lab_traces(slot) == {"namespaces": [], "veth": False, "slot claim": False}
    assert not any(labctl.is_running(pid) for pid in pids)
    assert lab.state() is None and not lab.inventory.exists()
    assert ip("route", "show", labctl.slot_subnet(slot).with_prefixlen).stdout == ""
    if not any(labctl.REGISTRY.glob("slot-*")):  # another lab (the demo) may hold the route
        assert "unreachable" not in ip("route", "show", "198.18.0.0/15").stdout
    assert lab.down() == 0.0


def test_down_after_hosts_died_and_up_reclaims_abandoned_slots(tmp_path):
    lab = labctl.Lab(tmp_path / "crashed")
    lab.up(["h1"])
    state = lab.state()
    slot = state["slot"]
    os.kill(state["hosts"]["h1"]["pid"], labctl.signal.SIGKILL)
    labctl.wait_gone([state["hosts"]["h1"]["pid"]])
    assert lab.status()["hosts"]["h1"]["running"] is False
    # The work directory vanishes without `down`: the next lab may take the slot over.
    lab.state_file.unlink()
    with labctl.Lab(tmp_path / "next") as nxt:
        nxt.up(["h1"], slot=slot)
        assert nxt.state()["slot"] == slot
        assert nxt.exec("h1", ["hostname"]).stdout == "h1\n"
    assert lab_traces(slot) == {"namespaces": [], "veth": False, "slot claim": False}


def test_a_taken_slot_is_refused(lab, tmp_path):
    with pytest.raises(labctl.LabError, match="in use"):
        labctl.Lab(tmp_path / "x").up(["h1"], slot=lab.state()["slot"])


@pytest.mark.parametrize("hosts", [[], ["Web1"], ["a-very-long-hostname"], ["h1", "h1"]])
def test_bad_host_lists_are_refused_before_anything_is_made(tmp_path, hosts):
    with pytest.raises(labctl.LabError):
        labctl.Lab(tmp_path / "lab").up(hosts)
    assert not (tmp_path / "lab" / "state.json").exists()


def test_cli_up_status_exec_down(tmp_path):
    cli = [sys.executable, "-m", "halodev.lab.labctl", "-w", str(tmp_path / "lab")]
    try:
        up = subprocess.run([*cli, "up", "h1"], capture_output=True, text=True, check=False)
        assert up.returncode == 0, up.stderr
        assert "1 hosts in" in up.stdout
        status = json.loads(subprocess.run([*cli, "status", "--json"], capture_output=True,
                                           text=True, check=True).stdout)
        assert status["hosts"]["h1"]["running"] and status["hosts"]["h1"]["ssh"]
        run = subprocess.run([*cli, "exec", "h1", "--", "sh", "-c", "hostname; exit 7"],
                             capture_output=True, text=True, check=False)
        assert (run.returncode, run.stdout) == (7, "h1\n")
    finally:
        down = subprocess.run([*cli, "down"], capture_output=True, text=True, check=False)
    assert down.returncode == 0 and "down in" in down.stdout
    assert subprocess.run([*cli, "status"], capture_output=True, check=False).returncode == 3
