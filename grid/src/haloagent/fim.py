"""File integrity monitoring (fim): the agent measures, the grid compares (PROTOCOL.md).

For each rule of each fim policy the target (a path or a glob) is walked under the agent's
root, every object is stat'ed without following symlinks, and regular files are hashed with
SHA-256. The objects are uploaded in chunks while the walk goes on, so memory stays bounded
however many files a target holds; the command's result then says how many were sent.

* A target's parent directories are resolved the way a process chrooted into the root sees
  them (RootFS.resolve); from there on nothing is followed: a symlink is reported as a link
  with its target, and a directory is entered only when it is a real directory. Mount points
  are crossed.
* Only regular files are opened (O_NOFOLLOW | O_NONBLOCK, and the type checked again on the
  open descriptor); FIFOs, sockets and devices are type ``other``. Files are read in 1 MiB
  blocks into one reused buffer per thread, whatever their size.
* Hashing runs in a few daemon threads (hashlib releases the GIL on large buffers) fed with
  small batches, while this thread walks and uploads; results come back in walk order.
"""
from __future__ import annotations

import collections
import errno
import fnmatch
import hashlib
import logging
import os
import posixpath
import queue
import re
import stat
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

from .rootfs import PathError, RootFS
from .scan import Deadline

log = logging.getLogger(__name__)

COMMANDS = ("fim",)
CHUNK_OBJECTS = 5000  # at most this many objects per upload (PROTOCOL.md)
CHUNK_BYTES = 3 << 20  # and a body safely below the grid's default 4 MiB limit
BLOCK = 1 << 20  # read size: one reused buffer of this size per hashing thread
BATCH_FILES = 64  # objects handed to a hashing thread at once (less per-object overhead)
BATCH_BYTES = 8 << 20  # ... or fewer when they hold this many bytes of files

Object = Dict[str, Any]
# what the walk found: (policy id, rule id, host path, real path, lstat or None, error or None)
Item = Tuple[Any, Any, str, str, Optional[os.stat_result], Optional[str]]

_OPEN_FLAGS = (os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_CLOEXEC", 0))


class FimError(Exception):
    """A command the agent cannot run (a malformed policy); the command fails with it."""


class FimTimeout(Exception):
    """The scan's time limit was reached."""


def default_threads() -> int:
    """Hashing threads: the cores, at least 2 (one reads while one hashes), at most 4."""
    return max(2, min(4, os.cpu_count() or 1))


def _text(name: str) -> str:
    """A file name as JSON-safe text: a name that is not UTF-8 (its bytes came back as
    surrogates) is written with backslash escapes of those bytes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")


def _reason(exc: OSError) -> str:
    """``permission denied``: the OS's text of an error, as PROTOCOL.md shows it."""
    return (exc.strerror or str(exc)).lower()


def _join(directory: str, name: str) -> str:
    return directory + name if directory.endswith("/") else directory + "/" + name


def _component_matcher(pattern: str) -> Callable[[str], bool]:
    """One path component of a target, matched like the shell: fnmatch, and a name that
    starts with a dot only matches a pattern that does too."""
    if not any(c in pattern for c in "*?["):
        return pattern.__eq__
    regex = re.compile(fnmatch.translate(pattern)).match
    hidden_ok = pattern.startswith(".")
    return lambda name: (hidden_ok or not name.startswith(".")) and regex(name) is not None


def _exclusions(value: Any) -> List[str]:
    """The command gives a list; the public API's form (a comma or newline list) is taken too."""
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[,\n]", value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FimError("exclusions must be a list of globs")
    return [v.strip() for v in value if v.strip()]


class Rule:
    """One rule of one policy, ready to walk."""

    def __init__(self, policy_id: Any, rule: Dict[str, Any]) -> None:
        if not isinstance(rule, dict):
            raise FimError("policy %s: a rule is not an object" % policy_id)
        target = rule.get("target")
        if not isinstance(target, str) or not target.strip():
            raise FimError("policy %s: rule %s has no target" % (policy_id, rule.get("id")))
        self.policy_id = policy_id
        self.id = rule.get("id")
        # host paths are absolute; ".." is taken lexically
        self.target = posixpath.normpath("/" + target.strip().lstrip("/"))
        self.parts = [p for p in self.target.split("/") if p]
        self.matchers = [_component_matcher(p) for p in self.parts]
        self.recurse = bool(rule.get("recurse"))
        globs = _exclusions(rule.get("exclusions"))
        self._excluded = (re.compile("|".join(fnmatch.translate(g) for g in globs)).match
                          if globs else None)

    def excluded(self, path: str, name: str) -> bool:
        """Exclusions are globs matched against the full path and against the basename."""
        return self._excluded is not None and (
            self._excluded(path) is not None or self._excluded(name) is not None)

    # -- the walk ----------------------------------------------------------------------
    def matches(self, fs: RootFS) -> Iterator[Tuple[str, str]]:
        """(host path, real path) of each existing path the target names, in sorted order.
        The last component is not resolved: lstat on the real path describes the object."""
        if not self.parts:
            yield "/", fs.root
            return
        directories = ["/"]
        for part, matcher in zip(self.parts[:-1], self.matchers[:-1]):
            directories = [_join(d, name) for d in directories for name in _names(fs, d, part, matcher)]
        part, matcher = self.parts[-1], self.matchers[-1]
        for directory in directories:
            try:
                real_directory = fs.resolve(directory)
            except PathError as exc:
                log.warning("fim: %s: %s", directory, exc)
                continue
            for name in _names(fs, directory, part, matcher, real_directory):
                yield _join(directory, name), os.path.join(real_directory, name)

    def walk(self, fs: RootFS, deadline: Deadline) -> Iterator[Item]:
        """Every object of the rule, parents before children: the target, then for a
        directory its children (recurse: the whole tree). Symlinks are never followed."""
        for host, real in self.matches(fs):
            name = host.rsplit("/", 1)[-1]
            if self.excluded(host, name):
                continue
            try:
                st = os.lstat(real)
            except (FileNotFoundError, NotADirectoryError):
                continue  # no such target: no object (the grid reports it removed)
            except OSError as exc:
                yield self.policy_id, self.id, host, real, None, "cannot stat: %s" % _reason(exc)
                continue
            yield from self._tree(host, real, st, deadline)

    def _tree(self, host: str, real: str, st: os.stat_result, deadline: Deadline) -> Iterator[Item]:
        pid, rid = self.policy_id, self.id
        stack = [(host, real, st)]
        top = True
        while stack:
            if deadline.at is not None and time.monotonic() > deadline.at:
                raise FimTimeout()
            h, r, s = stack.pop()
            if not stat.S_ISDIR(s.st_mode) or not (top or self.recurse):
                yield pid, rid, h, r, s, None
                continue
            top = False
            try:
                names = sorted(os.listdir(r))
            except OSError as exc:
                yield pid, rid, h, r, s, "cannot list the directory: %s" % _reason(exc)
                continue
            yield pid, rid, h, r, s, None
            directories = []
            for name in names:
                if deadline.at is not None and time.monotonic() > deadline.at:
                    raise FimTimeout()
                child, child_real = _join(h, name), _join(r, name)
                if self._excluded is not None and self.excluded(child, name):
                    continue  # an excluded directory's tree is left out with it
                try:
                    cs = os.lstat(child_real)
                except FileNotFoundError:
                    continue  # removed since the listing
                except OSError as exc:
                    yield pid, rid, child, child_real, None, "cannot stat: %s" % _reason(exc)
                    continue
                if self.recurse and stat.S_ISDIR(cs.st_mode):
                    directories.append((child, child_real, cs))
                else:
                    yield pid, rid, child, child_real, cs, None
            stack.extend(reversed(directories))

    # -- "a path matched by two rules of one policy is reported once (the first rule)" ---
    def covers(self, parts: List[str], real_dir: Callable[[str], bool]) -> bool:
        """Whether this rule's walk yields the host path of ``parts`` (its components), as
        far as a later rule of the same policy already walking it can tell.

        ``real_dir(host)`` says whether a host path is a real directory (not a symlink):
        the walk enters no other, so only a path below real directories can be covered."""
        depth = len(self.parts)
        extra = len(parts) - depth
        if extra < 0 or (extra > 1 and not self.recurse):
            return False
        for matcher, part in zip(self.matchers, parts):
            if not matcher(part):
                return False
        for k in range(max(depth, 1), len(parts) + 1):
            if self.excluded("/" + "/".join(parts[:k]), parts[k - 1]):
                return False
        return all(real_dir("/" + "/".join(parts[:k])) for k in range(depth, len(parts)))


def _names(fs: RootFS, directory: str, part: str, matcher: Callable[[str], bool],
           real_directory: Optional[str] = None) -> List[str]:
    """The names in host ``directory`` that match one target component (sorted); a literal
    component is returned as is, whether or not it exists."""
    if not any(c in part for c in "*?["):
        return [part]
    try:
        real = real_directory if real_directory is not None else fs.resolve(directory)
        return sorted(n for n in os.listdir(real) if matcher(n))
    except OSError:  # not a directory, missing, unreadable, a symlink loop
        return []


class Policy:
    def __init__(self, policy: Dict[str, Any]) -> None:
        if not isinstance(policy, dict):
            raise FimError("a fim policy is not an object")
        self.id = policy.get("id")
        rules = policy.get("rules") or []
        if not isinstance(rules, list):
            raise FimError("policy %s: rules is not a list" % self.id)
        self.rules = [Rule(self.id, rule) for rule in rules]


def parse_policies(command: Dict[str, Any]) -> List[Policy]:
    policies = command.get("fim_policies") or []
    if not isinstance(policies, list):
        raise FimError("fim_policies is not a list")
    return [Policy(p) for p in policies]


def walk(policies: Iterable[Policy], fs: RootFS, deadline: Deadline) -> Iterator[Item]:
    """Every object of every rule, a path once per policy (its first rule's)."""
    for policy in policies:
        real_dirs: Dict[str, bool] = {}

        def real_dir(host: str) -> bool:
            if host not in real_dirs:
                try:
                    parent, name = posixpath.split(host)
                    st = os.lstat(os.path.join(fs.resolve(parent), name)) if name else None
                    real_dirs[host] = st is None or stat.S_ISDIR(st.st_mode)
                except OSError:
                    real_dirs[host] = False
            return real_dirs[host]

        for index, rule in enumerate(policy.rules):
            earlier = policy.rules[:index]
            for item in rule.walk(fs, deadline):
                if earlier:
                    parts = [p for p in item[2].split("/") if p]
                    if any(other.covers(parts, real_dir) for other in earlier):
                        continue
                yield item


# -- hashing ------------------------------------------------------------------------------
def sha256_file(real: str, deadline: Optional[Deadline] = None,
                buffer: Optional[bytearray] = None) -> str:
    """The SHA-256 (hex) of a regular file, read in blocks into ``buffer``. Raises OSError,
    also when the path is no longer a regular file once opened (never reads a FIFO)."""
    buffer = buffer if buffer is not None else bytearray(BLOCK)
    view = memoryview(buffer)
    size = len(buffer)
    at = deadline.at if deadline is not None else None
    fd = os.open(real, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file any more")
        digest = hashlib.sha256()
        total = 0
        while True:
            n = os.readv(fd, [buffer])
            if not n:
                break
            digest.update(view[:n])
            total += n
            if n < size and total >= st.st_size:
                break  # a short read at the stat'ed size is the end: saves a read per file
            if at is not None and time.monotonic() > at:
                raise FimTimeout()
        return digest.hexdigest()
    finally:
        os.close(fd)


def _measure(item: Item, buffer: bytearray, deadline: Deadline) -> Object:
    policy_id, rule_id, host, real, st, error = item
    obj = {"policy_id": policy_id, "rule_id": rule_id, "path": _text(host), "type": "other",
           "sha256": None, "mode": None, "uid": None, "gid": None, "size": None,
           "link_target": None, "error": error}
    if st is None:  # could not even be stat'ed: nothing is known but the error
        return obj
    mode = st.st_mode
    obj.update(mode="%04o" % stat.S_IMODE(mode), uid=st.st_uid, gid=st.st_gid, size=st.st_size)
    if stat.S_ISREG(mode):
        obj["type"] = "file"
        try:
            obj["sha256"] = sha256_file(real, deadline, buffer)
        except OSError as exc:
            obj["error"] = _reason(exc)
    elif stat.S_ISDIR(mode):
        obj["type"] = "dir"
        # a directory's size is its file system's bookkeeping (an overlay reports a new one
        # after any write inside it), not something an administrator changed: its entries
        # are watched as objects of their own
        obj["size"] = None
    elif stat.S_ISLNK(mode):
        obj["type"] = "link"
        try:
            obj["link_target"] = _text(os.readlink(real))
        except OSError as exc:
            obj["error"] = "cannot read the link: %s" % _reason(exc)
    return obj


class _Batch:
    __slots__ = ("items", "objects", "error", "done")

    def __init__(self) -> None:
        self.items: List[Item] = []
        self.objects: List[Object] = []
        self.error: Optional[BaseException] = None
        self.done = threading.Event()


class _Hasher:
    """Daemon threads measuring batches of items. A thread stuck in a read (a hung network
    filesystem) is left behind at the deadline; as a daemon it never holds the agent up."""

    def __init__(self, threads: int, deadline: Deadline) -> None:
        self.deadline = deadline
        self.tasks: "queue.Queue[Optional[_Batch]]" = queue.Queue()
        self.cancelled = False
        self.threads = [threading.Thread(target=self._work, name="fim-hash-%d" % i, daemon=True)
                        for i in range(threads)]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        buffer = bytearray(BLOCK)
        while True:
            batch = self.tasks.get()
            if batch is None:
                return
            try:
                for item in batch.items:
                    if self.cancelled:
                        break
                    batch.objects.append(_measure(item, buffer, self.deadline))
            except BaseException as exc:  # FimTimeout, or a bug: the consumer raises it
                batch.error = exc
            batch.done.set()

    def close(self) -> None:
        self.cancelled = True
        for _ in self.threads:
            self.tasks.put(None)


def measure(items: Iterable[Item], deadline: Deadline, threads: Optional[int] = None) -> Iterator[Object]:
    """The objects of ``items``, in order, hashed in ``threads`` threads; at most a few
    batches per thread are in flight."""
    hasher = _Hasher(threads or default_threads(), deadline)
    pending: Deque[_Batch] = collections.deque()
    window = 4 * len(hasher.threads)

    def collect(batch: _Batch) -> List[Object]:
        remaining = deadline.remaining()
        if not batch.done.wait(None if remaining is None else max(remaining, 0)):
            raise FimTimeout()
        if batch.error is not None:
            raise batch.error
        return batch.objects

    try:
        batch, batch_bytes = _Batch(), 0
        for item in items:
            batch.items.append(item)
            st = item[4]
            if st is not None and stat.S_ISREG(st.st_mode):
                batch_bytes += st.st_size
            if len(batch.items) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                hasher.tasks.put(batch)
                pending.append(batch)
                batch, batch_bytes = _Batch(), 0
                while len(pending) >= window or (pending and pending[0].done.is_set()):
                    yield from collect(pending.popleft())
        if batch.items:
            hasher.tasks.put(batch)
            pending.append(batch)
        while pending:
            yield from collect(pending.popleft())
    finally:
        hasher.close()


def objects(policies: Iterable[Policy], root: str, deadline: Deadline,
            threads: Optional[int] = None) -> Iterator[Object]:
    """Every object of the policies under ``root``, measured."""
    return measure(walk(policies, RootFS(root), deadline), deadline, threads)


def _size_bound(obj: Object) -> int:
    """An upper bound of the object's JSON size (non-ASCII text takes up to 6 bytes a
    character, escaped), cheap enough for every object."""
    text = len(obj["path"]) + len(obj["link_target"] or "") + len(obj["error"] or "")
    text += len(str(obj["policy_id"])) + len(str(obj["rule_id"]))
    return 256 + 6 * text


def chunks(stream: Iterable[Object], limit: int = CHUNK_OBJECTS,
           byte_limit: int = CHUNK_BYTES) -> Iterator[List[Object]]:
    """Lists of at most ``limit`` objects (fewer if their JSON could exceed ``byte_limit``)."""
    chunk: List[Object] = []
    size = 0
    for obj in stream:
        bound = _size_bound(obj)
        if chunk and (len(chunk) >= limit or size + bound > byte_limit):
            yield chunk
            chunk, size = [], 0
        chunk.append(obj)
        size += bound
    if chunk:
        yield chunk


def scan(command: Dict[str, Any], root: str, time_limit: Optional[float],
         send_chunk: Callable[[List[Object]], None], now: Callable[[], str],
         threads: Optional[int] = None) -> Dict[str, Any]:
    """Run a ``fim`` command: upload the objects with ``send_chunk`` and return the
    command's result. What ``send_chunk`` raises (the grid refusing a chunk) propagates."""
    started = now()
    begun = time.monotonic()
    deadline = Deadline(time_limit)
    sent = 0
    try:
        policies = parse_policies(command)
        stream = objects(policies, root, deadline, threads)
        try:
            for chunk in chunks(stream):
                send_chunk(chunk)
                sent += len(chunk)
        finally:
            stream.close()  # stops the hashing threads at once if anything went wrong
    except FimTimeout:
        reason = ("fim scan did not finish within the scan's time limit of %g s (%d objects sent)"
                  % (deadline.seconds, sent))
        log.warning("%s", reason)
        return {"status": "failed", "result": reason}
    except FimError as exc:
        log.warning("fim scan: %s", exc)
        return {"status": "failed", "result": "fim scan: %s" % exc}
    log.info("fim %s done: %d objects in %.1f s", command.get("purpose"), sent, time.monotonic() - begun)
    return {"status": "completed", "scan": {
        "module": "fim", "agent_started_at": started, "agent_completed_at": now(),
        "objects_sent": sent}}
