"""A hand-made ScanResult: reports are tested on known data, apart from the pipeline."""
from __future__ import annotations

import hashlib

import pytest

from scanner.models import (DetectorKind, Finding, Hit, ImageResult, LayerInfo, LocationKind, Removal,
                            ScanResult, Secret, Severity, Skipped, SourceKind, Status)
from scanner.redact import make_secret
from tests import secrets_catalog as sc

L0 = LayerInfo(0, "sha256:" + "a" * 64, "sha256:" + "b" * 64, "ADD rootfs.tar / # buildkit", 12, 40960)
L1 = LayerInfo(1, "sha256:" + "c" * 64, "sha256:" + "d" * 64,
               "|1 NPM_TOKEN=npm_****...L7eN /bin/sh -c rm /app/.env", 1, 2048)


def _hit(rule, detector, severity, title, path, line, value, kind=LocationKind.FILE, inner=None, reveal=False):
    secret = make_secret(value.encode(), keep_value=reveal)
    return Hit(rule, detector, severity, title, path, line, secret, inner, 3, kind)


def build_result(reveal: bool) -> ScanResult:
    gh = _hit("github-pat", DetectorKind.SIGNATURE, Severity.HIGH, "GitHub personal access token",
              "/app/.env", 3, sc.GITHUB_PAT, reveal=reveal)
    jar = _hit("aws-access-key-id", DetectorKind.SIGNATURE, Severity.CRITICAL, "AWS access key id",
               "/app/app.jar", 7, sc.AWS_KEY_ID, inner="BOOT-INF/classes/app.properties", reveal=reveal)
    env = _hit("secret-named-variable", DetectorKind.CONFIG, Severity.MEDIUM, "Secret in a named variable",
               "Env.DB_PASSWORD", None, sc.DB_PASSWORD, LocationKind.ENV, reveal=reveal)
    hist = _hit("secret-named-variable", DetectorKind.CONFIG, Severity.LOW, "Secret in a named variable",
                "history[2]", None, sc.NPM_TOKEN, LocationKind.HISTORY, reveal=reveal)
    findings = (
        Finding("f" * 32, gh, "leaky.tar", Status.DELETED, L0, Removal(1, L1.created_by)),
        Finding("e" * 32, jar, "leaky.tar", Status.PRESENT, L0, None, "known-public"),
        Finding("d" * 32, env, "leaky.tar", Status.CONFIG, None),
        Finding("c" * 32, hist, "leaky.tar", Status.HISTORY, L1),
    )
    image = ImageResult("leaky.tar", SourceKind.OCI_ARCHIVE, "sha256:" + "9" * 64, (L0, L1), findings,
                        (Skipped("/app/huge.bin", "larger than 8 GiB", 1),), "linux/amd64")
    clean = ImageResult("clean.tar", SourceKind.DOCKER_ARCHIVE, None, (L0,), (), ())
    return ScanResult((image, clean), reveal=reveal)


@pytest.fixture
def result() -> ScanResult:
    return build_result(reveal=False)


@pytest.fixture
def revealed() -> ScanResult:
    return build_result(reveal=True)


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


__all__ = ["build_result", "sha", "L0", "L1", "Secret"]
