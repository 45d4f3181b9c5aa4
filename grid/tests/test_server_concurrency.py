"""Many API calls at once against a real grid process."""
import http.client
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from gridhelpers import unique


def test_more_concurrent_calls_than_worker_threads_all_complete(grid, api):
    """Sync routes and the commit of their session share one thread pool (40 threads). With
    fewer pooled connections than threads, 40 routes waited for a connection while the
    sessions holding the connections waited for a thread to commit: every call stalled until
    the pool's 30 s timeout and then failed with 500."""
    api.authenticate()
    headers = {"Authorization": "Bearer " + api.token}

    def call(_):
        return requests.get(grid.url + "/v1/groups", headers=headers, timeout=60,
                            verify=False).status_code

    with ThreadPoolExecutor(max_workers=120) as pool:
        statuses = list(pool.map(call, range(480)))
    assert statuses.count(200) == len(statuses), sorted(set(statuses))


def test_more_concurrent_writes_than_worker_threads_all_complete(grid, api):
    """A route's transaction was committed only after FastAPI had validated its response in
    the worker-thread pool: the transaction held SQLite's write lock while it waited for a
    thread, and the 40 threads waited for that lock. Writes stalled for the 30 s busy timeout
    and failed with 500 "database is locked" (an admission of 100 servers never ended)."""
    api.authenticate()
    headers = {"Authorization": "Bearer " + api.token}
    prefix = unique("burst")
    before = api.ok("GET", "/v1/groups")["count"]

    def create(n):
        return requests.post(grid.url + "/v1/groups", headers=headers, timeout=120, verify=False,
                             json={"group": {"name": "%s-%d" % (prefix, n)}}).status_code

    with ThreadPoolExecutor(max_workers=120) as pool:
        statuses = list(pool.map(create, range(480)))
    assert statuses.count(201) == len(statuses), sorted(set(statuses))
    after = api.ok("GET", "/v1/groups")["count"]
    assert after - before == 480


def test_an_idle_keep_alive_connection_outlives_a_five_second_poll_interval(grid):
    """The EDA event source reads events every 5 s on one kept-alive connection; the grid
    closed idle connections after uvicorn's default 5 s, just as the source reused them, and
    the source logged "connection reset" and backed off."""
    url = urlsplit(grid.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        for idle in (0, 6):  # the second call after idling longer than the old timeout
            time.sleep(idle)
            conn.request("GET", "/healthz")
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200
    finally:
        conn.close()
