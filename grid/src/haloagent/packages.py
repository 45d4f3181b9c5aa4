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
from typing import Any, Dict, List, Optional, Tuple

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


# -- the inventory of an svm scan: every installed package with its version --------------
Package = Dict[str, Optional[str]]


def parse_dpkg_inventory(text: str) -> List[Package]:
    """Installed packages of a dpkg status file: name, version, architecture and, when the
    stanza has a ``Source:`` field, the source package (and its version when it differs,
    ``Source: glibc (2.36-9+deb12u3)`` for a binNMU): Debian's advisories name the source."""
    out: List[Package] = []
    fields: Dict[str, str] = {}
    for line in text.splitlines() + [""]:
        if not line:
            state = fields.get("Status", "").split()
            if fields.get("Package") and len(state) == 3 and state[2] in _DPKG_PRESENT_STATES:
                source, _, rest = fields.get("Source", "").partition(" ")
                source_version = rest.strip().strip("()").strip() or None
                out.append({"name": fields["Package"], "version": fields.get("Version", ""),
                            "architecture": fields.get("Architecture") or None,
                            "source": source or None, "source_version": source_version})
            fields = {}
        elif line[0] not in " \t":
            key, _, value = line.partition(":")
            if key in ("Package", "Status", "Version", "Architecture", "Source"):
                fields[key] = value.strip()
    return out


# rpm header tags and types (rpm's rpmtag.h)
_RPMTAG = {1000: "name", 1001: "version", 1002: "release", 1003: "epoch", 1022: "arch",
           1044: "sourcerpm"}
_RPM_INT32, _RPM_STRING = 4, 6


def parse_rpm_header(blob: bytes) -> Dict[str, Any]:
    """The fields above from one header blob of an rpmdb (index entries, then data)."""
    import struct

    count, size = struct.unpack(">II", blob[:8])
    data_start = 8 + 16 * count
    if data_start + size > len(blob):
        raise ValueError("truncated rpm header")
    out: Dict[str, Any] = {}
    for i in range(count):
        tag, kind, offset, _n = struct.unpack(">iIiI", blob[8 + 16 * i:24 + 16 * i])
        name = _RPMTAG.get(tag)
        if name is None or not 0 <= offset < size:
            continue
        at = data_start + offset
        if kind == _RPM_INT32:
            out[name] = struct.unpack(">i", blob[at:at + 4])[0]
        elif kind == _RPM_STRING:
            out[name] = blob[at:blob.index(b"\0", at)].decode("utf-8", "replace")
    return out


def _rpm_package(fields: Dict[str, Any]) -> Package:
    evr = "%s-%s" % (fields.get("version", ""), fields.get("release", ""))
    if fields.get("epoch") not in (None, "", "(none)", 0, "0"):
        evr = "%s:%s" % (fields["epoch"], evr)
    source = fields.get("sourcerpm") or ""
    if source.endswith(".src.rpm"):  # openssh-8.7p1-38.el9.src.rpm -> openssh
        source = source[:-len(".src.rpm")].rsplit("-", 2)[0]
    return {"name": fields.get("name", ""), "version": evr,
            "architecture": fields.get("arch") or None, "source": source or None,
            "source_version": None}


def _rpm_inventory_sqlite(path: str) -> List[Package]:
    import sqlite3

    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "Packages" not in tables:
            raise PackageDBError("%s holds no package headers (no Packages table)" % path)
        blobs = [row[0] for row in conn.execute("SELECT blob FROM Packages")]
    finally:
        conn.close()
    return [_rpm_package(parse_rpm_header(bytes(blob))) for blob in blobs]


def _rpm_inventory_command(root: str) -> List[Package]:
    output = subprocess.run(
        ["rpm", "--root", root, "-qa", "--qf",
         "%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n"],
        check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, timeout=120,
    ).stdout
    out = []
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) == 6 and parts[0]:
            out.append(_rpm_package(dict(zip(("name", "epoch", "version", "release", "arch",
                                              "sourcerpm"), parts))))
    return out


def inventory(fs: RootFS) -> Tuple[str, List[Package]]:
    """("dpkg" or "rpm", every installed package with its version). Raises PackageDBError."""
    try:
        return "dpkg", parse_dpkg_inventory(fs.read_text(DPKG_STATUS))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PackageDBError("cannot read %s: %s" % (DPKG_STATUS, exc)) from exc
    if any(os.path.isdir(fs.resolve(d)) for d in RPMDB_DIRS) and shutil.which("rpm"):
        try:
            return "rpm", _rpm_inventory_command(fs.root)
        except (OSError, subprocess.SubprocessError) as exc:
            raise PackageDBError("rpm -qa failed: %s" % exc) from exc
    for candidate in RPMDB_SQLITE:
        path = fs.resolve(candidate)
        if os.path.isfile(path):
            try:
                return "rpm", _rpm_inventory_sqlite(path)
            except PackageDBError:
                raise
            except Exception as exc:  # sqlite3.Error, a malformed header
                raise PackageDBError("cannot read %s: %s" % (candidate, exc)) from exc
    raise PackageDBError("no dpkg or rpm database with package versions found")
