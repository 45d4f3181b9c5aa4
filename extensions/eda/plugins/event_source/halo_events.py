# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-rulebook event source: Halo events (``GET /v1/events``) read from a cursor.

Each event is put on the rulebook's queue once: the cursor (the newest ``created_at``
handed over and the ids handed over in the ``lookback`` seconds before it) is written to
``state_file`` after every event, so a restarted rulebook goes on where it stopped, and
events of one millisecond (or committed a little late) are neither lost nor repeated.
The HTTP calls go through the collection's own client (plugins/module_utils/halo_api.py)
in a worker thread; this file only adds the cursor and the backoff.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
short_description: Halo events (GET /v1/events), each handed to ansible-rulebook once.
description:
  - An ansible-rulebook event source plugin that reads the events of CloudPassage Halo, or of a
    Halo-compatible grid, from a cursor and puts each one on the rulebook's queue as
    C({"halo": <event>}).
  - The cursor is kept in O(state_file) and written after every event, so a restarted rulebook
    neither repeats nor skips an event; a restart of the API costs nothing but a retry.
  - Events of the same timestamp are told apart by id, and the last O(lookback) seconds are
    read again on every poll, so an event committed a little after a later one is not lost.
  - Rate limits (HTTP 429, honouring C(Retry-After)), server errors and connection failures are
    waited out with exponential backoff; a refused key (401, 403) or a refused query ends the
    source with its error.
  - Authenticates as the collection's modules do, with the same options and environment
    variables (E(HALO_API_HOST), E(HALO_API_KEY), E(HALO_API_SECRET_KEY), ...).
options:
  api_host:
    description:
      - Host name of the Halo API, or a full C(http://) or C(https://) URL with a port.
      - If not set, the environment variable E(HALO_API_HOST) is used.
    type: str
    default: api.cloudpassage.com
  api_port:
    description:
      - Port of the Halo API; overrides a port given in O(api_host).
      - If not set, the environment variable E(HALO_API_PORT) is used.
    type: int
  api_key:
    description:
      - ID of the Halo API key (a read-only key is enough).
      - If not set, the environment variable E(HALO_API_KEY) is used.
    type: str
    required: true
  api_secret:
    description:
      - Secret of the Halo API key. Never logged.
      - If not set, the environment variable E(HALO_API_SECRET_KEY) is used.
    type: str
    required: true
  validate_certs:
    description:
      - Verify the API's TLS certificate.
      - If not set, the environment variable E(HALO_VALIDATE_CERTS) is used.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle to verify the API's certificate with.
      - If not set, the environment variable E(HALO_CA_PATH) is used.
    type: path
  timeout:
    description:
      - Seconds to wait for each API call.
      - If not set, the environment variable E(HALO_API_TIMEOUT) is used.
    type: int
    default: 30
  state_file:
    description:
      - JSON file the cursor is kept in, written (atomically) after every event.
      - Without it the cursor lives in memory only, and a restarted rulebook starts again at
        O(start).
    type: path
  start:
    description:
      - Where a cursor starts when O(state_file) does not exist yet.
      - C(latest) hands over only the events that come after the source started,
        C(earliest) every stored event, an ISO 8601 time the events from that time on.
    type: str
    default: latest
  types:
    description:
      - Only these event types (for example C(server_registered), C(scan_completed)); all if empty.
    type: list
    elements: str
  interval:
    description:
      - Seconds between two polls once every event has been handed over.
    type: float
    default: 5
  lookback:
    description:
      - Seconds before the newest event handed over that every poll reads again, so that an
        event stored a little after a later one is still handed over (once).
      - Should exceed the longest time the API takes to store one change.
    type: float
    default: 10
  per_page:
    description:
      - Events asked for in one call (the API caps it at 100).
    type: int
    default: 100
  scan_details:
    description:
      - Add C(scan) (C(id), C(module), C(status) and the finding counts, not the findings) to
        C(scan_completed) and C(scan_failed) events, read from C(GET /v1/scans/{id}).
    type: bool
    default: true
  max_backoff:
    description:
      - Longest wait, in seconds, between two tries after an error.
    type: float
    default: 60
requirements:
  - requests
  - ansible-core (the collection's API client is imported from plugins/module_utils)
notes:
  - The state file is written after the event is on the queue. If the process is killed
    (SIGKILL) between the two, that one event is handed over again after the restart; a rulebook
    that stops normally (its source cancelled) neither repeats nor loses one.
"""

EXAMPLES = r"""
- name: Halo membership control
  hosts: localhost
  sources:
    - cloudpassage.halo.halo_events:
        state_file: /var/lib/eda/halo_events.json
        types: [server_registered, scan_completed, scan_failed]
        interval: 5
  rules:
    - name: Show registrations
      condition: event.halo.type == "server_registered"
      action:
        debug:
"""

import asyncio
import datetime
import json
import logging
import os
import random
import sys
import tempfile
from typing import Any, Dict


def _import_halo_api():
    """The collection's API client module. ansible-rulebook runs this file by path (runpy),
    without Ansible's collection loader; when ``ansible_collections`` is not importable from
    sys.path already, the root of the collections path this file was found in is added."""
    try:
        from ansible_collections.cloudpassage.halo.plugins.module_utils import halo_api
        return halo_api
    except ImportError:
        here = os.path.abspath(os.path.dirname(__file__))
        # <root>/ansible_collections/cloudpassage/halo/extensions/eda/plugins/event_source
        root = os.path.normpath(os.path.join(here, *[os.pardir] * 7))
        if not os.path.isdir(os.path.join(root, "ansible_collections")) or root in sys.path:
            raise
        sys.path.append(root)
        from ansible_collections.cloudpassage.halo.plugins.module_utils import halo_api
        return halo_api


halo_api = _import_halo_api()

logger = logging.getLogger("cloudpassage.halo.halo_events")

STATE_VERSION = 1
# First wait after an error; it doubles on every error in a row up to max_backoff.
BACKOFF_START = 1.0
# Error statuses that are the API's passing state, not an answer about the request.
TRANSIENT_STATUSES = (408, 425, 429, 500, 502, 503, 504)


# -- time ---------------------------------------------------------------------------------

def parse_time(text):
    """ISO 8601 (``Z`` or an offset; a naive time is UTC) -> aware UTC datetime."""
    if isinstance(text, datetime.datetime):
        value = text
    else:
        text = str(text).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        value = datetime.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def format_time(value):
    """The API's form, milliseconds rounded down: a ``since`` may only ever reach back."""
    value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value.isoformat(timespec="milliseconds") + "Z"


# -- the cursor -----------------------------------------------------------------------------

class Cursor:
    """Where reading stopped.

    ``since``: the newest ``created_at`` handed over (or the start time); ``seen``: id ->
    ``created_at`` of every event handed over at or after ``since - lookback``; ``floor``: the
    start time, before which nothing is read. The next poll asks for ``since - lookback`` on
    (not below ``floor``) and hands over what is not in ``seen``.
    """

    def __init__(self, since=None, seen=None, floor=None, lookback=0.0):
        self.since = since
        self.floor = floor
        self.seen = dict(seen or {})
        self.lookback = datetime.timedelta(seconds=max(0.0, float(lookback)))

    # -- the window
    def window_start(self):
        if self.since is None:
            return self.floor
        start = self.since - self.lookback
        return max(start, self.floor) if self.floor is not None else start

    def query_since(self):
        start = self.window_start()
        return None if start is None else format_time(start)

    def is_new(self, event):
        """Whether ``event`` is still to be handed over."""
        if event.get("id") in self.seen:
            return False
        start = self.window_start()
        # Older than the window: handed over before the cursor's time (or before the start).
        return start is None or parse_time(event["created_at"]) >= start

    def advance(self, event):
        """Record ``event`` as handed over."""
        created = parse_time(event["created_at"])
        self.seen[event["id"]] = created
        if self.since is None or created > self.since:
            self.since = created
        start = self.window_start()
        if start is not None:
            self.seen = dict((i, t) for i, t in self.seen.items() if t >= start)

    # -- storage
    def to_json(self):
        return {
            "version": STATE_VERSION,
            "since": format_time(self.since) if self.since is not None else None,
            "floor": format_time(self.floor) if self.floor is not None else None,
            # exact times: a seen event must fall in the same window after a reload
            "seen": dict((i, t.isoformat()) for i, t in sorted(self.seen.items())),
        }

    @classmethod
    def from_json(cls, data, lookback=0.0):
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError("not a halo_events state (version %s)" % STATE_VERSION)
        since = parse_time(data["since"]) if data.get("since") else None
        floor = parse_time(data["floor"]) if data.get("floor") else None
        seen = dict((i, parse_time(t)) for i, t in (data.get("seen") or {}).items())
        # A saved since is rounded down to the millisecond; the exact newest time is in seen.
        if seen:
            newest = max(seen.values())
            since = newest if since is None or newest > since else since
        return cls(since=since, seen=seen, floor=floor, lookback=lookback)

    @classmethod
    def load(cls, path, lookback=0.0):
        """The cursor saved at ``path``; None when there is none yet."""
        try:
            with open(path, "r") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise ValueError("state file %s is not valid JSON: %s" % (path, exc))
        try:
            return cls.from_json(data, lookback)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError("state file %s: %s" % (path, exc))

    def save(self, path):
        """Replace ``path`` atomically: a crash leaves the old cursor or the new, never half."""
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".halo_events.", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(self.to_json(), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


# -- the API ---------------------------------------------------------------------------------

class _EventsClient(halo_api.HaloClient):
    """The collection's client, remembering the ``Retry-After`` of the last answer so that the
    source waits in asyncio (cancellable) rather than in the client's retry loop."""

    retry_after = None

    def _send(self, method, path, auth=None, headers=None, **kwargs):
        response = super(_EventsClient, self)._send(method, path, auth=auth, headers=headers, **kwargs)
        self.retry_after = _seconds(response.headers.get("Retry-After")) if response.status_code in (429, 503) else None
        return response


def _seconds(value):
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None  # an HTTP date: rare, the exponential backoff covers it
    return seconds if seconds >= 0 else None


def _auth_options(args):
    """AUTH_ARGUMENT_SPEC resolved like a module does: the argument, its environment
    variable, its default; bools and ints converted."""
    from ansible.module_utils.parsing.convert_bool import boolean

    params = {}
    for name, spec in halo_api.AUTH_ARGUMENT_SPEC.items():
        value = args.get(name)
        if value is None and spec.get("fallback"):
            for variable in spec["fallback"][1]:
                if os.environ.get(variable):
                    value = os.environ[variable]
                    break
        if value is None:
            value = spec.get("default")
        if value is not None and spec.get("type") == "bool":
            value = boolean(value, strict=True)
        elif value is not None and spec.get("type") == "int":
            value = int(value)
        params[name] = value
    for name in ("api_key", "api_secret"):
        if not params.get(name):
            raise ValueError("%s is required (or %s in the environment)"
                             % (name, halo_api.AUTH_ARGUMENT_SPEC[name]["fallback"][1][0]))
    return params


def make_client(args):
    params = _auth_options(args)
    # No retries inside the client: every wait happens in the source, where cancelling the
    # rulebook ends it at once.
    params["max_retries"] = 0
    halo_api.check_connection_options(params)
    return _EventsClient(
        api_host=params["api_host"], api_port=params.get("api_port"), api_key=params["api_key"],
        api_secret=params["api_secret"], validate_certs=params["validate_certs"],
        ca_path=params.get("ca_path"), timeout=params.get("timeout") or 30, max_retries=0,
        user_agent=halo_api.USER_AGENT + " halo_events")


def is_transient(exc):
    """An error that waiting may cure (rate limit, server or connection trouble)."""
    if isinstance(exc, halo_api.HaloAPIError):
        return exc.status in TRANSIENT_STATUSES
    return isinstance(exc, halo_api.HaloClientError)


class EventReader:
    """Polls ``/v1/events`` from a ``Cursor`` and hands each new event to a queue."""

    def __init__(self, client, queue, cursor=None, state_file=None, types=None, per_page=100,
                 interval=5.0, lookback=10.0, start="latest", scan_details=True, max_backoff=60.0,
                 sleep=asyncio.sleep):
        self.client = client
        self.queue = queue
        self.cursor = cursor
        self.state_file = state_file
        self.types = [t for t in (types or []) if t]
        self.per_page = max(1, min(int(per_page), halo_api.MAX_PER_PAGE))
        self.interval = float(interval)
        self.lookback = float(lookback)
        self.start = start or "latest"
        self.scan_details = scan_details
        self.max_backoff = float(max_backoff)
        self.sleep = sleep
        self.failures = 0

    async def call(self, method, *args):
        """One client call in a worker thread, repeated after a transient error with backoff."""
        while True:
            self.client.retry_after = None
            try:
                result = await asyncio.to_thread(method, *args)
            except halo_api.HaloClientError as exc:
                if not is_transient(exc):
                    raise
                self.failures += 1
                wait = self.backoff()
                logger.warning("halo_events: %s; trying again in %.1fs", exc, wait)
                await self.sleep(wait)
                continue
            self.failures = 0
            return result

    def backoff(self):
        """Retry-After when the API gave one, else exponential with jitter; capped."""
        retry_after = getattr(self.client, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        wait = BACKOFF_START * (2 ** min(self.failures - 1, 16))
        return min(self.max_backoff, wait * random.uniform(0.5, 1.0))

    def params(self, page, since):
        params = {"sort_by": "created_at.asc", "per_page": self.per_page, "page": page}
        if since:
            params["since"] = since
        if self.types:
            params["type"] = ",".join(self.types)
        return params

    async def open_cursor(self):
        """The saved cursor, or a new one at ``start`` (saved at once, so that a restart goes
        on from here and the state file's existence says the source is reading)."""
        if self.cursor is None and self.state_file:
            self.cursor = Cursor.load(self.state_file, self.lookback)
        if self.cursor is not None:
            return
        if self.start == "earliest":
            self.cursor = Cursor(lookback=self.lookback)
        elif self.start == "latest":
            self.cursor = await self.latest_cursor()
        else:
            start = parse_time(self.start)
            self.cursor = Cursor(since=start, floor=start, lookback=self.lookback)
        self.save()

    async def latest_cursor(self):
        """A cursor after the newest stored event (of ``types``): all at its time are seen."""
        params = {"sort_by": "created_at.desc", "per_page": halo_api.MAX_PER_PAGE, "page": 1}
        if self.types:
            params["type"] = ",".join(self.types)
        page = await self.call(self.client.get, "/v1/events", params) or {}
        events = page.get("events") or []
        if not events:
            return Cursor(lookback=self.lookback)
        newest = parse_time(events[0]["created_at"])
        seen = dict((e["id"], parse_time(e["created_at"])) for e in events
                    if parse_time(e["created_at"]) == newest)
        return Cursor(since=newest, floor=newest, seen=seen, lookback=self.lookback)

    def save(self):
        if self.state_file:
            self.cursor.save(self.state_file)

    async def details(self, event):
        """``scan`` for a scan event: its status and counts, without the findings."""
        if not (self.scan_details and event.get("object_id")
                and event.get("type") in ("scan_completed", "scan_failed")):
            return event
        scan = await self.call(self.client.get_scan, event["object_id"])
        event = dict(event)
        event["scan"] = None if scan is None else dict(
            (k, scan.get(k)) for k in ("id", "module", "status", "server_id", "critical_findings_count",
                                       "non_critical_findings_count", "ok_findings_count", "completed_at"))
        return event

    async def poll(self):
        """Hand over every new event there is now, page after page."""
        page_number = 1
        # One query for every page of this poll: the cursor moves while its pages are read.
        since = self.cursor.query_since()
        while True:
            page = await self.call(self.client.get, "/v1/events", self.params(page_number, since)) or {}
            events = page.get("events") or []
            for event in events:
                if not self.cursor.is_new(event):
                    continue
                event = await self.details(event)
                await self.queue.put({"halo": event})
                # Nothing awaits between the put and the save: a cancelled source has either
                # not handed the event over, or has recorded it.
                self.cursor.advance(event)
                self.save()
            if not (page.get("pagination") or {}).get("next") or len(events) < self.per_page:
                return
            # The next page of the same query. Events stored meanwhile inside the window may
            # shift it by a few; the next poll reads the window again and finds them.
            page_number += 1

    async def run(self):
        await self.open_cursor()
        while True:
            await self.poll()
            await self.sleep(self.interval)


def _list(value):
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def reader_from_args(queue, args, client=None):
    from ansible.module_utils.parsing.convert_bool import boolean

    lookback = float(args.get("lookback", 10))
    return EventReader(
        client or make_client(args), queue,
        state_file=args.get("state_file") or None,
        types=_list(args.get("types")),
        per_page=int(args.get("per_page", 100)),
        interval=float(args.get("interval", 5)),
        lookback=lookback,
        start=str(args.get("start") or "latest"),
        scan_details=boolean(args.get("scan_details", True), strict=True),
        max_backoff=float(args.get("max_backoff", 60)),
    )


async def main(queue: asyncio.Queue, args: Dict[str, Any]) -> None:
    """ansible-rulebook's entry point: runs until cancelled (or a permanent error)."""
    await reader_from_args(queue, args).run()


if __name__ == "__main__":
    # Manual test: print the events. Connection from HALO_API_* in the environment;
    # other options as one JSON argument, e.g. '{"start": "earliest", "state_file": "s.json"}'.

    class MockQueue(asyncio.Queue):
        async def put(self, item):
            print(json.dumps(item, sort_keys=True))  # noqa: T201
            sys.stdout.flush()

    logging.basicConfig(level=logging.INFO)
    manual_args = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    try:
        asyncio.run(main(MockQueue(), manual_args))
    except KeyboardInterrupt:
        pass
