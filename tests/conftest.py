"""Fixtures shared by unit and integration tests.

The service fixtures start real components (a Docker engine, registries) once per session, on
first use, and stop them at the end. Only tests marked `integration` may use them: collection
fails otherwise, so a unit test can never start a service by accident. Tests under
tests/integration/ are marked automatically.
"""
from __future__ import annotations

from pathlib import Path

import os
import time

import pytest

from scanner import inflate
from tests import services

INTEGRATION_DIR = Path(__file__).parent / "integration"
SERVICE_FIXTURES = frozenset({"docker_engine", "base_image", "registry", "registry_factory"})


def pytest_configure(config: pytest.Config) -> None:
    if not any(line.startswith("integration") for line in config.getini("markers")):
        config.addinivalue_line(
            "markers", "integration: needs the real Docker engine or registry (started by fixtures)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
        used = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used and item.get_closest_marker("integration") is None:
            raise pytest.UsageError(
                f"{item.nodeid} uses {', '.join(sorted(used))} but is not marked integration")


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """Every CLI run in the tests (subprocesses too) uses a layer cache of its own, never ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session", autouse=True)
def _no_machine_wide_leftovers():
    """Components write a few machine-wide dirs (skopeo's cache); remove those they created."""
    missing = services.missing_machine_wide_dirs()
    yield
    services.remove_machine_wide_dirs(missing)


@pytest.fixture(scope="session")
def docker_engine():
    """A private dockerd for the whole session (see services.DockerEngine)."""
    engine = services.require(services.DockerEngine().start)
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def base_image(docker_engine):
    """`layerscan-test/busybox:1` in the session's engine: what test Dockerfiles build FROM."""
    return services.require(lambda: services.import_busybox_base(docker_engine.client()))


@pytest.fixture(scope="session")
def registry_factory():
    """Start registries with options: registry_factory(auth=True, tls=True); all stopped at the end."""
    started: list[services.Registry] = []

    def start(**options) -> services.Registry:
        registry = services.require(services.Registry(**options).start)
        started.append(registry)
        return registry

    yield start
    for registry in reversed(started):
        registry.stop()


@pytest.fixture(scope="session")
def registry(registry_factory) -> services.Registry:
    """An anonymous plain-HTTP registry for the whole session."""
    return registry_factory()


@pytest.fixture
def counted(monkeypatch):
    """The layers scan_layer walked, in order, by diff_id."""
    seen: list[str] = []
    from scanner.layers import walk  # the runner imports it where it walks a layer

    real = walk.scan_layer

    def scan_layer(layer, *args, **kwargs):
        seen.append(layer.diff_id)
        return real(layer, *args, **kwargs)

    monkeypatch.setattr(walk, "scan_layer", scan_layer)
    return seen


@pytest.fixture(params=["zlib", "isal"])
def inflater(request, monkeypatch) -> str:
    """Each gzip inflater in turn (`scanner.inflate`): a test that takes this fixture runs once with
    zlib and once with ISA-L (skipped where the `fast` extra is not installed; under CI, where the
    test extra installs it, a failure)."""
    if request.param == "isal" and inflate.isal_zlib is None:
        if services.in_ci():
            pytest.fail("python-isal is not installed: `pip install -e '.[test]'` installs it")
        pytest.skip("python-isal (the `fast` extra) is not installed")
    monkeypatch.setenv("LAYERSCAN_INFLATE", "zlib" if request.param == "zlib" else "auto")
    assert inflate.engine_name() == request.param
    return request.param


# --- no process left behind ------------------------------------------------------------------------

SESSION_MARK = "LAYERSCAN_TEST_SESSION"  # in the environment of every process the tests start
DAEMONS = frozenset({"gpg-agent", "keyboxd", "dirmngr", "scdaemon", "dockerd", "containerd", "containerd-shim",
                     "docker-registry", "registry", "postgres"})
_AT_START: set[int] = set()


def _daemons_of_this_session(mark: str) -> dict[int, str]:
    """Daemons (by name) running now whose environment carries this session's mark."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            if name not in DAEMONS and not name.startswith("containerd-shim"):
                continue
            if f"{SESSION_MARK}={mark}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                out[int(entry.name)] = name
        except OSError:  # gone, or not ours to read
            continue
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ.setdefault(SESSION_MARK, f"{os.getpid()}-{time.time_ns()}")
    _AT_START.update(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a daemon the tests started (gpg-agent, dockerd, a registry...) is still running."""
    if not Path("/proc/self/environ").exists():
        return
    deadline = time.monotonic() + 15  # a stopped dockerd takes a moment to go
    left = _daemons_of_this_session(os.environ[SESSION_MARK])
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _daemons_of_this_session(os.environ[SESSION_MARK])
    left = {pid: name for pid, name in left.items() if pid not in _AT_START}
    if left:
        listed = ", ".join(f"{name} (pid {pid})" for pid, name in sorted(left.items()))
        session.config.get_terminal_writer().line(f"processes left behind by the tests: {listed}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
