"""Reading the scanned system's files: paths resolved under a root, its users and groups.

A scan can look at a prepared tree (``--root DIR``) instead of ``/``. Paths in a policy are
the host's absolute paths, so they are resolved the way a process chrooted into the root
would see them: symlinks are followed, but an absolute target or a ``..`` never leaves the
root. Users and groups are names from the tree's own ``etc/passwd`` and ``etc/group``,
never the scanning machine's.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import Dict, Optional

_MAX_SYMLINKS = 40  # the Linux kernel's limit for one lookup
MAX_READ = 64 * 1024 * 1024  # no configuration file is larger; a bigger one is not read

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class PathError(OSError):
    """A path that cannot be resolved inside the root (symlink loop, ...)."""


class NotRegularFile(OSError):
    """A path whose content is not read: not a regular file (a FIFO would block the agent
    for good, a device could be endless), or larger than MAX_READ."""


def _require_regular(st: os.stat_result, path: str) -> None:
    if stat.S_ISREG(st.st_mode):
        if st.st_size > MAX_READ:
            raise NotRegularFile(errno.EFBIG, "larger than %d MiB, not read" % (MAX_READ >> 20), path)
        return
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
    raise NotRegularFile(errno.EINVAL, "%s, not a regular file" % kind, path)


class RootFS:
    """The filesystem of the system being scanned, rooted at ``root``."""

    def __init__(self, root: str = "/") -> None:
        self.root = os.path.abspath(root)
        self._accounts: Dict[str, _Accounts] = {}

    def resolve(self, path: str) -> str:
        """Map a host path to a real path under the root, following symlinks chroot-style.

        The last component is resolved too, so ``os.lstat`` on the answer describes the
        target the way ``stat`` would inside the root. A missing component ends the walk:
        the rest is joined as is (the caller then gets FileNotFoundError on open/stat).
        """
        pending = [part for part in path.split("/") if part not in ("", ".")]
        pending.reverse()  # a stack: the next component is at the end
        resolved = []  # components below the root, already free of symlinks
        hops = 0
        while pending:
            part = pending.pop()
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = os.path.join(self.root, *resolved, part)
            try:
                target = os.readlink(candidate)
            except OSError:  # not a symlink, or missing: keep the name as is
                resolved.append(part)
                continue
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise PathError("too many levels of symbolic links: %s" % path)
            if target.startswith("/"):
                resolved = []
            pending.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
        return os.path.join(self.root, *resolved)

    def read_text(self, path: str) -> str:
        """The content of a regular host file (newlines as ``\\n``). Raises OSError, and
        NotRegularFile for anything else: only regular files are ever opened for reading.

        The type is checked before opening (opening a device may have effects) and again on
        the open descriptor; O_NONBLOCK keeps a FIFO swapped in between from blocking, and
        O_NOFOLLOW a symlink swapped in from leading out of the root."""
        real = self.resolve(path)
        _require_regular(os.lstat(real), path)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(real, flags)
        try:
            _require_regular(os.fstat(fd), path)
            chunks = []
            size = 0
            while size <= MAX_READ:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        if size > MAX_READ:  # grew while being read (or /proc-style size 0)
            raise NotRegularFile(errno.EFBIG, "larger than %d MiB, not read" % (MAX_READ >> 20), path)
        text = b"".join(chunks).decode("utf-8", errors="replace")
        return text.replace("\r\n", "\n").replace("\r", "\n")  # as open()'s universal newlines

    def stat(self, path: str) -> os.stat_result:
        return os.lstat(self.resolve(path))

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True

    # -- users and groups of the scanned system ------------------------------------------
    def _accounts_of(self, name: str) -> "_Accounts":
        if name not in self._accounts:
            try:
                text = self.read_text("/etc/" + name)
            except OSError:
                text = ""
            self._accounts[name] = _Accounts(text)
        return self._accounts[name]

    def user_name(self, uid: int) -> str:
        """The name of a uid on the scanned system, or the number when it has none."""
        return self._accounts_of("passwd").name(uid)

    def group_name(self, gid: int) -> str:
        return self._accounts_of("group").name(gid)

    def user_id(self, name: str) -> Optional[int]:
        """The uid of a user name (or a numeric string) on the scanned system."""
        return self._accounts_of("passwd").id(name)

    def group_id(self, name: str) -> Optional[int]:
        return self._accounts_of("group").id(name)


class _Accounts:
    """Names and numeric ids from a passwd- or group-format file."""

    def __init__(self, text: str) -> None:
        self._by_name: Dict[str, int] = {}
        self._by_id: Dict[int, str] = {}
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) < 3 or not fields[2].isdigit():
                continue
            # the first entry wins, as with getpwnam()/getpwuid()
            self._by_name.setdefault(fields[0], int(fields[2]))
            self._by_id.setdefault(int(fields[2]), fields[0])

    def name(self, number: int) -> str:
        return self._by_id.get(number, str(number))

    def id(self, name: str) -> Optional[int]:
        if name.isdigit():
            return int(name)
        return self._by_name.get(name)
