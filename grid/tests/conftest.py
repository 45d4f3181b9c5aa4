"""Shared fixtures: real `halogrid serve` subprocesses (see halodev.launchers)."""
from __future__ import annotations

import contextlib
from typing import Any, Dict

import pytest

from gridhelpers import PG_ADMIN_URL, Agent, fresh_pg_database, register
from halodev.launchers import GridProcess, GridAPI


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> GridProcess:
    """One grid per test module (no rate limit), shared by its tests.

    With HALOGRID_TEST_PG_URL set it runs on a fresh PostgreSQL database instead of SQLite.
    """
    with contextlib.ExitStack() as stack:
        opts: Dict[str, Any] = {"rate_limit": 0}
        if PG_ADMIN_URL:
            opts["db"] = stack.enter_context(fresh_pg_database())
        yield stack.enter_context(GridProcess(tmp_path_factory.mktemp("grid"), **opts))


@pytest.fixture(scope="module")
def api(grid) -> GridAPI:
    return grid.api()


@pytest.fixture(scope="module")
def ro_api(grid) -> GridAPI:
    return grid.api(read_only=True)


@pytest.fixture
def make_agent(grid):
    def _make(**kw: Any) -> Agent:
        return register(grid, **kw)
    return _make
