"""halodev.lab.boot_sysctl: a lab host's configured net.* kernel parameters are set in its own
network namespace at boot, and nothing else is written (needs root: a throw-away netns)."""

import os
import subprocess
import sys

import pytest


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

KEYS = ("net.ipv4.conf.all.accept_redirects", "net.ipv4.ip_forward", "net.ipv4.conf.lo.rp_filter",
        "net.ipv4.conf.default.rp_filter", "net.ipv4.ip_local_port_range")


def test_boot_applies_the_hosts_net_settings_in_its_namespace_only(tmp_path):
    (tmp_path / "etc" / "sysctl.d").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "sysctl.d").mkdir(parents=True)
    (tmp_path / "etc" / "sysctl.d" / "99-sysctl.conf").symlink_to("../sysctl.conf")
    (tmp_path / "usr" / "lib" / "sysctl.d" / "10-vendor.conf").write_text(
        "net.ipv4.conf.*.rp_filter = 2\n"
        "net.ipv4.conf.all.accept_redirects = 1\n"
        "kernel.pid_max = 4242\n")
    (tmp_path / "etc" / "sysctl.conf").write_text(
        "net.ipv4.conf.all.accept_redirects = 0\n"  # the last setting wins
        "-net.ipv4.ip_forward = 1\n"
        "net.ipv4.conf.lo.rp_filter = 0\n"  # an explicit key beats the glob
        "net/../kernel/pid_max = 4343\n"  # no way out of net.*
        "net.ipv4.ip_local_port_range = 40000   50000\n")
    machine = subprocess.run(["sysctl", "-n", "kernel.pid_max", *KEYS], capture_output=True,
                             text=True, check=True).stdout
    script = '"$0" -m halodev.lab.boot_sysctl "$1" && sysctl -n %s' % " ".join(KEYS)
    proc = subprocess.run(["unshare", "--net", "sh", "-c", script, sys.executable, str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    log, values = proc.stdout.split("\n")[:-6], proc.stdout.split("\n")[-6:-1]
    assert [" ".join(v.split()) for v in values] == ["0", "1", "0", "2", "40000 50000"]
    assert any(line.startswith("sysctl: skipped kernel.pid_max = 4242") for line in log), log
    assert any(line.startswith("sysctl: skipped net/../kernel/pid_max") for line in log), log
    # The machine's own values (its namespace and the machine-wide ones) are untouched.
    assert subprocess.run(["sysctl", "-n", "kernel.pid_max", *KEYS], capture_output=True,
                          text=True, check=True).stdout == machine
