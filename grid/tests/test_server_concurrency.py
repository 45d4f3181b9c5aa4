"""Many API calls at once against a real grid process."""
from concurrent.futures import ThreadPoolExecutor

import requests


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
