"""haloagent check types, one small tree per case (unit tests, no network)."""
import os
import sqlite3

import pytest

from haloagent import packages
from haloagent.checks import CHECKS, ScanContext, config_values, mode_allowed
from haloagent.rootfs import PathError, RootFS


def write(root, rel, content="", mode=0o644, uid=0, gid=0):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(content)
    os.chmod(path, mode)
    os.chown(path, uid, gid)
    return path


def run(check, root, proc_dir="/proc"):
    return CHECKS[check["object_type"]](check, ScanContext(str(root), proc_dir))


def statuses(details):
    return [d["status"] for d in details]


# -- paths under the root --------------------------------------------------------------
def test_resolve_keeps_absolute_symlinks_inside_the_root(tmp_path):
    write(tmp_path, "etc/real.conf", "inside")
    os.symlink("/etc/real.conf", str(tmp_path / "etc/link.conf"))
    os.symlink("/etc/passwd", str(tmp_path / "etc/escape"))  # the machine's own passwd
    fs = RootFS(str(tmp_path))
    assert fs.read_text("/etc/link.conf") == "inside"
    assert fs.resolve("/etc/escape") == str(tmp_path / "etc/passwd")
    with pytest.raises(FileNotFoundError):
        fs.read_text("/etc/escape")


def shadow_check(path):
    return {"object_type": "file_acl", "files": path, "acls": "640"}


def test_absolute_symlinks_are_resolved_in_the_tree_never_on_the_machine(tmp_path):
    """sshd_config -> /etc/ssh/real_config that only the tree has; a link to a path that
    exists on this machine (/etc/hostname, /etc/passwd) but not in the tree is missing."""
    write(tmp_path, "etc/ssh/real_config", "PermitRootLogin no\n", mode=0o600)
    os.symlink("/etc/ssh/real_config", str(tmp_path / "etc/ssh/sshd_config"))
    assert not os.path.exists("/etc/ssh/real_config")  # else the test could not tell
    for host_path in ("/etc/hostname", "/etc/passwd"):
        assert os.path.exists(host_path)
        os.symlink(host_path, str(tmp_path / ("etc/link" + host_path.replace("/", "_"))))
    [setting] = run(sshd_check("PermitRootLogin", "no"), tmp_path)
    assert (setting["status"], setting["actual"]) == ("good", "no")
    [acl] = run(shadow_check("/etc/ssh/sshd_config"), tmp_path)
    assert (acl["status"], acl["actual"]) == ("good", "600")  # the tree's file's mode
    for link in ("/etc/link_etc_hostname", "/etc/link_etc_passwd"):
        assert run({"object_type": "file_presence", "files": link, "present": True},
                   tmp_path)[0]["actual"] == "absent"
        assert run(shadow_check(link), tmp_path)[0]["status"] == "indeterminate"
        [strings] = run({"object_type": "file_string_presence", "files": link,
                         "patterns": ".", "present": True}, tmp_path)
        assert strings["actual"] == "absent (no such file)"
    # a directory symlink to an absolute path inside the tree, then a file below it
    os.makedirs(str(tmp_path / "srv/conf"))
    write(tmp_path, "srv/conf/sshd_config", "PermitRootLogin yes\n")
    os.symlink("/srv/conf", str(tmp_path / "etc/sshd.d"))
    fs = RootFS(str(tmp_path))
    assert fs.read_text("/etc/sshd.d/sshd_config") == "PermitRootLogin yes\n"


def test_only_regular_files_are_read(tmp_path):
    """A FIFO at a configuration path blocked the agent for good; a device, a socket or a
    directory is not read either: the check is indeterminate, saying why."""
    os.makedirs(str(tmp_path / "etc/ssh"))
    os.mkfifo(str(tmp_path / "etc/ssh/sshd_config"))
    os.symlink("/dev/zero", str(tmp_path / "etc/endless"))  # the tree has no /dev/zero
    [fifo] = run(sshd_check("PermitRootLogin", "no"), tmp_path)
    assert fifo["status"] == "indeterminate" and "FIFO" in fifo["reason"]
    [strings] = run({"object_type": "file_string_presence", "files": "/etc/ssh/sshd_config",
                     "patterns": "x", "present": False}, tmp_path)
    assert strings["status"] == "indeterminate" and "not a regular file" in strings["reason"]
    [endless] = run({"object_type": "file_string_presence", "files": "/etc/endless",
                     "patterns": "x", "present": False}, tmp_path)
    assert endless["actual"] == "absent (no such file)"
    fs = RootFS("/")
    with pytest.raises(OSError, match="character device"):
        fs.read_text("/dev/zero")
    with pytest.raises(OSError, match="directory"):
        fs.read_text(str(tmp_path))
    write(tmp_path, "etc/crlf", "a\r\nb\rc\n")
    assert RootFS(str(tmp_path)).read_text("/etc/crlf") == "a\nb\nc\n"


def test_a_file_larger_than_the_read_limit_is_not_read(tmp_path, monkeypatch):
    from haloagent import rootfs
    monkeypatch.setattr(rootfs, "MAX_READ", 10)
    write(tmp_path, "etc/big", "x" * 11)
    write(tmp_path, "etc/small", "x" * 10)
    fs = RootFS(str(tmp_path))
    assert fs.read_text("/etc/small") == "x" * 10
    with pytest.raises(OSError, match="larger than"):
        fs.read_text("/etc/big")


def test_resolve_clamps_dotdot_and_follows_relative_links(tmp_path):
    write(tmp_path, "usr/lib/os-release", "ID=x")
    os.symlink("../usr/lib/os-release", str(tmp_path / "etc_os"))  # ../ at the root stays there
    fs = RootFS(str(tmp_path))
    assert fs.resolve("/../../etc/../usr/lib/os-release") == str(tmp_path / "usr/lib/os-release")
    assert fs.read_text("/etc_os") == "ID=x"


def test_resolve_detects_symlink_loops(tmp_path):
    os.symlink("/b", str(tmp_path / "a"))
    os.symlink("/a", str(tmp_path / "b"))
    with pytest.raises(PathError):
        RootFS(str(tmp_path)).resolve("/a")


# -- configuration_file_setting ----------------------------------------------------------
def test_config_values_parsing():
    sshd = "# PermitRootLogin yes\n  PermitRootLogin   no  \nport 22\n"
    assert config_values(sshd, "permitrootlogin") == ["no"]
    assert config_values("a = 1\n#a = 2\nb=3\n", "a", delimiter="=") == ["1"]
    ini = "[main]\ngpgcheck=1\n[repo]\ngpgcheck=0\n"
    assert config_values(ini, "gpgcheck", section="[repo]", delimiter="=") == ["0"]
    assert config_values(ini, "gpgcheck", delimiter="=") == ["1", "0"]
    assert config_values("# comment\n\n1\n2\n", "") == ["1"]
    assert config_values('NAME="Debian"\n', "NAME", delimiter="=") == ["Debian"]


def sshd_check(item, value):
    return {"object_type": "configuration_file_setting", "config_file_path": "/etc/ssh/sshd_config",
            "config_file_section": "", "config_item": item, "desired_value": value,
            "comment_character": "#", "delimiter": ""}


@pytest.mark.parametrize("content,desired,status,actual", [
    ("PermitRootLogin no\n", "no", "good", "no"),
    ("PermitRootLogin yes\n", "no", "bad", "yes"),
    # only commented out: sshd's compiled-in default applies
    ("#PermitRootLogin no\n", "no", "bad", "without-password"),
    ("MaxAuthTries 3\n", "[1-4]", "good", "3"),
    ("MaxAuthTries 6\n", "[1-4]", "bad", "6"),
    ("MaxAuthTries 44\n", "[1-4]", "bad", "44"),             # the whole value must match
    ("MaxAuthTries 3\nMaxAuthTries 9\n", "[1-4]", "good", "3"),  # sshd takes the first
])
def test_configuration_file_setting(tmp_path, content, desired, status, actual):
    item = content.split()[0].lstrip("#")
    write(tmp_path, "etc/ssh/sshd_config", content)
    [result] = run(sshd_check(item, desired), tmp_path)
    assert (result["status"], result["actual"], result["config_key"]) == (status, actual, item)
    assert result["expected"] == desired


def test_configuration_file_setting_unreadable_is_indeterminate(tmp_path):
    os.makedirs(str(tmp_path / "etc/ssh/sshd_config"))  # a directory where a file should be
    [result] = run(sshd_check("PermitRootLogin", "no"), tmp_path)
    assert result["status"] == "indeterminate" and result["scan_status"] == "error"
    assert "directory" in result["reason"].lower()
    [missing] = run(sshd_check("PermitRootLogin", "no"), tmp_path / "nowhere")
    assert missing["status"] == "indeterminate"


def test_configuration_file_setting_invalid_regex_is_indeterminate(tmp_path):
    write(tmp_path, "etc/ssh/sshd_config", "MaxAuthTries 3\n")
    [result] = run(sshd_check("MaxAuthTries", "[1-"), tmp_path)
    assert result["status"] == "indeterminate" and "desired_value" in result["reason"]


# -- file_string_presence / file_presence --------------------------------------------------
def test_file_string_presence(tmp_path):
    write(tmp_path, "etc/passwd", "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\n")
    write(tmp_path, "etc/group", "root:x:0:\n")
    uid0 = {"object_type": "file_string_presence", "files": "/etc/passwd, /etc/group, /etc/none",
            "patterns": "^(?!root:)[^:]*:[^:]*:0:", "present": False}
    results = run(uid0, tmp_path)
    assert statuses(results) == ["bad", "good", "good"]  # a missing file contains nothing
    assert results[0]["match"].startswith("toor:")
    needed = dict(uid0, files="/etc/passwd, /etc/none", patterns="^root:x:0:0", present="true")
    results = run(needed, tmp_path)
    assert statuses(results) == ["good", "bad"] and results[1]["actual"] == "absent (no such file)"
    assert statuses(run(dict(needed, patterns="(unclosed"), tmp_path)) == ["indeterminate"] * 2


def test_file_presence(tmp_path):
    write(tmp_path, "etc/at.allow")
    check = {"object_type": "file_presence", "files": ["/etc/at.allow", "/etc/at.deny"], "present": True}
    assert statuses(run(check, tmp_path)) == ["good", "bad"]
    assert statuses(run(dict(check, present=False), tmp_path)) == ["bad", "good"]


# -- modes and owners --------------------------------------------------------------------
@pytest.mark.parametrize("mode,acl,allowed", [
    (0o644, "644", True), (0o600, "644", True), (0o000, "644", True), (0o664, "644", False),
    (0o755, "644", False), (0o700, "*00", True), (0o750, "*00", False), (0o640, "640", True),
    (0o4755, "755", True), (0o4755, "0755", False), (0o1777, "1777", True),
])
def test_mode_allowed(mode, acl, allowed):
    assert mode_allowed(mode, acl) is allowed


def test_file_acl_and_directory_acl(tmp_path):
    write(tmp_path, "etc/shadow", mode=0o640)
    write(tmp_path, "etc/passwd", mode=0o666)
    os.makedirs(str(tmp_path / "etc/cron.d"))
    os.chmod(str(tmp_path / "etc/cron.d"), 0o755)
    results = run({"object_type": "file_acl", "files": "/etc/shadow, /etc/passwd, /etc/none",
                   "acls": "640"}, tmp_path)
    assert statuses(results) == ["good", "bad", "indeterminate"]
    assert [r["actual"] for r in results[:2]] == ["640", "666"]
    [cron] = run({"object_type": "directory_acl", "files": "/etc/cron.d", "acls": "*00"}, tmp_path)
    assert (cron["status"], cron["actual"]) == ("bad", "755")
    [wrong_kind] = run({"object_type": "directory_acl", "files": "/etc/shadow", "acls": "*00"}, tmp_path)
    assert wrong_kind["status"] == "indeterminate"
    [invalid] = run({"object_type": "file_acl", "files": "/etc/shadow", "acls": "rw-r--r--"}, tmp_path)
    assert invalid["status"] == "indeterminate"


def test_ownership_uses_the_trees_own_accounts(tmp_path):
    write(tmp_path, "etc/passwd", "root:x:0:0::/:/bin/sh\napp:x:4242:4242::/:/bin/sh\n")
    write(tmp_path, "etc/group", "root:x:0:\nshadow:x:4343:\n")
    write(tmp_path, "etc/shadow", uid=0, gid=4343)
    write(tmp_path, "srv/data", uid=4242, gid=0)
    os.makedirs(str(tmp_path / "srv/dir"))
    os.chown(str(tmp_path / "srv/dir"), 4242, 4343)
    user = {"object_type": "file_user_ownership", "files": "/etc/shadow, /srv/data", "owned_by": "root"}
    results = run(user, tmp_path)
    assert statuses(results) == ["good", "bad"] and results[1]["actual"] == "app"
    group = {"object_type": "file_group_ownership", "files": "/etc/shadow", "owned_by": "shadow, root"}
    assert statuses(run(group, tmp_path)) == ["good"]
    assert statuses(run(dict(group, owned_by="root"), tmp_path)) == ["bad"]
    dir_user = {"object_type": "directory_user_ownership", "folders": "/srv/dir", "owned_by": "app"}
    assert statuses(run(dir_user, tmp_path)) == ["good"]
    [dir_group] = run({"object_type": "directory_group_ownership", "files": "/srv/dir",
                       "owned_by": "root"}, tmp_path)
    assert (dir_group["status"], dir_group["actual"]) == ("bad", "shadow")
    # a number the tree does not name is reported as the number
    os.chown(str(tmp_path / "srv/data"), 31337, 0)
    assert run(user, tmp_path)[1]["actual"] == "31337"


# -- processes and ports (a fake procfs) -------------------------------------------------
def fake_proc(tmp_path, processes, tcp_listen=(), fds=None):
    proc = tmp_path / "proc"
    for pid, (comm, argv0) in processes.items():
        write(proc, "%d/comm" % pid, comm + "\n")
        write(proc, "%d/cmdline" % pid, argv0 + "\0--flag\0")
        os.makedirs(str(proc / str(pid) / "fd"))
    for pid, inode in (fds or {}).items():
        os.symlink("socket:[%d]" % inode, str(proc / str(pid) / "fd" / "3"))
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    rows = "".join("   %d: 00000000:%04X 00000000:0000 %s 00000000:00000000 00:00000000 00000000     0        0 %d 1\n"
                   % (n, port, state, inode) for n, (port, state, inode) in enumerate(tcp_listen))
    write(proc, "net/tcp", header + rows)
    write(proc, "net/udp", header)
    return str(proc)


def test_process_presence(tmp_path):
    proc = fake_proc(tmp_path, {1: ("init", "/sbin/init"), 77: ("sshd", "sshd: /usr/sbin/sshd -D"),
                                 90: ("python3", "/usr/sbin/rsyslogd")})
    check = {"object_type": "process_presence", "processes": "sshd, rsyslogd, telnetd", "present": True}
    assert statuses(run(check, tmp_path, proc)) == ["good", "good", "bad"]
    assert statuses(run(dict(check, present="false"), tmp_path, proc)) == ["bad", "bad", "good"]


def test_port_process(tmp_path):
    # port 22 listening (0A) by sshd, port 23 only in TIME_WAIT (06): not listening
    proc = fake_proc(tmp_path, {77: ("sshd", "/usr/sbin/sshd")},
                     tcp_listen=[(22, "0A", 5001), (23, "06", 5002)], fds={77: 5001})
    check = {"object_type": "port_process", "ports": "22, 23", "present": True}
    assert statuses(run(check, tmp_path, proc)) == ["good", "bad"]
    assert statuses(run(dict(check, present=False), tmp_path, proc)) == ["bad", "good"]
    [owned] = run(dict(check, ports="22", process="sshd"), tmp_path, proc)
    assert owned["status"] == "good"
    [other] = run(dict(check, ports="22", process="nginx"), tmp_path, proc)
    assert (other["status"], other["actual"]) == ("bad", "listening by sshd")


# -- packages ------------------------------------------------------------------------------
DPKG_STATUS = """\
Package: openssh-server
Status: install ok installed
Version: 1:9.2p1-2
Description: secure shell server
 A long description line that mentions
 Package: fake-from-description

Package: telnetd
Status: deinstall ok config-files
Version: 0.17-44

Package: rsyslog
Status: install ok unpacked
Version: 8.2302.0-1
"""


def test_parse_dpkg_status():
    assert packages.parse_dpkg_status(DPKG_STATUS) == {
        "openssh-server": "1:9.2p1-2", "rsyslog": "8.2302.0-1"}


def test_package_presence_dpkg(tmp_path):
    write(tmp_path, "var/lib/dpkg/status", DPKG_STATUS)
    check = {"object_type": "package_presence", "packages": "openssh-server, telnetd", "present": True}
    results = run(check, tmp_path)
    assert statuses(results) == ["good", "bad"]
    assert results[0]["actual"] == "installed 1:9.2p1-2"
    assert statuses(run(dict(check, present=False), tmp_path)) == ["bad", "good"]


def test_package_presence_rpm_sqlite(tmp_path):
    os.makedirs(str(tmp_path / "var/lib/rpm"))
    conn = sqlite3.connect(str(tmp_path / "var/lib/rpm/rpmdb.sqlite"))
    conn.execute("CREATE TABLE Name (key TEXT, hnum INTEGER, idx INTEGER)")
    conn.execute("INSERT INTO Name VALUES ('rsyslog', 1, 0)")
    conn.commit()
    conn.close()
    check = {"object_type": "package_presence", "packages": ["rsyslog", "telnet-server"], "present": True}
    assert statuses(run(check, tmp_path)) == ["good", "bad"]


def test_package_presence_without_database_is_indeterminate(tmp_path):
    [result] = run({"object_type": "package_presence", "packages": "rsyslog", "present": True}, tmp_path)
    assert result["status"] == "indeterminate" and "no dpkg or rpm database" in result["reason"]


# -- applicability (issue 11): a rule whose subject is absent ------------------------------
def _dpkg(root, *installed):
    write(root, "var/lib/dpkg/status", "\n".join(
        "Package: %s\nStatus: install ok installed\nVersion: 1\n" % p for p in installed))


def _sshd_rule(**applies_to):
    rule = {"name": "SSH PermitEmptyPasswords is no", "active": True, "critical": True,
            "checks": [{"object_type": "configuration_file_setting", "active": True,
                        "config_file_path": "/etc/ssh/sshd_config",
                        "config_item": "PermitEmptyPasswords", "desired_value": "no"}]}
    if applies_to:
        rule["applies_to"] = applies_to
    return rule


def test_a_rule_whose_package_is_absent_is_not_applicable(tmp_path):
    """A host without openssh-server got an indeterminate finding per sshd rule and so
    could never pass; now the rule is not applicable: good, marked, not counted as ok."""
    from haloagent import scan
    from haloagent.checks import NOT_APPLICABLE, is_not_applicable
    _dpkg(tmp_path, "base-files")
    subject = {"packages": ["openssh-server"], "files": ["/usr/sbin/sshd"]}
    [finding] = scan.scan_policies([{"rules": [_sshd_rule(**subject)]}], ScanContext(str(tmp_path)))
    assert finding["status"] == "good" and is_not_applicable(finding)
    [only] = finding["details"]
    assert only["scan_status"] == NOT_APPLICABLE and "openssh-server" in only["reason"]
    summary = scan.summarize([finding])
    assert summary["ok_findings_count"] == 0 and summary["indeterminate_findings_count"] == 0
    # without applies_to the same rule is still evaluated (and indeterminate: no file)
    [plain] = scan.scan_policies([{"rules": [_sshd_rule()]}], ScanContext(str(tmp_path)))
    assert plain["status"] == "indeterminate" and not is_not_applicable(plain)


def test_a_rule_applies_when_its_package_or_file_is_present(tmp_path):
    from haloagent import scan
    from haloagent.checks import is_not_applicable
    write(tmp_path, "etc/ssh/sshd_config", "PermitEmptyPasswords yes\n")
    _dpkg(tmp_path, "openssh-server")
    rule = _sshd_rule(packages=["openssh-server"], files=["/usr/sbin/sshd"])
    [finding] = scan.scan_policies([{"rules": [rule]}], ScanContext(str(tmp_path)))
    assert finding["status"] == "bad" and not is_not_applicable(finding)
    _dpkg(tmp_path, "base-files")
    write(tmp_path, "usr/sbin/sshd", "", mode=0o755)  # built from source: the file decides
    [finding] = scan.scan_policies([{"rules": [rule]}], ScanContext(str(tmp_path)))
    assert finding["status"] == "bad"


def test_applicability_unknown_is_indeterminate_not_a_pass(tmp_path):
    """No package database and no listed file: whether the rule applies is unknown."""
    from haloagent import scan
    rule = _sshd_rule(packages=["openssh-server"])
    [finding] = scan.scan_policies([{"rules": [rule]}], ScanContext(str(tmp_path)))
    assert finding["status"] == "indeterminate"
    assert "cannot tell whether the rule applies" in finding["details"][0]["reason"]


def test_default_policies_on_a_host_without_openssh_server(tmp_path):
    """Issue 11: 8 indeterminate sshd findings kept such a host from ever passing."""
    import json
    from haloagent import scan
    from haloagent.checks import is_not_applicable
    from halodev.trees import make_compliant_tree
    root = make_compliant_tree(str(tmp_path), "debian")
    os.remove(os.path.join(root, "etc/ssh/sshd_config"))
    _dpkg(root, "base-files", "rsyslog", "libc6")
    with open(os.path.join(os.path.dirname(__file__), "../src/halogrid/policies/debian.json")) as fh:
        policy = json.load(fh)["policy"]
    findings = scan.scan_policies([policy], ScanContext(root))
    not_applicable = [f["rule_name"] for f in findings if is_not_applicable(f)]
    assert len(not_applicable) == 9  # the 8 sshd settings and sshd_config's permissions
    assert all(f["status"] == "good" for f in findings), [
        (f["rule_name"], f["details"]) for f in findings if f["status"] != "good"]
    assert scan.summarize(findings)["ok_findings_count"] == len(findings) - 9


# -- user_has_password / home_directory_file_presence / sticky bit -------------------------
ACCOUNTS = ("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
            "app:x:1000:1000::/home/app:/bin/bash\nold:x:1001:1001::/home/old:/bin/sh\n"
            "nohome:x:1002:1002::/:/bin/sh\n")


def test_user_has_password(tmp_path):
    write(tmp_path, "etc/passwd", ACCOUNTS)
    write(tmp_path, "etc/shadow", "root:*:1::::::\ndaemon:!:1::::::\napp:$y$x:1::::::\n"
                                  "old::1::::::\nnohome:!:1::::::\n", mode=0o640)
    check = {"object_type": "user_has_password", "users": "ALL"}
    [bad] = run(check, tmp_path)
    assert (bad["target"], bad["status"], bad["actual"]) == ("old", "bad", "empty")
    [good] = run(dict(check, users="NOT: old"), tmp_path)
    assert good["status"] == "good"
    assert statuses(run(dict(check, users="app, ghost"), tmp_path)) == ["good"]
    os.chmod(str(tmp_path / "etc/shadow"), 0o000)
    os.rename(str(tmp_path / "etc/shadow"), str(tmp_path / "etc/shadow.d"))
    os.makedirs(str(tmp_path / "etc/shadow"))  # unreadable shadow: indeterminate, not good
    assert statuses(run(check, tmp_path)) == ["indeterminate"]


def test_home_directory_file_presence(tmp_path):
    write(tmp_path, "etc/passwd", ACCOUNTS)
    write(tmp_path, "home/app/.rhosts", "+ +\n")
    os.makedirs(str(tmp_path / "root"))
    check = {"object_type": "home_directory_file_presence", "files": ".rhosts, .netrc",
             "users": "NOT: daemon", "present": False}
    [bad] = run(check, tmp_path)
    assert (bad["target"], bad["status"]) == ("/home/app/.rhosts", "bad")
    os.remove(str(tmp_path / "home/app/.rhosts"))
    assert statuses(run(check, tmp_path)) == ["good"]
    wanted = dict(check, files=".profile", users="app", present=True)
    [missing] = run(wanted, tmp_path)
    assert (missing["target"], missing["status"]) == ("/home/app/.profile", "bad")


def test_world_writable_directories_have_sticky_bit(tmp_path):
    for rel, mode in (("tmp", 0o1777), ("var/tmp", 0o1777), ("srv/drop", 0o777),
                      ("srv/drop/inner", 0o757), ("opt/ok", 0o755), ("opt/skip", 0o777)):
        os.makedirs(str(tmp_path / rel), exist_ok=True)
        os.chmod(str(tmp_path / rel), mode)
    check = {"object_type": "world_writable_directories_have_sticky_bit_set",
             "exclude_directories": "/opt/skip"}
    results = run(check, tmp_path)
    assert [(r["target"], r["status"]) for r in results] == [
        ("/srv/drop", "bad"), ("/srv/drop/inner", "bad")]
    os.chmod(str(tmp_path / "srv/drop"), 0o1777)
    os.chmod(str(tmp_path / "srv/drop/inner"), 0o755)
    assert statuses(run(check, tmp_path)) == ["good"]
    os.symlink("/tmp", str(tmp_path / "link"))  # symlinks are not followed
    assert statuses(run(check, tmp_path)) == ["good"]


def test_a_missing_directory_is_not_applicable_only_where_the_check_allows_it(tmp_path):
    """The OpenSCAP agreement bench: a minimal Debian has no /etc/cron.weekly, and the cron
    rule was indeterminate there (no verdict for ever), where OpenSCAP passes it."""
    from haloagent import scan
    from haloagent.checks import is_not_applicable
    os.makedirs(os.path.join(str(tmp_path), "etc/cron.d"), mode=0o700)
    os.chmod(os.path.join(str(tmp_path), "etc/cron.d"), 0o700)

    def rule(**extra):
        check = dict({"object_type": "directory_acl", "files": "/etc/cron.d, /etc/cron.weekly",
                      "acls": "*00"}, **extra)
        return {"name": "cron", "checks": [check]}

    [finding] = scan.scan_policies([{"rules": [rule(absent_ok=True)]}], ScanContext(str(tmp_path)))
    assert finding["status"] == "good" and not is_not_applicable(finding)
    weekly = [d for d in finding["details"] if d["target"] == "/etc/cron.weekly"][0]
    assert weekly["scan_status"] == "not_applicable" and "absent" in weekly["reason"]
    [strict] = scan.scan_policies([{"rules": [rule()]}], ScanContext(str(tmp_path)))
    assert strict["status"] == "indeterminate"
    os.rmdir(os.path.join(str(tmp_path), "etc/cron.d"))  # nothing left to judge: no evidence
    [none] = scan.scan_policies([{"rules": [rule(absent_ok=True)]}], ScanContext(str(tmp_path)))
    assert is_not_applicable(none)
