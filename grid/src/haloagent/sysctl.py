"""Kernel parameters as the scanned system configures them at boot, and as they are now.

systemd-sysctl (and ``sysctl --system``) read every ``*.conf`` of ``/etc/sysctl.d``,
``/run/sysctl.d``, ``/usr/local/lib/sysctl.d``, ``/usr/lib/sysctl.d`` and ``/lib/sysctl.d``
sorted by file name (a name in an earlier directory hides the same name in a later one; a
link to ``/dev/null`` or an empty file masks it), then ``/etc/sysctl.conf`` (unless one of
those files already was it: Debian's ``99-sysctl.conf`` links to it). The *last* setting of
a parameter wins. Lines are ``key = value``; ``#`` and ``;`` start comments; a leading ``-``
only means "ignore errors"; keys use ``.`` or ``/`` as separator (when the first separator
is ``/``, dots belong to the name); an explicit key wins over a glob (``net.ipv4.conf.*.x``).
"""
from __future__ import annotations

import fnmatch
import os
from typing import Dict, List, Optional, Tuple

from .rootfs import RootFS

SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d",
               "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"


def is_sysctl_path(path: str) -> bool:
    """Does a policy's ``config_file_path`` mean "the sysctl configuration"?"""
    path = "/" + path.strip().strip("/")
    return path == SYSCTL_CONF or path == "/etc/sysctl.d" or path.startswith("/etc/sysctl.d/")


def key_path(key: str) -> str:
    """``net.ipv4.ip_forward`` / ``net/ipv4/ip_forward`` -> ``net/ipv4/ip_forward``."""
    key = key.strip().strip("/.")
    for ch in key:
        if ch == "/":
            return key
        if ch == ".":
            return key.replace(".", "/")
    return key


def display_key(path: str) -> str:
    return path.replace("/", ".") if "." not in path else path


def _masked(fs: RootFS, path: str) -> bool:
    real = fs.resolve(path)
    if real == os.path.join(fs.root, "dev/null"):
        return True
    try:
        return os.path.getsize(real) == 0 and not os.path.isdir(real)
    except OSError:
        return False


def config_files(fs: RootFS) -> List[str]:
    """The host paths read, in order (masked ones left out)."""
    chosen: Dict[str, str] = {}
    for directory in SYSCTL_DIRS:
        try:
            names = os.listdir(fs.resolve(directory))
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf") and name not in chosen:
                chosen[name] = directory + "/" + name
    files = [chosen[name] for name in sorted(chosen) if not _masked(fs, chosen[name])]
    conf_real = fs.resolve(SYSCTL_CONF)
    if fs.exists(SYSCTL_CONF) and not any(fs.resolve(f) == conf_real for f in files):
        files.append(SYSCTL_CONF)
    return files


def parse(text: str) -> List[Tuple[str, str, int]]:
    """(key path, value, line number) of each assignment."""
    out = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip()
        if key.startswith("-"):
            key = key[1:].strip()
        out.append((key_path(key), " ".join(value.split()), number))
    return out


class SysctlConfig:
    def __init__(self) -> None:
        self.explicit: Dict[str, Tuple[str, str]] = {}  # key path -> (value, source)
        self.globs: List[Tuple[str, str, str]] = []  # (pattern, value, source), in order
        self.files: List[str] = []
        self.errors: List[str] = []

    def value(self, key: str) -> Tuple[Optional[str], str]:
        """(configured value or None, where it was set)."""
        path = key_path(key)
        if path in self.explicit:
            return self.explicit[path]
        found: Tuple[Optional[str], str] = (None, "not set in any sysctl configuration file")
        for pattern, value, source in self.globs:
            if fnmatch.fnmatchcase(path, pattern):
                found = (value, source)  # the last matching glob wins
        return found


def load(fs: RootFS) -> SysctlConfig:
    config = SysctlConfig()
    for path in config_files(fs):
        try:
            text = fs.read_text(path)
        except OSError as exc:
            config.errors.append("%s: %s" % (path, exc.strerror or exc))
            continue
        config.files.append(path)
        for key, value, number in parse(text):
            source = "%s line %d" % (path, number)
            if any(c in key for c in "*?["):
                config.globs.append((key, value, source))
            else:
                config.explicit[key] = (value, source)
    return config


def live_value(proc_dir: str, key: str) -> Optional[str]:
    """The running kernel's value (whitespace normalised), None when unreadable."""
    try:
        with open(os.path.join(proc_dir, "sys", key_path(key)), encoding="utf-8",
                  errors="replace") as handle:
            return " ".join(handle.read().split())
    except OSError:
        return None
