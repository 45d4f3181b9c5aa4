"""The agent's side of fim (haloagent.fim): the walk of real temporary trees under --root,
the objects it reports (types, modes, owners, sizes, link targets, SHA-256 checked against
coreutils' sha256sum), globs, exclusions, symlinks never followed, files that cannot be
read, a 3 GiB sparse file, the chunked upload and the command's result through a small
in-process fake grid."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gridhelpers import JsonHandler, LoopbackServer
from haloagent import fim
from haloagent.agent import Agent, AgentConfig
from haloagent.scan import Deadline

AGENT_SRC = Path(__file__).resolve().parents[1] / "src"
PYTHON38 = "/root/.pyenv/versions/3.8.18/bin/python3.8"  # the oldest Python the agent supports
KEY = "0123456789abcdef0123456789abcdef"


def sha256sum(path) -> str:
    """coreutils' answer, independent of the code under test."""
    return subprocess.run(["sha256sum", str(path)], check=True, capture_output=True,
                          text=True).stdout.split()[0]


def expected(root, host_path, rule_id="r1", policy_id="p1"):
    """The object the agent must report for host_path, from os.lstat / readlink / sha256sum."""
    real = os.path.join(str(root), host_path.lstrip("/"))
    st = os.lstat(real)
    obj = {"policy_id": policy_id, "rule_id": rule_id, "path": host_path, "type": "other",
           "sha256": None, "mode": "%04o" % stat.S_IMODE(st.st_mode), "uid": st.st_uid,
           "gid": st.st_gid, "size": st.st_size, "link_target": None, "error": None}
    if stat.S_ISREG(st.st_mode):
        obj.update(type="file", sha256=sha256sum(real))
    elif stat.S_ISDIR(st.st_mode):
        obj.update(type="dir", size=None)  # a directory's size is the file system's bookkeeping
    elif stat.S_ISLNK(st.st_mode):
        obj.update(type="link", link_target=os.readlink(real))
    return obj


def rules(*specs, policy_id="p1"):
    """A command's fim_policies from (target, recurse, exclusions) tuples: rules r1, r2, ..."""
    return [{"id": policy_id, "compare": [], "rules": [
        {"id": "r%d" % i, "target": t, "recurse": rec, "exclusions": ex, "critical": False}
        for i, (t, rec, ex) in enumerate(specs, 1)]}]


def run(root, fim_policies, threads=2):
    policies = fim.parse_policies({"fim_policies": fim_policies})
    return list(fim.objects(policies, str(root), Deadline(None), threads))


def record_opens(monkeypatch):
    """The paths os.open is called with from now on (the test's end undoes it)."""
    opened = []
    real_open = os.open

    def recording(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording)
    return opened


def paths(objects):
    return [o["path"] for o in objects]


@pytest.fixture
def root(tmp_path):
    """A small system: files with distinct modes and owners, a subtree, symlinks (one to an
    absolute path that exists on this machine but not in the tree), a FIFO and a socket."""
    r = tmp_path / "root"
    etc = r / "etc"
    (etc / "app" / "conf.d").mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    os.chmod(etc / "shadow", 0o640)
    if os.geteuid() == 0:
        os.chown(etc / "shadow", 1234, 42)
    (etc / "app" / "app.conf").write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # > one block
    (etc / "app" / "conf.d" / "10-x.conf").write_text("x=1\n")
    (etc / "app" / "empty").write_bytes(b"")
    (etc / "app" / "suid").write_bytes(b"#!/bin/sh\n")
    os.chmod(etc / "app" / "suid", 0o4755)
    (etc / "app" / "tmp").mkdir()
    os.chmod(etc / "app" / "tmp", 0o1777)
    os.symlink("/etc/passwd", etc / "app" / "abs-link")  # absolute: the tree's own /etc/passwd
    os.symlink("conf.d", etc / "app" / "dir-link")  # a directory link: never entered
    os.symlink(str(tmp_path / "outside"), etc / "app" / "escape")  # a path of the host, not the tree
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("host file\n")
    os.mkfifo(str(etc / "app" / "fifo"))
    return r


# -- the walk ---------------------------------------------------------------------------------
def test_a_recursive_directory_rule_reports_every_object_with_its_real_values(root, monkeypatch):
    opened = record_opens(monkeypatch)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "etc" / "app" / "sock"))
    try:
        objects = run(root, rules(("/etc", True, [])))
    finally:
        sock.close()
    # parents before children, names sorted; directory links are reported, never entered
    assert paths(objects) == [
        "/etc", "/etc/passwd", "/etc/shadow",
        "/etc/app", "/etc/app/abs-link", "/etc/app/app.conf", "/etc/app/dir-link", "/etc/app/empty",
        "/etc/app/escape", "/etc/app/fifo", "/etc/app/sock", "/etc/app/suid",
        "/etc/app/conf.d", "/etc/app/conf.d/10-x.conf", "/etc/app/tmp"]
    assert objects == [expected(root, p) for p in paths(objects)]
    by_path = {o["path"]: o for o in objects}
    assert by_path["/etc/app/suid"]["mode"] == "4755" and by_path["/etc/app/tmp"]["mode"] == "1777"
    assert by_path["/etc/shadow"]["mode"] == "0640"
    if os.geteuid() == 0:
        assert (by_path["/etc/shadow"]["uid"], by_path["/etc/shadow"]["gid"]) == (1234, 42)
    assert by_path["/etc/app/app.conf"]["size"] == 3 * 1024 * 1024 + 17
    assert by_path["/etc/app/empty"]["sha256"] == hashlib.sha256(b"").hexdigest()
    assert by_path["/etc/app/escape"]["link_target"] == str(root.parent / "outside")
    for other in ("/etc/app/fifo", "/etc/app/sock"):
        assert (by_path[other]["type"], by_path[other]["sha256"]) == ("other", None)
    # only regular files were opened: no FIFO, socket, link or directory
    files = {str(root) + o["path"] for o in objects if o["type"] == "file"}
    assert set(opened) == files


def test_a_device_node_is_other_and_never_opened(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    (tmp_path / "dev").mkdir()
    try:
        os.mknod(str(tmp_path / "dev" / "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("this container does not allow mknod")
    os.chmod(str(tmp_path / "dev" / "null"), 0o666)  # mknod's mode went through the umask
    opened = record_opens(monkeypatch)
    [obj] = run(tmp_path, rules(("/dev/null", False, [])))
    assert (obj["type"], obj["sha256"], obj["mode"], obj["error"]) == ("other", None, "0666", None)
    assert opened == []


def test_recurse_false_is_the_directory_and_its_direct_children(root):
    objects = run(root, rules(("/etc", False, [])))
    assert paths(objects) == ["/etc", "/etc/app", "/etc/passwd", "/etc/shadow"]
    assert objects[1] == expected(root, "/etc/app")  # a child directory is reported, not listed


def test_a_file_target_and_a_missing_target(root):
    objects = run(root, rules(("/etc/passwd", True, []), ("/etc/nothing", True, []),
                              ("/nowhere/at/all", False, [])))
    assert objects == [expected(root, "/etc/passwd")]


def test_parents_of_a_target_resolve_inside_the_root_and_the_target_itself_is_not_followed(root, tmp_path):
    (root / "opt" / "app").mkdir(parents=True)
    (root / "opt" / "app" / "settings").write_text("a=1\n")
    os.symlink("/opt/app", root / "etc" / "linked")  # absolute: /opt/app of the tree
    objects = run(root, rules(("/etc/linked/settings", False, []), ("/etc/linked", True, []),
                              ("/etc/app/escape/secret", False, []), ("/etc/app/escape", True, [])))
    settings = dict(expected(root, "/opt/app/settings"), path="/etc/linked/settings")
    linked = dict(expected(root, "/etc/linked", rule_id="r2"))
    escape = expected(root, "/etc/app/escape", rule_id="r4")
    # the host's tmp_path/outside/secret is never reached: inside the root that path is missing
    assert objects == [settings, linked, escape]
    assert linked["link_target"] == "/opt/app" and escape["type"] == "link"


def test_globs_match_each_component_like_the_shell(root):
    (root / "etc" / "a.conf").write_text("a\n")
    (root / "etc" / "b.conf").write_text("b\n")
    (root / "etc" / ".hidden.conf").write_text("h\n")
    (root / "etc" / "x.conf.d").mkdir()
    (root / "etc" / "x.conf.d" / "inner").write_text("i\n")
    for site in ("alpha", "beta", "gamma"):
        (root / "srv" / site).mkdir(parents=True)
        (root / "srv" / site / "config").write_text(site + "\n")
    objects = run(root, rules(("/etc/*.conf", False, []), ("/srv/*/config", False, []),
                              ("/srv/[ab]*", False, []), ("/etc/.h?dden.conf", False, [])))
    assert paths(objects) == ["/etc/a.conf", "/etc/b.conf", "/srv/alpha/config",
                              "/srv/beta/config", "/srv/gamma/config",
                              "/srv/alpha", "/srv/beta",  # r3: the directories and their children,
                              "/etc/.hidden.conf"]  # except config, already r2's
    assert [o["rule_id"] for o in objects] == ["r1", "r1", "r2", "r2", "r2", "r3", "r3", "r4"]
    assert objects[0] == expected(root, "/etc/a.conf")


def test_exclusions_match_the_full_path_or_the_basename_and_drop_a_whole_subtree(root):
    (root / "var" / "log" / "app").mkdir(parents=True)
    (root / "var" / "log" / "app" / "x.log").write_text("1\n")
    (root / "var" / "log" / "app" / "keep.txt").write_text("2\n")
    (root / "var" / "log" / "cache" / "deep").mkdir(parents=True)
    (root / "var" / "log" / "cache" / "deep" / "f").write_text("3\n")
    (root / "var" / "log" / "skip").mkdir()
    (root / "var" / "log" / "skip" / "g").write_text("4\n")
    (root / "var" / "log" / "top.log").write_text("5\n")
    listed = run(root, rules(("/var/log", True, ["*.log", "cache", "/var/log/skip/*"])))
    assert paths(listed) == ["/var/log", "/var/log/app", "/var/log/app/keep.txt", "/var/log/skip"]
    # the public API's form, one string with commas and newlines, means the same
    as_text = run(root, rules(("/var/log", True, "*.log, cache\n/var/log/skip/*")))
    assert as_text == listed


def test_a_path_of_two_rules_is_reported_once_by_the_first_and_once_per_policy(root):
    objects = run(root, rules(("/etc/passwd", False, []), ("/etc", False, [])))
    assert [(o["path"], o["rule_id"]) for o in objects] == [
        ("/etc/passwd", "r1"), ("/etc", "r2"), ("/etc/app", "r2"), ("/etc/shadow", "r2")]
    objects = run(root, rules(("/etc", True, []), ("/etc/app/conf.d", True, []), ("/etc/app/*", False, [])))
    assert {o["rule_id"] for o in objects} == {"r1"} and len(objects) == len(set(paths(objects)))
    # what the first rule excluded is the next rule's
    objects = run(root, rules(("/etc", False, ["shadow"]), ("/etc/shadow", False, [])))
    assert [(o["path"], o["rule_id"]) for o in objects][-1] == ("/etc/shadow", "r2")
    # a path under a directory link is not the first rule's (its walk does not enter links)
    objects = run(root, rules(("/etc/app", True, []), ("/etc/app/dir-link/10-x.conf", False, [])))
    assert objects[-1] == dict(expected(root, "/etc/app/conf.d/10-x.conf", rule_id="r2"),
                               path="/etc/app/dir-link/10-x.conf")
    two = rules(("/etc/passwd", False, []), policy_id="p1") + rules(("/etc/passwd", False, []), policy_id="p2")
    assert [(o["policy_id"], o["path"]) for o in run(root, two)] == [
        ("p1", "/etc/passwd"), ("p2", "/etc/passwd")]


def test_a_name_that_is_not_utf8_is_reported_with_escapes(tmp_path):
    (tmp_path / "d").mkdir()
    with open(os.path.join(os.fsencode(str(tmp_path / "d")), b"caf\xe9"), "wb") as handle:
        handle.write(b"x")
    [_, obj] = run(tmp_path, rules(("/d", True, [])))
    assert obj["path"] == "/d/caf\\xe9" and obj["sha256"] == hashlib.sha256(b"x").hexdigest()
    json.dumps(obj).encode("utf-8")  # sendable


# -- what cannot be read ---------------------------------------------------------------------
CHILD = r"""
import json, sys
from haloagent import fim
from haloagent.scan import Deadline
policies = fim.parse_policies({"fim_policies": json.loads(sys.argv[2])})
print(json.dumps(list(fim.objects(policies, sys.argv[1], Deadline(None), 2))))
"""


def test_unreadable_files_and_directories_have_no_hash_and_the_error():
    """Real permission errors: as root (the test machine) the walk runs in a child process
    as nobody, otherwise here with the modes removed."""
    top = tempfile.mkdtemp(prefix="fim-unreadable.")
    try:
        os.chmod(top, 0o755)
        os.mkdir(os.path.join(top, "data"))
        for name in ("locked", "open"):
            with open(os.path.join(top, "data", name), "w") as handle:
                handle.write(name)
        os.mkdir(os.path.join(top, "data", "closed"))
        with open(os.path.join(top, "data", "closed", "inside"), "w") as handle:
            handle.write("x")
        os.mkdir(os.path.join(top, "data", "nosearch"))  # its names can be listed, not stat'ed
        with open(os.path.join(top, "data", "nosearch", "hidden"), "w") as handle:
            handle.write("x")
        os.chmod(os.path.join(top, "data", "locked"), 0)
        os.chmod(os.path.join(top, "data", "closed"), 0)
        os.chmod(os.path.join(top, "data", "nosearch"), 0o644)
        policies = rules(("/data", True, []))
        if os.geteuid() == 0:
            child = subprocess.run(["/usr/bin/python3", "-c", CHILD, top, json.dumps(policies)],
                                   user=65534, group=65534, extra_groups=[], capture_output=True,
                                   text=True, timeout=60,
                                   env={"PYTHONPATH": str(AGENT_SRC), "PATH": "/usr/bin:/bin"})
            assert child.returncode == 0, child.stderr
            objects = json.loads(child.stdout)
        else:
            objects = run(top, policies)
        by_path = {o["path"]: o for o in objects}
        assert sorted(by_path) == ["/data", "/data/closed", "/data/locked", "/data/nosearch",
                                   "/data/nosearch/hidden", "/data/open"]
        locked = by_path["/data/locked"]
        assert (locked["type"], locked["sha256"], locked["error"], locked["mode"], locked["size"]) == \
            ("file", None, "permission denied", "0000", 6)
        assert by_path["/data/closed"]["error"] == "cannot list the directory: permission denied"
        assert by_path["/data/open"]["sha256"] == hashlib.sha256(b"open").hexdigest()
        assert by_path["/data/nosearch"]["error"] is None
        assert by_path["/data/nosearch/hidden"] == {
            "policy_id": "p1", "rule_id": "r1", "path": "/data/nosearch/hidden", "type": "other",
            "sha256": None, "mode": None, "uid": None, "gid": None, "size": None, "link_target": None,
            "error": "cannot stat: permission denied"}
    finally:
        for name in ("closed", "nosearch"):
            os.chmod(os.path.join(top, "data", name), 0o755)
        shutil.rmtree(top)


@pytest.mark.parametrize("swap", ["fifo", "dir", "link"])
def test_a_file_swapped_for_something_else_after_the_walk_is_never_read(tmp_path, swap):
    """What the walk saw as a regular file is opened without following a link and without
    blocking, and checked again on the descriptor: the swap is reported, nothing is read."""
    path = tmp_path / "f"
    path.write_text("content\n")
    item = ("p1", "r1", "/f", str(path), os.lstat(path), None)
    path.unlink()
    if swap == "fifo":
        os.mkfifo(str(path))
    elif swap == "dir":
        path.mkdir()
    else:
        os.symlink("/etc/passwd", path)
    obj = fim._measure(item, bytearray(fim.BLOCK), Deadline(None))
    assert obj["type"] == "file" and obj["sha256"] is None
    assert obj["error"] == ("too many levels of symbolic links" if swap == "link"
                            else "not a regular file any more")


# -- big files ---------------------------------------------------------------------------------
# `sha256sum` of this 3 GiB file, and of `(head -c 3221225467 /dev/zero; printf 'tail\n')`: both
# give this (computed once, 40-60 s here, rather than at every run)
BIG_SHA256 = "622b2fb1778c3a7ffaed5d3a6113aa19d2be2a87aecf4778ee2da6fd072253b9"


def test_a_3_gib_sparse_file_is_hashed_in_blocks_without_loading_it(tmp_path):
    big = tmp_path / "big"
    size = 3 * 1024 ** 3
    with open(big, "wb") as handle:
        handle.truncate(size - 5)
        handle.seek(size - 5)
        handle.write(b"tail\n")  # the last block is short and not zeros
    if os.stat(big).st_blocks * 512 > 64 * 1024 * 1024:
        pytest.skip("this filesystem does not keep the file sparse")
    tracemalloc.start()
    try:
        [obj] = run(tmp_path, rules(("/big", False, [])))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (obj["type"], obj["size"], obj["sha256"]) == ("file", size, BIG_SHA256)
    assert peak < 16 * 1024 * 1024  # two 1 MiB buffers and bookkeeping, not the file


# -- the time limit ----------------------------------------------------------------------------
def test_a_scan_past_its_time_limit_fails_with_the_reason(tmp_path, monkeypatch):
    """A read that never returns (a hung network filesystem) does not hold the command: at
    the time limit the scan fails, and the stuck hashing thread is left behind."""
    (tmp_path / "f").write_text("x")
    release = threading.Event()
    real_readv = os.readv
    monkeypatch.setattr(os, "readv", lambda fd, buffers: release.wait(60) and real_readv(fd, buffers))
    sent = []
    try:
        result = fim.scan({"fim_policies": rules(("/f", False, []))}, str(tmp_path), 0.5,
                          sent.append, lambda: "2026-01-01T00:00:00.000000Z")
    finally:
        release.set()
    assert result == {"status": "failed", "result": "fim scan did not finish within the scan's "
                                                    "time limit of 0.5 s (0 objects sent)"}
    assert sent == []


def test_the_walk_stops_at_the_time_limit(root):
    deadline = Deadline(10)
    deadline.at = 0  # already reached
    policies = fim.parse_policies({"fim_policies": rules(("/etc", True, []))})
    with pytest.raises(fim.FimTimeout):
        list(fim.walk(policies, fim.RootFS(str(root)), deadline))


# -- chunks and the result ---------------------------------------------------------------------
def test_5001_objects_go_in_two_chunks_then_the_result_counts_them(tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    for i in range(5000):
        (many / ("f%04d" % i)).write_bytes(b"%d" % i)
    chunks = []
    times = iter(["2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:01.000000Z"])
    result = fim.scan({"purpose": "baseline", "fim_policies": rules(("/many", True, []))},
                      str(tmp_path), 240, chunks.append, lambda: next(times))
    assert [len(c) for c in chunks] == [5000, 1]
    assert result == {"status": "completed", "scan": {
        "module": "fim", "agent_started_at": "2026-01-01T00:00:00.000000Z",
        "agent_completed_at": "2026-01-01T00:00:01.000000Z", "objects_sent": 5001}}
    sent = [o for c in chunks for o in c]
    assert sent[0]["path"] == "/many" and sent[-1]["path"] == "/many/f4999"
    assert sent[4321]["sha256"] == hashlib.sha256(b"4320").hexdigest()


def test_long_paths_make_smaller_chunks_under_the_byte_limit():
    objects = [{"policy_id": "p", "rule_id": "r", "path": "/" + "\u00e9" * 1000 + str(i), "type": "file",
                "sha256": "0" * 64, "mode": "0644", "uid": 0, "gid": 0, "size": 1,
                "link_target": None, "error": None} for i in range(3000)]
    chunks = list(fim.chunks(iter(objects)))
    assert len(chunks) > 1 and [o for c in chunks for o in c] == objects
    assert all(len(json.dumps({"objects": c}).encode()) <= fim.CHUNK_BYTES for c in chunks)


def test_a_malformed_command_fails_with_the_reason(tmp_path):
    result = fim.scan({"fim_policies": [{"id": "p1", "rules": [{"id": "r1", "target": ""}]}]},
                      str(tmp_path), 240, lambda chunk: None, lambda: "t")
    assert result == {"status": "failed", "result": "fim scan: policy p1: rule r1 has no target"}


def test_no_policy_sends_nothing_and_completes_with_zero(tmp_path):
    sent = []
    result = fim.scan({"fim_policies": []}, str(tmp_path), 240, sent.append, lambda: "t")
    assert sent == [] and result["status"] == "completed" and result["scan"]["objects_sent"] == 0


@pytest.mark.skipif(not os.path.exists(PYTHON38), reason="no Python 3.8 here")
def test_python38_reports_the_same_objects(root):
    policies = rules(("/etc", True, ["*.conf"]), ("/etc/app/abs-link", False, []))
    child = subprocess.run([PYTHON38, "-c", CHILD, str(root), json.dumps(policies)], capture_output=True,
                           text=True, timeout=60, env={"PYTHONPATH": str(AGENT_SRC)})
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == run(root, policies)


# -- through the agent -------------------------------------------------------------------------
class FakeGrid(LoopbackServer):
    """Registration, one poll's commands, start, fim_objects and result (PROTOCOL.md)."""

    def __init__(self):
        self.queue, self.chunks, self.results, self.starts = [], [], {}, []
        self.chunk_answers = []  # (status, error) for the next chunk posts, then 204
        grid = self

        class Handler(JsonHandler):
            def do_POST(self):
                parts = urlsplit(self.path).path.split("/")
                body = self.body()
                if parts[-1] == "register":
                    return self.reply(201, {"server_id": "a" * 32, "agent_secret": "s", "group_id": "g"})
                if self.headers.get("Authorization") != "Agent %s:s" % ("a" * 32):
                    return self.reply(401, {"error": "invalid agent credential"})
                if parts[-1] == "start":
                    grid.starts.append(parts[-2])
                    return self.reply(204)
                if parts[-1] == "fim_objects":
                    grid.chunks.append((parts[-2], body))
                    if grid.chunk_answers:
                        status, error = grid.chunk_answers.pop(0)
                        return self.reply(status, {"error": error})
                    return self.reply(204)
                if parts[-1] == "result":
                    grid.results[parts[-2]] = body
                    return self.reply(204)
                return self.reply(404, {"error": "not found"})

            def do_GET(self):
                commands, grid.queue = grid.queue, []
                return self.reply(200, {"commands": commands, "firewall_version": 1})

        super().__init__(Handler)


@pytest.fixture
def grid():
    with FakeGrid() as fake:
        yield fake


def agent(grid, tmp_path, root):
    return Agent(AgentConfig(grid=grid.url, agent_key=KEY, state_dir=str(tmp_path / "state"),
                             root=str(root), firewall=False, once=True, poll_wait=0))


def test_the_agent_uploads_the_objects_then_the_result(grid, tmp_path, root, monkeypatch):
    monkeypatch.setattr(Agent, "_sleep", lambda self, seconds: None)
    grid.chunk_answers = [(503, "try again")]  # the first try of the chunk: retried
    grid.queue = [{"id": "cmd-1", "name": "fim", "purpose": "baseline",
                   "fim_policies": rules(("/etc", False, []), ("/etc/app/app.conf", False, []))}]
    assert agent(grid, tmp_path, root).run() == 0
    assert grid.starts == ["cmd-1"]
    assert [cid for cid, _ in grid.chunks] == ["cmd-1", "cmd-1"]
    assert grid.chunks[0] == grid.chunks[1]
    want = [expected(root, p) for p in ("/etc", "/etc/app", "/etc/passwd", "/etc/shadow")]
    want.append(expected(root, "/etc/app/app.conf", rule_id="r2"))
    assert grid.chunks[1][1] == {"objects": want}
    result = grid.results["cmd-1"]
    assert result["status"] == "completed"
    assert (result["scan"]["module"], result["scan"]["objects_sent"]) == ("fim", 5)
    assert set(result["scan"]) == {"module", "agent_started_at", "agent_completed_at", "objects_sent"}


def test_a_refused_chunk_fails_the_command_and_a_closed_one_sends_nothing(grid, tmp_path, root):
    grid.chunk_answers = [(413, "Request body too large")]
    grid.queue = [{"id": "cmd-1", "name": "fim", "purpose": "scan",
                   "fim_policies": rules(("/etc", True, []))}]
    assert agent(grid, tmp_path, root).run() == 0
    assert grid.results["cmd-1"] == {"status": "failed", "result": (
        "could not send the fim objects: POST /agent/v1/commands/cmd-1/fim_objects: "
        "HTTP 413 Request body too large")}
    grid.chunk_answers = [(409, "command cmd-2 is already failed")]
    grid.queue = [{"id": "cmd-2", "name": "fim", "purpose": "scan",
                   "fim_policies": rules(("/etc", True, []))}]
    assert agent(grid, tmp_path, root).run() == 0
    assert "cmd-2" not in grid.results and len(grid.chunks) == 2
