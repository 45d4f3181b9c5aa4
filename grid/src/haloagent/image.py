"""Unpacking a container image archive into a directory that the scan engine reads.

``haloagent scan --image FILE`` takes an ``oci-archive`` tar (an OCI image layout:
``oci-layout``, ``index.json``, ``blobs/``) or a ``docker save`` tar (``manifest.json``),
applies the image's layers in order into a private temporary directory and scans that tree.

An image is untrusted input, so the layers are applied by this module, never by
``tarfile.extractall``:

* a member whose path is absolute or climbs out with ``..`` is refused (the whole image is
  refused: a scan of part of an image would be a verdict on something else);
* a symbolic link whose relative target climbs above the image's root is refused; absolute
  targets are kept, they mean the image's own root (the scan resolves them chroot-style);
* parent directories are resolved inside the tree, chroot-style (an image may write through
  its own ``/lib -> usr/lib``), and the last component is never followed: a file is always
  created anew (``O_EXCL | O_NOFOLLOW``), so nothing can be written outside the directory;
* a hard link must name a member already in the tree; device nodes are skipped;
* whiteouts ``.wh.<name>`` delete ``<name>`` of the lower layers, an opaque marker
  ``.wh..wh..opq`` empties its directory of what the lower layers put there;
* the OCI blobs' sha256 digests are verified before a layer is applied.

Owners and modes are recorded from the layers (``ImageFS``), not applied: the scanner need
not be root, and every file stays readable and removable by it. On disk a file keeps its
permission bits plus owner read/write (directories: plus owner rwx), so a walk over the
tree (world-writable directories) sees the image's bits.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import stat
import tarfile
import tempfile
from typing import Any, Dict, List, Optional, Set, Tuple

from .rootfs import RootFS

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_TREE_BYTES = 32 << 30  # a decompression bomb stops here, not at a full disk
_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]{64}|[0-9a-f]{128})$")
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "i686": "386", "i386": "386"}


class ImageError(Exception):
    """An archive that is not a readable image, or a layer that is refused."""


Meta = Tuple[int, int, int]  # permission bits (07777), uid, gid


class ImageFS(RootFS):
    """A RootFS whose owners and modes are the image's, as its layers recorded them."""

    def __init__(self, root: str, meta: Dict[str, Meta]) -> None:
        super().__init__(root)
        self.meta = meta

    def stat(self, path: str) -> os.stat_result:
        real = self.resolve(path)
        st = os.lstat(real)
        rel = os.path.relpath(real, self.root)
        recorded = self.meta.get("" if rel == "." else rel)
        if recorded is None:
            return st
        mode, uid, gid = recorded
        return os.stat_result((stat.S_IFMT(st.st_mode) | mode, st.st_ino, st.st_dev, st.st_nlink,
                               uid, gid, st.st_size, st.st_atime, st.st_mtime, st.st_ctime))


class UnpackedImage:
    """An image applied into a temporary directory; ``close()`` removes it."""

    def __init__(self, root: str, meta: Dict[str, Meta], description: str) -> None:
        self.root = root
        self.meta = meta
        self.description = description

    def fs(self) -> ImageFS:
        return ImageFS(os.path.join(self.root, "rootfs"), self.meta)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "UnpackedImage":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def unpack(archive: str, ref: Optional[str] = None, workdir: Optional[str] = None) -> UnpackedImage:
    """Apply the layers of the image in ``archive`` into a new temporary directory.

    ``ref``: which image of an archive that holds several (an OCI ``ref.name`` annotation
    or a docker ``RepoTags`` entry). Raises ImageError (nothing is left behind then)."""
    try:
        outer = tarfile.open(archive, "r:*")
    except (OSError, tarfile.TarError) as exc:
        raise ImageError("%s: not a readable tar archive (%s)" % (archive, exc))
    root = tempfile.mkdtemp(prefix="haloagent-image-", dir=workdir)
    try:
        with outer:
            layers, description = _layers(outer, ref)
            tree = os.path.join(root, "rootfs")
            os.mkdir(tree, 0o755)
            applier = _Applier(tree)
            for number, (member_name, digest) in enumerate(layers, 1):
                label = "layer %d (%s)" % (number, digest or member_name)
                blob = _member(outer, member_name, label)
                if digest:
                    _verify(outer, blob, digest, label)
                applier.apply(outer, blob, label)
        return UnpackedImage(root, applier.meta, description)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


# -- reading the archive's index ------------------------------------------------------------
def _member(outer: tarfile.TarFile, name: str, what: str) -> tarfile.TarInfo:
    name = name[2:] if name.startswith("./") else name
    for candidate in (name, "./" + name):
        try:
            member = outer.getmember(candidate)
        except KeyError:
            continue
        if not member.isfile():
            raise ImageError("%s: %s is not a regular file in the archive" % (what, name))
        return member
    raise ImageError("%s: %s is missing from the archive" % (what, name))


def _json(outer: tarfile.TarFile, name: str, what: str) -> Any:
    member = _member(outer, name, what)
    if member.size > 16 << 20:
        raise ImageError("%s: %s is too large for an image index" % (what, name))
    handle = outer.extractfile(member)
    assert handle is not None
    try:
        return json.loads(handle.read().decode("utf-8"))
    except ValueError as exc:
        raise ImageError("%s: %s is not JSON (%s)" % (what, name, exc))


def _has(outer: tarfile.TarFile, name: str) -> bool:
    names = set(outer.getnames())
    return name in names or "./" + name in names


def _blob_path(digest: Any, what: str) -> str:
    match = _DIGEST.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise ImageError("%s: invalid digest %r" % (what, digest))
    return "blobs/%s/%s" % match.groups()


def _layers(outer: tarfile.TarFile, ref: Optional[str]) -> Tuple[List[Tuple[str, str]], str]:
    """The layers (archive member, digest or '') in order, and what the image is."""
    if _has(outer, "index.json") and _has(outer, "oci-layout"):
        return _oci_layers(outer, ref)
    if _has(outer, "manifest.json"):
        return _docker_layers(outer, ref)
    raise ImageError("neither an OCI image layout (oci-layout, index.json) nor a docker save "
                     "archive (manifest.json)")


def _platform_ok(descriptor: Dict[str, Any]) -> bool:
    wanted = _ARCH.get(platform.machine(), platform.machine())
    plat = descriptor.get("platform") or {}
    return plat.get("os", "linux") == "linux" and plat.get("architecture") in (None, wanted)


def _oci_layers(outer: tarfile.TarFile, ref: Optional[str]) -> Tuple[List[Tuple[str, str]], str]:
    index = _json(outer, "index.json", "index.json")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise ImageError("index.json lists no manifest")
    if ref is not None:
        manifests = [m for m in manifests if isinstance(m, dict) and
                     (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == ref]
        if not manifests:
            raise ImageError("index.json has no image named %r" % ref)
    descriptor = _one(manifests, "index.json")
    name = (descriptor.get("annotations") or {}).get("org.opencontainers.image.ref.name")
    for _depth in range(4):  # an index may point to an index (a multi-platform image)
        if descriptor.get("mediaType") not in _INDEX_TYPES:
            break
        nested = _json(outer, _blob_path(descriptor.get("digest"), "index"), "image index")
        descriptor = _one(nested.get("manifests") or [], "image index")
    manifest = _json(outer, _blob_path(descriptor.get("digest"), "manifest"), "manifest")
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        raise ImageError("the image manifest lists no layers")
    out = []
    for layer in layers:
        if not isinstance(layer, dict):
            raise ImageError("the image manifest has an invalid layer entry")
        media = str(layer.get("mediaType", ""))
        if "zstd" in media:
            raise ImageError("zstd-compressed layers are not supported: save the image with "
                             "gzip or uncompressed layers")
        if "nondistributable" in media or layer.get("urls"):
            raise ImageError("the image has a foreign layer (%s) not held in the archive" % media)
        digest = str(layer.get("digest"))
        out.append((_blob_path(digest, "layer"), digest))
    return out, "OCI image %s@%s" % (name or "", descriptor.get("digest"))


def _one(manifests: List[Any], what: str) -> Dict[str, Any]:
    manifests = [m for m in manifests if isinstance(m, dict)]
    if len(manifests) > 1:
        matching = [m for m in manifests if _platform_ok(m)]
        manifests = matching or manifests
    if len(manifests) != 1:
        names = [(m.get("annotations") or {}).get("org.opencontainers.image.ref.name") or
                 m.get("digest") for m in manifests]
        raise ImageError("%s holds %d images (%s): name one with --image-ref"
                         % (what, len(manifests), ", ".join(map(str, names))))
    return manifests[0]


def _docker_layers(outer: tarfile.TarFile, ref: Optional[str]) -> Tuple[List[Tuple[str, str]], str]:
    manifest = _json(outer, "manifest.json", "manifest.json")
    if not isinstance(manifest, list) or not manifest:
        raise ImageError("manifest.json lists no image")
    images = [m for m in manifest if isinstance(m, dict)]
    if ref is not None:
        images = [m for m in images if ref in (m.get("RepoTags") or [])]
        if not images:
            raise ImageError("manifest.json has no image tagged %r" % ref)
    if len(images) != 1:
        tags = [", ".join(m.get("RepoTags") or []) or str(m.get("Config")) for m in images]
        raise ImageError("manifest.json holds %d images (%s): name one with --image-ref"
                         % (len(images), "; ".join(tags)))
    image = images[0]
    layers = image.get("Layers")
    if not isinstance(layers, list):
        raise ImageError("manifest.json: the image lists no layers")
    out = []
    for name in layers:
        if not isinstance(name, str) or _unsafe(name):
            raise ImageError("manifest.json: invalid layer path %r" % (name,))
        match = re.match(r"^blobs/(sha256)/([0-9a-f]{64})$", name)  # docker 25+ saves OCI blobs
        out.append((name, "%s:%s" % match.groups() if match else ""))
    return out, "docker image %s" % (", ".join(image.get("RepoTags") or []) or image.get("Config"))


def _verify(outer: tarfile.TarFile, blob: tarfile.TarInfo, digest: str, label: str) -> None:
    algorithm, expected = digest.split(":", 1)
    hasher = hashlib.new(algorithm)
    handle = outer.extractfile(blob)
    assert handle is not None
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        hasher.update(chunk)
    if hasher.hexdigest() != expected:
        raise ImageError("%s: the blob does not match its digest (a corrupt or altered archive)"
                         % label)


# -- applying one layer -------------------------------------------------------------------------
def _unsafe(name: str) -> bool:
    return name.startswith("/") or ".." in name.split("/")


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return "/".join(p for p in name.split("/") if p not in ("", "."))


class _Applier:
    def __init__(self, tree: str) -> None:
        self.tree = tree
        self.fs = RootFS(tree)  # chroot-style resolution of parent directories
        self.meta: Dict[str, Meta] = {"": (0o755, 0, 0)}
        self.written = 0

    def apply(self, outer: tarfile.TarFile, blob: tarfile.TarInfo, label: str) -> None:
        handle = outer.extractfile(blob)
        assert handle is not None
        created: Set[str] = set()
        try:
            with tarfile.open(fileobj=handle, mode="r|*") as layer:
                for member in layer:
                    try:
                        self._member(layer, member, created)
                    except ImageError as exc:
                        raise ImageError("%s: member %r: %s; the image is refused"
                                         % (label, member.name, exc))
                    except OSError as exc:
                        raise ImageError("%s: member %r: %s" % (label, member.name, exc))
        except tarfile.TarError as exc:
            raise ImageError("%s: not a readable tar layer (%s)" % (label, exc))

    # paths ---------------------------------------------------------------------------------
    def _real(self, rel: str) -> str:
        """The real path of ``rel`` in the tree: its parents resolved inside the tree, the
        last component as is (never followed)."""
        parent, _, base = rel.rpartition("/")
        real_parent = self.fs.resolve("/" + parent) if parent else self.tree
        if os.path.commonpath([self.tree, real_parent]) != self.tree:  # cannot happen
            raise ImageError("path escapes the image root")
        return os.path.join(real_parent, base)

    def _rel(self, real: str) -> str:
        rel = os.path.relpath(real, self.tree)
        return "" if rel == "." else rel

    def _parents(self, real: str) -> None:
        """Create the missing directories above ``real`` (each with mode 0755, root's)."""
        missing = []
        parent = os.path.dirname(real)
        while parent != self.tree and not os.path.lexists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        if parent != self.tree and not os.path.isdir(parent):
            # a file where a directory must be (resolution stopped at it): replace it
            os.unlink(parent)
            missing.append(parent)
        for directory in reversed(missing):
            os.mkdir(directory, 0o755)
            self.meta[self._rel(directory)] = (0o755, 0, 0)

    def _remove(self, real: str) -> None:
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(real)
        else:
            os.unlink(real)
        rel = self._rel(real)
        for key in [k for k in self.meta if k == rel or k.startswith(rel + "/")]:
            del self.meta[key]

    # members -------------------------------------------------------------------------------
    def _member(self, layer: tarfile.TarFile, member: tarfile.TarInfo,
                created: Set[str]) -> None:
        if _unsafe(member.name):
            raise ImageError("its path is absolute or leaves the image root")
        rel = _clean(member.name)
        if not rel:  # the root itself
            if member.isdir():
                self.meta[""] = (member.mode & 0o7777, member.uid, member.gid)
            return
        base = rel.rpartition("/")[2]
        if base == OPAQUE:
            parent = rel.rpartition("/")[0]
            self._opaque(self.fs.resolve("/" + parent) if parent else self.tree, created)
            return
        if base.startswith(WHITEOUT):
            if base == WHITEOUT:
                raise ImageError("a whiteout that names nothing")
            target = rel[: len(rel) - len(base)] + base[len(WHITEOUT):]
            if target not in created:
                self._remove(self._real(target))
            return
        if member.ischr() or member.isblk():
            return  # device nodes are not part of what a scan reads
        real = self._real(rel)
        real_rel = self._rel(real)
        mode = member.mode & 0o7777
        if member.issym():
            self._check_link_target(rel, member.linkname)
        if member.islnk():
            source = self._hardlink_source(member.linkname)
        self._parents(real)
        existing = os.path.lexists(real)
        if member.isdir():
            if existing and not (os.path.isdir(real) and not os.path.islink(real)):
                self._remove(real)
                existing = False
            if not existing:
                os.mkdir(real, 0o700)
            os.chmod(real, mode | 0o700)
        else:
            if existing:
                self._remove(real)
            if member.issym():
                os.symlink(member.linkname, real)
            elif member.islnk():
                os.link(source, real, follow_symlinks=False)
                mode, uid, gid = self.meta.get(self._rel(source), (mode, member.uid, member.gid))
                self.meta[real_rel] = (mode, uid, gid)
                created.add(rel)
                return
            elif member.isfifo():
                os.mkfifo(real, 0o600)
                os.chmod(real, mode | 0o600)
            elif member.isfile():
                self._write(layer, member, real, mode)
            else:
                return  # an unknown kind (a contiguous file is a file for tarfile)
        self.meta[real_rel] = (mode, member.uid, member.gid)
        created.add(rel)

    def _check_link_target(self, rel: str, target: str) -> None:
        if target.startswith("/"):
            return  # the image's own root: resolved inside it by the scan
        depth = rel.count("/")  # directories above the link, up to the root
        for part in target.split("/"):
            if part == "..":
                depth -= 1
                if depth < 0:
                    raise ImageError("symbolic link to %r leaves the image root" % target)
            elif part not in ("", "."):
                depth += 1

    def _hardlink_source(self, linkname: str) -> str:
        if _unsafe(linkname):
            raise ImageError("hard link to %r outside the image" % linkname)
        source = self._real(_clean(linkname))
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            raise ImageError("hard link to %r, which is not in the image" % linkname)
        if stat.S_ISDIR(st.st_mode):
            raise ImageError("hard link to the directory %r" % linkname)
        return source

    def _write(self, layer: tarfile.TarFile, member: tarfile.TarInfo, real: str,
               mode: int) -> None:
        self.written += member.size
        if self.written > MAX_TREE_BYTES:
            raise ImageError("the image unpacks to more than %d GiB" % (MAX_TREE_BYTES >> 30))
        source = layer.extractfile(member)
        assert source is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(real, flags, 0o600)
        with os.fdopen(fd, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
            os.fchmod(target.fileno(), mode | 0o600)

    def _opaque(self, real_dir: str, created: Set[str]) -> None:
        """Empty ``real_dir`` of the lower layers' entries, keeping this layer's."""
        if not os.path.isdir(real_dir) or os.path.islink(real_dir):
            return
        keep = {self._rel(self._real(c)) for c in created}
        self._prune(real_dir, keep)

    def _prune(self, real_dir: str, keep: Set[str]) -> None:
        for name in os.listdir(real_dir):
            real = os.path.join(real_dir, name)
            rel = self._rel(real)
            below = any(k.startswith(rel + "/") for k in keep)
            if rel in keep or below:
                if os.path.isdir(real) and not os.path.islink(real):
                    self._prune(real, keep)
                continue
            self._remove(real)
