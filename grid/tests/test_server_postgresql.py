"""The grid on PostgreSQL (opt-in: set HALOGRID_TEST_PG_URL to an admin URL such as
postgresql+psycopg://postgres@127.0.0.1:5432/postgres; each test makes and drops its own DB).

With that variable set, the module-scoped `grid` fixture of every other test module runs on
PostgreSQL as well."""
from __future__ import annotations

import os

import pytest

from gridhelpers import fresh_pg_database, register, run_scan
from halodev.launchers import GridProcess

ADMIN_URL = os.environ.get("HALOGRID_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not ADMIN_URL, reason="HALOGRID_TEST_PG_URL is not set")


@pytest.fixture
def pg_url():
    pytest.importorskip("psycopg")
    with fresh_pg_database() as url:
        yield url


def test_flow_on_postgresql(tmp_path, pg_url):
    with GridProcess(tmp_path, db=pg_url, rate_limit=0) as g:
        api = g.api()
        pol = api.ok("POST", "/v2/policies", {"policy": {"name": "pg", "rules": []}})["policy"]
        grp = api.create_group("PgDirty", tag="PgDirty", policy_ids=[pol["id"]])
        a = register(g, tag="PgDirty", ip="198.18.0.5")
        assert a.group_id == grp["id"]
        run_scan(api, a, [{"rule_name": "r", "critical": True, "status": "bad", "details": []}])
        queued = api.scan(a.server_id)
        g.restart()
        sc = api.ok("GET", "/v1/servers/%s/sca" % a.server_id)["scan"]
        assert sc["status"] == "completed_with_errors" and sc["critical_findings_count"] == 1
        assert [c["id"] for c in a.poll(wait=5).json()["commands"]] == [queued["id"]]
        assert api.ok("GET", "/v1/events", params={"type": "server_registered"})["count"] == 1
        assert api.ok("GET", "/v1/servers", params={"group_id": grp["id"]})["count"] == 1
