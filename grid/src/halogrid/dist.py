"""The agent as a zipapp, built once from the installed `haloagent` package."""
from __future__ import annotations

import importlib.util
import io
import os
import shutil
import tempfile
import threading
import zipapp
from typing import Optional

_lock = threading.Lock()
_cache: Optional[bytes] = None

MAIN = "import sys\nfrom haloagent.cli import main\nsys.exit(main())\n"


def build_pyz() -> Optional[bytes]:
    spec = importlib.util.find_spec("haloagent")
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg_dir = list(spec.submodule_search_locations)[0]
    with tempfile.TemporaryDirectory(prefix="haloagent-pyz-") as tmp:
        shutil.copytree(pkg_dir, os.path.join(tmp, "haloagent"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
        with open(os.path.join(tmp, "__main__.py"), "w", encoding="utf-8") as fh:
            fh.write(MAIN)
        buf = io.BytesIO()
        zipapp.create_archive(tmp, target=buf, interpreter="/usr/bin/env python3",
                              compressed=True)
        return buf.getvalue()


def agent_pyz() -> Optional[bytes]:
    global _cache
    with _lock:
        if _cache is None:
            _cache = build_pyz()
        return _cache
