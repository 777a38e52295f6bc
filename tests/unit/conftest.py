"""Shared unit-test helpers: a deterministic rule set, layer files and images written by imagekit.

The rules here are test data, independent of `signatures/*.yaml` (written elsewhere and changing):
exact findings need rules whose every match we know.
"""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import Iterable, Optional

import pytest

from scanner.detectors.content import ContentScanner
from scanner.detectors.rules import RuleSet, load_rule_files
from scanner.detectors.signature import SignatureDetector
from scanner.models import Blob, Layer
from tests import imagekit as ik

UNIT_RULES_YAML = r"""
rules:
  - id: unit-aws-key-id
    title: AWS access key id (unit)
    service: AWS
    severity: critical
    keywords: [akia]
    regex: '(?P<secret>AKIA[0-9A-Z]{16})'
  - id: unit-github-pat
    title: GitHub token (unit)
    service: GitHub
    severity: high
    keywords: [ghp_]
    regex: '(?P<secret>ghp_[0-9A-Za-z]{36})'
  - id: unit-private-key
    title: Private key (unit)
    severity: critical
    keywords: ["private key-----"]
    regex: '(?P<secret>-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)'
"""

FORMATS = ("docker-legacy", "docker-oci", "oci-layout", "oci-archive", "crane")
DOCKER_FORMATS = ("docker-legacy", "docker-oci", "crane")  # the ones `docker-archive:` reads
OCI_ZSTD = ik.OCI_LAYER + "+zstd"


@pytest.fixture(scope="session")
def unit_rules_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "unit.yaml"
    path.write_text(UNIT_RULES_YAML)
    return path


@pytest.fixture(scope="session")
def unit_rules(unit_rules_path: Path) -> RuleSet:
    return load_rule_files([unit_rules_path])


@pytest.fixture(scope="session")
def content(unit_rules: RuleSet) -> ContentScanner:
    return ContentScanner([SignatureDetector(unit_rules)], keep_values=True)


def layer_file(path: Path, entries: Iterable[ik.Entry] = (), compression: str = "none", index: int = 0,
               tar: Optional[bytes] = None, dot_slash: bool = False, check: bool = True) -> Layer:
    """One layer on disk as a `Layer` whose blob is the whole file (digests checked unless told not)."""
    data = tar if tar is not None else ik.layer_tar(list(entries), dot_slash=dot_slash)
    blob = ik.compress(data, compression)
    path.write_bytes(blob)
    return Layer(index=index, blob=Blob(str(path), 0, len(blob), ik.sha256(blob) if check else None),
                 diff_id=ik.sha256(data) if check else None)


def zstd_ready(spec: ik.ImageSpec, kind: str, compression: str) -> ik.ImageSpec:
    """imagekit has no Docker media type for zstd layers: docker-legacy and crane need the OCI one."""
    if compression == "zstd" and kind in ("docker-legacy", "crane"):
        for layer in spec.layers:
            layer.media_type = layer.media_type or OCI_ZSTD
    return spec


def write_image(tmp_path: Path, spec, kind: str, compression: str, name: str = "image") -> tuple[Path, ik.Archive]:
    """Write `spec` (one ImageSpec or a list) in format `kind`; a tarball unless it is a layout."""
    path = tmp_path / (name if kind == "oci-layout" else f"{name}.tar")
    if path.is_dir():
        shutil.rmtree(path)
    specs = spec if isinstance(spec, list) else [spec]
    for s in specs:
        zstd_ready(s, kind, compression)
    archive = ik.WRITERS[kind](spec, path, compression=compression)
    return path, archive


def raw_entry(name: str, data: bytes = b"", type_: bytes = tarfile.REGTYPE, linkname: str = "") -> ik.Entry:
    """A tar member named exactly `name` (imagekit's helpers would clean `./` and leading `/`)."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.linkname = type_, len(data), 0o644, linkname
    return ik.raw(info, data)
