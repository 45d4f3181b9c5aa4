"""The agent's effective sshd configuration, compared with what sshd itself computes.

Each case writes a sshd_config tree twice: under a scan root for the agent (paths as on
the host), and as real files for ``/usr/sbin/sshd -T -f`` (Debian's openssh-server; its
``Include`` resolves relative paths against the real /etc/ssh, so that copy names the tmp
tree: ``{ETC}`` is the tree's etc/ssh as an absolute path, ``{REL}`` the same reached
relatively from /etc/ssh). Every keyword the agent knows a default for, plus the ones a
case sets, must have the same value in both.
"""
import os
import shutil
import subprocess

import pytest

from haloagent import sshd
from haloagent.checks import CHECKS, ScanContext
from haloagent.rootfs import RootFS

SSHD = "/usr/sbin/sshd"
POLICY_KEYWORDS = ("permitrootlogin", "permitemptypasswords", "x11forwarding", "maxauthtries",
                   "ignorerhosts", "hostbasedauthentication", "permituserenvironment", "loglevel")

# Debian 12's stock /etc/ssh/sshd_config (openssh-server 1:9.2p1-2+deb12u10), comments shortened
DEBIAN_STOCK = """\
# This is the sshd server system-wide configuration file.
Include {ETC}/sshd_config.d/*.conf
#Port 22
#PermitRootLogin prohibit-password
#MaxAuthTries 6
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem\tsftp\t/usr/lib/openssh/sftp-server
"""

needs_sshd = pytest.mark.skipif(not os.access(SSHD, os.X_OK),
                                reason="Debian's openssh-server is not installed (%s)" % SSHD)


@pytest.fixture(scope="module")
def host_key(tmp_path_factory):
    """A throw-away host key (sshd -T refuses to run without one) and the privilege
    separation directory sshd -T insists on."""
    if not os.access(SSHD, os.X_OK):
        pytest.skip("Debian's openssh-server is not installed (%s)" % SSHD)
    if not os.path.isdir("/run/sshd"):
        if os.geteuid() != 0:
            pytest.skip("sshd -T needs /run/sshd, which only root can create")
        os.makedirs("/run/sshd", mode=0o755)
    key = str(tmp_path_factory.mktemp("hostkey") / "key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    return key


def write_tree(base, files, etc, rel):
    for name, content in files.items():
        path = os.path.join(str(base), "etc/ssh", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(content.replace("{ETC}", etc).replace("{REL}", rel))


def build(tmp_path, files):
    """(scan root for the agent, path of the main file for sshd -T)."""
    agent_root, real = tmp_path / "root", tmp_path / "real"
    write_tree(agent_root, files, "/etc/ssh", "")
    real_etc = str(real / "etc/ssh")
    write_tree(real, files, real_etc, "../.." + real_etc + "/")
    return str(agent_root), real_etc + "/sshd_config"


def sshd_t(config, host_key):
    """``sshd -T`` as {keyword: [values]}, or the error sshd printed."""
    proc = subprocess.run([SSHD, "-T", "-f", config, "-h", host_key],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if proc.returncode != 0:
        return proc.stderr.strip() or "exit %d" % proc.returncode
    values = {}
    for line in proc.stdout.splitlines():
        keyword, _, value = line.partition(" ")
        values.setdefault(keyword, []).append(value)
    return values


def agent_values(root, keywords):
    config = sshd.load(RootFS(root))
    return {k: config.effective(k)[0] for k in keywords}


CASES = {
    # Debian's stock file includes sshd_config.d/*.conf: a drop-in decides
    "drop-in via globbed Include": {
        "sshd_config": "Include {ETC}/sshd_config.d/*.conf\nPermitRootLogin no\n",
        "sshd_config.d/50-cloud-init.conf": "PermitRootLogin yes\nPasswordAuthentication yes\n"},
    "drop-in via relative Include": {
        "sshd_config": "Include {REL}sshd_config.d/*.conf\nPermitRootLogin no\n",
        "sshd_config.d/50-cloud-init.conf": "PermitRootLogin yes\n"},
    "Debian stock sshd_config with a drop-in": {
        "sshd_config": DEBIAN_STOCK,
        "sshd_config.d/10-x11.conf": "X11Forwarding no\nMaxAuthTries 3\n"},
    "glob order is lexical, dot files skipped": {
        "sshd_config": "Include {ETC}/conf.d/*.conf\n",
        "conf.d/2-b.conf": "PermitRootLogin yes\nMaxAuthTries 2\nLogLevel ERROR\n",
        "conf.d/10-a.conf": "PermitRootLogin no\n",
        "conf.d/a.conf": "MaxAuthTries 5\nLogLevel QUIET\nX11Forwarding yes\n",
        "conf.d/.hidden.conf": "X11Forwarding no\n",
        "conf.d/ignored.txt": "LogLevel VERBOSE\n"},
    "Include with several arguments, nested, missing": {
        "sshd_config": "Include {ETC}/b.conf {ETC}/a.conf {ETC}/none.conf\nMaxAuthTries 1\n",
        "a.conf": "PermitRootLogin yes\nX11Forwarding yes\n",
        "b.conf": "Include {REL}c.conf\nX11Forwarding no\n",
        "c.conf": "IgnoreRhosts no\n"},
    "keywords and values in any case": {
        "sshd_config": "PERMITROOTLOGIN No\npermitemptypasswords NO\nx11forwarding YES\n"
                       "LogLevel verbose\nIgnoreRhosts Shosts-Only\n"},
    "Keyword=value forms": {
        "sshd_config": "PermitRootLogin=no\nX11Forwarding = yes\nMaxAuthTries =3\n"
                       "LogLevel= VERBOSE\n"},
    "trailing comments and quotes": {
        "sshd_config": "PermitRootLogin no # was yes\nMaxAuthTries 3 #x\n"
                       "X11Forwarding \"yes\"\nLogLevel 'INFO'\n\tHostbasedAuthentication\tno\n"},
    "the first value wins": {
        "sshd_config": "PermitRootLogin no\nPermitRootLogin yes\nMaxAuthTries 3\nMaxAuthTries 9\n"
                       "ChallengeResponseAuthentication no\nKbdInteractiveAuthentication yes\n"},
    "Match blocks are not global": {
        "sshd_config": "PermitRootLogin no\nMatch User admin\nPermitRootLogin yes\n"
                       "X11Forwarding yes\nMatch Address 198.18.0.0/15\nMaxAuthTries 10\n"},
    "Match all is global": {
        "sshd_config": "Match User bob\nX11Forwarding yes\nMatch all\nPermitRootLogin yes\n"},
    "a Match in an included file ends with it": {
        "sshd_config": "Include {ETC}/m.conf\nPermitRootLogin yes\n",
        "m.conf": "Match User x\nX11Forwarding yes\n"},
    "an Include inside a Match block is not global": {
        "sshd_config": "Match User x\nInclude {ETC}/sshd_config.d/*.conf\n",
        "sshd_config.d/a.conf": "PermitRootLogin yes\n"},
    "unset keywords have the compiled-in defaults": {"sshd_config": "# nothing set\n"},
    "values sshd rewrites": {
        "sshd_config": "PermitRootLogin prohibit-password\nCompression delayed\n"
                       "AllowTcpForwarding all\nLogLevel DEBUG1\nLoginGraceTime 2m\n"
                       "ClientAliveInterval 1h5s\nPermitUserEnvironment LANG,LC_*\n"
                       "MaxAuthTries 010\nDSAAuthentication no\nProtocol 2\n"},
}


@needs_sshd
@pytest.mark.parametrize("case", sorted(CASES))
def test_effective_value_matches_sshd_t(tmp_path, host_key, case):
    root, real = build(tmp_path, CASES[case])
    expected = sshd_t(real, host_key)
    assert isinstance(expected, dict), "sshd -T refused the case: %s" % expected
    keywords = sorted(set(sshd.DEFAULTS) | set(POLICY_KEYWORDS))
    got = agent_values(root, keywords)
    assert {k: got[k] for k in keywords} == {k: expected.get(k, []) for k in keywords}


@needs_sshd
def test_accumulating_keywords_match_sshd_t(tmp_path, host_key):
    files = {"sshd_config": "AllowUsers a b\nInclude {ETC}/x.conf\nAllowUsers c\n"
                            "AcceptEnv LANG LC_*\nMatch User z\nAllowUsers d\n",
             "x.conf": "AllowUsers e\n"}
    root, real = build(tmp_path, files)
    expected = sshd_t(real, host_key)
    got = agent_values(root, ["allowusers", "acceptenv"])
    # sshd -T prints one line per user; the agent keeps the arguments of each line
    assert " ".join(got["allowusers"]).split() == expected["allowusers"]
    assert " ".join(got["acceptenv"]).split() == expected["acceptenv"]


@needs_sshd
@pytest.mark.parametrize("content", [
    "PermitRootLogin yes#comment\n",      # '#' only starts a comment at an argument's start
    "PermitRootLogin maybe\n",
    "PermitRootLogin yes extra\n",
    "PermitRootLogin\n",
    "MaxAuthTries 3x\n",
    "X11Forwarding true\n",
    "Match all User x\nPermitRootLogin yes\n",
    "Match User x\nMaxAuthTries many\n",   # checked inside a Match block too
])
def test_configurations_sshd_refuses_are_refused(tmp_path, host_key, content):
    root, real = build(tmp_path, {"sshd_config": content})
    assert isinstance(sshd_t(real, host_key), str)  # sshd -T failed
    with pytest.raises(sshd.SshdConfigError):
        sshd.load(RootFS(root))
    check = {"object_type": "configuration_file_setting", "config_file_path": "/etc/ssh/sshd_config",
             "config_item": "PermitRootLogin", "desired_value": "no"}
    [result] = CHECKS["configuration_file_setting"](check, ScanContext(root))
    assert result["status"] == "indeterminate" and "sshd would refuse" in result["reason"]


def test_include_loop_is_an_error_not_a_hang(tmp_path):
    root, _ = build(tmp_path, {"sshd_config": "Include {ETC}/sshd_config\n"})
    with pytest.raises(sshd.SshdConfigError, match="depth"):
        sshd.load(RootFS(root))


def test_included_symlink_stays_in_the_tree(tmp_path):
    """A drop-in that links to /etc/ssh/real.conf reads the tree's file, not the host's."""
    root, _ = build(tmp_path, {"sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n",
                               "real.conf": "PermitRootLogin yes\n"})
    os.makedirs(os.path.join(root, "etc/ssh/sshd_config.d"))
    os.symlink("/etc/ssh/real.conf", os.path.join(root, "etc/ssh/sshd_config.d/a.conf"))
    assert sshd.load(RootFS(root)).effective("PermitRootLogin")[0] == ["yes"]


# -- the policy check on these cases: the findings issue 11 lists -------------------------------
def sshd_check(item, desired):
    return {"object_type": "configuration_file_setting", "config_file_path": "/etc/ssh/sshd_config",
            "config_file_section": "", "config_item": item, "desired_value": desired,
            "comment_character": "#", "delimiter": ""}


@pytest.mark.parametrize("files,item,desired,status,actual", [
    # a drop-in with PermitRootLogin yes was reported good (missed finding)
    ({"sshd_config": DEBIAN_STOCK, "sshd_config.d/50-x.conf": "PermitRootLogin yes\n"},
     "PermitRootLogin", "no|prohibit-password|without-password", "bad", "yes"),
    ({"sshd_config": "PermitEmptyPasswords No\n"}, "PermitEmptyPasswords", "no", "good", "no"),
    ({"sshd_config": "permitemptypasswords no\n"}, "PermitEmptyPasswords", "No", "good", "no"),
    ({"sshd_config": "X11Forwarding=no\n"}, "X11Forwarding", "no", "good", "no"),
    ({"sshd_config": "MaxAuthTries 4 # CIS\n"}, "MaxAuthTries", "[1-4]", "good", "4"),
    ({"sshd_config": "PermitRootLogin no\nPermitRootLogin yes\n"}, "PermitRootLogin", "no",
     "good", "no"),
    ({"sshd_config": "X11Forwarding no\nMatch User admin\nX11Forwarding yes\n"},
     "X11Forwarding", "no", "good", "no"),
    # unset: the compiled-in default satisfies the rule
    ({"sshd_config": "# empty\n"}, "PermitEmptyPasswords", "no", "good", "no"),
    ({"sshd_config": "# empty\n"}, "LogLevel", "INFO|VERBOSE", "good", "INFO"),
    ({"sshd_config": "# empty\n"}, "MaxAuthTries", "[1-4]", "bad", "6"),
])
def test_sshd_rule_status(tmp_path, files, item, desired, status, actual):
    root, _ = build(tmp_path, files)
    [result] = CHECKS["configuration_file_setting"](sshd_check(item, desired), ScanContext(root))
    assert (result["status"], result["actual"]) == (status, actual), result


def test_sshd_detail_says_where_the_value_comes_from(tmp_path):
    root, _ = build(tmp_path, {
        "sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nMatch User admin\nPermitRootLogin yes\n",
        "sshd_config.d/50-x.conf": "\nPermitRootLogin no\n"})
    [result] = CHECKS["configuration_file_setting"](sshd_check("PermitRootLogin", "no"),
                                                    ScanContext(root))
    assert result["source"] == "/etc/ssh/sshd_config.d/50-x.conf line 2"
    assert result["match_blocks"] == ["yes (/etc/ssh/sshd_config line 3)"]
    [default] = CHECKS["configuration_file_setting"](sshd_check("IgnoreRhosts", "yes"),
                                                     ScanContext(root))
    assert default["status"] == "good" and default["source"].startswith("compiled-in default")
