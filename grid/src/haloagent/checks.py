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
  "4 or less"); an item set several times must match every time; an item that is not set
  is bad. The item name is compared case-insensitively (sshd keywords are), the value is
  not. Only whole-line comments are comments. ``Include`` directives are not followed. An
  empty ``config_item`` means the file's first meaningful line is the value (the template
  uses this for ``/proc/sys/...`` files);
* ``file_acl`` / ``directory_acl``: ``acls`` like ``644`` or ``*00`` is the most
  permissive mode allowed: each digit of the actual mode may only hold bits that the digit
  holds (``600`` passes ``644``), ``*`` allows anything. Several alternatives may be given
  comma-separated. A missing target is indeterminate;
* ownership checks: ``owned_by`` may list several acceptable names (Debian's
  ``/etc/shadow`` belongs to group ``shadow``, RHEL's to ``root``);
* ``file_string_presence``: ``patterns`` is one regular expression, searched line by line
  (``^`` and ``$`` anchor lines); a missing file contains nothing.
"""
from __future__ import annotations

import os
import re
import stat
from typing import Any, Callable, Dict, List, Optional

from . import packages, procfs
from .rootfs import RootFS

Detail = Dict[str, Any]
GOOD, BAD, INDETERMINATE = "good", "bad", "indeterminate"


class ScanContext:
    """What checks read: the scanned system's files, its package database, /proc."""

    def __init__(self, root: str = "/", proc_dir: str = "/proc") -> None:
        self.fs = RootFS(root)
        self.proc_dir = proc_dir
        self._package_db: Optional[packages.PackageDB] = None

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
    try:
        pattern = re.compile(desired)
    except re.error as exc:
        return [undetermined(check, path, desired, "invalid desired_value: %s" % exc, **extra)]
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
        try:
            found = ctx.fs.exists(path)
        except OSError as exc:
            results.append(undetermined(check, path, expected, os_error_reason(exc)))
            continue
        results.append(detail(check, path, expected, "present" if found else "absent",
                              found == present))
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
    """Details for checks on the metadata of each file or directory of the check."""
    results = []
    for path in as_list(check.get("files")) + as_list(check.get("folders")):
        try:
            st = ctx.fs.stat(path)
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
}
