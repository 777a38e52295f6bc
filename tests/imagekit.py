"""Build container images in pure Python, byte for byte deterministic, in every on-disk format.

No daemon, stdlib + zstandard only. Three steps, each usable on its own:

1. Layers: tar entries (`file`, `dir`, `symlink`, `hardlink`, `whiteout`, `opaque`, `fifo`,
   `device`, `raw`) -> `layer_tar(entries)` -> `compress(tar, "gzip")`.
2. Images: an `ImageSpec` is the history of a Dockerfile, in order: `LayerSpec`s (make a layer)
   and `EmptyLayer`s (ENV/ARG/LABEL lines, `empty_layer: true`), plus the config fields.
   `build_image(spec)` gives a `BuiltImage`: every tar, blob, digest, diff_id, config, manifest.
3. Writers put one or more images on disk and return an `Archive` that names the member holding
   each layer/config/manifest, so tests can damage exactly that member afterwards:
   `write_docker_archive_legacy`, `write_docker_archive_oci` (Docker 25+ `docker save`),
   `write_oci_layout` (directory), `write_oci_archive` (the layout as a tar), `write_crane_archive`
   (crane/ko/jib `tarball.Write`). Damage helpers: `corrupt`, `truncate`, `replace_member`,
   `remove_member`; `read_archive` reads any of them back as {member: bytes}.

Same spec -> same bytes: every timestamp, owner and ordering is fixed; gzip has mtime 0.
"""
from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import posixpath
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import zstandard

# --- media types -------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_INDEX = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

_LAYER_TYPES = {
    ("oci", "none"): OCI_LAYER,
    ("oci", "gzip"): OCI_LAYER + "+gzip",
    ("oci", "zstd"): OCI_LAYER + "+zstd",
    ("docker", "none"): DOCKER_LAYER,
    ("docker", "gzip"): DOCKER_LAYER + ".gzip",
}
_DOC_TYPES = {"oci": (OCI_MANIFEST, OCI_INDEX, OCI_CONFIG), "docker": (DOCKER_MANIFEST, DOCKER_INDEX, DOCKER_CONFIG)}

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
EPOCH = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)  # history timestamps start here


def sha256(data: bytes) -> str:
    """"sha256:<hex>" of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: object) -> bytes:
    """Compact JSON in insertion order, as Go's encoding/json writes it (no trailing newline)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# --- layer entries -----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One tar member of a layer. `path` is an image path ("/app/.env" or "app/.env")."""

    path: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: Optional[int] = None  # None: the layer's default (0)
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    info: Optional[tarfile.TarInfo] = field(default=None, compare=False)  # raw(): written verbatim

    def tarinfo(self, *, dot_slash: bool, mtime: int) -> tarfile.TarInfo:
        if self.info is not None:
            return self.info
        ti = tarfile.TarInfo(_member_name(self.path, dot_slash, self.type == tarfile.DIRTYPE))
        ti.type, ti.mode, ti.uid, ti.gid = self.type, self.mode, self.uid, self.gid
        ti.mtime = mtime if self.mtime is None else self.mtime
        ti.size = len(self.data) if self.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
        ti.linkname = _member_name(self.linkname, dot_slash, False) if self.type == tarfile.LNKTYPE else self.linkname
        ti.devmajor, ti.devminor = self.devmajor, self.devminor
        ti.uname = ti.gname = ""
        return ti


def _member_name(path: str, dot_slash: bool, is_dir: bool) -> str:
    name = path.lstrip("/")
    if name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/") + ("/" if is_dir else "")
    return ("./" + name) if dot_slash else name


def file(path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: Optional[int] = None) -> Entry:
    return Entry(path, tarfile.REGTYPE, bytes(data), mode, uid, gid, mtime)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: Optional[int] = None) -> Entry:
    return Entry(path, tarfile.DIRTYPE, b"", mode, uid, gid, mtime)


dir = directory  # noqa: A001 - the name the test suite reads best


def symlink(path: str, target: str, uid: int = 0, gid: int = 0) -> Entry:
    """`target` is written verbatim (relative or absolute, as `ln -s` was given it)."""
    return Entry(path, tarfile.SYMTYPE, mode=0o777, uid=uid, gid=gid, linkname=target)


def hardlink(path: str, target: str) -> Entry:
    """`target` is another member of the same layer, named like `path` ("/bin/busybox")."""
    return Entry(path, tarfile.LNKTYPE, linkname=target)


def whiteout(path: str) -> Entry:
    """Deletes `path` of lower layers: an empty regular file `dir/.wh.name` (as dockerd writes)."""
    parent, name = posixpath.split(path.rstrip("/"))
    return Entry(posixpath.join(parent, ".wh." + name), tarfile.REGTYPE, mode=0o600)


def opaque(dir_path: str, mode: int = 0o755) -> Entry:
    """Hides everything lower layers put below `dir_path`: `dir/.wh..wh..opq`.

    dockerd writes it right after the directory's own entry: put a `dir(dir_path)` before it.
    """
    return Entry(posixpath.join(dir_path.rstrip("/"), ".wh..wh..opq"), tarfile.REGTYPE, mode=mode & 0o777)


def fifo(path: str, mode: int = 0o644) -> Entry:
    return Entry(path, tarfile.FIFOTYPE, mode=mode)


def device(path: str, major: int = 1, minor: int = 3, kind: str = "char", mode: int = 0o666) -> Entry:
    return Entry(path, tarfile.CHRTYPE if kind == "char" else tarfile.BLKTYPE, mode=mode, devmajor=major, devminor=minor)


def raw(info: tarfile.TarInfo, data: bytes = b"") -> Entry:
    """Escape hatch: `info` is written as given (hostile names, lying sizes, odd types, PAX headers).

    The header says `info.size`; `data` is written after it whatever its length (padded to 512).
    """
    return Entry(info.name, info.type, bytes(data), info.mode, info.uid, info.gid, info.mtime, info.linkname, info=info)


_TAR_FORMATS = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}


def layer_tar(entries: Iterable[Entry], *, fmt: str = "pax", dot_slash: bool = False, mtime: int = 0,
              end_marker: bool = True) -> bytes:
    """An uncompressed layer tar, entries in the order given, as Go's archive/tar writes it.

    Two zero blocks end it (no padding to 10 KiB records); `end_marker=False` leaves them out.
    """
    out = io.BytesIO()
    for e in entries:
        ti = e.tarinfo(dot_slash=dot_slash, mtime=mtime)
        out.write(ti.tobuf(_TAR_FORMATS[fmt], "utf-8", "surrogateescape"))
        if e.data:
            out.write(e.data)
            out.write(b"\0" * (-len(e.data) % tarfile.BLOCKSIZE))
    if end_marker:
        out.write(b"\0" * (2 * tarfile.BLOCKSIZE))
    return out.getvalue()


# --- compression ---------------------------------------------------------------------------

COMPRESSIONS = ("none", "gzip", "zstd")


def compress(data: bytes, how: str) -> bytes:
    """`how` in none/gzip/zstd; deterministic (gzip mtime 0, no file name)."""
    if how == "none":
        return data
    if how == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor(level=3, write_content_size=True, write_checksum=True).compress(data)
    raise ValueError(f"unknown compression {how!r}, expected one of {COMPRESSIONS}")


def sniff(blob: bytes) -> str:
    """The compression of `blob` by its magic bytes."""
    if blob[:2] == b"\x1f\x8b":
        return "gzip"
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "none"


def decompress(blob: bytes) -> bytes:
    how = sniff(blob)
    if how == "gzip":
        return gzip.decompress(blob)
    if how == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    return blob


def layer_media_type(compression: str, media_types: str = "oci") -> str:
    try:
        return _LAYER_TYPES[(media_types, compression)]
    except KeyError:
        raise ValueError(f"no {media_types} layer media type for {compression!r} layers") from None


# --- image specs ---------------------------------------------------------------------------


@dataclass
class LayerSpec:
    """A history entry that made a layer. `tar` (raw uncompressed bytes) replaces `entries`."""

    created_by: str = ""
    entries: list[Entry] = field(default_factory=list)
    comment: Optional[str] = None
    created: Optional[str] = None  # default: EPOCH + history index minutes
    compression: Optional[str] = None  # None: the writer's
    fmt: str = "pax"
    dot_slash: bool = False
    tar: Optional[bytes] = None
    media_type: Optional[str] = None  # override the manifest's layer media type

    def add(self, *entries: Entry) -> "LayerSpec":
        self.entries.extend(entries)
        return self

    def tar_bytes(self) -> bytes:
        return self.tar if self.tar is not None else layer_tar(self.entries, fmt=self.fmt, dot_slash=self.dot_slash)


@dataclass
class EmptyLayer:
    """A history entry with `empty_layer: true` (ENV, ARG, LABEL, CMD ...)."""

    created_by: str
    comment: Optional[str] = None
    created: Optional[str] = None


Step = Union[LayerSpec, EmptyLayer]


@dataclass
class ImageSpec:
    steps: list[Step]
    tags: list[str] = field(default_factory=list)  # RepoTags, "name:tag"
    env: Optional[list[str]] = None
    labels: Optional[dict[str, str]] = None
    cmd: Optional[list[str]] = None
    entrypoint: Optional[list[str]] = None
    healthcheck: Optional[dict] = None
    user: Optional[str] = None
    working_dir: Optional[str] = None
    exposed_ports: Optional[list[str]] = None
    architecture: str = "amd64"
    os: str = "linux"
    variant: Optional[str] = None
    created: Optional[str] = None  # default: the last history entry's
    config_extra: dict = field(default_factory=dict)  # merged into "config"
    extra: dict = field(default_factory=dict)  # merged into the top level
    raw_config: Optional[bytes] = None  # written instead of the generated config (non-JSON etc.)
    annotations: Optional[dict[str, str]] = None  # manifest annotations

    @property
    def layers(self) -> list[LayerSpec]:
        return [s for s in self.steps if isinstance(s, LayerSpec)]

    @property
    def platform(self) -> dict:
        p = {"architecture": self.architecture, "os": self.os}
        return p | ({"variant": self.variant} if self.variant else {})


@dataclass
class IndexSpec:
    """A multi-platform image: an image index over `images`, tagged as a whole."""

    images: list[ImageSpec]
    tags: list[str] = field(default_factory=list)


# --- building ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltLayer:
    tar: bytes  # uncompressed
    blob: bytes  # as stored
    diff_id: str  # sha256 of `tar`
    digest: str  # sha256 of `blob`
    media_type: str
    compression: str
    created_by: str
    history_index: int

    @property
    def size(self) -> int:
        return len(self.blob)


@dataclass(frozen=True)
class BuiltImage:
    spec: ImageSpec = field(compare=False)
    layers: tuple[BuiltLayer, ...]
    config: Optional[dict]  # None when spec.raw_config is used
    config_bytes: bytes
    manifest: dict
    manifest_bytes: bytes

    @property
    def config_digest(self) -> str:
        return sha256(self.config_bytes)

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest_bytes)

    @property
    def tags(self) -> list[str]:
        return self.spec.tags


def _timestamp(index: int, given: Optional[str]) -> str:
    return given or (EPOCH + _dt.timedelta(minutes=index)).strftime("%Y-%m-%dT%H:%M:%SZ")


def history(spec: ImageSpec) -> list[dict]:
    out = []
    for i, step in enumerate(spec.steps):
        h = {"created": _timestamp(i, step.created), "created_by": step.created_by}
        if step.comment:
            h["comment"] = step.comment
        if isinstance(step, EmptyLayer):
            h["empty_layer"] = True
        out.append(h)
    return out


def image_config(spec: ImageSpec, diff_ids: Sequence[str]) -> dict:
    """The config JSON: Docker's field names, only the fields the spec sets."""
    fields = [("User", spec.user), ("ExposedPorts", {p: {} for p in spec.exposed_ports or []} or None),
              ("Env", spec.env), ("Entrypoint", spec.entrypoint), ("Cmd", spec.cmd),
              ("Healthcheck", spec.healthcheck), ("WorkingDir", spec.working_dir), ("Labels", spec.labels)]
    inner = {k: v for k, v in fields if v is not None} | spec.config_extra
    hist = history(spec)
    cfg = {"architecture": spec.architecture, "config": inner,
           "created": spec.created or (hist[-1]["created"] if hist else _timestamp(0, None)),
           "history": hist, "os": spec.os, "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}
    if spec.variant:
        cfg["variant"] = spec.variant
    return cfg | spec.extra


def build_layer(step: LayerSpec, history_index: int, compression: str = "gzip", media_types: str = "oci") -> BuiltLayer:
    how = step.compression or compression
    tar = step.tar_bytes()
    blob = compress(tar, how)
    media = step.media_type or layer_media_type(how, media_types)
    return BuiltLayer(tar, blob, sha256(tar), sha256(blob), media, how, step.created_by, history_index)


def descriptor(media_type: str, data: bytes, **extra: object) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)} | extra


def build_image(spec: ImageSpec, compression: str = "gzip", media_types: str = "oci") -> BuiltImage:
    """Every byte of one image. `compression` is the default for layers that don't set theirs."""
    manifest_type, _, config_type = _DOC_TYPES[media_types]
    layers = tuple(build_layer(s, i, compression, media_types)
                   for i, s in enumerate(spec.steps) if isinstance(s, LayerSpec))
    config = None if spec.raw_config is not None else image_config(spec, [l.diff_id for l in layers])
    config_bytes = spec.raw_config if config is None else canonical_json(config)
    manifest = {"schemaVersion": 2, "mediaType": manifest_type,
                "config": descriptor(config_type, config_bytes),
                "layers": [{"mediaType": l.media_type, "digest": l.digest, "size": l.size} for l in layers]}
    if spec.annotations:
        manifest["annotations"] = dict(spec.annotations)
    return BuiltImage(spec, layers, config, config_bytes, manifest, canonical_json(manifest))


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n)), as the OCI spec defines it."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else sha256(f"{out[-1]} {d}".encode()))
    return out


# --- names ---------------------------------------------------------------------------------


def split_tag(ref: str) -> tuple[str, str]:
    """"leaky-app:1.0" -> ("leaky-app", "1.0"); no tag -> "latest"."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def normalize_ref(ref: str) -> str:
    """Docker's full name: "leaky-app:1.0" -> "docker.io/library/leaky-app:1.0"."""
    name, tag = split_tag(ref)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + name
    return f"{name}:{tag}"


# --- archive members -----------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """What a writer wrote: its members in order and which member holds what, per image."""

    path: Path
    kind: str  # docker-legacy | docker-oci | oci-layout | oci-archive | crane
    files: dict[str, bytes]
    images: tuple[BuiltImage, ...]  # in manifest order; an IndexSpec's images in place
    layer_members: tuple[tuple[str, ...], ...]
    config_members: tuple[str, ...]
    manifest_members: tuple[Optional[str], ...]  # None where the format stores no manifest
    index_member: Optional[str] = None  # blob of the nested image index, if any

    def layer_member(self, image: int = 0, layer: int = 0) -> str:
        return self.layer_members[image][layer]

    def config_member(self, image: int = 0) -> str:
        return self.config_members[image]

    def manifest_member(self, image: int = 0) -> Optional[str]:
        return self.manifest_members[image]


def blob_path(digest: str) -> str:
    algo, hexd = digest.split(":", 1)
    return f"blobs/{algo}/{hexd}"


def pack_zip(files: dict[str, bytes]) -> bytes:
    """A deflated zip of `files` (name -> bytes, in order), every member dated 2024-01-01."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def pack_tar(files: dict[str, bytes], *, dirs: bool = True) -> bytes:
    """A tarball of `files` (name -> bytes, in order), each parent directory entry before its
    first file unless `dirs=False`."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for name in files:
        parent = posixpath.dirname(name)
        chain = []
        while dirs and parent and parent not in seen:
            chain.append(parent)
            seen.add(parent)
            parent = posixpath.dirname(parent)
        entries += [directory(p) for p in reversed(chain)]
        entries.append(file(name, files[name]))
    return layer_tar(entries, fmt="pax")


Images = Union[ImageSpec, IndexSpec, Sequence[Union[ImageSpec, IndexSpec]]]  # what every writer takes


def _as_list(images: Images) -> list:
    return [images] if isinstance(images, (ImageSpec, IndexSpec)) else list(images)


def _image_specs(images: list, allow_index: bool) -> list[ImageSpec]:
    if not allow_index and any(isinstance(i, IndexSpec) for i in images):
        raise ValueError("this format stores no image index: pass ImageSpecs")
    return [i for i in images if isinstance(i, ImageSpec)]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _go_json_file(obj: object) -> bytes:
    """What Go's json.NewEncoder(f).Encode writes: compact JSON and a newline."""
    return canonical_json(obj) + b"\n"


# --- writer 1: legacy docker save ----------------------------------------------------------


def _legacy_ids(img: BuiltImage) -> list[str]:
    """v1 layer ids: a hash over the chain id and the parent id (the top one over the config too)."""
    ids: list[str] = []
    chains = chain_ids([l.diff_id for l in img.layers])
    for i, chain in enumerate(chains):
        v1 = {"created": "1970-01-01T00:00:00Z", "layer_id": chain, "parent": ids[-1] if ids else ""}
        if i == len(chains) - 1:
            v1["config"] = img.config_digest
        ids.append(hashlib.sha256(canonical_json(v1)).hexdigest())
    return ids


def _legacy_layer_files(img: BuiltImage, ids: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for i, (lid, layer) in enumerate(zip(ids, img.layers)):
        meta = {"id": lid} | ({"parent": ids[i - 1]} if i else {}) | {"created": "1970-01-01T00:00:00Z", "os": img.spec.os}
        files[f"{lid}/VERSION"] = b"1.0"
        files[f"{lid}/json"] = canonical_json(meta)
        files[f"{lid}/layer.tar"] = layer.blob
    return files


def write_docker_archive_legacy(images: Images, path, *, compression: str = "none") -> Archive:
    """`docker save` before Docker 25: <id>/layer.tar, <config-hex>.json, manifest.json, repositories.

    Layers are uncompressed like dockerd writes them unless `compression` (or a LayerSpec) says
    otherwise: the file is still called layer.tar.
    """
    built = [build_image(s, compression, "oci") for s in _image_specs(_as_list(images), False)]
    files: dict[str, bytes] = {}
    manifest, repos, layer_members, config_members = [], {}, [], []
    for img in built:
        ids = _legacy_ids(img)
        config_name = img.config_digest.split(":", 1)[1] + ".json"
        files[config_name] = img.config_bytes
        files.update(_legacy_layer_files(img, ids))
        layer_members.append(tuple(f"{i}/layer.tar" for i in ids))
        config_members.append(config_name)
        manifest.append({"Config": config_name, "RepoTags": list(img.tags) or None, "Layers": list(layer_members[-1])})
        for tag in img.tags:
            name, t = split_tag(tag)
            repos.setdefault(name, {})[t] = ids[-1] if ids else ""
    files["manifest.json"] = _go_json_file(manifest)
    if repos:
        files["repositories"] = _go_json_file(repos)
    files = {k: files[k] for k in sorted(files)}
    _write(Path(path), pack_tar(files))
    return Archive(Path(path), "docker-legacy", files, tuple(built), tuple(layer_members),
                   tuple(config_members), (None,) * len(built))


# --- OCI blobs shared by writers 2-4 -------------------------------------------------------


@dataclass
class _Blobs:
    media_types: str
    files: dict[str, bytes] = field(default_factory=dict)
    built: list[BuiltImage] = field(default_factory=list)
    index_member: Optional[str] = None

    def add(self, data: bytes) -> str:
        name = blob_path(sha256(data))
        self.files[name] = data
        return name

    def image(self, spec: ImageSpec, compression: str) -> BuiltImage:
        img = build_image(spec, compression, self.media_types)
        for layer in img.layers:
            self.add(layer.blob)
        self.add(img.config_bytes)
        self.add(img.manifest_bytes)
        self.built.append(img)
        return img

    def index(self, spec: IndexSpec, compression: str) -> bytes:
        manifest_type, index_type, _ = _DOC_TYPES[self.media_types]
        children = [self.image(s, compression) for s in spec.images]
        index = {"schemaVersion": 2, "mediaType": index_type,
                 "manifests": [descriptor(manifest_type, c.manifest_bytes, platform=c.spec.platform) for c in children]}
        data = canonical_json(index)
        self.index_member = self.add(data)
        return data

    def archive(self, path: Path, kind: str) -> Archive:
        return Archive(path, kind, self.files, tuple(self.built),
                       tuple(tuple(blob_path(l.digest) for l in b.layers) for b in self.built),
                       tuple(blob_path(b.config_digest) for b in self.built),
                       tuple(blob_path(b.manifest_digest) for b in self.built), self.index_member)


def _index_json(blobs: _Blobs, images: list, compression: str, annotate) -> bytes:
    """Top-level index.json: one descriptor per tag (an untagged image still gets one)."""
    manifest_type, index_type, _ = _DOC_TYPES[blobs.media_types]
    manifests = []
    for spec in images:
        if isinstance(spec, IndexSpec):
            media, data = index_type, blobs.index(spec, compression)
        else:
            media, data = manifest_type, blobs.image(spec, compression).manifest_bytes
        for tag in spec.tags or [None]:
            desc = descriptor(media, data)
            if tag is not None:
                desc["annotations"] = annotate(tag)
            manifests.append(desc)
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})


OCI_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


# --- writer 2: docker save, Docker 25+ -----------------------------------------------------


def write_docker_archive_oci(images: Images, path, *, compression: str = "none") -> Archive:
    """Docker 25+ `docker save`: an OCI layout plus manifest.json pointing into blobs/sha256/.

    dockerd writes uncompressed layers; pass "gzip"/"zstd" for what containerd-store saves hold.
    For an IndexSpec, manifest.json lists only its first image (the daemon's own platform).
    """
    items = _as_list(images)
    blobs = _Blobs("oci")
    index = _index_json(blobs, items, compression,
                        lambda tag: {CONTAINERD_NAME: normalize_ref(tag), REF_NAME: split_tag(tag)[1]})
    manifest, repos = [], {}
    for spec in items:
        img = next(b for b in blobs.built if b.spec is (spec.images[0] if isinstance(spec, IndexSpec) else spec))
        manifest.append({"Config": blob_path(img.config_digest), "RepoTags": list(spec.tags) or None,
                         "Layers": [blob_path(l.digest) for l in img.layers]})
        for tag in spec.tags:
            name, t = split_tag(tag)
            repos.setdefault(name, {})[t] = img.layers[-1].diff_id.split(":", 1)[1] if img.layers else ""
    files = dict(blobs.files) | {"index.json": index, "manifest.json": _go_json_file(manifest),
                                 "oci-layout": OCI_LAYOUT_FILE}
    if repos:
        files["repositories"] = _go_json_file(repos)
    blobs.files = {k: files[k] for k in sorted(files)}
    _write(Path(path), pack_tar(blobs.files))
    return blobs.archive(Path(path), "docker-oci")


# --- writers 3 and 4: OCI image layout -----------------------------------------------------


def oci_layout_files(images: Images, *, compression: str = "gzip", media_types: str = "oci",
                     ref_style: str = "full") -> tuple[_Blobs, dict[str, bytes]]:
    """The members of an OCI layout. `ref_style`: ref.name is "name:tag" ("full") or "tag"."""
    blobs = _Blobs(media_types)
    pick = (lambda tag: tag) if ref_style == "full" else (lambda tag: split_tag(tag)[1])
    index = _index_json(blobs, _as_list(images), compression, lambda tag: {REF_NAME: pick(tag)})
    files = dict(blobs.files) | {"index.json": index, "oci-layout": OCI_LAYOUT_FILE}
    return blobs, {k: files[k] for k in sorted(files)}


def write_oci_layout(images: Images, directory_path, *, compression: str = "gzip", media_types: str = "oci",
                     ref_style: str = "full") -> Archive:
    """An OCI image layout directory (created if missing; files already there are left alone)."""
    blobs, files = oci_layout_files(images, compression=compression, media_types=media_types, ref_style=ref_style)
    root = Path(directory_path)
    for name, data in files.items():
        _write(root / name, data)
    blobs.files = files
    return blobs.archive(root, "oci-layout")


def write_oci_archive(images: Images, path, *, compression: str = "gzip", media_types: str = "oci",
                      ref_style: str = "full") -> Archive:
    """`oci-archive:`: the OCI layout as a tar (what skopeo and buildah write)."""
    blobs, files = oci_layout_files(images, compression=compression, media_types=media_types, ref_style=ref_style)
    _write(Path(path), pack_tar(files))
    blobs.files = files
    return blobs.archive(Path(path), "oci-archive")


# --- writer 5: crane / ko / jib tarball ----------------------------------------------------


def write_crane_archive(images: Images, path, *, compression: str = "gzip", config_name: Optional[str] = None) -> Archive:
    """go-containerregistry `tarball.Write`: `sha256:<hex>` config, `<blob-hex>.tar.gz` layers,
    manifest.json last, no directories. Layers keep the .tar.gz name whatever `compression` is.
    `config_name="config.json"` gives jib's naming (single image only).
    """
    built = [build_image(s, compression, "oci") for s in _image_specs(_as_list(images), False)]
    if config_name and len(built) > 1:
        raise ValueError("a fixed config_name only fits a single-image tarball")
    files: dict[str, bytes] = {}
    manifest, layer_members, config_members = [], [], []
    for img in built:
        cfg = config_name or img.config_digest
        files[cfg] = img.config_bytes
        names = tuple(l.digest.split(":", 1)[1] + ".tar.gz" for l in img.layers)
        files.update(zip(names, (l.blob for l in img.layers)))
        layer_members.append(names)
        config_members.append(cfg)
        manifest.append({"Config": cfg, "RepoTags": list(img.tags), "Layers": list(names)})
    files["manifest.json"] = canonical_json(manifest)
    _write(Path(path), pack_tar(files, dirs=False))
    return Archive(Path(path), "crane", files, tuple(built), tuple(layer_members),
                   tuple(config_members), (None,) * len(built))


WRITERS = {
    "docker-legacy": write_docker_archive_legacy,
    "docker-oci": write_docker_archive_oci,
    "oci-layout": write_oci_layout,
    "oci-archive": write_oci_archive,
    "crane": write_crane_archive,
}


# --- reading back and damaging -------------------------------------------------------------


def read_archive(path) -> dict[str, bytes]:
    """{member: bytes} of a tarball or a layout directory (regular files only)."""
    p = Path(path)
    if p.is_dir():
        return {f.relative_to(p).as_posix(): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}
    with tarfile.open(p) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def _rewrite(path: Path, change) -> None:
    """Rebuild tarball `path` with `change(files)` applied to {member: bytes} (order kept)."""
    files = read_archive(path)
    change(files)
    crane_like = not any("/" in n for n in files)
    _write(path, pack_tar(files, dirs=not crane_like))


def replace_member(path, member: str, data: bytes) -> None:
    """Put `data` in `member` (of a tarball or a layout directory), keeping every digest as it was:
    a blob that no longer matches its digest, a non-JSON manifest, a config from another image.
    """
    p = Path(path)
    if p.is_dir():
        _write(p / member, data)
    else:
        _rewrite(p, lambda files: files.__setitem__(member, data))


def remove_member(path, member: str) -> None:
    """Delete `member`: a blob the manifest names but the archive lacks."""
    p = Path(path)
    if p.is_dir():
        (p / member).unlink()
        return

    def drop(files: dict) -> None:
        if member not in files:
            raise KeyError(member)
        del files[member]

    _rewrite(p, drop)


def corrupt(path, member: str, offset: Optional[int] = None) -> None:
    """Flip the bits of one byte of `member` (default: its middle byte); same size, wrong digest."""
    p = Path(path)
    data = bytearray(read_archive(p)[member])
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0xFF
    replace_member(p, member, bytes(data))


def truncate(path, size: Optional[int] = None, *, member: Optional[str] = None) -> None:
    """Cut a file short (default: to half). With `member`, cut that member inside a tarball or
    layout (the tarball stays well formed: the member's header gets the new size)."""
    p = Path(path)
    if member is None:
        with open(p, "r+b") as f:
            f.truncate(os.path.getsize(p) // 2 if size is None else size)
        return
    data = read_archive(p)[member]
    replace_member(p, member, data[: len(data) // 2 if size is None else size])

