"""A lab host's kernel parameters at boot, set the way systemd-sysctl sets them.

A lab host is a fresh network namespace, so its per-namespace parameters (``net.*``) start at
the kernel's defaults whatever its files say; a real host would have had systemd-sysctl apply
its configuration at boot. host-init.sh runs this, inside the host's network namespace and
before sshd starts, on the host's root tree:

    python -m halodev.lab.boot_sysctl <the host's root>

The files are read with the agent's own reader (grid/src/haloagent/sysctl.py: /etc/sysctl.d,
/run/sysctl.d, /usr/local/lib/sysctl.d, /usr/lib/sysctl.d, /lib/sysctl.d, then
/etc/sysctl.conf; the last setting wins, an explicit key beats a glob), so the lab applies
exactly what a scan reads. Only ``net.*`` is written: every other parameter (``kernel.*``,
``fs.*``, ``vm.*``) belongs to the whole machine, and writing it would change the machine and
every other lab; each is skipped with a note. One line per parameter goes to stdout (the
host's init.log). A parameter that cannot be written is logged and the rest still applied
(as systemd-sysctl does); exit 1 only when the configuration cannot be read at all.
"""

import fnmatch
import os
import sys

from haloagent import sysctl  # stdlib only, like this file
from haloagent.rootfs import RootFS

PROC_SYS = "/proc/sys"
GLOB_CHARS = "*?["


def per_namespace(path):
    """Is this key path a parameter of the network namespace (and only of it)?"""
    parts = path.split("/")
    return parts[0] == "net" and len(parts) > 1 and all(p not in ("", ".", "..") for p in parts)


def glob_keys(pattern):
    """The existing net.* key paths a glob names (in this network namespace)."""
    parts = pattern.split("/")
    fixed = []
    for part in parts:
        if any(c in part for c in GLOB_CHARS):
            break
        fixed.append(part)
    top = os.path.join(PROC_SYS, "net", *fixed[1:]) if fixed else os.path.join(PROC_SYS, "net")
    found = []
    for directory, _dirs, files in os.walk(top):
        for name in files:
            path = os.path.relpath(os.path.join(directory, name), PROC_SYS)
            if fnmatch.fnmatchcase(path, pattern):
                found.append(path)
    return sorted(found)


def plan(config):
    """[(key path, value, source)] to write, and notes on what is skipped."""
    writes, notes = [], []
    for path, (value, source) in config.explicit.items():
        if per_namespace(path):
            writes.append((path, value, source))
        else:
            notes.append("skipped %s = %s (%s): not a per-network-namespace parameter, it would "
                         "change the whole machine" % (sysctl.display_key(path), value, source))
    seen = {path for path, _, _ in writes}
    for pattern, value, source in config.globs:
        first = pattern.split("/")[0]
        if first != "net":
            reaches_net = fnmatch.fnmatchcase("net", first)
            notes.append("skipped %s = %s (%s)%s: only net.* is per network namespace"
                         % (pattern, value, source, " outside net.*" if reaches_net else ""))
            if not reaches_net:
                continue
        for path in glob_keys(pattern):
            if path in seen or path in config.explicit:  # an explicit setting wins over any glob
                continue
            seen.add(path)
            glob_value, glob_source = config.value(path)  # the last matching glob
            writes.append((path, glob_value, glob_source))
    return writes, notes


def apply(writes):
    lines = []
    for path, value, source in writes:
        key = sysctl.display_key(path)
        before = sysctl.live_value("/proc", path)
        try:
            with open(os.path.join(PROC_SYS, path), "w", encoding="utf-8") as handle:
                handle.write(value + "\n")
        except OSError as exc:
            lines.append("FAILED %s = %s (%s): %s" % (key, value, source, exc.strerror or exc))
            continue
        after = sysctl.live_value("/proc", path)
        lines.append("%s = %s (%s; was %s)" % (key, after, source, before))
    return lines


def main(argv):
    if len(argv) != 2:
        print("usage: python -m halodev.lab.boot_sysctl ROOT", file=sys.stderr)
        return 2
    config = sysctl.load(RootFS(argv[1]))
    for error in config.errors:
        print("sysctl: cannot read %s" % error)
    if config.errors and not config.files:
        return 1
    writes, notes = plan(config)
    print("sysctl: %d net.* parameters from %s" % (len(writes), ", ".join(config.files) or "no files"))
    for line in apply(writes) + notes:
        print("sysctl: " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
