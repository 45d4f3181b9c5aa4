#!/usr/bin/env python3
"""Agreement with OpenSCAP: the agent's verdicts beside OpenSCAP's (SCAP Security Guide) on a
debootstrapped Debian 12 tree, for the rules both tools have, before and after mutations.

    .venv/bin/python bench/openscap_agreement.py [--cache ~/.cache/halo-bench] [--runs 5]

Needs root (overlay mounts, chroot, unshare) and, on the machine, `debootstrap`,
`openscap-scanner`, `ssg-debian` and `ssg-debderived` (apt). Not part of `make test`.

- The tree: `debootstrap --variant=minbase --include=openssh-server bookworm`, built once and
  kept under CACHE/debian12. Each mutation is applied to an overlay on top of it (the cached
  tree is never written).
- OpenSCAP: `oscap xccdf eval` run INSIDE the tree (`chroot`, in a private mount namespace whose
  /usr is the tree's /usr over the machine's, so the tree's files win and oscap's own libraries
  come from the machine). OSCAP_PROBE_ROOT is not used: its dpkginfo probe fails offline, which
  makes every package and login.defs rule wrong. Content: ssg-debian11 (Debian's own) and, for
  the rules it lacks (sysctl, rsh, xinetd, sshd_config and /etc/issue modes), ssg-ubuntu2204.
  Both are copied to CACHE/ssg and patched: the benchmark's platform (Debian 11 / Ubuntu 22.04)
  is removed so the rules apply to Debian 12, and the runtime half of the sysctl rules is removed
  (a tree has no running kernel; the agent judges a tree by its configuration alone too).
  A tailoring profile selects the mapped rules and sets SSG's thresholds to the agent's.
- The agent: `python -m haloagent scan --root TREE --policy grid/src/halogrid/policies/debian.json`
  as a process, verdicts read from its JSON report (per check detail where one agent rule
  covers several SSG rules).
- sshd -T in the tree is printed beside the sshd pairs: what sshd itself will do.

Prints each pair's verdicts per mutation, each disagreement with a one-line reason (a choice of
the default policy; OpenSCAP's textual reading of sshd_config where sshd -T sides with the agent;
or a real disagreement), the total; then the time of a 200-rule
policy scan as a process (median of --runs, target under 0.5 s) and of OpenSCAP's standard
profile on the same tree. Asserts nothing.
"""

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import benchlib  # noqa: E402

REPO = benchlib.REPO
POLICY = REPO / "grid" / "src" / "halogrid" / "policies" / "debian.json"
SSG_DIR = Path("/usr/share/xml/scap/ssg/content")
RULE = "xccdf_org.ssgproject.content_rule_"
VALUE = "xccdf_org.ssgproject.content_value_"
PROFILE = "xccdf_org.halobench_profile_agreement"
XCCDF = "http://checklists.nist.gov/xccdf/1.2"
CONTENTS = {"deb11": "ssg-debian11-ds.xml", "ubu2204": "ssg-ubuntu2204-ds.xml"}
# SSG's thresholds set to the default policy's, so a pair tests the same thing.
SET_VALUES = {
    "var_accounts_maximum_age_login_defs": "365",
    "var_accounts_minimum_age_login_defs": "1",
    "var_accounts_password_warn_age_login_defs": "7",
    "sshd_max_auth_tries_value": "4",
}

# (SSG rule, content, agent rule name, agent detail filter: (check type, target) or None for
# the whole rule, sshd -T keyword or None)
SSH_ROOT = "SSH root login is disabled or key-only"
PAIRS = [
    ("sshd_disable_root_login", "deb11", SSH_ROOT, None, "permitrootlogin"),
    ("sshd_disable_empty_passwords", "deb11", "SSH PermitEmptyPasswords is no", None, "permitemptypasswords"),
    ("sshd_disable_x11_forwarding", "deb11", "SSH X11Forwarding is no", None, "x11forwarding"),
    ("sshd_set_max_auth_tries", "deb11", "SSH MaxAuthTries is 4 or less", None, "maxauthtries"),
    ("sshd_disable_rhosts", "deb11", "SSH IgnoreRhosts is yes", None, "ignorerhosts"),
    ("disable_host_auth", "deb11", "SSH HostbasedAuthentication is no", None, "hostbasedauthentication"),
    ("sshd_do_not_permit_user_env", "deb11", "SSH PermitUserEnvironment is no", None, "permituserenvironment"),
    ("sshd_set_loglevel_info", "deb11", "SSH LogLevel is INFO or VERBOSE", None, "loglevel"),
]
for _what, _type in (("permissions", "file_acl"), ("owner", "file_user_ownership"),
                     ("groupowner", "file_group_ownership")):
    PAIRS.append(("file_%s_sshd_config" % _what, "ubu2204", "Permissions and owners of /etc/ssh/sshd_config",
                  (_type, "/etc/ssh/sshd_config"), None))
    for _f in ("passwd", "shadow", "group", "gshadow"):
        PAIRS.append(("file_%s_etc_%s" % (_what, _f), "deb11", "Permissions and owners of /etc/%s" % _f,
                      (_type, "/etc/" + _f), None))
    PAIRS.append(("file_%s_etc_issue" % _what, "ubu2204", "Permissions and owners of /etc/issue",
                  (_type, "/etc/issue"), None))
PAIRS += [
    ("no_empty_passwords_etc_shadow", "deb11", "No account has an empty password", None, None),
    ("accounts_no_uid_except_zero", "deb11", "root is the only UID 0 account", None, None),
    ("accounts_maximum_age_login_defs", "deb11", "Password expiration is 365 days or less", None, None),
    ("accounts_minimum_age_login_defs", "deb11", "Minimum days between password changes is 1 or more", None, None),
    ("accounts_password_warn_age_login_defs", "deb11", "Password expiration warning is 7 days or more", None, None),
    ("package_telnetd_removed", "deb11", "A telnet server is not installed", ("package_presence", "telnetd"), None),
    ("package_inetutils-telnetd_removed", "ubu2204", "A telnet server is not installed",
     ("package_presence", "inetutils-telnetd"), None),
    ("package_telnetd-ssl_removed", "ubu2204", "A telnet server is not installed",
     ("package_presence", "telnetd-ssl"), None),
    ("package_rsh-server_removed", "ubu2204", "An rsh server is not installed", ("package_presence", "rsh-server"), None),
    ("package_nis_removed", "deb11", "NIS is not installed", None, None),
    ("package_xinetd_removed", "ubu2204", "An inetd super-server is not installed", ("package_presence", "xinetd"), None),
    ("package_rsyslog_installed", "deb11", "A system logger is installed", ("package_presence", "rsyslog"), None),
    ("sysctl_net_ipv4_ip_forward", "ubu2204", "Kernel parameter net.ipv4.ip_forward = 0 (/etc/sysctl.conf)", None, None),
    ("sysctl_net_ipv4_conf_all_accept_redirects", "ubu2204",
     "Kernel parameter net.ipv4.conf.all.accept_redirects = 0 (/etc/sysctl.conf)", None, None),
]
for _d in ("d", "daily", "weekly"):
    for _what, _type in (("permissions", "directory_acl"), ("owner", "directory_user_ownership"),
                         ("groupowner", "directory_group_ownership")):
        PAIRS.append(("file_%s_cron_%s" % (_what, _d), "ubu2204", "Cron directories are private to root",
                      (_type, "/etc/cron." + _d), None))

# Where the default policy deliberately differs from SSG: (SSG rule, agent's actual value) ->
# the reason. Any other disagreement is a real one.
POLICY_CHOICES = {
    ("sshd_disable_root_login", "prohibit-password"): "policy choice: key-only root login is accepted",
    ("sshd_disable_root_login", "without-password"): "policy choice: key-only root login is accepted",
    ("sshd_set_loglevel_info", "VERBOSE"): "policy choice: LogLevel VERBOSE is accepted",
    ("file_groupowner_etc_gshadow", "root"): "policy choice: group root is accepted on /etc/gshadow",
    ("file_groupowner_etc_shadow", "root"): "policy choice: group root is accepted on /etc/shadow",
}

SSHD_DROPIN = "/etc/ssh/sshd_config.d/50-bench.conf"
DPKG_STANZA = """Package: {name}
Status: install ok installed
Priority: optional
Section: net
Installed-Size: 100
Maintainer: Bench <bench@example.invalid>
Architecture: amd64
Version: 1.0-1
Description: marked installed by bench/openscap_agreement.py

"""


def _write(tree, path, text, mode=0o644):
    target = tree / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    os.chmod(target, mode)


def _edit(tree, path, pattern, replacement):
    target = tree / path.lstrip("/")
    text, n = re.subn(pattern, replacement, target.read_text(), flags=re.M)
    if not n:
        text += replacement + "\n"
    target.write_text(text)


def _mark_installed(tree, *names):
    with open(tree / "var/lib/dpkg/status", "a") as handle:
        for name in names:
            handle.write(DPKG_STANZA.format(name=name))


def _chgrp(tree, path, group):
    gid = next(int(line.split(":")[2]) for line in (tree / "etc/group").read_text().splitlines()
               if line.split(":")[0] == group)
    os.chown(tree / path.lstrip("/"), -1, gid)


# name -> (what it does, function of the tree)
MUTATIONS = {
    "stock": ("the tree as debootstrap left it", lambda t: None),
    "sshd-dropin-root": ("sshd_config.d drop-in: PermitRootLogin yes",
                         lambda t: _write(t, SSHD_DROPIN, "PermitRootLogin yes\n")),
    "sshd-hardened": ("sshd_config: PermitRootLogin no, X11Forwarding no, MaxAuthTries 3, LogLevel VERBOSE, "
                      "mode 600",
                      lambda t: (_edit(t, "/etc/ssh/sshd_config", r"^X11Forwarding yes$", "X11Forwarding no"),
                                 _edit(t, "/etc/ssh/sshd_config", r"^#?PermitRootLogin .*$", "PermitRootLogin no"),
                                 _edit(t, "/etc/ssh/sshd_config", r"^#?MaxAuthTries .*$", "MaxAuthTries 3"),
                                 _edit(t, "/etc/ssh/sshd_config", r"^#?LogLevel .*$", "LogLevel VERBOSE"),
                                 os.chmod(t / "etc/ssh/sshd_config", 0o600))),
    "sshd-syntax": ("drop-in in sshd's looser syntax: 'permitemptypasswords=Yes', 'X11Forwarding no # c', "
                    "'HostbasedAuthentication yes' inside a Match block",
                    lambda t: _write(t, SSHD_DROPIN, "permitemptypasswords=Yes\nX11Forwarding no # comment\n"
                                     "Match User nobody\n    HostbasedAuthentication yes\n")),
    "sysctl-forward": ("sysctl.d file: net.ipv4.ip_forward = 1",
                       lambda t: _write(t, "/etc/sysctl.d/60-bench.conf", "net.ipv4.ip_forward = 1\n")),
    "sysctl-hardened": ("sysctl.d file: ip_forward = 0, conf.all.accept_redirects = 0",
                        lambda t: _write(t, "/etc/sysctl.d/60-bench.conf",
                                         "net.ipv4.ip_forward = 0\nnet.ipv4.conf.all.accept_redirects = 0\n")),
    "shadow-644": ("chmod 644 /etc/shadow; chgrp root /etc/gshadow",
                   lambda t: (os.chmod(t / "etc/shadow", 0o644), _chgrp(t, "/etc/gshadow", "root"))),
    "packages": ("dpkg status: telnetd, rsh-server, nis, xinetd, rsyslog marked installed",
                 lambda t: _mark_installed(t, "telnetd", "rsh-server", "nis", "xinetd", "rsyslog")),
    "login-defs": ("login.defs: PASS_MAX_DAYS 365, PASS_MIN_DAYS 1, PASS_WARN_AGE 5",
                   lambda t: (_edit(t, "/etc/login.defs", r"^PASS_MAX_DAYS\s.*$", "PASS_MAX_DAYS\t365"),
                              _edit(t, "/etc/login.defs", r"^PASS_MIN_DAYS\s.*$", "PASS_MIN_DAYS\t1"),
                              _edit(t, "/etc/login.defs", r"^PASS_WARN_AGE\s.*$", "PASS_WARN_AGE\t5"))),
    "cron-private": ("chmod 700 /etc/cron.d /etc/cron.daily (minbase has no /etc/cron.weekly)",
                     lambda t: [os.chmod(t / "etc" / d, 0o700) for d in ("cron.d", "cron.daily", "cron.weekly")
                                if (t / "etc" / d).is_dir()]),
}


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# -- the tree and the content -------------------------------------------------------------
def ensure_tree(cache, mirror):
    tree = cache / "debian12"
    if tree.is_dir():
        return tree, 0.0
    partial = cache / "debian12.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    print("debootstrap bookworm (minbase + openssh-server) into %s ..." % tree, flush=True)
    started = time.monotonic()
    proc = run(["debootstrap", "--variant=minbase", "--include=openssh-server", "bookworm", str(partial), mirror])
    if proc.returncode:
        sys.exit("debootstrap failed:\n" + (proc.stdout + proc.stderr)[-3000:])
    partial.rename(tree)  # only a complete tree gets the cached name
    return tree, time.monotonic() - started


def ensure_content(cache):
    """Patched copies of the SSG data streams and a tailoring file for each."""
    out = cache / "ssg"
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, name in CONTENTS.items():
        source = SSG_DIR / name
        if not source.is_file():
            sys.exit("%s is missing: apt-get install -y openscap-scanner ssg-debian ssg-debderived" % source)
        target = out / name.replace("-ds.xml", "-bench-ds.xml")
        if not target.is_file() or target.stat().st_mtime < source.stat().st_mtime:
            text = source.read_text()
            # the benchmark's platform (Debian 11 / Ubuntu 22.04): the tree is Debian 12
            text, n = re.subn(r'\s*<xccdf-1\.2:platform idref="cpe:/o:[^"]*"/>', "", text)
            # the runtime half of each sysctl rule: a tree has no running kernel
            text, m = re.subn(r'\s*<oval-def:extend_definition comment="[^"]* runtime setting check"'
                              r' definition_ref="oval:ssg-sysctl_[^"]*_runtime:def:1"/>', "", text)
            target.write_text(text)
            print("patched %s -> %s (%d platform, %d sysctl runtime checks removed)" % (source, target, n, m))
        tailoring = out / ("tailoring-%s.xml" % key)
        rules = sorted({p[0] for p in PAIRS if p[1] == key})
        tailoring.write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<xccdf:Tailoring xmlns:xccdf="%s" id="xccdf_org.halobench_tailoring_%s">\n'
            '  <xccdf:version time="2026-01-01T00:00:00">1</xccdf:version>\n'
            '  <xccdf:Profile id="%s">\n    <xccdf:title>halo agreement bench</xccdf:title>\n%s%s'
            '  </xccdf:Profile>\n</xccdf:Tailoring>\n' % (
                XCCDF, key, PROFILE,
                "".join('    <xccdf:select idref="%s%s" selected="true"/>\n' % (RULE, r) for r in rules),
                "".join('    <xccdf:set-value idref="%s%s">%s</xccdf:set-value>\n' % (VALUE, k, v)
                        for k, v in SET_VALUES.items())))
        paths[key] = (target, tailoring)
    return out, paths


@contextlib.contextmanager
def overlay(base, work):
    """A writable view of the cached tree; the writes land in work/upper."""
    for d in ("upper", "work", "merged"):
        (work / d).mkdir(parents=True, exist_ok=True)
    merged = work / "merged"
    proc = run(["mount", "-t", "overlay", "overlay", "-o",
                "lowerdir=%s,upperdir=%s,workdir=%s" % (base, work / "upper", work / "work"), str(merged)])
    if proc.returncode:
        sys.exit("overlay mount failed: %s" % proc.stderr.strip())
    try:
        yield merged
    finally:
        run(["umount", str(merged)])


def in_tree(tree, ssg_out, script):
    """Run a shell script chrooted in the tree, in a private mount namespace: the tree's /usr
    over the machine's (oscap and its libraries), CACHE/ssg at /mnt, /run/sshd for sshd -T."""
    setup = ("set -e; mount -t overlay overlay -o ro,lowerdir={t}/usr:/usr {t}/usr; "
             "mount --bind {s} {t}/mnt; mount -t proc proc {t}/proc; mkdir -p {t}/run/sshd; "
             "exec chroot {t} /bin/sh -c \"$0\"").format(t=tree, s=ssg_out)
    return run(["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", setup, script])


# -- verdicts -----------------------------------------------------------------------------
def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def agent_scan(tree, policy, out_json, cpu=None):
    """The report and the wall time of one `haloagent scan` process (its CPU time appended to
    `cpu`: on a loaded machine the wall time mostly measures the wait for a core)."""
    started, cpu_before = time.monotonic(), _children_cpu()
    proc = run([sys.executable, "-m", "haloagent", "scan", "--root", str(tree), "--policy", str(policy),
                "--format", "summary", "--json", str(out_json)])
    elapsed = time.monotonic() - started
    if cpu is not None:
        cpu.append(_children_cpu() - cpu_before)
    if proc.returncode not in (0, 1, 2) or not out_json.is_file():
        sys.exit("haloagent scan failed (%d): %s" % (proc.returncode, proc.stderr[-2000:]))
    return json.loads(out_json.read_text()), elapsed


def agent_verdict(report, rule, selector):
    """(pass/fail/notapplicable/error, the actual value(s)) of a rule or of its details of one
    (type, target)."""
    finding = next((f for f in report["findings"] if f["rule_name"] == rule), None)
    if finding is None:
        return "missing", None
    details = finding["details"]
    if selector:
        details = [d for d in details if (d.get("type"), d.get("target")) == selector]
        if not details:
            return "missing", None
    if details and all(d.get("scan_status") == "not_applicable" for d in details):
        return "notapplicable", None
    statuses = {d["status"] for d in details} if selector else {finding["status"]}
    verdict = ("fail" if "bad" in statuses else "error" if "indeterminate" in statuses
               else "pass" if statuses == {"good"} else "/".join(sorted(statuses)))
    actual = [d.get("actual") for d in details]
    if verdict == "error":  # what the agent could not read, instead of a value
        actual = ["indeterminate: %s" % d.get("reason") for d in details if d["status"] == "indeterminate"]
    return verdict, actual[0] if len(actual) == 1 else actual


def oscap_eval(tree, ssg_out, paths):
    """{ssg rule: result} from both tailored evaluations, and the time they took."""
    results, elapsed = {}, 0.0
    for key, (ds, tailoring) in paths.items():
        script = ("oscap xccdf eval --tailoring-file /mnt/{tl} --profile {p} --results /tmp/bench-{k}.xml "
                  "/mnt/{ds} >/tmp/bench-{k}.log 2>&1; echo $?").format(
            tl=tailoring.name, p=PROFILE, k=key, ds=ds.name)
        started = time.monotonic()
        proc = in_tree(tree, ssg_out, script)
        elapsed += time.monotonic() - started
        code = proc.stdout.strip().splitlines()[-1:] or ["?"]
        if code[0] not in ("0", "2"):
            log = (tree / "tmp" / ("bench-%s.log" % key))
            sys.exit("oscap failed (%s): %s %s" % (code, proc.stderr[-2000:],
                                                   log.read_text()[-2000:] if log.is_file() else ""))
        root = ET.parse(tree / "tmp" / ("bench-%s.xml" % key)).getroot()
        mine = {p[0] for p in PAIRS if p[1] == key}  # the other content's rules are notselected here
        for rr in root.iter("{%s}rule-result" % XCCDF):
            rule = rr.get("idref")[len(RULE):]
            if rule in mine:
                results[rule] = rr.find("{%s}result" % XCCDF).text
    return results, elapsed


def sshd_effective(tree, ssg_out):
    proc = in_tree(tree, ssg_out, "/usr/sbin/sshd -T -f /etc/ssh/sshd_config 2>&1")
    values = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key.lower(), value)
    if not values.get("permitrootlogin"):
        values["error"] = proc.stdout.strip()[-200:]
    return values


def _sshd_norm(value):
    value = str(value).strip().lower()
    return "prohibit-password" if value == "without-password" else value


def classify(ssg_rule, agent, ssg, actual, sshd_value):
    """None when the verdicts agree, else (kind, one-line reason): kind "policy" (the default
    policy's deliberate choice), "openscap" (sshd -T sides with the agent: OpenSCAP reads
    sshd_config's text, not the effective configuration) or "real"."""
    if agent == ssg:
        return None
    if isinstance(actual, str) and (ssg_rule, actual) in POLICY_CHOICES:
        return "policy", POLICY_CHOICES[(ssg_rule, actual)]
    if sshd_value is not None and actual is not None and _sshd_norm(actual) == _sshd_norm(sshd_value):
        return "openscap", ("OpenSCAP reads sshd_config's text (keyword unset there, or set in a drop-in "
                            "or with a trailing comment); the agent judged the effective value, %s as sshd -T "
                            "says" % sshd_value)
    why = "agent %s (%s), OpenSCAP %s" % (agent, actual, ssg)
    if sshd_value is not None:
        why += "; sshd -T says %s" % sshd_value
    return "real", why


# -- timing -------------------------------------------------------------------------------
def policy_of_n(n, path):
    """n rules made by repeating debian.json's rules, each copy renamed."""
    policy = json.loads(POLICY.read_text())
    base = policy["policy"]["rules"]
    rules = []
    for i in range(n):
        rule = json.loads(json.dumps(base[i % len(base)]))
        rule["name"] = "%s (copy %d)" % (rule["name"], i // len(base))
        rules.append(rule)
    policy["policy"]["rules"] = rules
    policy["policy"]["name"] = "bench %d rules" % n
    path.write_text(json.dumps(policy))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "halo-bench",
                        help="where the Debian tree and the patched SSG content are kept (default %(default)s)")
    parser.add_argument("--mirror", default="http://deb.debian.org/debian")
    parser.add_argument("--runs", type=int, default=5, help="runs of the 200-rule scan (median)")
    parser.add_argument("--oscap-runs", type=int, default=3, help="runs of the standard profile (median)")
    parser.add_argument("--only", nargs="*", help="only these mutations (default: all)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (overlay mounts, chroot, unshare)")
    for tool in ("debootstrap", "oscap", "unshare", "chroot"):
        if not shutil.which(tool):
            sys.exit("%s is missing: apt-get install -y debootstrap openscap-scanner ssg-debian ssg-debderived"
                     % tool)

    base, built = ensure_tree(args.cache, args.mirror)
    ssg_out, paths = ensure_content(args.cache)
    version = (base / "etc/debian_version").read_text().strip()
    print("tree: %s (Debian %s)%s" % (base, version, ", built in %.0f s" % built if built else ", cached"))
    print("content: %s; oscap: %s" % (", ".join(str(p[0]) for p in paths.values()),
                                       run(["oscap", "--version"]).stdout.splitlines()[0]))
    print("%d shared pairs (SSG rule <-> agent rule/check)\n" % len(PAIRS))

    mutations = [m for m in MUTATIONS if not args.only or m in args.only]
    figures = {"pairs": len(PAIRS), "mutations": {}}
    totals = {"agree": 0, "policy": 0, "openscap": 0, "real": 0}
    disagreements = []
    tmp = Path(tempfile.mkdtemp(prefix="halobench.oscap."))
    try:
        for name in mutations:
            what, mutate = MUTATIONS[name]
            with overlay(base, tmp / name) as tree:
                mutate(tree)
                report, agent_s = agent_scan(tree, POLICY, tmp / ("%s.json" % name))
                ssg, oscap_s = oscap_eval(tree, ssg_out, paths)
                sshd = sshd_effective(tree, ssg_out)
            print("== %s: %s  (agent %.2f s, oscap %.1f s)" % (name, what, agent_s, oscap_s))
            if "error" in sshd:
                print("   sshd -T failed: %s" % sshd["error"])
            print("   %-42s %-13s %-13s %-6s %s" % ("SSG rule", "OpenSCAP", "agent", "", "agent actual / sshd -T"))
            counts = {"agree": 0, "policy": 0, "openscap": 0, "real": 0}
            for ssg_rule, _, agent_rule, selector, keyword in PAIRS:
                agent, actual = agent_verdict(report, agent_rule, selector)
                theirs = ssg.get(ssg_rule, "absent")
                sshd_value = sshd.get(keyword) if keyword else None
                kind, why = classify(ssg_rule, agent, theirs, actual, sshd_value) or ("agree", None)
                mark = {"agree": "", "policy": "policy", "openscap": "ssg", "real": "REAL"}[kind]
                note = "%s" % (actual,) + (" / %s" % sshd_value if keyword else "")
                print("   %-42s %-13s %-13s %-6s %s" % (ssg_rule, theirs, agent, mark, note))
                counts[kind] += 1
                if why is not None:
                    disagreements.append((name, ssg_rule, agent_rule, kind, why))
            figures["mutations"][name] = dict(counts, agent_s=agent_s, oscap_s=oscap_s)
            for k, v in counts.items():
                totals[k] += v
            print()

        print("Disagreements, each once (SSG rule / agent rule: reason [mutations]):")
        seen = {}
        for name, ssg_rule, agent_rule, kind, why in disagreements:
            seen.setdefault((kind, ssg_rule, agent_rule, why), []).append(name)
        for (kind, ssg_rule, agent_rule, why), names in sorted(seen.items(), key=lambda kv: kv[0][0] != "real"):
            print("  %-8s %s / %s: %s [%s]" % (kind.upper() if kind == "real" else kind, ssg_rule, agent_rule,
                                               why, ", ".join(names) if len(names) < len(mutations) else "all"))
        if not disagreements:
            print("  none")
        total = sum(totals.values())
        print("\nTotal: %d pair verdicts (%d pairs x %d mutations): %d agree, %d differ by the default "
              "policy's choice, %d by OpenSCAP's reading of sshd_config (sshd -T sides with the agent), "
              "%d real disagreements. Agreement %.1f%%; %.1f%% with policy choices and OpenSCAP's sshd "
              "reading aside."
              % (total, len(PAIRS), len(mutations), totals["agree"], totals["policy"], totals["openscap"],
                 totals["real"], 100.0 * totals["agree"] / total, 100.0 * (total - totals["real"]) / total))
        figures.update(total=total, **totals)

        # -- timing ------------------------------------------------------------------------
        big = policy_of_n(200, tmp / "policy200.json")
        floor = []
        for _ in range(args.runs):  # the interpreter and the agent's imports, no scan
            started = time.monotonic()
            run([sys.executable, "-m", "haloagent", "--version"])
            floor.append(time.monotonic() - started)
        times, cpu = [], []
        for i in range(args.runs):
            _, elapsed = agent_scan(base, big, tmp / ("t%d.json" % i), cpu)
            times.append(elapsed)
        median = statistics.median(times)
        print("\n200-rule policy scan as a process (haloagent scan --root TREE): median %.3f s of %d "
              "(min %.3f, max %.3f); target < 0.5 s" % (median, len(times), min(times), max(times)))
        print("  CPU time (user+sys) of that process: median %.3f s; process start alone (haloagent "
              "--version): median %.3f s wall; load average now %.1f on %d cores"
              % (statistics.median(cpu), statistics.median(floor), os.getloadavg()[0], os.cpu_count()))
        figures.update(scan200_median_s=median, scan200_cpu_median_s=statistics.median(cpu),
                       process_start_median_s=statistics.median(floor))
        with overlay(base, tmp / "standard") as tree:
            deb_ds = paths["deb11"][0].name
            otimes, nrules = [], {}
            for i in range(args.oscap_runs):
                script = ("oscap xccdf eval --profile xccdf_org.ssgproject.content_profile_standard "
                          "--results /tmp/std.xml /mnt/%s >/dev/null 2>&1; echo $?" % deb_ds)
                started = time.monotonic()
                in_tree(tree, ssg_out, script)
                otimes.append(time.monotonic() - started)
            root = ET.parse(tree / "tmp/std.xml").getroot()
            for rr in root.iter("{%s}rule-result" % XCCDF):
                result = rr.find("{%s}result" % XCCDF).text
                nrules[result] = nrules.get(result, 0) + 1
        evaluated = sum(v for k, v in nrules.items() if k not in ("notselected", "notapplicable"))
        print("OpenSCAP standard profile (ssg-debian11, chrooted, same tree): median %.2f s of %d "
              "(min %.2f, max %.2f); %d rules evaluated (%s)"
              % (statistics.median(otimes), len(otimes), min(otimes), max(otimes), evaluated,
                 ", ".join("%s %d" % kv for kv in sorted(nrules.items()) if kv[0] != "notselected")))
        figures.update(oscap_standard_median_s=statistics.median(otimes), oscap_standard_rules=evaluated)
        benchlib.write_json(args.json, figures)
    finally:
        if args.keep:
            print("work directory kept: %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
