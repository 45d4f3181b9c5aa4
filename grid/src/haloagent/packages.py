"""Installed packages of the scanned system, read from its dpkg or rpm database.

dpkg: ``var/lib/dpkg/status`` is parsed directly (a few ms for 700 packages).
rpm: the sqlite rpmdb of current distributions (RHEL 9, Fedora 33+) is read with the
``sqlite3`` module: its ``Name`` index table holds one row per installed package. Older
(Berkeley DB) databases are asked through ``rpm --root`` when an ``rpm`` binary exists.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Dict, List, Optional

from .rootfs import RootFS

DPKG_STATUS = "/var/lib/dpkg/status"
RPMDB_SQLITE = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite")
RPMDB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")

# dpkg states in which a package's files are (at least partly) on disk; "not-installed"
# and "config-files" (removed, configuration kept) are the only ones without its programs.
_DPKG_PRESENT_STATES = {
    "installed", "half-installed", "unpacked", "half-configured",
    "triggers-awaited", "triggers-pending",
}


class PackageDBError(Exception):
    """No package database could be read; package checks are then indeterminate."""


class PackageDB:
    """Installed package names (and versions when known) of one system."""

    def __init__(self, kind: str, versions: Dict[str, str]) -> None:
        self.kind = kind  # "dpkg" or "rpm"
        self.versions = versions

    def version(self, name: str) -> Optional[str]:
        """The installed version ("" if unknown), or None when the package is absent."""
        return self.versions.get(name)


def parse_dpkg_status(text: str) -> Dict[str, str]:
    """``{package: version}`` of the packages whose files are present."""
    installed: Dict[str, str] = {}
    # Only three fields matter and the file is large (16,000 lines for 700 packages): look
    # at line starts instead of splitting every field of every stanza.
    name = version = None
    state: List[str] = []
    for line in text.splitlines() + [""]:
        if not line:  # end of a stanza
            if name and len(state) == 3 and state[2] in _DPKG_PRESENT_STATES:
                installed[name] = version or ""
            name = version = None
            state = []
        elif line.startswith("Package:"):
            name = line[8:].strip()
        elif line.startswith("Status:"):
            state = line[7:].split()
        elif line.startswith("Version:"):
            version = line[8:].strip()
    return installed


def _rpm_names_sqlite(path: str) -> Dict[str, str]:
    import sqlite3  # imported here: some minimal Python builds lack it, dpkg hosts never need it

    # read-only URI: never create or lock the database of a running system
    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        rows = conn.execute("SELECT key FROM Name").fetchall()
    finally:
        conn.close()
    return {str(row[0]): "" for row in rows}


def _rpm_names_command(root: str) -> Dict[str, str]:
    output = subprocess.run(
        ["rpm", "--root", root, "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"],
        check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, timeout=120,
    ).stdout
    versions: Dict[str, str] = {}
    for line in output.splitlines():
        name, _, version = line.partition("\t")
        if name:
            versions[name] = version
    return versions


def load(fs: RootFS) -> PackageDB:
    """The package database of the system under ``fs``. Raises PackageDBError."""
    try:
        return PackageDB("dpkg", parse_dpkg_status(fs.read_text(DPKG_STATUS)))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PackageDBError("cannot read %s: %s" % (DPKG_STATUS, exc)) from exc
    for candidate in RPMDB_SQLITE:
        path = fs.resolve(candidate)
        if os.path.isfile(path):
            try:
                return PackageDB("rpm", _rpm_names_sqlite(path))
            except Exception as exc:  # sqlite3.Error or a missing sqlite3 module
                raise PackageDBError("cannot read %s: %s" % (candidate, exc)) from exc
    if any(os.path.isdir(fs.resolve(d)) for d in RPMDB_DIRS):
        if shutil.which("rpm") is None:
            raise PackageDBError("Berkeley DB rpm database and no rpm command to read it")
        try:
            return PackageDB("rpm", _rpm_names_command(fs.root))
        except (OSError, subprocess.SubprocessError) as exc:
            raise PackageDBError("rpm -qa failed: %s" % exc) from exc
    raise PackageDBError("no dpkg or rpm database found")
