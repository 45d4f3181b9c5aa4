"""Package version order as the package managers themselves define it.

dpkg (Debian, Ubuntu): python-debian's ``debian_support.version_compare``, Debian's own
implementation of dpkg's algorithm (epochs, ``~`` before anything, revisions).
rpm (RHEL, Rocky, AlmaLinux, SUSE, ...): univers' ``rpm.compare_rpm_versions``, a port of
rpm's ``rpmvercmp`` over epoch:version-release (``~`` before anything, ``^`` after the
version it extends but before any longer one).
Both raise ValueError for a text that is no version; callers decide what that means.
"""
from __future__ import annotations

from typing import Callable

from debian.debian_support import version_compare as _dpkg_compare
from univers.rpm import compare_rpm_versions as _rpm_compare

Compare = Callable[[str, str], int]


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def dpkg_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``dpkg --compare-versions a lt|eq|gt b``."""
    try:
        return _sign(_dpkg_compare(a, b))
    except ValueError:
        raise
    except Exception as exc:  # python-debian raises several types for malformed input
        raise ValueError("not a dpkg version: %r or %r (%s)" % (a, b, exc)) from exc


def rpm_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as rpm orders the [epoch:]version[-release] texts ``a`` and ``b``."""
    if not a or not b:
        raise ValueError("an empty rpm version")
    try:
        return _sign(_rpm_compare(a, b))
    except Exception as exc:
        raise ValueError("not an rpm version: %r or %r (%s)" % (a, b, exc)) from exc


# OSV ecosystems (the part before the first ':') and the order their versions follow;
# language ecosystems (npm, PyPI, ...) are not installed by the system's package manager.
DPKG_ECOSYSTEMS = frozenset(("Debian", "Ubuntu"))
RPM_ECOSYSTEMS = frozenset(("Red Hat", "AlmaLinux", "Rocky Linux", "openSUSE", "SUSE",
                            "Mageia", "openEuler", "Azure Linux", "CBL-Mariner"))


def comparator(ecosystem: str) -> Compare:
    if ecosystem in DPKG_ECOSYSTEMS:
        return dpkg_compare
    if ecosystem in RPM_ECOSYSTEMS:
        return rpm_compare
    raise KeyError(ecosystem)
