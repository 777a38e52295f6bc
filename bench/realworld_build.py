"""Images for bench/realworld.py: a debootstrap base, then `docker build --network host` of each
image in bench/realworld/images/, each saved as a `docker save` tarball in the cache.

An image's tarball is named by a key over everything that makes it (the rootfs recipe, the base
and image Dockerfiles, the context files), so a re-run with nothing changed builds nothing and
needs no engine. The engine is the one DOCKER_HOST names, or a private one started like the
tests start theirs (tests/services.py).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import realworld_plants  # noqa: E402

DATA = REPO / "bench" / "realworld"
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
INCLUDE = "ca-certificates,python3,python3-venv,python3-pip,nodejs"
HOST_CA = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
ROOTFS_REF, BASE_REF = "layerscan-bench/rootfs:bookworm", "layerscan-bench/base:bookworm"


@dataclass(frozen=True)
class Spec:
    name: str
    planted: bool
    holds: str      # one line for README.txt and the table


IMAGES = (
    Spec("pypi-top", False, "the most-downloaded PyPI packages (bench/realworld/pypi-top.txt)"),
    Spec("npm-top", False, "the most-depended-upon npm packages (npm-top.txt) and their dependencies"),
    Spec("sdks", False, "SDKs of credential-issuing services, PyPI and npm (sdks-pypi.txt, sdks-npm.txt)"),
    Spec("django-data", False, "Debian packages (apt.txt), a Django + data stack (django-data.txt), a small Django app"),
    Spec("automation", False, "automation tools and test doubles: ansible, moto, faker, pytest... (automation.txt)"),
    Spec("express-react", False, "Debian packages (apt.txt), an Express + React app built with vite"),
    Spec("planted", True, "a handful of PyPI/npm/apt packages and every planted secret (realworld_plants.py)"),
)
SLICE = ("planted",)


def log(message: str) -> None:
    print(f"realworld: {message}", file=sys.stderr, flush=True)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _npm_manifest(list_name: str) -> bytes:
    deps = realworld_plants._npm_package_json(DATA / list_name)
    name = list_name.removesuffix(".txt")
    return (json.dumps({"name": f"bench-{name}", "version": "1.0.0", "private": True,
                        "dependencies": deps}, indent=2) + "\n").encode()


def make_context(dest: Path) -> None:
    """The build context every image shares: bench/realworld/ plus the generated files."""
    shutil.copytree(DATA, dest, dirs_exist_ok=True)
    for list_name in ("npm-top.txt", "sdks-npm.txt"):
        out = dest / "generated" / list_name.removesuffix(".txt") / "package.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(_npm_manifest(list_name))
    realworld_plants.write_context(dest, DATA)
    shutil.copyfile(HOST_CA, dest / "generated" / "host-ca.crt")


def _tree_bytes(root: Path, path: Path) -> bytes:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return b"".join(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() for p in files)


def image_key(context: Path, name: str) -> str:
    """A digest of what makes the image: the rootfs recipe, both Dockerfiles, what they COPY."""
    parts = [f"{SUITE} {INCLUDE} {MIRROR}".encode()]
    for dockerfile in (context / "images" / "base.Dockerfile", context / "images" / f"{name}.Dockerfile"):
        text = dockerfile.read_text()
        parts.append(text.encode())
        for line in text.splitlines():
            if line.startswith("COPY "):
                parts += [_tree_bytes(context, context / src) for src in line.split()[1:-1]]
    return _digest(*parts)


class Builder:
    """Makes the images' tarballs in CACHE (and links them into PUBLISH) as they are needed."""

    def __init__(self, cache: Path, publish: Optional[Path] = None) -> None:
        self.cache, self.publish = cache, publish
        self.build_seconds: dict[str, float] = {}
        self._stack = contextlib.ExitStack()
        self._client = None
        self._based = False

    def __enter__(self) -> "Builder":
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    def tarball(self, spec: Spec, context: Path) -> Path:
        key = image_key(context, spec.name)
        path = self.cache / "images" / f"{spec.name}-{key}.tar"
        if not path.exists():
            began = time.monotonic()
            self._build(spec, context, path)
            self.build_seconds[spec.name] = time.monotonic() - began
        if self.publish is not None:
            self.publish.mkdir(parents=True, exist_ok=True)
            link = self.publish / f".{spec.name}.tar.new"  # replaced atomically: never missing
            link.unlink(missing_ok=True)
            link.symlink_to(path)
            link.replace(self.publish / f"{spec.name}.tar")
        return path

    # --- building ----------------------------------------------------------------------

    def _build(self, spec: Spec, context: Path, out: Path) -> None:
        client = self._engine()
        self._base(client, context)
        tag = f"layerscan-bench/{spec.name}:latest"
        log(f"building {spec.name} (log: {self.cache / 'logs' / (spec.name + '.log')})")
        self._docker_build(client, context, f"images/{spec.name}.Dockerfile", tag, spec.name)
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_suffix(".part")
        with open(part, "wb") as fh:
            for chunk in client.images.get(tag).save(chunk_size=1 << 20, named=True):
                fh.write(chunk)
        part.rename(out)
        log(f"saved {out}")

    def _docker_build(self, client, context: Path, dockerfile: str, tag: str, name: str) -> None:
        logfile = self.cache / "logs" / f"{name}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(logfile, "w") as fh:
            for item in client.api.build(path=str(context), dockerfile=dockerfile, tag=tag,
                                         network_mode="host", rm=True, forcerm=True, pull=False,
                                         decode=True):
                fh.write(item.get("stream", ""))
                fh.flush()
                if "error" in item:
                    fh.write(item["error"] + "\n")
                    raise SystemExit(f"realworld: building {name} failed: {item['error'].strip()}"
                                     f" (see {logfile})")

    def _engine(self):
        if self._client is None:
            import docker

            if os.environ.get("DOCKER_HOST"):
                self._client = docker.from_env(version="auto", timeout=3600)
            else:
                from tests.services import DockerEngine

                engine = self._stack.enter_context(DockerEngine())
                self._client = docker.DockerClient(base_url=engine.host, version="auto", timeout=3600)
                self._stack.callback(self._client.close)
        return self._client

    def _base(self, client, context: Path) -> None:
        if self._based:
            return
        rootfs = self.rootfs()
        log("importing the base rootfs")
        with open(rootfs, "rb") as fh:
            client.api.import_image_from_data(fh, repository=ROOTFS_REF.split(":")[0], tag="bookworm")
        self._docker_build(client, context, "images/base.Dockerfile", BASE_REF, "base")
        self._based = True

    def rootfs(self) -> Path:
        """The debootstrap rootfs as a tarball, made once (cached by its recipe)."""
        key = _digest(f"{SUITE} {INCLUDE} {MIRROR}".encode())
        path = self.cache / f"rootfs-{SUITE}-{key}.tar"
        if not path.exists():
            self._debootstrap(path)
        return path

    def _debootstrap(self, out: Path) -> None:
        if shutil.which("debootstrap") is None:
            raise SystemExit("realworld: debootstrap is not installed (scripts/install-deps.sh)")
        log(f"debootstrap {SUITE} ({INCLUDE})")
        self.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="rootfs-", dir=self.cache) as tmp:
            root = Path(tmp) / "root"
            _run(["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(root), MIRROR],
                 self.cache / "logs" / "debootstrap.log")
            (root / "etc/apt/sources.list").write_text(f"deb {MIRROR} {SUITE} main\n")
            for junk in ("var/lib/apt/lists", "var/cache/apt/archives", "debootstrap"):
                shutil.rmtree(root / junk, ignore_errors=True)
            (root / "var/lib/apt/lists/partial").mkdir(parents=True)
            (root / "var/cache/apt/archives/partial").mkdir(parents=True)
            (root / "etc/resolv.conf").write_text("")
            part = out.with_suffix(".part")
            _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(part), "."],
                 self.cache / "logs" / "rootfs-tar.log")
            part.rename(out)


def _run(argv: list[str], logfile: Path) -> None:
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "wb") as fh:
        done = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"realworld: {argv[0]} failed ({done.returncode}); see {logfile}")


@contextlib.contextmanager
def context_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="layerscan-realworld-") as tmp:
        make_context(Path(tmp))
        yield Path(tmp)


def select(names: Optional[str], slice_only: bool) -> list[Spec]:
    if slice_only:
        return [s for s in IMAGES if s.name in SLICE]
    if not names:
        return list(IMAGES)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {s.name: s for s in IMAGES}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"realworld: unknown image {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[n] for n in wanted]
