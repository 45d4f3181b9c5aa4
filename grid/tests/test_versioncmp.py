"""Version order of dpkg and rpm (halogrid.versioncmp) and OSV range evaluation (svm.py).

The expected answers are the package managers' own: the dpkg cases are what
`dpkg --compare-versions` answers (checked against the system's dpkg when it has one), the
rpm cases come from rpm's own test suite (tests/rpmvercmp.at)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from halogrid.svm import affects, in_range
from halogrid.versioncmp import comparator, dpkg_compare, rpm_compare

DPKG_CASES = [
    # epochs outweigh everything after them; a missing epoch is 0
    ("1:0.1", "9.9", 1), ("0:1.0", "1.0", 0), ("1:9.2p1-2+deb12u3", "9.9p9-9", 1),
    # ~ sorts before anything, even the end of the string
    ("1.0~rc1", "1.0", -1), ("1.0~~", "1.0~", -1), ("1.0~rc1-1", "1.0-1", -1),
    ("3.0.11-1~deb12u2", "3.0.11-1", -1), ("2.0~beta1~git1", "2.0~beta1", -1),
    # revisions: a security update's +debNuM after the revision it patches
    ("1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3", -1), ("2.36-9+deb12u3", "2.36-9", 1),
    ("2.36-9+deb12u10", "2.36-9+deb12u9", 1), ("1.0-1", "1.0-1.1", -1),
    ("1.0", "1.0-0", 0), ("1.0+b1", "1.0", 1),
    # letters sort before non-letters, digits compare as numbers
    ("1.0a", "1.0+", -1), ("1.0a", "1.0", 1), ("1.10", "1.9", 1), ("1.01", "1.1", 0),
]

RPM_CASES = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0.1", "2.0", 1), ("2.0.1a", "2.0.1", 1),
    ("5.5p1", "5.5p2", -1), ("10xyz", "10.1xyz", -1), ("xyz10", "xyz10.1", -1),
    ("xyz.4", "8", -1), ("1b.fc17", "1.fc17", -1), ("1.05", "1.5", 0), ("2_0", "2.0", 0),
    ("a+", "a_", 0), ("6.0.rc1", "6.0", 1), ("10b2", "10a1", 1), ("1.0aa", "1.0a", 1),
    # tilde: before anything
    ("1.0~rc1", "1.0", -1), ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc1~git123", "1.0~rc1", -1),
    # caret: after the version it extends, before any longer one
    ("1.0^", "1.0", 1), ("1.0^git1", "1.0", 1), ("1.0^git1", "1.01", -1),
    ("1.0^20160101", "1.0.1", -1), ("1.0^20160101^git1", "1.0^20160101", 1),
    ("1.0~rc1^git1", "1.0~rc1", 1), ("1.0^git1~pre", "1.0^git1", -1),
    # epoch:version-release
    ("2:8.2.2637-16.el9_0.3", "2:8.2.2637-20.el9_1", -1), ("8.2.2637-21.el9", "1:8.0-1", -1),
    ("0:1.0-1", "1.0-1", 0), ("1.0-1.el9", "1.0-1.el9_1", -1),
]


@pytest.mark.parametrize("a, b, expected", DPKG_CASES)
def test_dpkg_order(a, b, expected):
    assert dpkg_compare(a, b) == expected
    assert dpkg_compare(b, a) == -expected


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="no dpkg on this system")
@pytest.mark.parametrize("a, b, expected", DPKG_CASES)
def test_dpkg_order_is_dpkgs_own(a, b, expected):
    op = {-1: "lt", 0: "eq", 1: "gt"}[expected]
    assert subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0


@pytest.mark.parametrize("a, b, expected", RPM_CASES)
def test_rpm_order(a, b, expected):
    assert rpm_compare(a, b) == expected
    assert rpm_compare(b, a) == -expected


@pytest.mark.parametrize("a", ["", "a b", ":1", "1.0_1"])
def test_a_text_that_is_no_dpkg_version_is_an_error(a):
    with pytest.raises(ValueError):
        dpkg_compare(a, "1.0")


def test_ecosystems_pick_their_package_manager():
    assert comparator("Debian") is dpkg_compare and comparator("Ubuntu") is dpkg_compare
    assert comparator("Rocky Linux") is rpm_compare and comparator("AlmaLinux") is rpm_compare
    with pytest.raises(KeyError):
        comparator("npm")


def ev(*pairs):
    return [{kind: value} for kind, value in pairs]


@pytest.mark.parametrize("version, events, expected", [
    ("1.0-1", ev(("introduced", "0"), ("fixed", "1.0-2")), (True, "1.0-2")),
    ("1.0-2", ev(("introduced", "0"), ("fixed", "1.0-2")), (False, None)),
    ("1.0-2~bpo1", ev(("introduced", "0"), ("fixed", "1.0-2")), (True, "1.0-2")),
    # introduced later than the installed version: not affected
    ("1.0-1", ev(("introduced", "2.0-1"), ("fixed", "2.0-3")), (False, None)),
    ("2.0-2", ev(("introduced", "2.0-1"), ("fixed", "2.0-3")), (True, "2.0-3")),
    # events in any order; two affected stretches
    ("3.0-1", ev(("fixed", "2.0-3"), ("introduced", "3.0-0"), ("introduced", "0"),
                 ("fixed", "3.0-2")), (True, "3.0-2")),
    ("2.5-1", ev(("fixed", "2.0-3"), ("introduced", "3.0-0"), ("introduced", "0"),
                 ("fixed", "3.0-2")), (False, None)),
    # last_affected: that version and below
    ("1.4-1", ev(("introduced", "0"), ("last_affected", "1.4-1")), (True, None)),
    ("1.4-2", ev(("introduced", "0"), ("last_affected", "1.4-1")), (False, None)),
    # no fix yet
    ("9.9-9", ev(("introduced", "0")), (True, None)),
])
def test_osv_range_with_dpkg_order(version, events, expected):
    assert in_range(version, events, dpkg_compare) == expected


def test_explicit_versions_and_several_ranges():
    assert affects("1.2-3", [], ["1.2-3"], dpkg_compare) == (True, None)
    assert affects("1.2-4", [], ["1.2-3"], dpkg_compare) == (False, None)
    ranges = [ev(("introduced", "0"), ("fixed", "1.0-1")),
              ev(("introduced", "2.0-1"), ("fixed", "2.0-5"))]
    assert affects("2.0-4", ranges, [], dpkg_compare) == (True, "2.0-5")
    assert affects("1.5-1", ranges, [], dpkg_compare) == (False, None)
