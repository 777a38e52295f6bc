"""Real components for the integration tests: a Docker engine, a registry and a base image.

Each component runs from its own temp dir and leaves nothing behind when stopped (processes,
mounts, files). One that cannot start raises `ServiceUnavailable` with the reason; `require()`
turns that into a skip, or into a failure under `CI=true`, where a missing component must never
pass unnoticed.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

import pytest
import yaml

T = TypeVar("T")

BASE_IMAGE = "layerscan-test/busybox:1"
BUSYBOX = Path("/bin/busybox")
# A unix socket path must fit in sun_path (108 bytes); containerd nests its socket deeper still.
MAX_SOCKET_PATH = 100
INSTALL_HINT = "run scripts/install-deps.sh"
# Fixed paths that dockerd (plugin sockets) and containerd (shim sockets) use whatever their
# roots are; removed at stop when the engine made them and they are empty. Deepest first.
RUN_DIRS = (Path("/run/docker/plugins"), Path("/run/docker"), Path("/run/containerd/s"), Path("/run/containerd"))


class ServiceUnavailable(RuntimeError):
    """A real component could not start; the message says why."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(start: Callable[[], T]) -> T:
    """Start a component; if it cannot start, skip the test, or fail it under CI=true."""
    try:
        return start()
    except ServiceUnavailable as exc:
        if in_ci():
            pytest.fail(f"{exc} (CI=true: a component that cannot start is a failure)", pytrace=False)
        pytest.skip(str(exc))


# --- processes, mounts and dirs ----------------------------------------------------------


def _which(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise ServiceUnavailable(f"{name} not found ({INSTALL_HINT})")
    return path


def _short_tempdir(prefix: str) -> Path:
    """A temp dir under /tmp, not $TMPDIR: socket paths below it must stay short."""
    base = "/tmp" if os.access("/tmp", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(path: Path, lines: int = 8) -> str:
    """The log's error lines, then its last lines: enough to say why a component did not start."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    errors = [line for line in text[:-lines] if "level=error" in line or "level=fatal" in line]
    return "\n".join(errors[-lines:] + text[-lines:]) or "(empty log)"


def _alive(pid: int) -> bool:
    """True for a running process; a zombie counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names `text` (our temp dir): dockerd's containerd, shims."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        pids = [pid for pid in pids if _alive(pid)]
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def _stop_process(proc: Optional[subprocess.Popen], timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _stop_pids(pids: list[int], timeout: float) -> None:
    _signal_all(pids, signal.SIGTERM)
    left = _wait_gone(pids, timeout)
    _signal_all(left, signal.SIGKILL)
    _wait_gone(left, 5)


def _mounts_below(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # \040 for spaces
        if point == str(root) or point.startswith(prefix):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


# skopeo, run as root, keeps a blob-info cache here whatever its other options say.
SKOPEO_CACHE = Path("/var/lib/containers/cache")
MACHINE_WIDE_DIRS = (SKOPEO_CACHE, SKOPEO_CACHE.parent)  # deepest first


def missing_machine_wide_dirs() -> list[Path]:
    return [d for d in MACHINE_WIDE_DIRS if not d.exists()]


def remove_machine_wide_dirs(created: list[Path]) -> None:
    """Remove the machine-wide dirs that were missing before the tests (see missing_...())."""
    for directory in created:
        if directory == SKOPEO_CACHE:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            try:
                directory.rmdir()
            except OSError:
                pass


def remove_tree(root: Path) -> None:
    """Unmount whatever is mounted below `root` (dockerd leaves a netns bind mount), delete it."""
    if not root.exists():
        return
    for point in _mounts_below(root):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(root)


# --- Docker engine -----------------------------------------------------------------------


class DockerEngine:
    """A private dockerd (and the containerd it supervises) on a unix socket in a temp dir."""

    def __init__(self, start_timeout: float = 60, stop_timeout: float = 20,
                 storage_driver: Optional[str] = None) -> None:
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.storage_driver = storage_driver
        self.root: Optional[Path] = None
        self.startup_seconds: Optional[float] = None
        self._proc: Optional[subprocess.Popen] = None
        self._client = None
        self._new_run_dirs: list[Path] = []

    @property
    def socket_path(self) -> Path:
        assert self.root is not None, "engine not started"
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def env(self) -> dict[str, str]:
        """The environment for a subprocess (CLI, skopeo) that should talk to this engine."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def client(self):
        """A docker SDK client for this engine (shared; closed by stop())."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self, timeout: int = 120):
        import docker

        # version="auto": the SDK's default API version is newer than Debian's dockerd speaks.
        return docker.DockerClient(base_url=self.host, version="auto", timeout=timeout)

    def start(self) -> "DockerEngine":
        if os.geteuid() != 0:
            raise ServiceUnavailable("dockerd needs root")
        dockerd = _which("dockerd")
        for tool in ("containerd", "runc"):
            _which(tool)
        self._new_run_dirs = [d for d in RUN_DIRS if not d.exists()]
        self.root = _short_tempdir("ls-dk-")
        if len(str(self.root / "e/containerd/containerd.sock.ttrpc")) > MAX_SOCKET_PATH:
            self.stop()
            raise ServiceUnavailable(f"temp dir path too long for unix sockets: {self.root}")
        began = time.monotonic()
        self._spawn(dockerd)
        try:
            self._wait_ready()
        except ServiceUnavailable:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _spawn(self, dockerd: str) -> None:
        root = self.root
        # Our own config, never the machine's /etc/docker/daemon.json; the identity key dockerd
        # would write to /etc/docker/key.json goes into our dir.
        (root / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(root / "key.json")}))
        argv = [dockerd, "--config-file", str(root / "daemon.json"),
                "--data-root", str(root / "d"), "--exec-root", str(root / "e"),
                "-H", self.host, "--pidfile", str(root / "docker.pid"),
                "--iptables=false", "--ip6tables=false", "--bridge=none"]
        if self.storage_driver:
            argv += ["--storage-driver", self.storage_driver]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        with open(root / "dockerd.log", "wb") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def _wait_ready(self) -> None:
        import docker
        import requests

        deadline = time.monotonic() + self.start_timeout
        last_error = "socket never appeared"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServiceUnavailable(f"dockerd exited with {self._proc.returncode}:\n"
                                         + _log_tail(self.root / "dockerd.log"))
            if self.socket_path.exists():
                try:
                    client = self._connect(timeout=5)
                    client.ping()
                    self._client = client
                    return
                except (docker.errors.DockerException, requests.RequestException) as exc:
                    last_error = str(exc)
            time.sleep(0.1)
        raise ServiceUnavailable(f"dockerd not ready after {self.start_timeout:.0f}s ({last_error}):\n"
                                 + _log_tail(self.root / "dockerd.log"))

    def stop(self) -> None:
        """Stop dockerd, then anything still running from our dirs; unmount; delete the dirs."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.root is None:
            return
        mine = str(self.root) + "/"
        group = self._proc.pid if self._proc is not None else None
        children = set(_pids_mentioning(mine)) - {group}  # containerd, shims
        _stop_process(self._proc, self.stop_timeout)  # dockerd stops its containerd itself
        self._proc = None
        _stop_pids(sorted(children | set(_pids_mentioning(mine))), 5)
        if group is not None:
            try:
                os.killpg(group, signal.SIGKILL)  # whatever is left of its process group
            except (ProcessLookupError, PermissionError):
                pass
        remove_tree(self.root)
        self.root = None
        for directory in self._new_run_dirs:  # deepest first; only if we made it and it is empty
            try:
                directory.rmdir()
            except OSError:
                pass
        self._new_run_dirs = []

    def __enter__(self) -> "DockerEngine":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


# --- base image --------------------------------------------------------------------------


def _is_static_elf(path: Path) -> bool:
    """No PT_INTERP program header: the binary runs in an image with no libc."""
    data = path.read_bytes()
    if data[:5] != b"\x7fELF\x02":  # 64-bit ELF
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def _busybox_applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
    return sorted({name for name in out.split() if name and "/" not in name} - {"busybox"})


def busybox_rootfs_tar() -> bytes:
    """A root filesystem: Debian's static busybox at /bin/busybox, a symlink per applet."""
    if not BUSYBOX.is_file() or not _is_static_elf(BUSYBOX):
        raise ServiceUnavailable(f"a static {BUSYBOX} is needed (Debian busybox-static; {INSTALL_HINT})")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", target: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname, info.size = kind, mode, 1700000000, target, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for name, mode in (("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777),
                           ("usr", 0o755), ("usr/bin", 0o755), ("var", 0o755)):
            add(name, tarfile.DIRTYPE, mode)
        add("bin/busybox", tarfile.REGTYPE, 0o755, BUSYBOX.read_bytes())
        for applet in _busybox_applets():
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, target="busybox")
        add("usr/bin/env", tarfile.SYMTYPE, 0o777, target="/bin/busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/root:/bin/sh\n")
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\n")
    return buf.getvalue()


def import_busybox_base(client, ref: str = BASE_IMAGE):
    """Load the busybox root filesystem into the engine as `ref` (`docker import`); the Image."""
    repository, _, tag = ref.rpartition(":")
    client.api.import_image_from_data(busybox_rootfs_tar(), repository=repository, tag=tag)
    return client.images.get(ref)


# --- registry ----------------------------------------------------------------------------


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise ServiceUnavailable(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return proc


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate it signed for 127.0.0.1 and localhost.

    Returns (ca.crt, server.crt, server.key). The CA is also written as `certs/ca.crt`, the
    layout that skopeo's --cert-dir and containers' certs.d expect.
    """
    openssl = _which("openssl")
    d = directory
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run([openssl, "req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"),
          "-days", "2", "-subj", "/CN=layerscan test CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    _run([openssl, "req", *ec, "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"),
          "-subj", "/CN=localhost"])
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _run([openssl, "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"),
          "-CAkey", str(d / "ca.key"), "-set_serial", str(secrets.randbits(63)), "-days", "2",
          "-extfile", str(d / "server.ext"), "-out", str(d / "server.crt")])
    (d / "certs").mkdir()
    shutil.copy(d / "ca.crt", d / "certs" / "ca.crt")
    return d / "ca.crt", d / "server.crt", d / "server.key"


class Registry:
    """Debian's docker-registry on 127.0.0.1:<free port>, storing blobs in a temp dir.

    auth=True protects it with htpasswd basic auth (`username`/`password`); tls=True serves
    HTTPS with a certificate from a throwaway CA (`ca_cert`, `cert_dir`).
    """

    def __init__(self, *, auth: bool = False, tls: bool = False, username: str = "layerscan",
                 password: Optional[str] = None, start_timeout: float = 30) -> None:
        self.auth, self.tls = auth, tls
        self.username = username if auth else None
        self.password = (password or secrets.token_urlsafe(12)) if auth else None
        self.start_timeout = start_timeout
        self.root: Optional[Path] = None
        self.port: Optional[int] = None
        self.startup_seconds: Optional[float] = None
        self._proc: Optional[subprocess.Popen] = None

    # where it is and how to reach it
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def storage_dir(self) -> Path:
        assert self.root is not None, "registry not started"
        return self.root / "storage"

    @property
    def ca_cert(self) -> Optional[Path]:
        return self.root / "ca.crt" if self.tls and self.root else None

    @property
    def cert_dir(self) -> Optional[Path]:
        return self.root / "certs" if self.tls and self.root else None

    @property
    def credentials(self) -> Optional[str]:
        return f"{self.username}:{self.password}" if self.auth else None

    def start(self) -> "Registry":
        binary = _which("docker-registry")
        self.root = _short_tempdir("ls-reg-")
        try:
            self.storage_dir.mkdir()
            if self.auth:
                _run([_which("htpasswd"), "-Bbc", str(self.root / "htpasswd"), self.username, self.password])
            if self.tls:
                make_tls_files(self.root)
            began = time.monotonic()
            for attempt in range(3):  # a free port can be taken between probing and binding
                self.port = free_port()
                self._spawn(binary)
                if self._wait_ready(last_attempt=attempt == 2):
                    break
            self.startup_seconds = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        return self

    def _config(self) -> dict:
        http = {"addr": self.host, "secret": secrets.token_hex(16)}
        if self.tls:
            http["tls"] = {"certificate": str(self.root / "server.crt"), "key": str(self.root / "server.key")}
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage_dir)},
                        "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": http,
        }
        if self.auth:
            config["auth"] = {"htpasswd": {"realm": "layerscan-test", "path": str(self.root / "htpasswd")}}
        return config

    def _spawn(self, binary: str) -> None:
        (self.root / "config.yml").write_text(yaml.safe_dump(self._config()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}  # env overrides config
        with open(self.root / "registry.log", "wb") as log:
            self._proc = subprocess.Popen([binary, "serve", str(self.root / "config.yml")],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          env=env, start_new_session=True)

    def _wait_ready(self, last_attempt: bool) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = _log_tail(self.root / "registry.log")
                if "address already in use" in log and not last_attempt:
                    return False
                raise ServiceUnavailable(f"docker-registry exited with {self._proc.returncode}:\n{log}")
            try:
                status, _, _ = self.request("/v2/", authenticate=False, timeout=2)
                if status in (200, 401):
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        raise ServiceUnavailable(f"docker-registry not ready after {self.start_timeout:.0f}s:\n"
                                 + _log_tail(self.root / "registry.log"))

    def stop(self) -> None:
        _stop_process(self._proc, 10)
        self._proc = None
        if self.root is not None:
            remove_tree(self.root)
            self.root = None

    def __enter__(self) -> "Registry":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # talking to it
    def ssl_context(self) -> Optional[ssl.SSLContext]:
        return ssl.create_default_context(cafile=str(self.ca_cert)) if self.tls else None

    def request(self, path: str, *, authenticate: bool = True, timeout: float = 10,
                headers: Optional[dict] = None) -> tuple[int, dict, bytes]:
        """GET `path` (e.g. /v2/_catalog); (status, headers, body), errors included."""
        req = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        if authenticate and self.auth:
            import base64

            token = base64.b64encode(self.credentials.encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context()) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def catalog(self) -> list[str]:
        status, _, body = self.request("/v2/_catalog")
        assert status == 200, f"/v2/_catalog: HTTP {status} {body[:200]!r}"
        return json.loads(body)["repositories"]

    def tags(self, repository: str) -> list[str]:
        status, _, body = self.request(f"/v2/{repository}/tags/list")
        assert status == 200, f"tags of {repository}: HTTP {status} {body[:200]!r}"
        return json.loads(body)["tags"] or []

    def skopeo_dest_args(self) -> list[str]:
        """skopeo flags to write to this registry (TLS trust, credentials)."""
        args = [f"--dest-cert-dir={self.cert_dir}"] if self.tls else ["--dest-tls-verify=false"]
        if self.auth:
            args.append(f"--dest-creds={self.credentials}")
        return args

    def push(self, source: str, name: str, *extra_args: str, timeout: float = 300) -> str:
        """Copy `source` (a skopeo transport ref, e.g. docker-archive:/x.tar) to `name` here.

        `extra_args` go to `skopeo copy` (e.g. --format oci --dest-compress-format zstd).
        Returns the pushed reference, HOST:PORT/NAME:TAG.
        """
        ref = f"{self.host}/{name}"
        argv = [_which("skopeo"), "--insecure-policy", "copy", "--quiet", *self.skopeo_dest_args(),
                *extra_args, source, f"docker://{ref}"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"skopeo copy {source} -> {ref} failed: {proc.stderr.strip()}")
        return ref
