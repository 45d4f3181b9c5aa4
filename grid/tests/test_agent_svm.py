"""The agent's side of an svm scan: the package inventory from dpkg's status file and from
an rpm database, and the command result it sends (haloagent.svm)."""
from __future__ import annotations

import os
import sqlite3
import struct

import pytest

from haloagent import packages
from haloagent.rootfs import RootFS
from haloagent.svm import scan_result

STATUS = """\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc (2.36-9+deb12u3)
Version: 2.36-9+deb12u3+b1
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 Package: a-continuation-line-is-no-field

Package: openssh-server
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u2
Conffiles:
 /etc/ssh/moduli 7d4d4a8e3ef3d8a8d3b7c0c2f0f2b8a1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2

Package: telnetd
Status: deinstall ok config-files
Architecture: amd64
Version: 0.17-44
"""


def test_dpkg_inventory_has_versions_architectures_and_sources():
    assert packages.parse_dpkg_inventory(STATUS) == [
        {"name": "libc6", "version": "2.36-9+deb12u3+b1", "architecture": "amd64",
         "source": "glibc", "source_version": "2.36-9+deb12u3"},
        {"name": "openssh-server", "version": "1:9.2p1-2+deb12u2", "architecture": "amd64",
         "source": "openssh", "source_version": None},
        {"name": "bash", "version": "5.2.15-2+b2", "architecture": "amd64", "source": None,
         "source_version": None},
    ]


def rpm_header(**fields) -> bytes:
    """An rpm header blob as an rpmdb stores it: index entries, then the data."""
    tags = {"name": (1000, 6), "version": (1001, 6), "release": (1002, 6),
            "epoch": (1003, 4), "arch": (1022, 6), "sourcerpm": (1044, 6)}
    index, data = b"", b""
    for name, value in fields.items():
        tag, kind = tags[name]
        if kind == 4:
            while len(data) % 4:
                data += b"\0"
            raw = struct.pack(">i", value)
        else:
            raw = value.encode() + b"\0"
        index += struct.pack(">iIiI", tag, kind, len(data), 1)
        data += raw
    return struct.pack(">II", len(fields), len(data)) + index + data


def write_rpmdb(root, blobs, with_packages=True):
    path = os.path.join(str(root), "var/lib/rpm/rpmdb.sqlite")
    os.makedirs(os.path.dirname(path))
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE Name (key TEXT, hnum INTEGER, idx INTEGER)")
        if with_packages:
            conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)")
            conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    conn.close()


def test_rpm_inventory_from_the_sqlite_database(tmp_path, monkeypatch):
    monkeypatch.setattr(packages.shutil, "which", lambda name: None)  # no rpm command
    write_rpmdb(tmp_path, [
        rpm_header(name="vim-minimal", epoch=2, version="8.2.2637", release="20.el9_1",
                   arch="x86_64", sourcerpm="vim-8.2.2637-20.el9_1.src.rpm"),
        rpm_header(name="bash", version="5.1.8", release="6.el9_1", arch="x86_64",
                   sourcerpm="bash-5.1.8-6.el9_1.src.rpm"),
    ])
    kind, found = packages.inventory(RootFS(str(tmp_path)))
    assert kind == "rpm"
    assert found == [
        {"name": "vim-minimal", "version": "2:8.2.2637-20.el9_1", "architecture": "x86_64",
         "source": "vim", "source_version": None},
        {"name": "bash", "version": "5.1.8-6.el9_1", "architecture": "x86_64",
         "source": "bash", "source_version": None},
    ]


def test_an_rpmdb_without_headers_cannot_give_versions(tmp_path, monkeypatch):
    monkeypatch.setattr(packages.shutil, "which", lambda name: None)
    write_rpmdb(tmp_path, [], with_packages=False)
    with pytest.raises(packages.PackageDBError, match="no package headers"):
        packages.inventory(RootFS(str(tmp_path)))


def test_scan_result_of_a_debian_tree(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(STATUS)
    result = scan_result(str(tmp_path), lambda: "2026-01-01T00:00:00.000000Z")
    assert result["status"] == "completed"
    scan = result["scan"]
    assert (scan["module"], scan["package_manager"], scan["platform"],
            scan["platform_version"]) == ("svm", "dpkg", "debian", "12")
    assert [p["name"] for p in scan["packages"]] == ["libc6", "openssh-server", "bash"]


def test_scan_result_without_a_package_database_fails_with_the_reason(tmp_path):
    result = scan_result(str(tmp_path), lambda: "2026-01-01T00:00:00.000000Z")
    assert result == {"status": "failed",
                      "result": "svm scan: no dpkg or rpm database with package versions found"}
