"""The cloudpassage.halo.halo_events event source: its cursor (no event handed over twice or
skipped, across pages, equal timestamps, late commits and restarts), its backoff, and its
use of the collection's client. The API is an in-memory fake of ``GET /v1/events`` (and one
test goes through the real client against the scripted HTTP API of conftest.py)."""

import asyncio
import datetime
import json

import pytest

# ansible-rulebook loads the source from the collection; here the collection is importable
# (pytest.ini's pythonpath, or ansible-test's collection loader).
from ansible_collections.cloudpassage.halo.extensions.eda.plugins.event_source import halo_events as he

halo_api = he.halo_api
T0 = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def at(ms):
    return he.format_time(T0 + datetime.timedelta(milliseconds=ms))


class FakeEvents:
    """``GET /v1/events`` over a list: ``since`` (inclusive), ``type``, ``sort_by``, offset
    paging with ``pagination.next``, as the grid answers. ``fail`` holds errors to raise
    on the next calls."""

    def __init__(self):
        self.events = []
        self.scans = {}
        self.fail = []
        self.calls = []
        self.retry_after = None

    def add(self, ms, type_="server_registered", **fields):
        event = dict({"id": "e%03d" % (len(self.events) + 1), "created_at": at(ms), "type": type_}, **fields)
        event["_seq"] = len(self.events)
        self.events.append(event)
        return event["id"]

    def get(self, path, params=None):
        assert path == "/v1/events"
        params = dict(params or {})
        self.calls.append(params)
        if self.fail:
            error = self.fail.pop(0)
            self.retry_after = getattr(error, "retry_after", None)
            raise error
        rows = sorted(self.events, key=lambda e: (e["created_at"], e["_seq"]),
                      reverse=params.get("sort_by") == "created_at.desc")
        if params.get("since"):
            since = he.parse_time(params["since"])
            rows = [e for e in rows if he.parse_time(e["created_at"]) >= since]
        if params.get("type"):
            rows = [e for e in rows if e["type"] in params["type"].split(",")]
        page, per_page = int(params.get("page", 1)), int(params.get("per_page", 10))
        chunk = rows[(page - 1) * per_page:page * per_page]
        pagination = {"next": "http://grid/v1/events?page=%d" % (page + 1)} if page * per_page < len(rows) else {}
        return {"events": [dict((k, v) for k, v in e.items() if k != "_seq") for e in chunk],
                "count": len(rows), "pagination": pagination}

    def get_scan(self, scan_id):
        return self.scans.get(scan_id)


class Collect:
    """A queue that keeps the ids handed over."""

    def __init__(self):
        self.items = []

    async def put(self, item):
        self.items.append(item)

    def ids(self):
        return [item["halo"]["id"] for item in self.items]


async def no_sleep(seconds):
    no_sleep.waits.append(seconds)


def reader(api, queue, **options):
    no_sleep.waits = []
    options.setdefault("start", "earliest")
    return he.EventReader(api, queue, sleep=no_sleep, **options)


def run(coro):
    return asyncio.run(coro)


async def poll(r, times=1):
    await r.open_cursor()
    for dummy in range(times):
        await r.poll()


def test_events_of_one_millisecond_split_across_polls_are_each_handed_over_once():
    api, queue = FakeEvents(), Collect()
    api.add(0), api.add(5), api.add(5)
    r = reader(api, queue, lookback=0)
    run(poll(r))
    api.add(5), api.add(5), api.add(6)  # same millisecond as the cursor, after it was read
    run(poll(r, times=2))
    assert queue.ids() == ["e001", "e002", "e003", "e004", "e005", "e006"]


def test_every_page_is_read_and_full_pages_of_seen_events_do_not_stall_the_cursor():
    api, queue = FakeEvents(), Collect()
    for dummy in range(7):
        api.add(10)  # more events of one millisecond than a page holds
    r = reader(api, queue, per_page=3, lookback=0)
    run(poll(r))
    for ms in range(10, 15):
        api.add(ms)
    run(poll(r))  # since=10: two full pages of events already seen, then the new ones
    assert queue.ids() == ["e%03d" % n for n in range(1, 13)]


def test_an_event_stored_late_inside_the_lookback_is_handed_over_once_and_an_older_one_never():
    api, queue = FakeEvents(), Collect()
    api.add(1000), api.add(3000)
    r = reader(api, queue, lookback=5)
    run(poll(r))
    late = api.add(2500)  # committed after the event of 3000 was read, stamped before it
    too_late = api.add(-9000)  # older than the window: before the cursor's time
    run(poll(r, times=2))
    assert queue.ids() == ["e001", "e002", late]
    assert too_late not in queue.ids()
    # the window re-read each poll is bounded: seen holds only the last lookback seconds
    api.add(60000)
    run(poll(r))
    assert set(r.cursor.seen) == {"e005"}


@pytest.mark.parametrize("stop_after", [0, 1, 2, 3, 4])
def test_a_restart_with_the_state_file_neither_repeats_nor_skips(tmp_path, stop_after):
    state = str(tmp_path / "state.json")
    api = FakeEvents()
    for ms in (0, 7, 7, 7, 9):
        api.add(ms)

    class StopAfter(Collect):
        async def put(self, item):
            if len(self.items) == stop_after:
                raise asyncio.CancelledError  # the rulebook cancels its source mid-stream
            self.items.append(item)

    first = StopAfter()
    with pytest.raises(asyncio.CancelledError):
        run(poll(reader(api, first, state_file=state, per_page=2, lookback=0)))
    api.add(9), api.add(12)  # stored while the source was down (9: maybe the cursor's millisecond)
    second = Collect()
    run(poll(reader(api, second, state_file=state, per_page=2, lookback=0), times=2))
    assert first.ids() + second.ids() == ["e%03d" % n for n in range(1, 8)]


def test_the_state_file_is_json_and_a_reloaded_cursor_keeps_the_exact_times(tmp_path):
    state = tmp_path / "state.json"
    api, queue = FakeEvents(), Collect()
    api.add(1), api.add(2)
    run(poll(reader(api, queue, state_file=str(state), lookback=3)))
    data = json.loads(state.read_text())
    assert data["version"] == 1 and data["since"] == at(2) and set(data["seen"]) == {"e001", "e002"}
    cursor = he.Cursor.load(str(state), lookback=3)
    assert cursor.since == T0 + datetime.timedelta(milliseconds=2)
    assert cursor.query_since() == he.format_time(T0 + datetime.timedelta(milliseconds=2) - datetime.timedelta(seconds=3))


def test_a_broken_state_file_stops_the_source_with_its_path(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{not json")
    with pytest.raises(ValueError, match="state.json is not valid JSON"):
        run(poll(reader(FakeEvents(), Collect(), state_file=str(state))))


def test_start_latest_hands_over_only_what_comes_after_the_start(tmp_path):
    api, queue = FakeEvents(), Collect()
    api.add(0), api.add(4), api.add(4)
    r = reader(api, queue, start="latest", lookback=10, state_file=str(tmp_path / "s.json"))
    run(poll(r))
    assert queue.ids() == []
    assert (tmp_path / "s.json").exists()  # saved at once: a restart goes on from here
    api.add(4), api.add(8)
    run(poll(r))
    assert queue.ids() == ["e004", "e005"]


def test_start_at_a_time_and_types_are_asked_of_the_api():
    api, queue = FakeEvents(), Collect()
    api.add(0), api.add(1000, "scan_completed"), api.add(2000, "group_created"), api.add(3000)
    run(poll(reader(api, queue, start=at(1000), types=["server_registered", "scan_completed"],
                    scan_details=False)))
    assert queue.ids() == ["e002", "e004"]
    assert api.calls[-1]["type"] == "server_registered,scan_completed"


def test_scan_events_carry_the_scan_verdict_without_its_findings():
    api, queue = FakeEvents(), Collect()
    api.add(0, "scan_completed", object_id="sc1", server_id="s1")
    api.scans["sc1"] = {"id": "sc1", "module": "sca", "status": "completed_with_errors", "server_id": "s1",
                        "critical_findings_count": 1, "non_critical_findings_count": 0,
                        "ok_findings_count": 9, "findings": [{"id": "f"}] * 10}
    run(poll(reader(api, queue)))
    scan = queue.items[0]["halo"]["scan"]
    assert scan["status"] == "completed_with_errors" and scan["critical_findings_count"] == 1
    assert "findings" not in scan


def test_a_rate_limit_is_waited_out_for_its_retry_after_and_errors_back_off_growing():
    api, queue = FakeEvents(), Collect()
    api.add(0)
    limited = halo_api.HaloAPIError("GET", "/v1/events", 429, "Rate limit exceeded")
    limited.retry_after = 7.0
    down = [halo_api.HaloClientError("cannot reach the Halo API") for dummy in range(4)]
    api.fail = [limited, halo_api.HaloAPIError("GET", "/v1/events", 503, "busy")] + down
    r = reader(api, queue, max_backoff=6)
    run(poll(r))
    assert queue.ids() == ["e001"]
    waits = no_sleep.waits
    assert waits[0] == 6  # Retry-After 7, capped by max_backoff
    assert all(0.5 <= w <= 6 for w in waits[1:]) and waits[-1] > waits[1]
    assert r.failures == 0  # a success starts the backoff over


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_refused_key_or_query_ends_the_source_instead_of_retrying(status):
    api = FakeEvents()
    api.fail = [halo_api.HaloAPIError("GET", "/v1/events", status, "no")]
    with pytest.raises(halo_api.HaloAPIError):
        run(poll(reader(api, Collect())))
    assert no_sleep.waits == []


def test_a_source_cancelled_while_the_queue_is_full_records_nothing_it_did_not_hand_over(tmp_path):
    state = str(tmp_path / "state.json")
    api = FakeEvents()
    api.add(0), api.add(1)

    async def cancelled_on_a_full_queue():
        queue = asyncio.Queue(maxsize=1)
        task = asyncio.ensure_future(poll(reader(api, queue, state_file=state, lookback=0)))
        while queue.qsize() < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the second put is waiting for room
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return [queue.get_nowait()["halo"]["id"]]

    handed = run(cancelled_on_a_full_queue())
    later = Collect()
    run(poll(reader(api, later, state_file=state, lookback=0)))
    assert handed + later.ids() == ["e001", "e002"]


def test_the_collections_client_is_used_and_a_real_429_retry_after_header_reaches_the_backoff(fake_halo, monkeypatch):
    monkeypatch.setenv("HALO_API_HOST", fake_halo.url)
    monkeypatch.setenv("HALO_API_KEY", "key-id")
    monkeypatch.setenv("HALO_API_SECRET_KEY", "s3cret")
    event = {"id": "e1", "created_at": at(0), "type": "server_registered"}
    fake_halo.on("GET", "/v1/events", (429, {"error": "Rate limit exceeded"}, {"Retry-After": "3"}),
                 (200, {"events": [event], "count": 1, "pagination": {}}))
    queue = Collect()
    r = he.reader_from_args(queue, {"start": "earliest", "max_backoff": 60})
    r.sleep = no_sleep
    no_sleep.waits = []
    assert isinstance(r.client, halo_api.HaloClient)
    run(poll(r))
    assert queue.ids() == ["e1"] and no_sleep.waits == [3.0]
    assert len(fake_halo.calls("GET", "/v1/events")) == 2  # the client itself did not retry


def test_missing_credentials_name_the_environment_variable(monkeypatch):
    monkeypatch.delenv("HALO_API_KEY", raising=False)
    monkeypatch.delenv("HALO_API_SECRET_KEY", raising=False)
    with pytest.raises(ValueError, match="HALO_API_KEY"):
        he.make_client({"api_host": "http://127.0.0.1:9"})
