"""Lay the corpus out in one image and keep its labels; score a scan result against them.

Layers (a docker-archive written by imagekit):
  0  the "base": package databases (dpkg md5sums and status, apk, rpm), vendor files byte-identical
     to what they record (decoys), keys made at install time and a modified vendor file (plants)
  1  every plant in every file location, and the file decoys
  2  removes or rewrites plants (deleted, overwritten, opaque directory)
  then empty layers: one build arg per plant (history), ENV and LABEL values in the config.

Labels: a `Planted` per secret (kind, category, location, where a finding must point, status,
sha256 of the exact secret) and a `Placed` per decoy; `score.py` matches scan results to them.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tests import imagekit as ik
from tests.corpus import material as m
from tests.corpus.decoys import DECOYS
from tests.corpus.kinds import KINDS, Kind, Plant
from tests.corpus.material import Rand

FILE_LOCATIONS = ("present", "deleted", "overwritten", "opaque", "zip", "targz", "gzip", "utf16", "binary", "minified")
CONFIG_LOCATIONS = ("env", "history", "label")
LOCATIONS = FILE_LOCATIONS + CONFIG_LOCATIONS
STATUS = {"deleted": "deleted", "opaque": "deleted", "overwritten": "overwritten", "env": "config",
          "label": "config", "history": "history"}
FIXED_LOCATIONS = ("present", "deleted", "overwritten", "zip", "targz")  # credential files, key stores
TRIAGE = "triage"  # the category of the plants that triage must leave alone


@dataclass(frozen=True)
class Planted:
    kind: str
    category: str
    location: str
    path: str  # the finding's path: a file, or `Env.X`, `Labels.X`, `history[N]`
    inner: Optional[str]
    status: str
    sha256: str


@dataclass(frozen=True)
class Placed:
    id: str
    category: str
    path: str


@dataclass
class Corpus:
    image: Path
    plants: list[Planted]
    decoys: list[Placed]


@dataclass
class _Layout:
    base: list[ik.Entry] = field(default_factory=list)
    added: list[ik.Entry] = field(default_factory=list)
    removed: list[ik.Entry] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    args: list[tuple[str, str]] = field(default_factory=list)
    plants: list[Planted] = field(default_factory=list)
    decoys: list[Placed] = field(default_factory=list)

    def plant(self, k: Kind, location: str, path: str, secret: str | bytes, inner: Optional[str] = None,
              category: Optional[str] = None) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        self.plants.append(Planted(k.id, category or k.category, location, path, inner,
                                   STATUS.get(location, "present"), hashlib.sha256(raw).hexdigest()))


def _bytes(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


def _targz(members: dict[str, bytes]) -> bytes:
    return gzip.compress(ik.pack_tar(members, dirs=False), mtime=0)


def _filler(r: Rand, n: int) -> str:
    parts = []
    while sum(map(len, parts)) < n:
        parts.append(f"function {r.chars('abcdefghij', 3)}(e,t){{return e.{r.chars('klmnopqrst', 4)}(t,{r.randrange(999)})}}")
    return ";".join(parts)


def _minified(r: Rand, prop: str) -> str:
    return f"!function(){{{_filler(r, 16000)};var cfg={{{prop}}};{_filler(r, 16000)}}}();\n"


def _binary(r: Rand, data: bytes) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + r.raw(4000) + b"\x00" + data + b"\x00" + r.raw(4000)


def _home(path: str, location: str) -> str:
    """A fixed path moved aside for one location, keeping what identifies it (file name, parents)."""
    if path.startswith("/root/"):
        return f"/home/{location}/" + path[len("/root/"):]
    if path.startswith("/run/user/1000/"):
        return f"/run/user/{1000 + FIXED_LOCATIONS.index(location)}/" + path[len("/run/user/1000/"):]
    if path == "/etc/shadow":
        return {"present": "/etc/shadow", "deleted": "/etc/shadow-", "overwritten": "/etc/gshadow"}.get(location, path)
    return f"/srv/{location}{path}"


def _plant_kind(lay: _Layout, k: Kind, index: int, r: Rand) -> None:
    p = k.make(r)
    data = _bytes(p.text)
    text = isinstance(p.text, str)
    if k.path is not None:
        _plant_fixed(lay, k, p, data)
    else:
        for location in FILE_LOCATIONS if text else FIXED_LOCATIONS:
            if location == "minified" and not (p.env or "PRIVATE KEY" in str(p.text)):
                continue  # a bundle holds config values and keys, not whole config files
            _plant_file(lay, k, p, data, location, f"/app/{location}/{k.id}-{index}", r)
    if p.env is not None:
        name, value = p.env
        while name in lay.env:
            name = "X" + name
        lay.env[name] = value
        lay.plant(k, "env", f"Env.{name}", p.secret)
        lay.args.append((name, value))
        lay.plant(k, "history", f"history[{2 + len(lay.args)}]", p.secret)
        if index % 3 == 0:
            lay.labels[name] = value
            lay.plant(k, "label", f"Labels.{name}", p.secret)


def _plant_fixed(lay: _Layout, k: Kind, p: Plant, data: bytes) -> None:
    for location in FIXED_LOCATIONS:
        path = _home(k.path or "", location)
        if location in ("zip", "targz"):
            archive = f"/app/{location}/{k.id}-{k.name.strip('.')}-backup.{'zip' if location == 'zip' else 'tar.gz'}"
            inner = path.lstrip("/")
            blob = ik.pack_zip({inner: data}) if location == "zip" else _targz({inner: data})
            lay.added.append(ik.file(archive, blob))
            lay.plant(k, location, archive, p.secret, inner)
            continue
        _place(lay, path, data, location)
        lay.plant(k, location, path, p.secret)


def _place(lay: _Layout, path: str, data: bytes, location: str) -> None:
    lay.added.append(ik.file(path, data, mode=0o600))
    if location == "deleted":
        lay.removed.append(ik.whiteout(path))
    elif location == "overwritten":
        lay.removed.append(ik.file(path, b"# rotated\n"))


def _plant_file(lay: _Layout, k: Kind, p: Plant, data: bytes, location: str, folder: str, r: Rand) -> None:
    path = f"{folder}/{k.name}"
    secret: str | bytes = p.secret
    inner: Optional[str] = None
    if location in ("present", "deleted", "overwritten"):
        _place(lay, path, data, location)
    elif location == "opaque":
        path = f"/app/cache/{k.id}-{folder.rsplit('-', 1)[1]}/{k.name}"
        lay.added.append(ik.file(path, data))
    elif location == "zip":
        path, inner = f"{folder}.jar", f"BOOT-INF/classes/{k.name}"
        lay.added.append(ik.file(path, ik.pack_zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n", inner: data})))
    elif location == "targz":
        path, inner = f"{folder}.tar.gz", f"app/{k.name}"
        lay.added.append(ik.file(path, _targz({inner: data})))
    elif location == "gzip":
        path, inner = f"{folder}/{k.name}.gz", k.name
        lay.added.append(ik.file(path, gzip.compress(data, mtime=0)))
    elif location == "utf16":
        lay.added.append(ik.file(path, "\ufeff".encode("utf-16-le") + str(p.text).encode("utf-16-le")))
    elif location == "binary":
        path = f"{folder}/{k.id}.bin"
        lay.added.append(ik.file(path, _binary(r, data), mode=0o755))
    elif location == "minified":  # a bundle's config object: `NAME:"value"`, or the text as a JS string
        path = f"{folder}/bundle.min.js"
        prop = f"{p.env[0]}:{json.dumps(p.env[1])}" if p.env else f"settings:{json.dumps(str(p.text).rstrip())}"
        lay.added.append(ik.file(path, _minified(r, prop).encode()))
        secret = json.dumps(str(p.secret))[1:-1]
    lay.plant(k, location, path, secret, inner)


# --- package databases, vendor files, install-time keys ------------------------------------------

def rpm_header(name: str, files: dict[str, str]) -> bytes:
    """An rpm header blob (index entries + data store) naming files and their sha256 digests."""
    dirs = sorted({f.rsplit("/", 1)[0] + "/" for f in files})
    paths = list(files)
    tags = [(1000, 6, [name]), (1035, 8, [files[p] for p in paths]), (1116, 4, [dirs.index(p.rsplit("/", 1)[0] + "/")
                                                                               for p in paths]),
            (1117, 8, [p.rsplit("/", 1)[1] for p in paths]), (1118, 8, dirs), (5011, 4, [8])]
    index, store = b"", b""
    for tag, kind, values in tags:
        if kind == 4:
            store += b"\0" * (-len(store) % 4)
            data = struct.pack(f">{len(values)}I", *values)
        else:
            data = b"".join(v.encode() + b"\0" for v in values)
        index += struct.pack(">IIII", tag, kind, len(store), len(values))
        store += data
    return struct.pack(">II", len(tags), len(store)) + index + store


def rpmdb(packages: dict[str, dict[str, str]]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rpmdb.sqlite"
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
        for name, files in packages.items():
            con.execute("INSERT INTO Packages (blob) VALUES (?)", (rpm_header(name, files),))
        con.commit()
        con.close()
        return path.read_bytes()


def _vendor(lay: _Layout, r: Rand) -> None:
    """Vendor decoys (files as their package shipped them) and the plants triage must not hide."""
    key = lambda: m.pem("PRIVATE KEY", m.pkcs8_der(r)).encode()  # noqa: E731
    token = lambda: f"GITHUB_TOKEN={m.checksummed('ghp_', r)}\n".encode()  # noqa: E731
    dpkg = {"/usr/share/doc/acme-tools/examples/server.key": key(), "/usr/lib/acme/tests/fixtures.env": token(),
            "/usr/lib/python3/dist-packages/acme/conf.py": f'API_TOKEN = "{m.checksummed("ghp_", r)}"\n'.encode(),
            "/lib/x86_64-linux-gnu/libacme.so.1": _binary(r, key())}
    conffile = ("/etc/acme/acme.conf", f"[server]\npassword = {r.password(18)}\n".encode())
    apk = {"/usr/share/apk-demo/key.pem": key()}
    rpm = {"/usr/share/rpm-demo/token.env": token()}
    pyc = b"\xa7\r\r\n\0\0\0\0" + r.raw(8) + b"\xe3\0\0\0" + dpkg["/usr/lib/python3/dist-packages/acme/conf.py"][13:-2]
    sums = "".join(f"{hashlib.md5(d).hexdigest()}  {p.lstrip('/')}\n" for p, d in dpkg.items())
    modified = "/usr/share/doc/acme-tools/examples/client.key"
    sums += f"{r.hex(32)}  {modified.lstrip('/')}\n"  # what the package shipped; the image holds another key
    status = (f"Package: acme-tools\nStatus: install ok installed\nVersion: 1.0\nConffiles:\n"
              f" {conffile[0]} {hashlib.md5(conffile[1]).hexdigest()}\n\n")
    apkdb = "".join(f"P:apk-demo\nV:1.0-r0\nF:{p.rsplit('/', 1)[0].lstrip('/')}\nR:{p.rsplit('/', 1)[1]}\n"
                    f"Z:Q1{m.b64(hashlib.sha1(d).digest())}\n\n" for p, d in apk.items())
    rpmfiles = {p: hashlib.sha256(d).hexdigest() for p, d in rpm.items()}
    lay.base += [ik.file("/var/lib/dpkg/info/acme-tools.md5sums", sums.encode()),
                 ik.file("/var/lib/dpkg/status", status.encode()), ik.file("/lib/apk/db/installed", apkdb.encode()),
                 ik.file("/var/lib/rpm/rpmdb.sqlite", rpmdb({"rpm-demo": rpmfiles}))]
    # merged /usr: dpkg lists lib/..., the layer holds usr/lib/...
    on_disk = {("/usr" + p if p.startswith("/lib/") else p): d for p, d in dpkg.items()}
    for path, data in [*on_disk.items(), conffile, *apk.items(), *rpm.items(),
                       ("/usr/lib/python3/dist-packages/acme/__pycache__/conf.cpython-311.pyc", pyc)]:
        lay.base.append(ik.file(path, data))
        lay.decoys.append(Placed(f"vendor:{path}", "vendor", path))
    install = [Kind("openssh-private-key", TRIAGE, lambda r: Plant(m.openssh(r), "")),
               Kind("rsa-private-key", TRIAGE, lambda r: Plant(m.pem("RSA PRIVATE KEY", m.rsa_der(r)), "")),
               Kind("pkcs8-private-key", TRIAGE, lambda r: Plant(m.pem("PRIVATE KEY", m.pkcs8_der(r)), "")),
               Kind("pkcs8-private-key", TRIAGE, lambda r: Plant(m.pem("PRIVATE KEY", m.pkcs8_der(r)), ""))]
    paths = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key", "/etc/ssl/private/ssl-cert-snakeoil.key",
             modified]
    for k, path in zip(install, paths):
        text = str(k.make(r).text)
        lay.base.append(ik.file(path, text.encode(), mode=0o600))
        lay.plant(k, "present", path, text.strip())


def _decoys(lay: _Layout, r: Rand) -> None:
    for d in DECOYS:
        path = f"/srv/decoys/{d.id}/{d.name}"
        lay.added.append(ik.file(path, _bytes(d.make(r))))
        lay.decoys.append(Placed(d.id, d.category, path))
    # known-public values in the config, and placeholders as ENV values
    for name, value in (("DOCS_AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
                        ("DOCS_STRIPE_KEY", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
                        ("DB_PASSWORD_TEMPLATE", "${DB_PASSWORD}"), ("API_TOKEN_PLACEHOLDER", "<token>"),
                        ("REQUEST_ID", r.uuid()), ("BUILD_SHA", r.hex(40))):
        lay.env[name] = value
        lay.decoys.append(Placed(f"env:{name}", "known-public" if name.startswith("DOCS_") else "placeholder",
                                 f"Env.{name}"))


def layout(seed: int = 0) -> _Layout:
    lay = _Layout()
    r = Rand(f"corpus-{seed}")
    for index, k in enumerate(KINDS):
        _plant_kind(lay, k, index, Rand(f"{seed}-{index}-{k.id}"))
    _vendor(lay, r)
    _decoys(lay, r)
    lay.removed += [ik.opaque("/app/cache")]
    return lay


def build_corpus(directory: Path, seed: int = 0) -> Corpus:
    """Write the corpus image (`corpus.tar`, docker-archive) under `directory`; return its labels."""
    lay = layout(seed)
    steps: list[ik.Step] = [
        ik.LayerSpec("ADD rootfs.tar / # base with package databases", lay.base),
        ik.LayerSpec("COPY . /", lay.added),
        ik.LayerSpec("RUN /bin/sh -c rm -rf /app/cache && rotate-secrets", lay.removed),
    ]
    steps += [ik.EmptyLayer(f"|1 {name}={value} /bin/sh -c make build") for name, value in lay.args]
    spec = ik.ImageSpec(steps, tags=["corpus/quality:1"], env=[f"{k}={v}" for k, v in lay.env.items()],
                        labels=dict(lay.labels))
    path = Path(directory) / "corpus.tar"
    ik.write_docker_archive_oci(spec, path, compression="gzip")
    return Corpus(path, lay.plants, lay.decoys)
