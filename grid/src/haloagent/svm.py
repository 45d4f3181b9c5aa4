"""The software vulnerability scan (svm): the agent reports what is installed; the grid
matches it against its vulnerability feed (halogrid/svm.py, PROTOCOL.md)."""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict

from . import hostinfo, packages
from .rootfs import RootFS

log = logging.getLogger(__name__)

COMMANDS = ("svm", "sva")  # sva is Halo's older name of the module


def scan_result(root: str, now: Callable[[], str]) -> Dict[str, Any]:
    """The command result of an svm scan: ``completed`` with the packages, or ``failed``
    with the reason when no package database can be read."""
    started = now()
    fs = RootFS(root)
    try:
        kind, installed = packages.inventory(fs)
    except packages.PackageDBError as exc:
        log.warning("svm scan: %s", exc)
        return {"status": "failed", "result": "svm scan: %s" % exc}
    except Exception as exc:  # a bug or an unforeseen database: report, keep the agent up
        log.exception("svm scan failed")
        return {"status": "failed", "result": "svm scan failed: %s" % exc}
    release = hostinfo.os_release(fs)
    log.info("svm scan done: %d %s packages", len(installed), kind)
    return {"status": "completed", "scan": {
        "module": "svm", "agent_started_at": started, "agent_completed_at": now(),
        "package_manager": kind, "platform": release.get("ID", "linux"),
        "platform_version": release.get("VERSION_ID", ""), "packages": installed}}
