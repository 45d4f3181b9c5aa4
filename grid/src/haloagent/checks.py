"""Configuration checks: one function per Halo check type, registered in ``CHECKS``.

A check function takes the check object of a policy rule and a ``ScanContext`` and returns
a list of *details*, one per target (file, process, package, port), each with ``status``
``good`` | ``bad`` | ``indeterminate``, the ``expected`` and ``actual`` values and, when
indeterminate, a ``reason``. A target that cannot be read is indeterminate, never a crash.

Semantics chosen where Halo's are not written down (the SDK's CIS CentOS 7 template is the
reference for field names and example values):

* list fields (``files``, ``folders``, ``processes``, ``packages``, ``ports``,
  ``owned_by``) are comma-separated strings (as in the template) or JSON lists;
* ``configuration_file_setting``: ``desired_value`` is a regular expression that must match
  the *whole* value (a plain value therefore means equality; ``[1-4]`` expresses
  "4 or less"). Two paths mean the program's effective setting, not one file's text:

  - a file named ``sshd_config``: the value sshd uses, as ``sshd -T`` prints it (see
    sshd.py: Include followed, first value wins, Match blocks are not global, unset means
    the compiled-in default); yes/no, multi-state and numeric values match
    case-insensitively; a configuration sshd would refuse is indeterminate;
  - ``/etc/sysctl.conf`` (or a path in ``/etc/sysctl.d``): the value systemd-sysctl sets
    at boot from all its files, the last one winning (see sysctl.py); on the running host
    (root ``/``) the live value in ``/proc/sys`` must match too, and the detail says
    when it differs from the configured one;

  any other file: an item set several times must match every time; an item that is not
  set is bad. The item name is compared case-insensitively, the value is not. Only
  whole-line comments are comments. An empty ``config_item`` means the file's first
  meaningful line is the value (the template uses this for ``/proc/sys/...`` files);
* ``file_acl`` / ``directory_acl``: ``acls`` like ``644`` or ``*00`` is the most
  permissive mode allowed: each digit of the actual mode may only hold bits that the digit
  holds (``600`` passes ``644``), ``*`` allows anything. Several alternatives may be given
  comma-separated. A missing target is indeterminate;
* ownership checks: ``owned_by`` may list several acceptable names (Debian's
  ``/etc/shadow`` belongs to group ``shadow``, RHEL's to ``root``);
* ``file_string_presence``: ``patterns`` is one regular expression, searched line by line
  (``^`` and ``$`` anchor lines); a missing file contains nothing;
* ``users`` (``user_has_password``, ``home_directory_file_presence``): ``ALL``, a
  comma-separated list, or ``NOT: a, b`` (everyone else), from the scanned system's
  ``/etc/passwd``. ``user_has_password``: the password field (``/etc/shadow``, else
  ``/etc/passwd``) is not empty (a locked ``!``/``*`` counts: CIS checks for empty
  fields). ``home_directory_file_presence``: ``files`` (names relative to each home);
* ``world_writable_directories_have_sticky_bit_set``: every directory of the scanned tree
  (on the running host: its local filesystems; ``/proc``, ``/sys``, network and pseudo
  filesystems are skipped) that others may write has the sticky bit, except
  ``exclude_directories`` and what lies below them.

A rule may say what it applies to (a grid addition, ignored by Halo): ``"applies_to":
{"packages": [...], "files": [...]}``. When none of the packages is installed and none of
the files exists, the rule is *not applicable*: its finding is ``good`` with one detail whose
``scan_status`` is ``not_applicable`` (see ``rule_applicability``); such a finding is not
evidence that the host passes and is not counted as ok by the grid.
"""
from __future__ import annotations

import os
import re
import stat
from typing import Any, Callable, Dict, List, Optional

from . import packages, procfs, sshd, sysctl
from .rootfs import RootFS

Detail = Dict[str, Any]
GOOD, BAD, INDETERMINATE = "good", "bad", "indeterminate"
# the detail ``scan_status`` of a rule whose subject is absent (its finding is ``good``)
NOT_APPLICABLE = "not_applicable"


class ScanContext:
    """What checks read: the scanned system's files, its package database, /proc.

    ``live``: the scanned files are the running system's (root ``/``), so its /proc
    describes them (sysctl checks then compare the live kernel values too)."""

    def __init__(self, root: str = "/", proc_dir: str = "/proc",
                 live: Optional[bool] = None) -> None:
        self.fs = RootFS(root)
        self.proc_dir = proc_dir
        self.live = self.fs.root == "/" if live is None else live
        self._package_db: Optional[packages.PackageDB] = None
        self._parsed: Dict[Any, Any] = {}  # parsed configurations, once per scan

    def parsed(self, key: Any, load: Callable[[], Any]) -> Any:
        """``load()`` once per scan; an exception it raises is raised again each time."""
        if key not in self._parsed:
            try:
                self._parsed[key] = (True, load())
            except Exception as exc:  # kept to raise for every check that asks
                self._parsed[key] = (False, exc)
        ok, value = self._parsed[key]
        if not ok:
            raise value
        return value

    def package_db(self) -> packages.PackageDB:
        """Loaded once per scan. Raises packages.PackageDBError."""
        if self._package_db is None:
            self._package_db = packages.load(self.fs)
        return self._package_db


# -- helpers ---------------------------------------------------------------------------
def as_list(value: Any) -> List[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def as_bool(value: Any, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def detail(check: Dict[str, Any], target: str, expected: Any, actual: Any, ok: bool,
           **extra: Any) -> Detail:
    result = {"type": check.get("object_type"), "target": target, "expected": expected,
              "actual": actual, "status": GOOD if ok else BAD, "scan_status": "ok"}
    result.update(extra)
    return result


def undetermined(check: Dict[str, Any], target: str, expected: Any, reason: str,
                 **extra: Any) -> Detail:
    result = {"type": check.get("object_type"), "target": target, "expected": expected,
              "actual": None, "status": INDETERMINATE, "scan_status": "error",
              "reason": reason}
    result.update(extra)
    return result


def os_error_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def presence_detail(check: Dict[str, Any], ctx: ScanContext, path: str, expected: Any,
                    present: bool) -> Detail:
    """Whether `path` exists, judged against `present` (indeterminate if it cannot be told)."""
    try:
        found = ctx.fs.exists(path)
    except OSError as exc:
        return undetermined(check, path, expected, os_error_reason(exc))
    return detail(check, path, expected, "present" if found else "absent", found == present)


# -- file content ----------------------------------------------------------------------
def config_values(text: str, item: str, section: str = "", comment: str = "#",
                  delimiter: str = "") -> List[str]:
    """Every value of ``item`` in a key/value configuration text (see the module doc)."""
    section = section.strip().strip("[]").strip()
    in_section = not section
    values = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or (comment and line.startswith(comment)):
            continue
        if line.startswith("[") and line.endswith("]"):
            in_section = not section or line[1:-1].strip() == section
            continue
        if not in_section:
            continue
        if not item:
            return [line]
        if delimiter:
            key, sep, value = line.partition(delimiter)
            if not sep:
                continue
        else:  # whitespace-delimited, as sshd_config and login.defs
            key, value = (line.split(None, 1) + [""])[:2]
        if key.strip().lower() == item.lower():
            values.append(_unquote(value.strip()))
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def check_configuration_file_setting(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    path = str(check.get("config_file_path", ""))
    item = str(check.get("config_item") or "")
    desired = str(check.get("desired_value", ""))
    extra = {"config_key": item}
    sshd_file = os.path.basename(path.rstrip("/")) == "sshd_config" and bool(item)
    flags = re.IGNORECASE if sshd_file and sshd.is_case_insensitive(item) else 0
    try:
        pattern = re.compile(desired, flags)
    except re.error as exc:
        return [undetermined(check, path, desired, "invalid desired_value: %s" % exc, **extra)]
    if sshd_file:
        return [_sshd_setting(check, ctx, path, item, desired, pattern)]
    if item and sysctl.is_sysctl_path(path):
        return [_sysctl_setting(check, ctx, item, desired, pattern)]
    try:
        text = ctx.fs.read_text(path)
    except OSError as exc:
        return [undetermined(check, path, desired, os_error_reason(exc), **extra)]
    values = config_values(text, item, str(check.get("config_file_section") or ""),
                           str(check.get("comment_character", "#") or ""),
                           str(check.get("delimiter") or ""))
    if not values:
        return [detail(check, path, desired, None, False, **extra)]
    ok = all(pattern.fullmatch(value) for value in values)
    return [detail(check, path, desired, ", ".join(values), ok, **extra)]


def _sshd_setting(check: Dict[str, Any], ctx: ScanContext, path: str, item: str,
                  desired: str, pattern: "re.Pattern[str]") -> Detail:
    """The keyword's effective global value in sshd's configuration rooted at ``path``."""
    extra: Dict[str, Any] = {"config_key": item}
    try:
        config = ctx.parsed(("sshd", path), lambda: sshd.load(ctx.fs, path))
    except OSError as exc:
        return undetermined(check, path, desired, os_error_reason(exc), **extra)
    except sshd.SshdConfigError as exc:
        return undetermined(check, path, desired, "sshd would refuse this configuration: %s"
                            % exc, **extra)
    values, source = config.effective(item)
    extra["source"] = source
    match_only = config.match_only(item)
    if match_only:  # other values for some connections: worth knowing, not the global value
        extra["match_blocks"] = match_only
    if not values:
        return detail(check, path, desired, None, False, **extra)
    ok = all(pattern.fullmatch(value) for value in values)
    return detail(check, path, desired, ", ".join(values), ok, **extra)


def _sysctl_setting(check: Dict[str, Any], ctx: ScanContext, item: str, desired: str,
                    pattern: "re.Pattern[str]") -> Detail:
    """The kernel parameter as configured for boot and, on the running host, as it is."""
    key = sysctl.display_key(sysctl.key_path(item))
    config = ctx.parsed("sysctl", lambda: sysctl.load(ctx.fs))
    value, source = config.value(item)
    extra: Dict[str, Any] = {"config_key": item, "source": source}
    if value is None and config.errors:
        return undetermined(check, key, desired, "; ".join(config.errors), **extra)
    ok = value is not None and bool(pattern.fullmatch(value))
    if ctx.live:
        live = sysctl.live_value(ctx.proc_dir, item)
        extra["live_value"] = live
        if live is None:
            extra["live_note"] = "the running kernel has no parameter %s" % key
        elif value is None:
            extra["live_note"] = ("the running kernel has %s = %s; no sysctl file sets it, so "
                                  "the kernel's default applies at boot" % (key, live))
            ok = False  # nothing keeps the value across a reboot (SSG checks both too)
        elif live != value:
            extra["live_note"] = ("the running kernel has %s = %s, the configuration sets %s "
                                  "(applied at the next boot or by sysctl --system)"
                                  % (key, live, value))
            ok = ok and bool(pattern.fullmatch(live))
    return detail(check, key, desired, value, ok, **extra)


def check_file_string_presence(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    raw_pattern = str(check.get("patterns", ""))
    present = as_bool(check.get("present"))
    expected = "present" if present else "absent"
    paths = as_list(check.get("files"))
    extra = {"pattern": raw_pattern}
    try:
        pattern = re.compile(raw_pattern, re.MULTILINE)
    except re.error as exc:
        return [undetermined(check, path, expected, "invalid pattern: %s" % exc, **extra)
                for path in paths]
    results = []
    for path in paths:
        try:
            match = pattern.search(ctx.fs.read_text(path))
        except FileNotFoundError:
            results.append(detail(check, path, expected, "absent (no such file)", not present, **extra))
            continue
        except OSError as exc:
            results.append(undetermined(check, path, expected, os_error_reason(exc), **extra))
            continue
        found = dict(extra, match=match.group(0)[:200]) if match else extra
        results.append(detail(check, path, expected, "present" if match else "absent",
                              bool(match) == present, **found))
    return results


# -- file metadata ---------------------------------------------------------------------
def check_file_presence(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    present = as_bool(check.get("present"))
    expected = "present" if present else "absent"
    results = []
    for path in as_list(check.get("files")):
        results.append(presence_detail(check, ctx, path, expected, present))
    return results


def mode_allowed(mode: int, acl: str) -> bool:
    """Is ``mode`` at most as permissive as ``acl`` (``"644"``, ``"*00"``, ``"1777"``)?"""
    digits = [(mode >> shift) & 0o7 for shift in (9, 6, 3, 0)][-len(acl):]
    for actual, allowed in zip(digits, acl):
        if allowed != "*" and actual & ~int(allowed, 8):
            return False
    return True


def _stat_targets(check: Dict[str, Any], ctx: ScanContext, expected: str, want_dir: bool,
                  judge: Callable[[os.stat_result], Any]) -> List[Detail]:
    """Details for checks on the metadata of each file or directory of the check. With
    ``absent_ok`` (a grid addition), a target that does not exist has nothing to protect:
    not applicable, as OpenSCAP's file_permissions rules judge it (a minimal Debian has no
    /etc/cron.weekly); without it, a missing target stays indeterminate."""
    results = []
    for path in as_list(check.get("files")) + as_list(check.get("folders")):
        try:
            st = ctx.fs.stat(path)
        except FileNotFoundError as exc:
            if as_bool(check.get("absent_ok"), default=False):
                results.append(detail(check, path, expected, None, True, scan_status=NOT_APPLICABLE,
                                      reason="not applicable: %s is absent" % path))
            else:
                results.append(undetermined(check, path, expected, os_error_reason(exc)))
            continue
        except OSError as exc:
            results.append(undetermined(check, path, expected, os_error_reason(exc)))
            continue
        if want_dir != stat.S_ISDIR(st.st_mode):
            kind = "a directory" if want_dir else "not a directory"
            results.append(undetermined(check, path, expected, "expected %s" % kind))
            continue
        actual, ok = judge(st)
        results.append(detail(check, path, expected, actual, ok))
    return results


def _acl_check(want_dir: bool) -> Callable[[Dict[str, Any], ScanContext], List[Detail]]:
    def check_acl(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
        acls = as_list(check.get("acls"))
        bad_acl = [a for a in acls if not re.fullmatch(r"[0-7*]{3,4}", a)]
        if not acls or bad_acl:
            return [undetermined(check, ", ".join(as_list(check.get("files"))),
                                 check.get("acls"), "invalid acls %r" % check.get("acls"))]

        def judge(st: os.stat_result) -> Any:
            width = max(len(a) for a in acls)
            actual = "%0*o" % (width, stat.S_IMODE(st.st_mode) & (0o7777 if width == 4 else 0o777))
            return actual, any(mode_allowed(stat.S_IMODE(st.st_mode), a) for a in acls)

        return _stat_targets(check, ctx, ", ".join(acls), want_dir, judge)

    return check_acl


def _ownership_check(want_dir: bool, by_group: bool) -> Callable[[Dict[str, Any], ScanContext], List[Detail]]:
    def check_ownership(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
        owners = as_list(check.get("owned_by"))
        to_id = ctx.fs.group_id if by_group else ctx.fs.user_id
        to_name = ctx.fs.group_name if by_group else ctx.fs.user_name
        ids = {to_id(name) for name in owners} - {None}

        def judge(st: os.stat_result) -> Any:
            number = st.st_gid if by_group else st.st_uid
            return to_name(number), number in ids

        return _stat_targets(check, ctx, ", ".join(owners), want_dir, judge)

    return check_ownership


# -- live system and packages ----------------------------------------------------------
def check_process_presence(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    present = as_bool(check.get("present"))
    expected = "running" if present else "not running"
    names = as_list(check.get("processes"))
    try:
        running = set().union(*procfs.process_names(ctx.proc_dir).values())
    except OSError as exc:
        return [undetermined(check, name, expected, os_error_reason(exc)) for name in names]
    return [detail(check, name, expected, "running" if name in running else "not running",
                   (name in running) == present) for name in names]


def check_port_process(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    """``ports`` listening (``present``) or not, for ``protocol`` tcp (default) or udp;
    with ``process``, a listener must also belong to a process of that name."""
    protocol = str(check.get("protocol") or "tcp").lower()
    present = as_bool(check.get("present"))
    process = str(check.get("process") or "")
    expected = ("listening" + (" by %s" % process if process else "")) if present else "not listening"
    ports = as_list(check.get("ports"))
    if protocol not in ("tcp", "udp") or not all(p.isdigit() for p in ports):
        return [undetermined(check, "%s/%s" % (p, protocol), expected,
                             "invalid port or protocol") for p in ports]
    try:
        sockets = procfs.listening_sockets(protocol, ctx.proc_dir)
        owners = procfs.socket_owners(ctx.proc_dir) if process else {}
        names = procfs.process_names(ctx.proc_dir) if process else {}
    except OSError as exc:
        return [undetermined(check, "%s/%s" % (p, protocol), expected, os_error_reason(exc))
                for p in ports]
    results = []
    for port in ports:
        inodes = [inode for number, inode in sockets if number == int(port)]
        if process and inodes:
            listeners = sorted({n for inode in inodes for pid in owners.get(inode, ())
                                for n in names.get(pid, ())})
            ok = process in listeners
            actual = "listening by %s" % (", ".join(listeners) or "an unknown process")
        else:
            ok = bool(inodes) == present
            actual = "listening" if inodes else "not listening"
        results.append(detail(check, "%s/%s" % (port, protocol), expected, actual, ok))
    return results


def check_package_presence(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    present = as_bool(check.get("present"))
    expected = "installed" if present else "not installed"
    names = as_list(check.get("packages"))
    try:
        db = ctx.package_db()
    except packages.PackageDBError as exc:
        return [undetermined(check, name, expected, str(exc)) for name in names]
    results = []
    for name in names:
        version = db.version(name)
        actual = "not installed" if version is None else ("installed " + version).strip()
        results.append(detail(check, name, expected, actual, (version is not None) == present))
    return results


# -- accounts and home directories ----------------------------------------------------
def _account_lines(ctx: ScanContext, name: str) -> List[List[str]]:
    """The fields of each entry of ``/etc/<name>``; raises OSError."""
    return [line.split(":") for line in ctx.fs.read_text("/etc/" + name).splitlines()
            if line.strip() and not line.startswith(("#", "+", "-"))]


def select_users(spec: Any, users: List[str]) -> List[str]:
    """``ALL``, ``NOT: a, b`` or ``a, b`` applied to the users in file order."""
    text = ", ".join(as_list(spec)) if isinstance(spec, list) else str(spec or "ALL").strip()
    if not text or text.upper() == "ALL":
        return users
    if text.upper().startswith("NOT:"):
        excluded = set(as_list(text[4:]))
        return [u for u in users if u not in excluded]
    wanted = as_list(text)
    return [u for u in wanted]


def check_user_has_password(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    expected = "a password field that is not empty"
    try:
        passwd = _account_lines(ctx, "passwd")
    except OSError as exc:
        return [undetermined(check, "/etc/passwd", expected, os_error_reason(exc))]
    try:
        shadow = {f[0]: f[1] for f in _account_lines(ctx, "shadow") if len(f) > 1}
    except FileNotFoundError:
        shadow = {}
    except OSError as exc:
        return [undetermined(check, "/etc/shadow", expected, os_error_reason(exc))]
    fields = {f[0]: f[1] for f in passwd if len(f) > 1}
    results = []
    for user in select_users(check.get("users"), list(fields)):
        if user not in fields:
            results.append(detail(check, user, expected, "no such user", True))
            continue
        # "x" in passwd means: see shadow; a user missing from shadow then has none set
        password = shadow.get(user, "" if fields[user] == "x" else fields[user])
        results.append(detail(check, user, expected,
                              "empty" if password == "" else "set or locked", password != ""))
    return [r for r in results if r["status"] != GOOD] or [
        detail(check, "%d users" % len(results), expected, "no empty password field", True)]


def check_home_directory_file_presence(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    present = as_bool(check.get("present"))
    names = as_list(check.get("files"))
    expected = "present" if present else "absent"
    try:
        passwd = _account_lines(ctx, "passwd")
    except OSError as exc:
        return [undetermined(check, "/etc/passwd", expected, os_error_reason(exc))]
    homes = {f[0]: f[5] for f in passwd if len(f) > 5}
    results = []
    selected = select_users(check.get("users"), list(homes))
    for user in selected:
        home = homes.get(user)
        for name in names:
            if not home or home == "/":
                # no home of its own (daemons): nothing can be planted there for the user
                results.append(detail(check, "~%s/%s" % (user, name), expected,
                                      "no home directory", not present))
                continue
            path = home.rstrip("/") + "/" + name.lstrip("/")
            results.append(presence_detail(check, ctx, path, expected, present))
    return [r for r in results if r["status"] != GOOD] or [
        detail(check, "home directories of %d users" % len(selected), expected,
               "%s for every user" % expected, True)]


# filesystems that are not local storage: not walked for world-writable directories
_SKIPPED_FSTYPES = {
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs",
    "tracefs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "binfmt_misc",
    "autofs", "efivarfs", "selinuxfs", "nsfs", "rpc_pipefs", "nfs", "nfs4", "cifs", "smb3",
    "smbfs", "fuse.sshfs", "9p", "ceph", "glusterfs", "overlay_remote",
}
MAX_STICKY_DETAILS = 100


def _skipped_mounts(ctx: ScanContext) -> List[str]:
    """Mount points of the running host not to walk (pseudo and network filesystems)."""
    if not ctx.live:
        return ["/proc", "/sys"]
    skipped = ["/proc", "/sys"]
    try:
        with open(os.path.join(ctx.proc_dir, "mounts"), encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 2 and fields[2] in _SKIPPED_FSTYPES:
                    skipped.append(fields[1].replace("\\040", " "))
    except OSError:
        pass
    return skipped


def check_world_writable_sticky(check: Dict[str, Any], ctx: ScanContext) -> List[Detail]:
    expected = "sticky bit on every world-writable directory"
    excluded = set("/" + p.strip("/") for p in as_list(check.get("exclude_directories")))
    excluded.update(_skipped_mounts(ctx))
    root = ctx.fs.root
    offenders: List[str] = []
    errors: List[str] = []

    def host_path(real: str) -> str:
        rel = os.path.relpath(real, root)
        return "/" if rel == "." else "/" + rel

    for real_dir, subdirs, _files in os.walk(root, onerror=lambda e: errors.append(
            "%s: %s" % (host_path(e.filename or root), e.strerror))):
        keep = []
        for name in subdirs:
            real = os.path.join(real_dir, name)
            path = host_path(real)
            if path in excluded:
                continue
            try:
                st = os.lstat(real)
            except OSError:
                continue
            if not stat.S_ISDIR(st.st_mode):
                continue
            if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
                offenders.append(path)
            keep.append(name)
        subdirs[:] = keep
    if offenders:
        results = [detail(check, path, expected, "world-writable without sticky bit", False)
                   for path in sorted(offenders)[:MAX_STICKY_DETAILS]]
        if len(offenders) > MAX_STICKY_DETAILS:
            results.append(detail(check, "...", expected, "%d more directories"
                                  % (len(offenders) - MAX_STICKY_DETAILS), False))
        return results
    if errors:  # a directory not read may hide one
        return [undetermined(check, "/", expected, "not all directories could be read: %s"
                             % "; ".join(errors[:5]))]
    return [detail(check, "/", expected, "no world-writable directory without sticky bit", True)]


# -- applicability ---------------------------------------------------------------------
def rule_applicability(rule: Dict[str, Any], ctx: ScanContext) -> Optional[List[Detail]]:
    """None when the rule applies (it names no subject, or a subject is present), else
    the rule's only details: ``not_applicable`` (subject absent) or indeterminate
    (the package database could not be read and no listed file exists)."""
    subject = rule.get("applies_to")
    if not isinstance(subject, dict):
        return None
    names = as_list(subject.get("packages"))
    files = as_list(subject.get("files"))
    if not names and not files:
        return None
    check = {"object_type": "applies_to"}
    for path in files:
        try:
            if ctx.fs.exists(path):
                return None
        except OSError as exc:
            return [undetermined(check, path, "present", "cannot tell whether the rule "
                                 "applies: %s" % os_error_reason(exc))]
    if names:
        try:
            db = ctx.package_db()
        except packages.PackageDBError as exc:
            return [undetermined(check, ", ".join(names), "installed", "cannot tell whether the "
                                 "rule applies: %s" % exc)]
        if any(db.version(name) is not None for name in names):
            return None
    absent = ["package %s" % n for n in names] + ["file %s" % f for f in files]
    return [detail(check, ", ".join(names + files), "present", "absent", True,
                   scan_status=NOT_APPLICABLE,
                   reason="not applicable: %s %s absent" % (" and ".join(absent),
                                                            "is" if len(absent) == 1 else "are"))]


def is_not_applicable(finding: Dict[str, Any]) -> bool:
    """A finding of a rule whose subject is absent (see rule_applicability)."""
    details = finding.get("details") or []
    return bool(details) and all(d.get("scan_status") == NOT_APPLICABLE for d in details)


CheckFunction = Callable[[Dict[str, Any], ScanContext], List[Detail]]

CHECKS: Dict[str, CheckFunction] = {
    "configuration_file_setting": check_configuration_file_setting,
    "file_string_presence": check_file_string_presence,
    "file_presence": check_file_presence,
    "file_acl": _acl_check(want_dir=False),
    "directory_acl": _acl_check(want_dir=True),
    "file_user_ownership": _ownership_check(want_dir=False, by_group=False),
    "file_group_ownership": _ownership_check(want_dir=False, by_group=True),
    "directory_user_ownership": _ownership_check(want_dir=True, by_group=False),
    "directory_group_ownership": _ownership_check(want_dir=True, by_group=True),
    "process_presence": check_process_presence,
    "port_process": check_port_process,
    "package_presence": check_package_presence,
    "user_has_password": check_user_has_password,
    "home_directory_file_presence": check_home_directory_file_presence,
    "world_writable_directories_have_sticky_bit_set": check_world_writable_sticky,
}
