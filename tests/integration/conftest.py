"""Helpers for integration tests: build and save images with the session's engine, run the CLI.

The service fixtures themselves (docker_engine, base_image, registry, registry_factory) live in
tests/conftest.py.
"""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 600


@pytest.fixture(scope="session")
def build_image(docker_engine, base_image, tmp_path_factory) -> Callable:
    """build_image(dockerfile, tag=None, buildargs=None, files=None) -> docker Image.

    Builds like `docker build --network host` from a context holding the Dockerfile and
    `files` ({relative path: bytes or str}). Dockerfiles build FROM layerscan-test/busybox:1.
    """
    client = docker_engine.client()

    def build(dockerfile: str, tag: Optional[str] = None, buildargs: Optional[dict] = None,
              files: Optional[dict] = None):
        context = tmp_path_factory.mktemp("context")
        (context / "Dockerfile").write_text(dockerfile)
        for name, content in (files or {}).items():
            path = context / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        image, _ = client.images.build(path=str(context), tag=tag or f"layerscan-test/t{uuid.uuid4().hex[:12]}:1",
                                       buildargs=buildargs or {}, network_mode="host", rm=True,
                                       forcerm=True, pull=False)
        return image

    return build


@pytest.fixture(scope="session")
def save_image(docker_engine) -> Callable:
    """save_image(image, path) -> path: `docker save` of the image (named by its first tag)."""

    def save(image, path: Path) -> Path:
        with open(path, "wb") as out:
            for chunk in image.save(chunk_size=1 << 20, named=bool(image.tags)):
                out.write(chunk)
        return path

    return save


@pytest.fixture(scope="session")
def run_cli() -> Callable:
    """run_cli(*args, env=None) -> CompletedProcess of `python -m scanner ARGS` (text, captured)."""

    def run(*args: str, env: Optional[dict] = None, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "scanner", *map(str, args)], cwd=REPO_ROOT,
                              capture_output=True, text=True, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    return run
