"""False positives on real software: layers built from what is installed on this machine, scanned
with the built-in rules, must hold no untriaged finding but the real key material listed below.

Layers (built once, cached as an OCI image layout under ~/.cache/layerscan-tests/false-positives;
the scan itself never uses the layer cache, so every run judges the current detectors):
  python  the standard library and site-packages of the interpreter running the tests
  debian  files dpkg installed under /usr/share and /usr/lib (a subset), the Python bytecode
          compiled at install time next to them, and dpkg's own database (md5sums, status)
  node    a node_modules installed with npm from popular packages (skipped without npm)
Files over 16 MiB are left out (they would only slow the test down).

Debian's files must come out `vendor` (byte-identical to what dpkg recorded); test keys shipped
inside libraries and documentation examples `known-public` (scanner/data/known-public.tsv).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sysconfig
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Optional

import pytest

from scanner.cache import NullCache
from scanner.detectors.rules import load_rules
from scanner.pipeline import ScanOptions, Scanner

CACHE = Path(os.environ.get("LAYERSCAN_FP_CACHE") or Path.home() / ".cache" / "layerscan-tests" / "false-positives")
MAX_FILE = 16 << 20
NPM_PACKAGES = ["express", "lodash", "react", "react-dom", "axios", "webpack", "typescript", "jest", "eslint",
                "@babel/core", "moment", "aws-sdk", "prettier", "rxjs", "jsonwebtoken", "node-forge"]
DEBIAN_PREFIXES = ("/usr/share/doc/", "/usr/share/perl/", "/usr/share/perl5/", "/usr/share/vim/", "/usr/share/zsh/",
                   "/usr/share/bash-completion/", "/usr/share/info/", "/usr/share/man/man1/", "/usr/share/man/man5/",
                   "/usr/share/locale/de/", "/usr/share/locale/fr/", "/usr/share/cmake", "/usr/share/ca-certificates/",
                   "/usr/lib/python3/", f"/usr/lib/{sysconfig.get_config_var('MULTIARCH') or 'x86_64-linux-gnu'}/")

KEY_RULES = frozenset({"rsa-private-key", "ec-private-key", "dsa-private-key", "pkcs8-private-key",
                       "encrypted-private-key", "openssh-private-key", "putty-private-key", "pgp-private-key",
                       "java-keystore", "pkcs12-keystore", "der-private-key"})
# Untriaged findings this test accepts, with the reason: (path pattern, rule ids, why). Only real key
# material belongs here: a test key that a package ships in its own test suite and that is not (yet)
# in scanner/data/known-public.tsv. It is a real private key, published with the package: reported,
# as it should be, and accepted here so that a newly installed package does not fail the test.
ACCEPTED: list[tuple[str, frozenset[str], str]] = [
    (r"/(?:tests?|testing|testdata|test_data|fixtures|SelfTest)/", KEY_RULES,
     "a test key shipped in a package's test suite (real key material, public with the package)"),
]


# --- building the layers ----------------------------------------------------------------------------

def _files(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                path = Path(folder) / name
                if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_FILE:
                    yield path


def python_files() -> list[Path]:
    paths = sysconfig.get_paths()
    roots = sorted({Path(paths[k]) for k in ("stdlib", "purelib", "platlib")})
    roots = [r for r in roots if not any(r != o and o in r.parents for o in roots)]  # site-packages is in stdlib
    return list(_files(roots))


def debian_files() -> list[Path]:
    info = Path("/var/lib/dpkg/info")
    if not info.is_dir():
        return []
    owned: set[Path] = set()
    for listing in info.glob("*.list"):
        for line in listing.read_text(errors="replace").splitlines():
            real = Path(os.path.realpath(line)) if line.startswith("/") else None
            if real and str(real).startswith(DEBIAN_PREFIXES) and real.is_file() and not real.is_symlink() \
                    and real.stat().st_size <= MAX_FILE:
                owned.add(real)
    pyc = {p for p in _files([Path("/usr/lib/python3/dist-packages")]) if p.suffix == ".pyc"}
    database = [*sorted(info.glob("*.md5sums")), Path("/var/lib/dpkg/status")]
    return sorted(owned | pyc) + database


def node_files() -> list[Path]:
    npm = shutil.which("npm")
    if npm is None:
        return []
    key = hashlib.sha256(" ".join(NPM_PACKAGES).encode()).hexdigest()[:12]
    target = CACHE / f"npm-{key}"
    if not (target / "node_modules").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(target),
                               *NPM_PACKAGES], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            return []
    return list(_files([target / "node_modules"]))


def _recipe(files: list[Path], prefix: Optional[tuple[str, str]]) -> str:
    h = hashlib.sha256(repr(prefix).encode())
    for p in files:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def layer(name: str, files: list[Path], prefix: Optional[tuple[str, str]] = None) -> tuple[str, int]:
    """The layer tar of `files` in the cache's blobs (built once per file list): (diff_id, size)."""
    index_path = CACHE / "layers.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    recipe = _recipe(files, prefix)
    if recipe in index and (CACHE / "blobs" / "sha256" / index[recipe]["hex"]).exists():
        return "sha256:" + index[recipe]["hex"], index[recipe]["size"]
    (CACHE / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for stale in [r for r, entry in index.items() if entry["name"] == name]:  # the software changed since
        (CACHE / "blobs" / "sha256" / index.pop(stale)["hex"]).unlink(missing_ok=True)
    tmp = CACHE / f"{name}.tar.tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        for path in files:
            arc = str(path)
            if prefix and arc.startswith(prefix[0]):
                arc = prefix[1] + arc[len(prefix[0]):]
            info = tf.gettarinfo(str(path), arcname=arc.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(path, "rb") as f:
                tf.addfile(info, f)
    h = hashlib.sha256()
    with open(tmp, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    size = tmp.stat().st_size
    tmp.rename(CACHE / "blobs" / "sha256" / h.hexdigest())
    index[recipe] = {"hex": h.hexdigest(), "size": size, "name": name}
    index_path.write_text(json.dumps(index, indent=1))
    return "sha256:" + h.hexdigest(), size


def _blob(data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    path = CACHE / "blobs" / "sha256" / digest
    if not path.exists():
        path.write_bytes(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def build_layout(layers: list[tuple[str, str, int]]) -> Path:
    """An OCI image layout (the cache directory itself) over the layer blobs: (name, diff_id, size)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [d for _, d, _ in layers]},
                         "history": [{"created_by": f"COPY {name} /"} for name, _, _ in layers]}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}
                                      for _, d, s in layers]}).encode()
    (CACHE / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (CACHE / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **_blob(manifest),
         "annotations": {"org.opencontainers.image.ref.name": "fp:latest"}}]}))
    return CACHE


@pytest.fixture(scope="module")
def real_software():
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts: list[tuple[str, str, int]] = []
    skipped: list[str] = []
    for name, files in (("python", python_files()), ("debian", debian_files()), ("node", node_files())):
        if not files:
            if os.environ.get("CI") == "true" and name != "debian":
                pytest.fail(f"cannot build the {name} layer here")
            skipped.append(name)
            continue
        prefix = (str(CACHE), "/opt") if name == "node" else None  # node_modules under /opt/npm-*/
        diff_id, size = layer(name, files, prefix)
        parts.append((name, diff_id, size))
    built = time.perf_counter() - started
    layout = build_layout(parts)
    result = Scanner(load_rules(), ScanOptions(), cache=NullCache()).scan([f"oci:{layout}"])
    elapsed = time.perf_counter() - started
    print(f"\nfalse positives: layers {[(n, s >> 20) for n, _, s in parts]} MiB, skipped {skipped}, "
          f"built in {built:.0f} s, scanned in {elapsed - built:.0f} s")
    return result, [n for n, _, _ in parts]


def accepted(f) -> Optional[str]:
    for pattern, rules, why in ACCEPTED:
        if re.search(pattern, f.hit.path) and f.hit.rule_id in rules:
            return why
    return None


def test_no_untriaged_findings_on_real_software(real_software) -> None:
    result, _ = real_software
    untriaged = [f for f in result.findings if f.triage is None and f.suppressed is None]
    reasons = Counter(accepted(f) for f in untriaged if accepted(f))
    for why, n in reasons.items():
        print(f"  accepted {n}: {why}")
    triage = Counter(f.triage for f in result.findings)
    print(f"  findings: {len(result.findings)}; triaged: {dict(triage)}")
    unexpected = [f"{f.hit.rule_id} {f.hit.path}" + (f"!{f.hit.inner_path}" if f.hit.inner_path else "")
                  + f":{f.hit.line} {f.hit.secret.redacted}" for f in untriaged if accepted(f) is None]
    assert unexpected == []


def test_debian_files_come_out_triaged(real_software) -> None:
    """Whatever is found in the files dpkg installed is `vendor` (or a known-public key)."""
    result, layers = real_software
    if "debian" not in layers:
        pytest.skip("no dpkg database on this machine")
    debian = [f for f in result.findings if f.layer is not None and f.layer.index == layers.index("debian")]
    assert debian and all(f.triage in ("vendor", "known-public") for f in debian)
    assert all(f.hit.path.startswith(("/usr/", "/etc/")) for f in result.findings if f.triage == "vendor")


def test_library_test_keys_are_known_public(real_software) -> None:
    result, _ = real_software
    keys = [f for f in result.findings if f.hit.rule_id in KEY_RULES]
    assert keys and all(f.triage or accepted(f) for f in keys)
    assert sum(f.triage == "known-public" for f in keys) >= 0.9 * len(keys)
