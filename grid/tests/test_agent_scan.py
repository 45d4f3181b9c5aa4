"""Rules -> findings, the default CIS policies on prepared trees, and `haloagent scan`."""
import threading
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from halodev.trees import make_compliant_tree, make_failing_tree
from haloagent import checks, scan
from haloagent.checks import ScanContext

POLICIES = Path(__file__).resolve().parents[1] / "src" / "halogrid" / "policies"
AGENT_SRC = Path(__file__).resolve().parents[1] / "src"
PYTHON38 = "/root/.pyenv/versions/3.8.18/bin/python3.8"


def load(name):
    return json.loads((POLICIES / name).read_text())["policy"]


def presence(path, present=True, active=True):
    return {"object_type": "file_presence", "files": path, "present": present, "active": active}


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/here").write_text("x")
    return tmp_path


@pytest.mark.parametrize("statuses,operator,expected", [
    (["good", "good"], "AND", "good"),
    (["good", "bad", "indeterminate"], "AND", "bad"),
    (["good", "indeterminate"], "AND", "indeterminate"),
    (["bad", "good"], "OR", "good"),
    (["bad", "indeterminate"], "OR", "indeterminate"),
    (["bad", "bad"], "or", "bad"),
])
def test_combine(statuses, operator, expected):
    assert scan.combine(statuses, operator) == expected


def test_rule_operators_and_inactive_checks(tree):
    ctx = ScanContext(str(tree))
    both = {"name": "r", "rule_operator": "AND", "checks": [presence("/etc/here"), presence("/etc/gone")]}
    assert scan.evaluate_rule(both, ctx)[0] == "bad"
    assert scan.evaluate_rule(dict(both, rule_operator="OR"), ctx)[0] == "good"
    inactive_bad = dict(both, checks=[presence("/etc/here"), presence("/etc/gone", active=False)])
    status, details = scan.evaluate_rule(inactive_bad, ctx)
    assert status == "good" and [d["target"] for d in details] == ["/etc/here"]


def test_unknown_check_type_is_indeterminate_and_other_rules_still_run(tree):
    policy = {"id": "p1", "rules": [
        {"name": "future", "critical": True, "checks": [{"object_type": "quantum_entanglement"}]},
        {"name": "exists", "checks": [presence("/etc/here")]},
        {"name": "switched off", "active": False, "checks": [presence("/etc/gone")]},
        {"name": "no active check", "checks": [presence("/etc/gone", active=False)]},
    ]}
    findings = scan.scan_policies([policy], ScanContext(str(tree)))
    assert [(f["rule_name"], f["status"]) for f in findings] == [
        ("future", "indeterminate"), ("exists", "good")]
    assert "quantum_entanglement" in findings[0]["details"][0]["reason"]
    assert findings[0]["policy_id"] == "p1" and findings[0]["critical"] is True


def test_permission_denied_file_is_indeterminate(tree, monkeypatch):
    (tree / "etc/login.defs").write_text("PASS_MAX_DAYS 90\n")
    real_open = os.open

    def deny(path, *args, **kwargs):  # root reads any mode: simulate a denied read
        if str(path).endswith("login.defs"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    rule = {"name": "max days", "checks": [{
        "object_type": "configuration_file_setting", "config_file_path": "/etc/login.defs",
        "config_item": "PASS_MAX_DAYS", "desired_value": "90", "delimiter": ""}]}
    [finding] = scan.scan_policies([{"rules": [rule]}], ScanContext(str(tree)))
    assert finding["status"] == "indeterminate"
    assert finding["details"][0]["reason"] == "Permission denied"


def test_a_crashing_check_spoils_only_its_rule(tree, monkeypatch):
    def broken(check, ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(checks.CHECKS, "file_acl", broken)
    policy = {"rules": [{"name": "acl", "checks": [{"object_type": "file_acl"}]},
                        {"name": "exists", "checks": [presence("/etc/here")]}]}
    findings = scan.scan_policies([policy], ScanContext(str(tree)))
    assert [f["status"] for f in findings] == ["indeterminate", "good"]
    assert "boom" in findings[0]["details"][0]["reason"]


def test_a_scan_that_overruns_its_time_limit_still_reports(tree, monkeypatch):
    """A check that hangs is indeterminate once the scan's time is up; the checks after
    it are indeterminate without running, and the scan returns its findings."""
    release = threading.Event()
    ran = []

    def hangs(check, ctx):
        release.wait(60)
        return []

    def counted(check, ctx):
        ran.append(check["files"])
        return checks.check_file_presence(check, ctx)

    monkeypatch.setitem(checks.CHECKS, "hangs", hangs)
    monkeypatch.setitem(checks.CHECKS, "file_presence", counted)
    policy = {"rules": [{"name": "first", "checks": [presence("/etc/here")]},
                        {"name": "stuck", "checks": [{"object_type": "hangs", "files": "/mnt/nfs/x"}]},
                        {"name": "after", "checks": [presence("/etc/here")]}]}
    try:
        findings = scan.scan_policies([policy], ScanContext(str(tree)), time_limit=0.5)
    finally:
        release.set()
    assert [(f["rule_name"], f["status"]) for f in findings] == [
        ("first", "good"), ("stuck", "indeterminate"), ("after", "indeterminate")]
    stuck, after = findings[1]["details"][0], findings[2]["details"][0]
    assert stuck["target"] == "/mnt/nfs/x" and "time limit of 0.5 s" in stuck["reason"]
    assert after["target"] == "/etc/here" and after["reason"].startswith("not run")
    assert ran == ["/etc/here"]  # the check after the limit never ran
    assert scan.summarize(findings)["indeterminate_findings_count"] == 2


def test_no_time_limit_runs_checks_in_the_calling_thread(tree, monkeypatch):
    seen = []
    monkeypatch.setitem(checks.CHECKS, "where", lambda check, ctx: seen.append(
        threading.current_thread()) or [checks.detail(check, "t", 1, 1, True)])
    policy = {"rules": [{"name": "r", "checks": [{"object_type": "where"}]}]}
    assert scan.scan_policies([policy], ScanContext(str(tree)))[0]["status"] == "good"
    assert scan.scan_policies([policy], ScanContext(str(tree)), time_limit=30)[0]["status"] == "good"
    assert seen[0] is threading.main_thread() and seen[1] is not threading.main_thread()


def test_summarize_counts_like_the_grid_and_leaves_the_status_to_it():
    """The agent counts; whether a scan is clean is the grid's rule alone (no status here)."""
    findings = [{"status": "bad", "critical": True}, {"status": "bad", "critical": False},
                {"status": "good", "critical": True}, {"status": "indeterminate", "critical": True}]
    assert scan.summarize(findings) == {
        "critical_findings_count": 1, "non_critical_findings_count": 1, "ok_findings_count": 1,
        "indeterminate_findings_count": 1}


# -- the default policies -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["debian.json", "rpm.json"])
def test_default_policy_shape(name):
    policy = load(name)
    assert policy["platform"] == "linux" and policy["name"].startswith("CIS Core")
    active = [r for r in policy["rules"] if r["active"]]
    assert len(active) >= 20
    assert 0 < sum(r["critical"] for r in active) < len(active)
    used = {c["object_type"] for r in policy["rules"] for c in r["checks"]}
    assert used <= set(checks.CHECKS)


@pytest.mark.parametrize("name,flavor", [("debian.json", "debian"), ("rpm.json", "rpm")])
def test_default_policy_passes_a_compliant_tree(tmp_path, name, flavor):
    root = make_compliant_tree(str(tmp_path), flavor)
    findings = scan.scan_policies([load(name)], ScanContext(root))
    assert [(f["rule_name"], f["details"]) for f in findings if f["status"] != "good"] == []
    assert len(findings) == sum(r["active"] for r in load(name)["rules"])


# the faults trees.make_failing_tree plants, as the rules that must catch them
FAILING_RULES = {
    "SSH root login is disabled or key-only": True,
    "SSH X11Forwarding is no": False,
    "Permissions and owners of /etc/ssh/sshd_config": False,
    "root is the only UID 0 account": True,
    "A telnet server is not installed": True,
    "A system logger is installed": False,
    "Password expiration is 365 days or less": False,
    "Kernel parameter net.ipv4.ip_forward = 0 (/etc/sysctl.conf)": False,
    "Login banners do not show OS information": False,
    "Cron directories are private to root": False,
}


@pytest.mark.parametrize("name,flavor,extra", [
    ("debian.json", "debian", {"Permissions and owners of /etc/shadow": True}),
    ("rpm.json", "rpm", {"SELinux is enforcing": False}),
])
def test_default_policy_flags_a_failing_tree(tmp_path, name, flavor, extra):
    root = make_failing_tree(str(tmp_path), flavor)
    findings = scan.scan_policies([load(name)], ScanContext(root))
    bad = {f["rule_name"]: f["critical"] for f in findings if f["status"] == "bad"}
    assert bad == dict(FAILING_RULES, **extra)
    assert all(f["status"] == "good" for f in findings if f["rule_name"] not in bad)


# -- the command line --------------------------------------------------------------------------
def scan_cli(python, root, policy, *options):
    env = dict(os.environ, PYTHONPATH=str(AGENT_SRC))
    return subprocess.run([python, "-m", "haloagent", "scan", "--root", root,
                           "--policy", str(POLICIES / policy)] + list(options),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)


@pytest.mark.parametrize("python", [
    sys.executable,
    pytest.param(PYTHON38, marks=pytest.mark.skipif(not os.path.exists(PYTHON38),
                                                    reason="no Python 3.8 here")),
])
def test_scan_command(tmp_path, python):
    good = scan_cli(python, make_compliant_tree(str(tmp_path / "good")), "debian.json")
    assert good.returncode == 0, good.stderr
    report = json.loads(good.stdout)
    assert report["verdict"]["passed"] and report["ok_findings_count"] == len(report["findings"])
    assert "status" not in report  # a scan's status is the grid's to decide
    bad = scan_cli(python, make_failing_tree(str(tmp_path / "bad")), "debian.json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["critical_findings_count"] == 4


def test_scan_command_rejects_a_file_that_is_no_policy(tmp_path):
    not_policy = tmp_path / "x.json"
    not_policy.write_text('{"group": {}}')
    done = subprocess.run([sys.executable, "-m", "haloagent", "scan", "--policy", str(not_policy)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(AGENT_SRC)))
    assert done.returncode == 2 and b"not a configuration policy" in done.stderr


@pytest.mark.parametrize("python", [
    sys.executable,
    pytest.param(PYTHON38, marks=pytest.mark.skipif(not os.path.exists(PYTHON38),
                                                    reason="no Python 3.8 here")),
])
def test_scan_command_with_a_fifo_and_a_linked_sshd_config(tmp_path, python):
    """A FIFO at a configuration path hung the agent (the subprocess timeout would fail
    this test); an absolute symlink inside the tree is read from the tree. Under 3.8 too."""
    fifo_tree = make_compliant_tree(str(tmp_path / "fifo"))
    os.unlink(os.path.join(fifo_tree, "etc/ssh/sshd_config"))
    os.mkfifo(os.path.join(fifo_tree, "etc/ssh/sshd_config"))
    done = scan_cli(python, fifo_tree, "debian.json", "--scan-timeout", "50")
    report = json.loads(done.stdout)
    sshd = [d for f in report["findings"] for d in f["details"]
            if d["target"] == "/etc/ssh/sshd_config" and d["type"] == "configuration_file_setting"]
    assert sshd and all(d["status"] == "indeterminate" and "FIFO" in d["reason"] for d in sshd)

    linked_tree = make_compliant_tree(str(tmp_path / "linked"))
    sshd_config = os.path.join(linked_tree, "etc/ssh/sshd_config")
    os.rename(sshd_config, os.path.join(linked_tree, "etc/ssh/real_config"))
    os.symlink("/etc/ssh/real_config", sshd_config)
    done = scan_cli(python, linked_tree, "debian.json")
    report = json.loads(done.stdout)
    sshd = [d for f in report["findings"] for d in f["details"] if d["target"] == "/etc/ssh/sshd_config"]
    assert sshd and all(d["status"] == "good" for d in sshd), sshd
