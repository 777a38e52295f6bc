"""Seed inputs for each fuzz target: small well-formed and hostile examples to mutate from."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile

import zstandard

from tests import imagekit as ik
from tests.hostile import kit

ENV = b"KEY=AKIAIOSFODNN7EXAMPLE\n"


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def tars() -> list[bytes]:
    plain = kit.tar(kit.header("app/", type_=tarfile.DIRTYPE), kit.member("app/.env", ENV),
                    kit.header("app/link", type_=tarfile.SYMTYPE, linkname="/etc/passwd"),
                    kit.header("app/hard", type_=tarfile.LNKTYPE, linkname="app/.env"),
                    kit.member("app/.wh.old"), kit.member("srv/.wh..wh..opq"))
    return [
        plain, gzip.compress(plain, mtime=0), zstandard.ZstdCompressor().compress(plain),
        kit.tar(kit.pax(kit.pax_record(b"path", b"app/pax.env") + kit.pax_record(b"mtime", b"1.5")),
                kit.member("x", ENV)),
        kit.tar(kit.gnu_long(b"a" * 300), kit.member("x", ENV)),
        kit.tar(kit.old_gnu_sparse("s", [(0, ENV), (1 << 20, b"x")], (1 << 20) + 1)),
        kit.tar(kit.pax_sparse_10("s", [(0, ENV), (4096, b"x")], 4097)),
        kit.tar(kit.member("app/pkg.jar", _zip({"conf/app.properties": ENV}))),
    ]


def nested() -> list[bytes]:
    inner = ik.pack_tar({"conf/app.env": ENV}, dirs=False)
    return [ENV, _zip({"a/b.txt": ENV, "lib/x.jar": _zip({"c": ENV})}), inner, gzip.compress(inner, mtime=0),
            zstandard.ZstdCompressor().compress(inner), gzip.compress(ENV, mtime=0),
            "\ufeffKEY=AKIAIOSFODNN7EXAMPLE".encode("utf-16")]


def overlay() -> list[bytes]:
    return [bytes([1, 0x84, 2, 3, 0, 0, 5, 4, 11, 0, 6, 1]), bytes(range(64))]


def _docs() -> tuple[bytes, bytes, bytes]:
    layer = gzip.compress(kit.tar(kit.member("a", ENV)), mtime=0)
    config = ik.canonical_json({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1"]},
                                "rootfs": {"type": "layers", "diff_ids": [ik.sha256(kit.tar(kit.member("a", ENV)))]},
                                "history": [{"created_by": "ADD a /"}]})
    manifest = ik.canonical_json({"schemaVersion": 2, "mediaType": ik.OCI_MANIFEST,
                                  "config": ik.descriptor(ik.OCI_CONFIG, config),
                                  "layers": [ik.descriptor(ik.OCI_LAYER + "+gzip", layer)]})
    return layer, config, manifest


def sources() -> list[bytes]:
    layer, config, manifest = _docs()
    index = ik.canonical_json({"schemaVersion": 2, "manifests": [ik.descriptor(ik.OCI_MANIFEST, manifest)]})
    docker = json.dumps([{"Config": "blobs/sha256/" + hashlib.sha256(config).hexdigest(),
                          "Layers": ["blobs/sha256/" + hashlib.sha256(layer).hexdigest()]}]).encode()
    return [b"\0".join([index, manifest, config, layer]), b"\0".join([docker, config, layer])]


def config_json() -> list[bytes]:
    return [_docs()[1], b'{"config":{"Env":["X=AKIAIOSFODNN7EXAMPLE"],"Labels":{"a":"b"}},"history":[]}']


def archive() -> list[bytes]:
    spec = ik.ImageSpec([ik.LayerSpec("ADD a /", [ik.file("/a", ENV)])], tags=["fuzz/x:1"])
    legacy = ik.build_image(spec, "none")
    files = {"manifest.json": json.dumps([{"Config": "c.json", "Layers": ["l/layer.tar"]}]).encode(),
             "c.json": legacy.config_bytes, "l/layer.tar": legacy.layers[0].blob}
    return [ik.pack_tar(files)]


def cache_row() -> list[bytes]:
    """Rows as the cache stores them: plain and sealed, with hits (file metadata too), skipped
    entries and a package database."""
    from fuzz.targets import CACHE_SECRET
    from scanner.cache import encode, seal
    from scanner.models import DetectorKind, FileMeta, Hit, LayerScan, PackageDb, Secret, Severity, Skipped
    from scanner.pathevents import EntryKind, PathEvent, PathEvents

    events = PathEvents([PathEvent("/app", EntryKind.DIR, 0), PathEvent("/app/.env", EntryKind.FILE, 1),
                         PathEvent("/app/old", EntryKind.WHITEOUT, 2)])
    hit = Hit("aws", DetectorKind.SIGNATURE, Severity.CRITICAL, "AWS key", "/app/.env", 1, Secret("ab" * 32, "AKIA****"),
              None, 1, file=FileMeta(0o644, 0, 0, 24, 0.0, "cd" * 32, "root", "root"))
    scan = LayerScan("sha256:" + "1" * 64, "sha256:" + "2" * 64, events, (hit,), (Skipped("/x", "too big", 0),), 2, 3072,
                     (PackageDb("/var/lib/dpkg/info/a.md5sums", "dpkg", "md5:00 /usr/a"),))
    text = encode(scan)
    return [text.encode(), seal("fuzz-key", text, CACHE_SECRET).encode()]


SEEDS = {"tar_walk": tars, "nested": nested, "overlay": overlay, "sources": sources, "config_json": config_json,
         "archive": archive, "cache_row": cache_row,
         "tar_reader": lambda: [t for t in tars() if t[257:262] == b"ustar"]}
