"""Hostile tar bytes and hostile image documents, built by hand where imagekit is too polite.

imagekit writes well-formed images (and `raw()` entries for odd TarInfo); what a hostile image
needs beyond that is here: headers with lying or out-of-range fields, PAX records that are too
big or malformed, GNU sparse members, chains of extended headers, and images whose manifest or
config disagrees with their blobs.
"""
from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Iterable, Optional

from tests import imagekit as ik

BLOCK = tarfile.BLOCKSIZE
END = b"\0" * (2 * BLOCK)


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def _octal(value: int, width: int) -> bytes:
    if value >= 8 ** (width - 1):  # too big for the octal digits: GNU base-256
        return b"\x80" + value.to_bytes(width - 1, "big")
    return b"%0*o\0" % (width - 1, value)


def header(name: bytes | str, *, size: int = 0, type_: bytes = tarfile.REGTYPE, linkname: bytes | str = b"",
           mode: int = 0o644, size_field: Optional[bytes] = None, mtime_field: Optional[bytes] = None,
           uname: bytes = b"", extra: Optional[dict[int, bytes]] = None) -> bytes:
    """One ustar header block, every field as given (no validation), with a correct checksum.

    `size_field`/`mtime_field` replace the 12-byte fields verbatim (base-256, garbage ...);
    `extra` puts bytes at given offsets (GNU sparse structs, realsize ...) before the checksum.
    """
    name = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
    linkname = linkname.encode("utf-8", "surrogateescape") if isinstance(linkname, str) else linkname
    buf = bytearray(BLOCK)
    buf[0:len(name[:100])] = name[:100]
    buf[100:108] = _octal(mode, 8)
    buf[108:116] = _octal(0, 8)
    buf[116:124] = _octal(0, 8)
    buf[124:136] = size_field if size_field is not None else _octal(size, 12)
    buf[136:148] = mtime_field if mtime_field is not None else _octal(0, 12)
    buf[148:156] = b" " * 8
    buf[156:157] = type_
    buf[157:157 + len(linkname[:100])] = linkname[:100]
    buf[257:265] = b"ustar\x0000"
    buf[265:265 + len(uname[:32])] = uname[:32]
    for offset, data in (extra or {}).items():
        buf[offset:offset + len(data)] = data
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf)


def member(name: bytes | str, data: bytes = b"", **fields) -> bytes:
    """A regular file: header and padded data."""
    return header(name, size=len(data), **fields) + pad(data)


def pax_record(key: bytes, value: bytes) -> bytes:
    """One `"%d %s=%s\\n"` record, its length counting itself."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n += 1
    return str(n).encode() + body


def pax(records: bytes, type_: bytes = tarfile.XHDTYPE, declared: Optional[int] = None) -> bytes:
    """A PAX extended header member holding `records` (raw bytes, well formed or not)."""
    size = len(records) if declared is None else declared
    return header(b"PaxHeaders/x", size=size, type_=type_) + pad(records)


def gnu_long(name: bytes, type_: bytes = tarfile.GNUTYPE_LONGNAME, declared: Optional[int] = None) -> bytes:
    data = name + b"\0"
    return header(b"././@LongLink", size=len(data) if declared is None else declared, type_=type_) + pad(data)


def old_gnu_sparse(name: str, segments: list[tuple[int, bytes]], realsize: int) -> bytes:
    """A GNU 'S' member (up to 4 segments in the header): only the segments' bytes are stored."""
    extra: dict[int, bytes] = {}
    for i, (offset, data) in enumerate(segments[:4]):
        extra[386 + 24 * i] = _octal(offset, 12)
        extra[386 + 24 * i + 12] = _octal(len(data), 12)
    extra[482] = b"\0"  # not extended
    extra[483] = _octal(realsize, 12)
    stored = b"".join(data for _, data in segments)
    buf = bytearray(header(name, size=len(stored), type_=tarfile.GNUTYPE_SPARSE, extra=extra))
    buf[257:265] = b"ustar  \0"  # the old GNU magic
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf) + pad(stored)


def pax_sparse_10(name: str, segments: list[tuple[int, bytes]], realsize: int) -> bytes:
    """GNU sparse format 1.0 (`tar --sparse --format=posix`): the map heads the member's data."""
    sparse_map = b"%d\n" % len(segments) + b"".join(b"%d\n%d\n" % (o, len(d)) for o, d in segments)
    stored = pad(sparse_map) + b"".join(data for _, data in segments)
    records = (pax_record(b"GNU.sparse.major", b"1") + pax_record(b"GNU.sparse.minor", b"0")
               + pax_record(b"GNU.sparse.name", name.encode()) + pax_record(b"GNU.sparse.realsize", b"%d" % realsize))
    return pax(records) + header(b"GNUSparseFile.0/x", size=len(stored)) + pad(stored)


def tar(*members: bytes, end: bool = True) -> bytes:
    return b"".join(members) + (END if end else b"")


# --- images around hostile layers ---------------------------------------------------------------


def image_of(*layers: bytes, created_by: Optional[list[str]] = None, **spec) -> ik.ImageSpec:
    """An image whose layers are the given uncompressed tars, verbatim."""
    steps = [ik.LayerSpec((created_by or [])[i] if created_by and i < len(created_by) else f"ADD layer{i} /",
                          tar=t) for i, t in enumerate(layers)]
    return ik.ImageSpec(steps, tags=["hostile/image:1"], **spec)


def write(tmp: Path, spec: ik.ImageSpec, kind: str = "oci-archive", compression: str = "gzip",
          name: str = "image") -> tuple[Path, ik.Archive]:
    from tests.unit.conftest import write_image

    return write_image(tmp, spec, kind, compression, name=name)


def rewrite_oci(path: Path, change_manifest=None, change_config=None, blobs: Iterable[bytes] = ()) -> None:
    """Rewrite the first image of an OCI layout or oci-archive: `change_manifest(manifest)` and
    `change_config(config)` edit the parsed documents in place; their new digests are written
    through (config into the manifest, manifest into index.json), so only what the change says is
    hostile. `blobs` are extra blobs stored under their own digest."""
    files = ik.read_archive(path)
    index = json.loads(files["index.json"])
    mdesc = index["manifests"][0]
    manifest = json.loads(files[ik.blob_path(mdesc["digest"])])
    if change_config is not None:
        config = json.loads(files[ik.blob_path(manifest["config"]["digest"])])
        new = change_config(config)
        data = new if isinstance(new, bytes) else ik.canonical_json(config)
        files[ik.blob_path(ik.sha256(data))] = data
        manifest["config"].update(digest=ik.sha256(data), size=len(data))
    if change_manifest is not None:
        change_manifest(manifest)
    mdata = ik.canonical_json(manifest)
    files[ik.blob_path(ik.sha256(mdata))] = mdata
    mdesc.update(digest=ik.sha256(mdata), size=len(mdata))
    files["index.json"] = ik.canonical_json(index)
    for blob in blobs:
        files[ik.blob_path(ik.sha256(blob))] = blob
    if path.is_dir():
        for name, data in files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
    else:
        path.write_bytes(ik.pack_tar(files))


def rewrite_docker(path: Path, change) -> None:
    """Edit manifest.json of a docker archive in place (`change(list_of_entries)`)."""
    doc = json.loads(ik.read_archive(path)["manifest.json"])
    change(doc)
    ik.replace_member(path, "manifest.json", json.dumps(doc).encode())


def many_files(n: int, data: bytes = b"", prefix: str = "d") -> bytes:
    """A tar of `n` files `<prefix>/f0000000`... holding `data` each (no end marker): built from
    one header template, fast enough for half a million entries."""
    template = bytearray(header(f"{prefix}/f0000000", size=len(data)))
    at = len(prefix) + 2
    body = pad(data)
    out = [header(prefix + "/", type_=tarfile.DIRTYPE)]
    for i in range(n):
        block = bytearray(template)
        block[at:at + 7] = b"%07d" % i
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
        out.append(bytes(block) + body)
    return b"".join(out)
