"""`haloagent scan` in a pipeline: image archives (OCI layout, docker save) built here with
tarfile, hostile layers refused, exit codes, JSON / JUnit reports, policies from a real grid."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from halodev.trees import make_compliant_tree, make_failing_tree
from haloagent import image as image_mod
from haloagent import report, scan
from haloagent.checks import ScanContext

POLICIES = Path(__file__).resolve().parents[1] / "src" / "halogrid" / "policies"
AGENT_SRC = Path(__file__).resolve().parents[1] / "src"
PYTHON38 = "/root/.pyenv/versions/3.8.18/bin/python3.8"
PYTHONS = [sys.executable, pytest.param(PYTHON38, marks=pytest.mark.skipif(
    not os.path.exists(PYTHON38), reason="no Python 3.8 here"))]
SECRET_MARK = "do-not-print-"


# -- building images ---------------------------------------------------------------------------
def entry(name, data=b"", kind=tarfile.REGTYPE, linkname="", mode=0o644, uid=0, gid=0):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid, info.gid = kind, linkname, mode, uid, gid
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    return info, data if kind == tarfile.REGTYPE else None


def d(name, mode=0o755):
    return entry(name, kind=tarfile.DIRTYPE, mode=mode)


def layer(entries):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def tree_layer(root):
    """A layer of everything under ``root`` (owners and modes as on disk)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name in sorted(os.listdir(root)):
            tar.add(os.path.join(root, name), arcname=name)
    return out.getvalue()


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def oci_archive(path, layers, ref="app:1", corrupt=False):
    """An oci-archive: oci-layout, index.json, gzip layers, config and manifest as blobs."""
    blobs = {}

    def blob(data, media):
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media, "digest": "sha256:" + digest, "size": len(data)}

    descriptors = [blob(gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
                   for data in layers]
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]}}
    ).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "config": config, "layers": descriptors}).encode(),
                    "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": ref}
    if corrupt:  # the first layer's bytes no longer match its digest
        first = descriptors[0]["digest"].split(":")[1]
        blobs[first] = gzip.compress(layers[0] + b"\0" * 1024, mtime=0)
    with tarfile.open(path, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": [manifest]}).encode())
        for digest, data in blobs.items():
            _add(tar, "blobs/sha256/" + digest, data)
    return str(path)


def docker_archive(path, layers, tag="app:1"):
    """A classic `docker save` tar: manifest.json, <id>/layer.tar."""
    names = []
    with tarfile.open(path, "w") as tar:
        for number, data in enumerate(layers):
            name = "%064x/layer.tar" % (number + 1)
            _add(tar, name, data)
            names.append(name)
        _add(tar, "cfg.json", b'{"os": "linux"}')
        _add(tar, "manifest.json", json.dumps([{"Config": "cfg.json", "RepoTags": [tag],
                                                 "Layers": names}]).encode())
    return str(path)


ARCHIVES = {"oci": oci_archive, "docker": docker_archive}


def haloagent(python, *args, env=None, **kw):
    environ = dict(os.environ, PYTHONPATH=str(AGENT_SRC))
    environ.pop("HALO_API_KEY", None)
    environ.pop("HALO_API_SECRET_KEY", None)
    environ.update(env or {})
    return subprocess.run([python, "-m", "haloagent", "scan"] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ, timeout=120,
                          universal_newlines=True, **kw)


# -- layers applied in order ---------------------------------------------------------------------
LOWER = [d("etc"), entry("etc/a", b"old\n"), entry("etc/b", b"b\n"),
         d("opt"), d("opt/app"), entry("opt/app/x", b"x"), d("opt/app/sub"), entry("opt/app/sub/y", b"y"),
         d("var"), d("var/cache"), entry("var/cache/old", b"o"),
         d("usr"), d("usr/lib"), entry("lib", kind=tarfile.SYMTYPE, linkname="usr/lib"),
         entry("usr/bin/tool", b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=1000),
         entry("dev/null", kind=tarfile.CHRTYPE), d("tmp", 0o1777), d("srv", 0o777)]
UPPER = [entry("etc/.wh.b"), entry("etc/a", b"new\n", mode=0o600),
         entry("opt/app/z", b"z"), entry("opt/app/.wh..wh..opq"),  # z is this layer's: kept
         entry("var/.wh.cache"),
         entry("lib/libx.so", b"elf"),  # through the image's own /lib -> usr/lib
         entry("etc/a-link", kind=tarfile.LNKTYPE, linkname="etc/a"),
         entry("etc/rel", kind=tarfile.SYMTYPE, linkname="../usr/lib/libx.so")]


@pytest.mark.parametrize("kind", sorted(ARCHIVES))
def test_layers_are_applied_in_order(tmp_path, kind):
    archive = ARCHIVES[kind](tmp_path / "img.tar", [layer(LOWER), layer(UPPER)])
    with image_mod.unpack(archive, workdir=str(tmp_path)) as img:
        fs = img.fs()
        tree = Path(fs.root)
        assert fs.read_text("/etc/a") == "new\n"
        assert not fs.exists("/etc/b")  # whiteout
        assert sorted(os.listdir(tree / "opt/app")) == ["z"]  # opaque dir: lower x, sub gone
        assert sorted(os.listdir(tree / "var")) == []  # a whited-out directory, with its content
        assert (tree / "usr/lib/libx.so").read_bytes() == b"elf" and os.path.islink(tree / "lib")
        assert fs.read_text("/etc/rel") == "elf"
        assert os.path.samefile(tree / "etc/a-link", tree / "etc/a")
        assert not os.path.lexists(tree / "dev/null")  # device nodes skipped
        assert not any(n.startswith(".wh.") for _d, dirs, files in os.walk(tree) for n in dirs + files)
        # owners and modes are the image's, whoever unpacked it
        st = fs.stat("/usr/bin/tool")
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o4755)
        assert fs.stat("/etc/a").st_mode & 0o7777 == 0o600
        assert fs.stat("/etc/a-link").st_mode & 0o7777 == 0o600
        assert fs.stat("/usr/bin").st_uid == 0  # made for a member: root's, 0755
        # on disk, the sticky check's walk sees the image's bits
        assert os.lstat(tree / "tmp").st_mode & 0o1777 == 0o1777
        assert os.lstat(tree / "srv").st_mode & 0o7777 == 0o777
        root = img.root
    assert not os.path.exists(root)  # removed on close


def test_a_later_layer_replaces_a_directory_with_a_file_and_back(tmp_path):
    first = layer([d("etc"), d("etc/conf"), entry("etc/conf/x", b"x"), entry("etc/f", b"f")])
    second = layer([entry("etc/conf", b"now a file"), d("etc/f"), entry("etc/f/inside", b"i")])
    with image_mod.unpack(oci_archive(tmp_path / "i.tar", [first, second]), workdir=str(tmp_path)) as img:
        fs = img.fs()
        assert fs.read_text("/etc/conf") == "now a file"
        assert fs.read_text("/etc/f/inside") == "i"


# -- hostile archives ----------------------------------------------------------------------------
def hostile_cases(outside):
    """(name, layers, what the error names). ``outside`` is a directory next to the work dir."""
    up = "../../../" + outside.name  # from <work>/haloagent-image-*/rootfs to <tmp>/<outside>
    return {
        "dotdot path": ([layer([entry(up + "/pwned", b"x")])], "leaves the image root"),
        "dotdot inside": ([layer([d("etc"), entry("etc/../../pwned", b"x")])], "leaves the image root"),
        "absolute path": ([layer([entry(str(outside / "pwned"), b"x")])], "absolute"),
        "symlink escape then write": ([layer([entry("link", kind=tarfile.SYMTYPE, linkname=up)]),
                                       layer([entry("link/pwned", b"x")])], "leaves the image root"),
        "symlink escape, same layer": ([layer([d("a"), entry("a/l", kind=tarfile.SYMTYPE, linkname="../../x"),
                                              entry("a/l/pwned", b"x")])], "leaves the image root"),
        "hard link outside": ([layer([entry("h", kind=tarfile.LNKTYPE, linkname=up + "/secret")])],
                              "hard link"),
        "hard link absolute": ([layer([entry("h", kind=tarfile.LNKTYPE,
                                             linkname=str(outside / "secret"))])], "hard link"),
        "hard link to nothing": ([layer([entry("h", kind=tarfile.LNKTYPE, linkname="etc/passwd")])],
                                 "not in the image"),
        "whiteout outside": ([layer([entry(up + "/.wh.secret")])], "leaves the image root"),
        # "/" is the image's root: s/<outside>/secret is not the host's file, and is not in the image
        "hard link through a symlink": ([layer([entry("s", kind=tarfile.SYMTYPE, linkname="/"),
                                               entry("h", kind=tarfile.LNKTYPE,
                                                     linkname="s" + str(outside / "secret"))])],
                                        "not in the image"),
    }


@pytest.mark.parametrize("case", sorted(hostile_cases(Path("/x/outside"))))
def test_hostile_archives_are_refused_and_nothing_leaks(tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    work = tmp_path / "work"
    work.mkdir()
    layers, message = hostile_cases(outside)[case]
    archive = oci_archive(tmp_path / "evil.tar", layers)
    done = haloagent(sys.executable, "--image", archive, "--policy", POLICIES / "debian.json",
                     "--junit", tmp_path / "junit.xml", env={"TMPDIR": str(work)})
    assert done.returncode == 2, done.stderr
    assert "refused" in done.stderr and message in done.stderr, done.stderr
    assert done.stdout == ""  # no report: no verdict on part of an image
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "keep"
    assert list(work.iterdir()) == []  # the unpacked part was removed
    suite = ET.parse(str(tmp_path / "junit.xml")).getroot()
    assert suite.get("errors") == "1" and "refused" in suite.find(".//error").get("message")


def test_an_absolute_symlink_means_the_images_own_root(tmp_path):
    """Not refused: /x in an image is the image's /x. A file written through it lands in the
    tree, never in the scanning machine's directory of that name."""
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = oci_archive(tmp_path / "i.tar", [
        layer([entry("link", kind=tarfile.SYMTYPE, linkname=str(outside))]),
        layer([entry("link/pwned", b"inside")])])
    with image_mod.unpack(archive, workdir=str(tmp_path)) as img:
        assert img.fs().read_text(str(outside / "pwned")) == "inside"
        assert img.fs().read_text("/link/pwned") == "inside"
        assert (Path(img.root) / "rootfs" / str(outside).lstrip("/") / "pwned").exists()
    assert list(outside.iterdir()) == []


def test_a_file_replacing_a_symlink_never_writes_through_it(tmp_path):
    """A later layer's file at a symlink's name replaces the link; the file the link named
    (here a path that exists on the scanning machine) is not touched."""
    secret = tmp_path / "secret"
    secret.write_text("keep")
    archive = docker_archive(tmp_path / "i.tar", [
        layer([d("etc"), entry("etc/conf", kind=tarfile.SYMTYPE, linkname=str(secret))]),
        layer([entry("etc/conf", b"from the image")])])
    with image_mod.unpack(archive, workdir=str(tmp_path)) as img:
        assert img.fs().read_text("/etc/conf") == "from the image"
        assert not os.path.islink(os.path.join(img.fs().root, "etc/conf"))
    assert secret.read_text() == "keep"


def test_a_corrupt_layer_and_a_non_image_are_refused(tmp_path):
    corrupt = oci_archive(tmp_path / "c.tar", [layer([entry("a", b"a")])], corrupt=True)
    with pytest.raises(image_mod.ImageError, match="does not match its digest"):
        image_mod.unpack(corrupt, workdir=str(tmp_path))
    plain = tmp_path / "plain.tar"
    plain.write_bytes(layer([entry("etc/passwd", b"root:x:0:0::/:/bin/sh\n")]))
    with pytest.raises(image_mod.ImageError, match="neither an OCI image layout"):
        image_mod.unpack(str(plain), workdir=str(tmp_path))
    (tmp_path / "junk").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(image_mod.ImageError, match="not a readable tar"):
        image_mod.unpack(str(tmp_path / "junk"), workdir=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tar", "junk", "plain.tar"]


def test_an_archive_with_two_images_needs_a_ref(tmp_path):
    one = layer([entry("which", b"one")])
    two = layer([entry("which", b"two")])
    with tarfile.open(tmp_path / "both.tar", "w") as tar:
        for number, data in enumerate((one, two), 1):
            _add(tar, "%064x/layer.tar" % number, data)
        _add(tar, "manifest.json", json.dumps([
            {"Config": "c", "RepoTags": ["app:1"], "Layers": ["%064x/layer.tar" % 1]},
            {"Config": "c", "RepoTags": ["app:2"], "Layers": ["%064x/layer.tar" % 2]}]).encode())
    with pytest.raises(image_mod.ImageError, match="holds 2 images.*--image-ref"):
        image_mod.unpack(str(tmp_path / "both.tar"), workdir=str(tmp_path))
    with image_mod.unpack(str(tmp_path / "both.tar"), ref="app:2", workdir=str(tmp_path)) as img:
        assert img.fs().read_text("/which") == "two"


# -- scanning an image: verdicts, reports ---------------------------------------------------------
@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The compliant tree as a base layer; a layer that plants a drop-in enabling root login;
    a layer that deletes it again (a whiteout)."""
    tmp = tmp_path_factory.mktemp("images")
    base = tree_layer(make_compliant_tree(str(tmp / "good")))
    bad = layer([entry("etc/ssh/sshd_config.d/50-cloud.conf", b"PermitRootLogin yes\n")])
    fixed = layer([entry("etc/ssh/sshd_config.d/.wh.50-cloud.conf")])
    failing = tree_layer(make_failing_tree(str(tmp / "bad")))
    return {
        "good-oci": oci_archive(tmp / "good-oci.tar", [base]),
        "good-docker": docker_archive(tmp / "good-docker.tar", [base]),
        "dropin": oci_archive(tmp / "dropin.tar", [base, bad]),
        "fixed": docker_archive(tmp / "fixed.tar", [base, bad, fixed]),
        "failing": oci_archive(tmp / "failing.tar", [failing]),
    }


@pytest.mark.parametrize("python", PYTHONS)
def test_image_scan_exit_codes_and_reports(tmp_path, images, python):
    policy = POLICIES / "debian.json"
    for name in ("good-oci", "good-docker", "fixed"):
        done = haloagent(python, "--image", images[name], "--policy", policy, "--format", "summary")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 failed" in done.stdout and "verdict: PASS (exit 0)" in done.stdout

    out_json, out_junit = tmp_path / "r.json", tmp_path / "r.xml"
    done = haloagent(python, "--image", images["dropin"], "--policy", policy, "--format", "summary",
                     "--json", out_json, "--junit", out_junit)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED [critical] SSH root login is disabled or key-only" in done.stdout
    assert "actual yes" in done.stdout and "verdict: FAIL (exit 1)" in done.stdout
    result = json.loads(out_json.read_text())
    assert result["verdict"] == {"exit_code": 1, "passed": False, "reason": "1 rule(s) failed (1 critical)"}
    assert result["critical_findings_count"] == 1 and result["counts"]["failed"] == 1
    assert "dropin.tar (OCI image app:1@sha256:" in result["target"]
    suite = ET.parse(str(out_junit)).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        str(len(result["findings"])), "1", "0")
    [failure] = suite.findall(".//failure")
    assert failure.get("type") == "critical" and "actual yes" in failure.get("message")

    # the default output: the JSON report on stdout (as before), the summary on stderr
    done = haloagent(python, "--image", images["failing"], "--policy", policy)
    assert done.returncode == 1
    assert json.loads(done.stdout)["critical_findings_count"] == 4  # as the same tree as --root
    assert "verdict: FAIL" in done.stderr


def test_image_and_root_scans_agree(tmp_path, images):
    """The engine is the same: findings of the failing image equal those of its tree."""
    policy = json.loads((POLICIES / "debian.json").read_text())["policy"]
    tree = make_failing_tree(str(tmp_path / "t"))
    on_tree = scan.scan_policies([policy], ScanContext(tree))
    with image_mod.unpack(images["failing"], workdir=str(tmp_path)) as img:
        ctx = ScanContext(img.root, str(tmp_path / "noproc"), live=False)
        ctx.fs = img.fs()
        on_image = scan.scan_policies([policy], ctx)
    assert [(f["rule_name"], f["status"]) for f in on_image] == [
        (f["rule_name"], f["status"]) for f in on_tree]


def policy_file(tmp_path, rules):
    path = tmp_path / ("p%s.json" % uuid.uuid4().hex[:6])
    path.write_text(json.dumps({"policy": {"name": "p", "rules": rules}}))
    return path


def presence(path, present=True):
    return {"object_type": "file_presence", "files": path, "present": present, "active": True}


@pytest.mark.parametrize("rules,code,reason", [
    ([{"name": "here", "checks": [presence("/etc/here")]}], 0, "every evaluated rule passed"),
    ([{"name": "here", "checks": [presence("/etc/here")]},
      {"name": "gone", "checks": [presence("/etc/here", present=False)]},
      {"name": "odd", "checks": [{"object_type": "quantum"}]}], 1, "1 rule(s) failed"),
    ([{"name": "here", "checks": [presence("/etc/here")]},
      {"name": "odd", "checks": [{"object_type": "quantum"}]}], 2, "could not be evaluated"),
    ([{"name": "sshd only", "applies_to": {"files": ["/usr/sbin/sshd"]},
       "checks": [presence("/etc/ssh/sshd_config")]}], 2, "evaluated no rule"),
    ([], 2, "evaluated no rule"),
])
def test_exit_codes_are_admissions_verdict(tmp_path, rules, code, reason):
    (tmp_path / "t/etc").mkdir(parents=True)
    (tmp_path / "t/etc/here").write_text("x")
    junit = tmp_path / "j.xml"
    done = haloagent(sys.executable, "--root", tmp_path / "t", "--policy", policy_file(tmp_path, rules),
                     "--format", "summary", "--junit", junit)
    assert done.returncode == code, done.stdout + done.stderr
    assert reason in done.stdout
    suite = ET.parse(str(junit)).getroot().find("testsuite")
    assert (int(suite.get("failures")) + int(suite.get("errors")) > 0) == (code != 0)
    if rules and "applies_to" in rules[0]:
        assert suite.get("skipped") == "1"  # not applicable: neither pass nor fail


def test_junit_survives_control_characters_in_a_file():
    findings = [{"rule_name": "banner \x01", "policy_id": "p", "critical": False, "status": "bad",
                 "details": [{"type": "file_string_presence", "target": "/etc/issue",
                              "expected": "no \\m", "actual": "Debian\x1b[0m \x00", "status": "bad"}]}]
    built = report.build(findings, scan.summarize(findings), "t", [{"id": "p", "name": "P"}])
    root = ET.fromstring(report.junit(built))
    assert root.find(".//failure").get("message").startswith("file_string_presence /etc/issue")
    assert root.find(".//testcase").get("classname") == "P"


def test_bad_input_exits_2(tmp_path):
    done = haloagent(sys.executable, "--root", tmp_path)
    assert done.returncode == 2 and "no policy" in done.stderr
    done = haloagent(sys.executable, "--image", tmp_path / "missing.tar", "--policy",
                     POLICIES / "debian.json")
    assert done.returncode == 2 and "not a readable tar archive" in done.stderr
    done = haloagent(sys.executable, "--group", "web", "--policy", POLICIES / "debian.json")
    assert done.returncode == 2 and "--group needs --grid" in done.stderr
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/here").write_text("x")
    passing = policy_file(tmp_path, [{"name": "here", "checks": [presence("/etc/here")]}])
    done = haloagent(sys.executable, "--root", tmp_path, "--policy", passing,
                     "--junit", tmp_path / "no/such/dir/j.xml")
    assert done.returncode == 2 and "cannot write" in done.stderr  # a pass nobody can see is none


# -- policies from a grid --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grid_group(grid, api):
    """A group with the default Debian policy, and a read-only API key for the pipeline."""
    body = json.loads((POLICIES / "debian.json").read_text())
    body["policy"]["name"] = "pipeline-%s" % uuid.uuid4().hex[:8]
    pol = api.ok("POST", "/v2/policies", body)["policy"]
    group = api.create_group("images-%s" % uuid.uuid4().hex[:8], policy_ids=[pol["id"]])
    empty = api.create_group("empty-%s" % uuid.uuid4().hex[:8])
    key_id, secret = grid.create_api_key(read_only=True)
    return {"group": group["name"], "empty": empty["name"], "policy": pol,
            "env": {"HALO_API_KEY": key_id, "HALO_API_SECRET_KEY": secret}}


@pytest.mark.parametrize("python", PYTHONS)
def test_policies_of_a_group_from_a_real_grid(grid, grid_group, images, tmp_path, python):
    env = grid_group["env"]
    common = ["--grid", grid.url, "--group", grid_group["group"]]
    done = haloagent(python, "--image", images["dropin"], "--json", tmp_path / "r.json", *common, env=env)
    assert done.returncode == 1, done.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["policies"] == [{"id": grid_group["policy"]["id"], "name": grid_group["policy"]["name"]}]
    assert {f["policy_id"] for f in result["findings"]} == {grid_group["policy"]["id"]}
    assert [f["rule_name"] for f in result["findings"] if f["status"] == "bad"] == [
        "SSH root login is disabled or key-only"]
    assert env["HALO_API_SECRET_KEY"] not in done.stdout + done.stderr

    done = haloagent(python, "--image", images["fixed"], *common, env=env)
    assert done.returncode == 0, done.stderr


def test_grid_errors_exit_2_without_printing_the_secret(grid, grid_group, images):
    common = ["--image", images["good-oci"], "--grid", grid.url]
    wrong = dict(grid_group["env"], HALO_API_SECRET_KEY=SECRET_MARK + uuid.uuid4().hex)
    done = haloagent(sys.executable, *common, "--group", grid_group["group"], env=wrong)
    assert done.returncode == 2 and "401" in done.stderr, done.stderr
    assert SECRET_MARK not in done.stdout + done.stderr
    done = haloagent(sys.executable, *common, "--group", "no-such-group", env=grid_group["env"])
    assert done.returncode == 2 and "no group named 'no-such-group'" in done.stderr
    done = haloagent(sys.executable, *common, "--group", grid_group["empty"], env=grid_group["env"])
    assert done.returncode == 2 and "has no configuration policy" in done.stderr
    done = haloagent(sys.executable, *common, "--group", grid_group["group"])
    assert done.returncode == 2 and "HALO_API_KEY" in done.stderr


def test_writes_stay_inside_even_without_the_link_check(tmp_path, monkeypatch):
    """Defence in depth: were an escaping symlink let through, a file written through it
    would still land inside the tree (parents are resolved chroot-style)."""
    monkeypatch.setattr(image_mod._Applier, "_check_link_target", lambda self, rel, target: None)
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = oci_archive(tmp_path / "i.tar", [
        layer([entry("link", kind=tarfile.SYMTYPE, linkname="../../../" + outside.name)]),
        layer([entry("link/pwned", b"x")])])
    with image_mod.unpack(archive, workdir=str(tmp_path)) as img:
        assert img.fs().read_text("/link/pwned") == "x"
    assert list(outside.iterdir()) == []
