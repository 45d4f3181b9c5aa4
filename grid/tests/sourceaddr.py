"""HTTP calls to a loopback grid from another loopback address (127.0.0.2, ...): the grid sees
a different client address, as it would a different host."""
from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import urllib.parse
from typing import Any, Dict, Iterator, Optional, Tuple

import sqlalchemy

from gridhelpers import PG_ADMIN_URL, fresh_pg_database


class Answer:
    def __init__(self, status: int, body: Any, headers: Dict[str, str]) -> None:
        self.status_code, self.body, self.headers = status, body, headers

    def json(self) -> Any:
        return self.body


def call(url: str, method: str = "GET", source: str = "127.0.0.1",
         headers: Optional[Dict[str, str]] = None, body: Any = None) -> Answer:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30, source_address=(source, 0))
    try:
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=data,
                     headers=hdrs)
        r = conn.getresponse()
        raw = r.read()
        return Answer(r.status, json.loads(raw) if raw else None,
                      {k.lower(): v for k, v in r.getheaders()})
    finally:
        conn.close()


def token_request(grid_url: str, key_id: str, secret: str, source: str = "127.0.0.1"
                  ) -> Answer:
    basic = base64.b64encode(("%s:%s" % (key_id, secret)).encode()).decode()
    return call(grid_url + "/oauth/access_token?grant_type=client_credentials", "POST",
                source, {"Authorization": "Basic " + basic})


def bearer(token: str) -> Dict[str, str]:
    return {"Authorization": "Bearer " + token}


@contextlib.contextmanager
def grid_db(tmp_path) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(db, GridProcess options): a fresh PostgreSQL database with HALOGRID_TEST_PG_URL set,
    else an SQLite file under tmp_path."""
    if PG_ADMIN_URL:
        with fresh_pg_database() as url:
            yield url, {"db": url}
    else:
        path = os.path.join(str(tmp_path), "grid.db")
        yield path, {"db": path}


def engine_of(db: str) -> sqlalchemy.engine.Engine:
    """An engine on the grid's database (to play an operator or the passing of time)."""
    from halogrid.db import db_url
    return sqlalchemy.create_engine(db_url(db))
