"""Kernel parameters: read in systemd-sysctl's order (the last setting wins), and on the
running host compared with the live value in /proc/sys."""
import os

import pytest

from haloagent import sysctl
from haloagent.checks import CHECKS, ScanContext
from haloagent.rootfs import RootFS


def write(root, rel, content):
    path = os.path.join(str(root), rel.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(content)
    return path


def check(item="net.ipv4.ip_forward", desired="0"):
    return {"object_type": "configuration_file_setting", "config_file_path": "/etc/sysctl.conf",
            "config_file_section": "", "config_item": item, "desired_value": desired,
            "comment_character": "#", "delimiter": "="}


def run(root, item="net.ipv4.ip_forward", desired="0", **ctx):
    [result] = CHECKS["configuration_file_setting"](check(item, desired),
                                                    ScanContext(str(root), **ctx))
    return result


def test_a_drop_in_that_enables_forwarding_is_found(tmp_path):
    """ip_forward=1 in /etc/sysctl.d was missed: only /etc/sysctl.conf was read."""
    write(tmp_path, "etc/sysctl.d/60-router.conf", "net.ipv4.ip_forward = 1\n")
    result = run(tmp_path)
    assert (result["status"], result["actual"]) == ("bad", "1")
    assert result["source"] == "/etc/sysctl.d/60-router.conf line 1"


def test_a_drop_in_that_disables_forwarding_is_good(tmp_path):
    """ip_forward=0 in /etc/sysctl.d was reported bad (not set)."""
    write(tmp_path, "etc/sysctl.d/10-no-forward.conf", "# hardening\nnet.ipv4.ip_forward=0\n")
    assert (run(tmp_path)["status"], run(tmp_path)["actual"]) == ("good", "0")


def test_the_last_setting_wins_in_systemd_sysctl_order(tmp_path):
    # sorted by file name across the directories; /etc/sysctl.conf comes last
    write(tmp_path, "usr/lib/sysctl.d/50-default.conf", "net.ipv4.ip_forward = 1\n")
    write(tmp_path, "etc/sysctl.d/10-a.conf", "net.ipv4.ip_forward = 0\n")
    assert run(tmp_path)["actual"] == "1"  # 50-default.conf sorts after 10-a.conf
    write(tmp_path, "run/sysctl.d/90-run.conf", "net/ipv4/ip_forward = 0\n")
    assert run(tmp_path)["actual"] == "0"
    write(tmp_path, "etc/sysctl.conf", "net.ipv4.ip_forward = 1\n")
    assert (run(tmp_path)["status"], run(tmp_path)["actual"]) == ("bad", "1")


def test_same_name_in_an_earlier_directory_hides_the_later_one(tmp_path):
    write(tmp_path, "usr/lib/sysctl.d/50-x.conf", "net.ipv4.ip_forward = 1\n")
    write(tmp_path, "etc/sysctl.d/50-x.conf", "net.ipv4.ip_forward = 0\n")
    assert run(tmp_path)["actual"] == "0"
    os.remove(str(tmp_path / "etc/sysctl.d/50-x.conf"))
    os.symlink("/dev/null", str(tmp_path / "etc/sysctl.d/50-x.conf"))  # masked
    assert run(tmp_path)["actual"] is None and run(tmp_path)["status"] == "bad"


def test_debian_99_sysctl_link_keeps_its_place(tmp_path):
    """Debian's 99-sysctl.conf -> ../sysctl.conf is read once, at its place in the order."""
    write(tmp_path, "etc/sysctl.conf", "net.ipv4.ip_forward = 1\n")
    os.makedirs(str(tmp_path / "etc/sysctl.d"))
    os.symlink("../sysctl.conf", str(tmp_path / "etc/sysctl.d/99-sysctl.conf"))
    write(tmp_path, "etc/sysctl.d/99-zz-local.conf", "net.ipv4.ip_forward = 0\n")
    assert sysctl.config_files(RootFS(str(tmp_path))) == [
        "/etc/sysctl.d/99-sysctl.conf", "/etc/sysctl.d/99-zz-local.conf"]
    assert run(tmp_path)["actual"] == "0"


def test_syntax(tmp_path):
    write(tmp_path, "etc/sysctl.d/a.conf",
          "; comment\n# comment\n-net.ipv4.conf.all.accept_redirects =  0 \n"
          "net.ipv4.conf.*.rp_filter = 2\nnet.ipv4.conf.all.rp_filter = 1\n"
          "net/ipv4/conf/eth0.100/forwarding = 1\nnet.ipv4.tcp_rmem = 4096\t87380   6291456\n")
    assert run(tmp_path, "net.ipv4.conf.all.accept_redirects")["actual"] == "0"
    assert run(tmp_path, "net.ipv4.conf.all.rp_filter", "1")["actual"] == "1"  # explicit over glob
    assert run(tmp_path, "net.ipv4.conf.default.rp_filter", "2")["actual"] == "2"
    assert run(tmp_path, "net/ipv4/conf/eth0.100/forwarding", "1")["status"] == "good"
    assert run(tmp_path, "net.ipv4.tcp_rmem", "4096 87380 6291456")["status"] == "good"


def fake_proc(tmp_path, values):
    proc = tmp_path / "proc"
    for key, value in values.items():
        write(proc, "sys/" + key.replace(".", "/"), value + "\n")
    return str(proc)


def test_running_host_reports_a_live_value_that_differs(tmp_path):
    root = tmp_path / "root"
    write(root, "etc/sysctl.conf", "net.ipv4.ip_forward = 0\n")
    proc = fake_proc(tmp_path, {"net.ipv4.ip_forward": "1"})
    live = run(root, proc_dir=proc, live=True)
    assert (live["status"], live["actual"], live["live_value"]) == ("bad", "0", "1")
    assert "running kernel has net.ipv4.ip_forward = 1" in live["live_note"]
    # the same tree scanned as a prepared tree: /proc is not its kernel's
    offline = run(root, proc_dir=proc)
    assert offline["status"] == "good" and "live_value" not in offline
    same = run(root, proc_dir=fake_proc(tmp_path / "b", {"net.ipv4.ip_forward": "0"}), live=True)
    assert (same["status"], same["live_value"]) == ("good", "0") and "live_note" not in same


def test_scanning_root_is_live_by_default():
    assert ScanContext("/").live and not ScanContext("/tmp").live


def test_default_policy_sysctl_rules_read_sysctl_d(tmp_path):
    """The default policies' kernel rules follow the same order (Debian and RPM)."""
    import json
    here = os.path.dirname(__file__)
    for name in ("debian.json", "rpm.json"):
        with open(os.path.join(here, "../src/halogrid/policies", name)) as handle:
            rules = json.load(handle)["policy"]["rules"]
        [forward] = [r for r in rules if "ip_forward" in r["name"]]
        write(tmp_path, "etc/sysctl.d/60-router.conf", "net.ipv4.ip_forward = 1\n")
        [result] = CHECKS["configuration_file_setting"](forward["checks"][0], ScanContext(str(tmp_path)))
        assert result["status"] == "bad" and result["actual"] == "1"
