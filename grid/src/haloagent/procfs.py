"""Live state from /proc: running processes and listening sockets.

This is always the state of the machine (PID and network namespace) the agent runs in,
even when ``--root`` points at a prepared tree: a tree has no processes.
"""
from __future__ import annotations

import os
from typing import Dict, List, Set, Tuple

# /proc/net/tcp state column: 0A = TCP_LISTEN. UDP sockets have no listen state: a bound
# UDP socket (state 07, TCP_CLOSE) is what "listening" means for it.
_LISTEN_STATE = {"tcp": "0A", "udp": "07"}


def process_names(proc_dir: str = "/proc") -> Dict[int, Set[str]]:
    """``{pid: names}``: the kernel's ``comm`` and the basename of ``argv[0]``.

    Both count because ``comm`` is cut at 15 characters and renamed by some daemons
    (``sshd: root@pts/0``), while ``argv[0]`` is empty for kernel threads.
    """
    processes: Dict[int, Set[str]] = {}
    for entry in os.listdir(proc_dir):
        if not entry.isdigit():
            continue
        names: Set[str] = set()
        try:
            with open(os.path.join(proc_dir, entry, "comm"), encoding="utf-8", errors="replace") as f:
                names.add(f.read().strip())
            with open(os.path.join(proc_dir, entry, "cmdline"), "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0].decode("utf-8", "replace")
        except OSError:  # the process ended while we looked
            continue
        names.add(os.path.basename(argv0))
        names.discard("")
        processes[int(entry)] = names
    return processes


def listening_sockets(protocol: str, proc_dir: str = "/proc") -> List[Tuple[int, int]]:
    """``[(port, socket inode)]`` of the sockets listening for ``protocol`` (tcp or udp)."""
    sockets = []
    for table in (protocol, protocol + "6"):
        try:
            with open(os.path.join(proc_dir, "net", table), encoding="ascii") as f:
                lines = f.read().splitlines()[1:]  # the first line is a header
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if len(fields) < 10 or fields[3] != _LISTEN_STATE[protocol]:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            sockets.append((port, int(fields[9])))
    return sockets


def socket_owners(proc_dir: str = "/proc") -> Dict[int, Set[int]]:
    """``{socket inode: pids}`` from the processes' open file descriptors."""
    owners: Dict[int, Set[int]] = {}
    for entry in os.listdir(proc_dir):
        if not entry.isdigit():
            continue
        fd_dir = os.path.join(proc_dir, entry, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                owners.setdefault(int(target[8:-1]), set()).add(int(entry))
    return owners
