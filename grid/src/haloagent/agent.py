"""The agent daemon: register once, long-poll the grid, run its commands, apply its firewall."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional

from . import fim, hostinfo, svm
from .checks import ScanContext
from .client import Credentials, GridClient, GridError
from .rootfs import RootFS
from .scan import scan_policies, summarize

log = logging.getLogger("haloagent")

SCAN_COMMANDS = ("sca", "csm")  # csm is Halo's older name of the configuration module


@dataclass
class AgentConfig:
    grid: str
    agent_key: str
    tag: Optional[str] = None
    server_label: Optional[str] = None
    state_dir: str = "/var/lib/haloagent"
    root: str = "/"
    proc_dir: str = "/proc"
    ca_file: Optional[str] = None
    insecure: bool = False
    firewall: bool = True
    once: bool = False
    poll_wait: int = 30
    scan_timeout: float = 240.0  # seconds; within the collection's default wait (300 s)


class StateFile:
    """``<state-dir>/agent.json`` (mode 0600): the credential of this server at one grid."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, "agent.json")

    def load(self, grid: str) -> Optional[Credentials]:
        """The saved credential, unless there is none or it belongs to another grid."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                state = json.load(handle)
            if state.get("grid") != grid:
                log.info("state file %s is for grid %s: registering anew", self.path, state.get("grid"))
                return None
            return Credentials(state["server_id"], state["agent_secret"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            log.warning("ignoring unreadable state file %s: %s", self.path, exc)
            return None

    def save(self, grid: str, credentials: Credentials, group_id: Optional[str]) -> None:
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        temporary = self.path + ".tmp"
        # created 0600 from the start: the secret is never readable by others, not even briefly
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"grid": grid, "server_id": credentials.server_id,
                       "agent_secret": credentials.agent_secret, "group_id": group_id}, handle)
        os.replace(temporary, self.path)

    def clear(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class Backoff:
    """Exponential backoff with jitter: the n-th delay is in [d/2, d], d = min(cap, base*2^n).
    The jitter keeps a fleet of agents from hammering a grid that comes back, in step."""

    def __init__(self, base: float = 1.0, cap: float = 120.0) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** self.attempt)
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class _Shutdown(Exception):
    """Raised by the signal handler to leave a blocking poll or sleep."""


class _Reregister(Exception):
    """The grid no longer knows this server's credential."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.client = GridClient(config.grid, config.ca_file, config.insecure)
        self.state = StateFile(config.state_dir)
        self.backoff = Backoff()
        self._firewall_version = -1  # the grid's version of our firewall we last handled
        self._stopping = False
        self._interruptible = True  # False while a command or firewall change is under way

    # -- lifecycle ----------------------------------------------------------------------
    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or, with ``once``, one poll). The exit status."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        try:
            while not self._stopping:
                try:
                    self._ensure_registered()
                    self._poll_once()
                    self.backoff.reset()
                except _Reregister:
                    self.state.clear()
                    self.client.credentials = None
                    if self.config.once:
                        return 1
                except GridError as exc:
                    if exc.status == 401 and self.client.credentials is None:
                        log.error("the grid rejected the agent key (HTTP 401): check --agent-key; "
                                  "it may have been rotated")
                    else:
                        log.warning("%s", exc)
                    if self.config.once:
                        return 1
                    self._sleep(self.backoff.next_delay())
                    continue
                if self.config.once:
                    break
        except _Shutdown:
            pass
        log.info("stopped")
        return 0

    def _on_signal(self, signum: int, _frame: Any) -> None:
        log.info("received signal %d, stopping", signum)
        self._stopping = True
        if self._interruptible:
            raise _Shutdown()

    def _sleep(self, seconds: float) -> None:
        log.info("retrying in %.1f s", seconds)
        time.sleep(seconds)

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        """While a command runs, a signal only asks to stop after it (its result gets sent)."""
        self._interruptible = False
        try:
            yield
        finally:
            self._interruptible = True

    # -- registration -------------------------------------------------------------------
    def _ensure_registered(self) -> None:
        if self.client.credentials is not None:
            return
        self.client.credentials = self.state.load(self.config.grid)
        if self.client.credentials is not None:
            log.info("using the saved registration of server %s", self.client.credentials.server_id)
            return
        facts = hostinfo.registration(self.config.grid, RootFS(self.config.root),
                                      self.config.tag, self.config.server_label)
        answer = self.client.register(self.config.agent_key, facts)
        credentials = Credentials(answer["server_id"], answer["agent_secret"])
        self.state.save(self.config.grid, credentials, answer.get("group_id"))
        self.client.credentials = credentials
        log.info("registered as server %s (group %s)", credentials.server_id, answer.get("group_id"))

    # -- the poll loop ------------------------------------------------------------------
    def _poll_once(self) -> None:
        try:
            answer = self.client.poll(min(self.config.poll_wait, 30), self._firewall_version)
        except GridError as exc:
            if exc.status in (401, 410):
                log.warning("the grid no longer accepts this server (HTTP %s): registering again",
                            exc.status)
                raise _Reregister() from exc
            raise
        with self._busy():
            version = answer.get("firewall_version")
            if version is not None and version != self._firewall_version:
                self._update_firewall(version)
            for command in answer.get("commands") or []:
                self._run_command(command)

    def _update_firewall(self, version: int) -> None:
        if self.config.firewall:
            from . import nftables  # nft is only needed by agents that manage a firewall

            nftables.sync(self.client)
        self._firewall_version = version

    def _run_command(self, command: Dict[str, Any]) -> None:
        command_id, name = command["id"], command.get("name")
        log.info("command %s: %s", command_id, name)
        self.client.start_command(command_id)
        if name in svm.COMMANDS:  # the installed packages; the grid matches them
            self._send_result(command_id, svm.scan_result(self.config.root, _now))
            return
        if name in fim.COMMANDS:  # files measured and uploaded in chunks; the grid compares
            self._run_fim(command_id, command)
            return
        if name not in SCAN_COMMANDS:
            self._send_result(command_id, {
                "status": "failed", "result": "haloagent does not support command %r" % name})
            return
        started = _now()
        try:
            findings = scan_policies(command.get("policies") or [],
                                     ScanContext(self.config.root, self.config.proc_dir),
                                     self.config.scan_timeout)
        except Exception as exc:  # report instead of leaving the command started forever
            log.exception("scan failed")
            self._send_result(command_id, {"status": "failed", "result": str(exc)})
            return
        summary = summarize(findings)
        log.info("scan done: %d critical, %d non-critical bad, %d indeterminate",
                 summary["critical_findings_count"], summary["non_critical_findings_count"],
                 summary["indeterminate_findings_count"])
        self._send_result(command_id, {"status": "completed", "scan": {
            "module": "sca", "agent_started_at": started, "agent_completed_at": _now(),
            "findings": findings}})

    def _run_fim(self, command_id: str, command: Dict[str, Any]) -> None:
        def send_chunk(objects: List[Dict[str, Any]]) -> None:
            self._with_retries(lambda: self.client.fim_objects(command_id, objects))

        try:
            result = fim.scan(command, self.config.root, self.config.scan_timeout, send_chunk, _now)
        except GridError as exc:
            if _closed_at_grid(command_id, exc):
                return
            result = {"status": "failed", "result": "could not send the fim objects: %s" % exc}
        except Exception as exc:  # report instead of leaving the command started forever
            log.exception("fim scan failed")
            result = {"status": "failed", "result": "fim scan failed: %s" % exc}
        self._send_result(command_id, result)

    def _send_result(self, command_id: str, result: Dict[str, Any]) -> None:
        """Send a command's result. A result the grid refuses (413 over its limits, 400) or
        cannot take is replaced by a short ``failed`` with the grid's reason: otherwise the
        command would stay ``started`` until the grid's deadline. A command the grid has
        closed or no longer knows (404, 409) is left alone."""
        try:
            self._post_result(command_id, result)
            return
        except GridError as exc:
            if _closed_at_grid(command_id, exc):
                return
            if result.get("status") == "failed" and "scan" not in result:
                raise  # already the short form: nothing smaller to send
            reason = _refusal(exc, result)
        log.error("command %s: %s", command_id, reason)
        self._post_result(command_id, {"status": "failed", "result": reason})

    def _post_result(self, command_id: str, result: Dict[str, Any], attempts: int = 5) -> None:
        """Post a result, retrying a few times through a network or grid hiccup."""
        self._with_retries(lambda: self.client.command_result(command_id, result), attempts)

    def _with_retries(self, call: Callable[[], None], attempts: int = 5) -> None:
        """``call()``, again after a network error or a 5xx, up to ``attempts`` times."""
        backoff = Backoff(cap=8.0)
        for attempt in range(1, attempts + 1):
            try:
                call()
                return
            except GridError as exc:
                retryable = exc.status is None or exc.status >= 500
                if not retryable or attempt == attempts:
                    raise
                log.warning("%s", exc)
                self._sleep(backoff.next_delay())


REASON_MAX = 1000  # characters of a refusal's reason: its post stays far below any body limit


def _closed_at_grid(command_id: str, exc: GridError) -> bool:
    """True when the grid has closed the command or no longer knows it (404, 409: logged,
    nothing more to send); a refused credential (401, 410) is raised again: the next poll
    registers again. False: the caller answers the error."""
    if exc.status in (401, 410):
        raise exc
    if exc.status in (404, 409):
        log.warning("command %s is closed or gone at the grid: %s", command_id, exc)
        return True
    return False


def _refusal(exc: GridError, result: Dict[str, Any]) -> str:
    """Why a result did not reach the grid, with what the grid said and the result's size."""
    findings = len((result.get("scan") or {}).get("findings") or [])
    size = len(json.dumps(result).encode())  # the body as the client sends it
    if exc.status is None:
        what = "could not send the scan result"
        said = str(exc)
    else:
        what = "the grid refused the scan result"
        said = "HTTP %d %s" % (exc.status, exc.reason or "")
    reason = "%s (%d findings, %d bytes): %s" % (what, findings, size, said.strip())
    return reason if len(reason) <= REASON_MAX else reason[:REASON_MAX - 3] + "..."
