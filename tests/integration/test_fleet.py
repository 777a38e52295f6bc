"""`layerscan registry`: a real docker-registry filled with 30 images that share base layers.

A counting proxy in front of the registry records every blob GET: each unique layer must be
fetched exactly once, and the per-image results must equal a one-by-one scan of each image.
"""
from __future__ import annotations

import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from scanner.cache import NullCache, SqliteLayerCache
from scanner.detectors.rules import load_rules
from scanner.fleet import Fleet, FleetTarget, list_references
from scanner.pipeline import ScanOptions, Scanner
from scanner.reports import Format, GroupBy, report_for
from scanner.sources.reference import parse_reference
from scanner.sources.registry import endpoint_for
from scanner.sources.remote import RegistryOptions
from tests import imagekit as ik
from tests import secrets_catalog as catalog
from tests import services

pytestmark = pytest.mark.integration

IMAGES = 30
REPO_ROOT = Path(__file__).resolve().parents[2]
BLOB_GET = re.compile(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")


def cli(command: str, *args) -> subprocess.CompletedProcess:
    """`layerscan COMMAND --no-progress ARGS`, the real CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "scanner", command, "--no-progress", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)


# --- the fleet ---------------------------------------------------------------------------


def fleet_specs(count: int = IMAGES, base_bytes: int = 256 << 10) -> list[tuple[str, ik.ImageSpec]]:
    """`count` images in team/app0.. (tags 1..3): one base layer for all (a `.env` that half of
    them delete), one of three middle layers, and a top layer of their own."""
    rnd = random.Random(11)
    base = ik.LayerSpec("ADD rootfs /", [ik.dir("etc"), ik.file("etc/os-release", b"ID=fleet\n"),
                                         ik.file("etc/base.env", f"AWS_ACCESS_KEY_ID={catalog.AWS_KEY_ID}\n".encode()),
                                         ik.dir("bin"), ik.file("bin/blob", rnd.randbytes(base_bytes))])
    mids = [ik.LayerSpec(f"RUN install lib{k}", [ik.dir("opt"), ik.dir(f"opt/lib{k}"),
                                                  ik.file(f"opt/lib{k}/data", rnd.randbytes(32 << 10))])
            for k in range(3)]
    mids[0].add(ik.file("opt/lib0/config", f"token: {catalog.GITHUB_PAT}\n".encode()))
    out = []
    for i in range(count):
        steps: list = [base, mids[i % 3]]
        if i % 2 == 0:
            steps.append(ik.LayerSpec("RUN rm /etc/base.env", [ik.whiteout("etc/base.env")]))
        top = [ik.dir("app"), ik.file("app/version", f"{i}\n".encode())]
        if i == 7:
            top.append(ik.file("app/.env", f"STRIPE={catalog.STRIPE_LIVE_KEY}\n".encode()))
        steps.append(ik.LayerSpec(f"COPY app{i} /app", top))
        env = [f"SLACK={catalog.SLACK_BOT_TOKEN}"] if i % 10 == 3 else None
        out.append((f"team/app{i // 3}:{i % 3 + 1}", ik.ImageSpec(steps=steps, env=env)))
    return out


def upload(url: str, repo: str, tag: str, image: ik.BuiltImage) -> None:
    """Blobs (those the repository lacks), then the manifest, straight through the distribution API."""
    for data in [layer.blob for layer in image.layers] + [image.config_bytes]:
        head = urllib.request.Request(f"{url}/v2/{repo}/blobs/{ik.sha256(data)}", method="HEAD")
        try:
            urllib.request.urlopen(head).close()
            continue
        except urllib.error.HTTPError:
            pass
        with urllib.request.urlopen(urllib.request.Request(f"{url}/v2/{repo}/blobs/uploads/", data=b"",
                                                           method="POST")) as resp:
            location = urllib.parse.urljoin(url, resp.headers["Location"])
        sep = "&" if "?" in location else "?"
        urllib.request.urlopen(urllib.request.Request(
            f"{location}{sep}digest={ik.sha256(data)}", data=data, method="PUT",
            headers={"Content-Type": "application/octet-stream"})).close()
    urllib.request.urlopen(urllib.request.Request(f"{url}/v2/{repo}/manifests/{tag}", data=image.manifest_bytes,
                                                  method="PUT", headers={"Content-Type": ik.OCI_MANIFEST})).close()


class CountingProxy:
    """A plain-HTTP reverse proxy to the registry that counts blob GETs by digest."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.blob_gets: Counter = Counter()
        self.delay = 0.0  # seconds before answering a blob GET: a slow registry
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                proxy.relay(self, "GET")

            def do_HEAD(self) -> None:  # noqa: N802
                proxy.relay(self, "HEAD")

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def relay(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        match = BLOB_GET.match(urllib.parse.urlsplit(handler.path).path)
        if match and method == "GET":
            with self.lock:
                self.blob_gets[match.group(2)] += 1
            time.sleep(self.delay)
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(method, handler.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        handler.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method == "GET":
            handler.wfile.write(body)
        conn.close()

    def reset(self) -> None:
        with self.lock:
            self.blob_gets.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fleet(registry_factory):
    """(registry, proxy, {ref via the proxy: BuiltImage}); one image outside the `team/` prefix."""
    reg = registry_factory()
    built = {}
    for name, spec in fleet_specs():
        repo, tag = name.split(":")
        image = ik.build_image(spec)
        upload(reg.url, repo, tag, image)
        built[f"{repo}:{tag}"] = image
    upload(reg.url, "other/tool", "1", ik.build_image(ik.ImageSpec(steps=[ik.LayerSpec("ADD x /", [ik.file("x", b"x")])])))
    proxy = CountingProxy(reg.host)
    yield reg, proxy, {f"{proxy.host}/{name}": image for name, image in built.items()}
    proxy.stop()


def layer_digests(images) -> set[str]:
    return {layer.digest for image in images for layer in image.layers}


def per_image(doc: dict) -> dict[str, list]:
    """Findings by image ref, without the ref itself and without `gating` (the CLI's gate decides
    that; the one-by-one scans below use the Python API, which decides no gate), in report order."""
    out: dict[str, list] = {image["ref"].removeprefix("docker://"): [] for image in doc["images"]}
    for f in doc["findings"]:
        out[f["image"].removeprefix("docker://")].append({k: v for k, v in f.items() if k not in ("image", "gating")})
    return out


def one_by_one(refs) -> dict[str, list]:
    out: dict[str, list] = {}
    for ref in refs:
        options = ScanOptions(registry=RegistryOptions(insecure=(ref.split("/")[0],)), workers=1)
        result = Scanner(load_rules(()), options, cache=NullCache()).scan([f"docker://{ref}"])
        out.update(per_image(json.loads(report_for(Format.JSON, GroupBy.FINDING).render(result))))
    return out


# --- tests -------------------------------------------------------------------------------


def test_the_fleet_shares_its_base_layers(fleet):
    _, _, images = fleet
    assert len(images) == IMAGES
    assert len(layer_digests(images.values())) == 1 + 3 + 1 + IMAGES  # base, middles, the rm, the tops


def test_catalog_and_tags_are_followed_across_pages(fleet):
    reg, proxy, images = fleet
    endpoint = endpoint_for(parse_reference(f"{proxy.host}/x"), RegistryOptions(insecure=(proxy.host,)))
    every = list_references(FleetTarget(proxy.host), endpoint, page=3)
    assert every == [f"{proxy.host}/other/tool:1"] + sorted(images)
    assert list_references(FleetTarget(proxy.host, "team"), endpoint, page=2) == sorted(images)
    assert list_references(FleetTarget(proxy.host, "team/app1"), endpoint) == sorted(r for r in images if "/app1:" in r)


def test_registry_scans_each_unique_layer_once_and_equals_one_by_one(fleet, tmp_path):
    _, proxy, images = fleet
    proxy.reset()
    proc = cli("registry", f"{proxy.host}/team", "--insecure-registry", proxy.host, "--format", "json",
               "--summary", tmp_path / "summary.json", "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    layers = layer_digests(images.values())
    fetched = {d: n for d, n in proxy.blob_gets.items() if d in layers}
    assert fetched == {d: 1 for d in layers}  # every layer blob fetched, each exactly once

    fleet_findings = per_image(doc)
    assert sorted(fleet_findings) == sorted(images)
    proxy.reset()
    assert fleet_findings == one_by_one(sorted(images))

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["images"], summary["unique_layers"], summary["layers"]) == (IMAGES, 35, 30 * 3 + 15)
    total = sum(layer.size for image in images.values() for layer in image.layers)
    unique = sum({layer.digest: layer.size for image in images.values() for layer in image.layers}.values())
    assert (summary["total_bytes"], summary["unique_bytes"]) == (total, unique)
    carriers = {s["sha256"]: set(s["images"]) for s in summary["secrets"]}
    sha = lambda text: ik.sha256(text.encode()).split(":")[1]  # noqa: E731
    assert carriers[sha(catalog.AWS_KEY_ID)] == set(images)
    assert carriers[sha(catalog.STRIPE_LIVE_KEY)] == {f"{proxy.host}/team/app2:2"}
    assert carriers[sha(catalog.GITHUB_PAT)] == {r for i, r in enumerate(sorted(images, key=_order)) if i % 3 == 0}
    assert "35 unique layer(s) of 105" in proc.stderr


def _order(ref: str) -> int:
    repo, tag = ref.rsplit("/", 1)[1].split(":")
    return int(repo.removeprefix("app")) * 3 + int(tag) - 1


def test_images_from_a_file(fleet, tmp_path):
    _, proxy, images = fleet
    chosen = sorted(images)[:4]
    (tmp_path / "list").write_text("\n".join(chosen) + "\n# a comment\n")
    proc = cli("registry", "--images-from", tmp_path / "list", "--insecure-registry", proxy.host, "--format", "json")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert sorted(per_image(json.loads(proc.stdout))) == chosen


def test_a_rerun_scans_only_what_the_cache_lacks(fleet, tmp_path, counted):
    """Resumability: an interrupted run left part of the layers in the cache; the next one scans the rest."""
    _, proxy, images = fleet
    scanned = counted
    options = ScanOptions(registry=RegistryOptions(insecure=(proxy.host,)), workers=1)
    refs = sorted(images)

    def run(subset):
        cache = SqliteLayerCache(str(tmp_path / "cache"))
        return Fleet(Scanner(load_rules(()), options, cache=cache)).scan(subset)

    run(refs[:6])  # "interrupted" after six images
    first = len(scanned)
    assert first == len(set(scanned)) == 1 + 3 + 1 + 6
    scanned.clear()
    result = run(refs)
    assert len(scanned) == len(set(scanned)) == 35 - first
    assert len(result.images) == IMAGES


# --- the shared cache on a real PostgreSQL server ----------------------------------------


class PostgresServer:
    """Debian's PostgreSQL binaries: `initdb` and `pg_ctl` into a temp dir, on 127.0.0.1:<free port>,
    as the `postgres` user when we are root (the server refuses to run as root)."""

    def __init__(self) -> None:
        self.root = services._short_tempdir("ls-pg-")
        self.port = services.free_port()
        self.data = self.root / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://layerscan@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            argv = (services._which("runuser"), "-u", "postgres", "--", *argv)
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    @staticmethod
    def binary(name: str) -> str:
        """On PATH, else where Debian's `postgresql` keeps it (/usr/lib/postgresql/VERSION/bin)."""
        found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
        return shutil.which(name) or (str(found[-1]) if found else services._which(name))

    def start(self) -> "PostgresServer":
        initdb, pg_ctl = self.binary("initdb"), self.binary("pg_ctl")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise services.ServiceUnavailable("psycopg is not installed (pip install 'layerscan[postgres]')") from None
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        proc = self._run(initdb, "-D", str(self.data), "-U", "layerscan", "--auth=trust", "-E", "UTF8")
        if proc.returncode != 0:
            raise services.ServiceUnavailable(f"initdb failed: {proc.stderr.strip()[-500:]}")
        proc = self._run(pg_ctl, "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "-o",
                         f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start")
        if proc.returncode != 0:
            raise services.ServiceUnavailable(f"pg_ctl start failed: {proc.stderr.strip()[-500:]} "
                                              + services._log_tail(self.root / "log"))
        return self

    def stop(self) -> None:
        if self.data.exists():
            self._run(self.binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        services.remove_tree(self.root)


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    try:
        yield services.require(server.start)
    finally:
        server.stop()


def test_postgres_cache_is_shared_and_holds_no_raw_secret(fleet, postgres, tmp_path):
    _, proxy, images = fleet
    refs = sorted(images)[:9]
    (tmp_path / "list").write_text("\n".join(refs) + "\n")
    args = ("--images-from", tmp_path / "list", "--insecure-registry", proxy.host, "--format", "json",
            "--cache-url", postgres.dsn)
    first = cli("registry", *args)
    assert first.returncode == 1, first.stderr[-2000:]
    import psycopg

    with psycopg.connect(postgres.dsn) as db:
        rows = [r[0] for r in db.execute("SELECT scan FROM layerscan_layers").fetchall()]
    assert len(rows) == 1 + 3 + 1 + len(refs)
    stored = "\n".join(rows)
    assert ik.sha256(catalog.AWS_KEY_ID.encode()).split(":")[1] in stored  # the fingerprint is there
    for raw in (catalog.AWS_KEY_ID, catalog.GITHUB_PAT, catalog.STRIPE_LIVE_KEY):
        assert raw not in stored
    proxy.reset()
    second = cli("registry", *args)  # every layer from the shared cache: same report
    assert second.returncode == 1, second.stderr[-2000:]
    assert per_image(json.loads(second.stdout)) == per_image(json.loads(first.stdout))


def test_an_unreachable_postgres_cache_is_one_line(fleet):
    _, proxy, images = fleet
    proc = cli("registry", f"{proxy.host}/team", "--insecure-registry", proxy.host,
               "--cache-url", f"postgresql://layerscan:hunter2secret@127.0.0.1:{services.free_port()}/x")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open the layer cache" in lines[0] and "hunter2secret" not in lines[0], lines


# --- Dask ------------------------------------------------------------------------------------


def test_a_local_dask_cluster_gives_the_same_report(fleet, tmp_path):
    pytest.importorskip("distributed")
    _, proxy, images = fleet
    refs = sorted(images)[:12]
    (tmp_path / "list").write_text("\n".join(refs) + "\n")
    args = ("--images-from", tmp_path / "list", "--insecure-registry", proxy.host, "--format", "json", "--no-cache")
    pool = cli("registry", *args)
    dask = cli("registry", *args, "--workers", "2", "--dask")
    assert pool.returncode == dask.returncode == 1, dask.stderr[-2000:]
    assert per_image(json.loads(dask.stdout)) == per_image(json.loads(pool.stdout))
    assert sorted(per_image(json.loads(dask.stdout))) == refs


class RecordingCache(NullCache):
    def __init__(self) -> None:
        self.puts: list[str] = []

    def put(self, key: str, scan) -> None:
        self.puts.append(scan.diff_id)


class KillOnFirstLayer:
    """Fleet progress that SIGKILLs a Dask worker busy with a layer, when the first layer is done."""

    def __init__(self, client) -> None:
        self.client, self.killed = client, None

    def begin(self, label: str, total: int) -> None:
        self.stage = label

    def advance(self, n: int) -> None:
        if self.stage != "layers" or self.killed is not None:
            return
        busy = [addr for addr, keys in self.client.processing().items() if keys]
        pids = self.client.run(os.getpid, workers=busy[:1])
        for addr, pid in pids.items():
            os.kill(pid, signal.SIGKILL)
            self.killed = addr

    def end(self) -> None:
        pass


def test_a_dask_worker_killed_mid_run_loses_and_duplicates_nothing(fleet, tmp_path):
    distributed = pytest.importorskip("distributed")
    from scanner.dask_runner import DaskLayerExecutor

    _, proxy, images = fleet
    refs = sorted(images)
    options = ScanOptions(registry=RegistryOptions(insecure=(proxy.host,)), workers=1)
    expected = json.loads(report_for(Format.JSON, GroupBy.FINDING).render(
        Fleet(Scanner(load_rules(()), options, cache=NullCache())).scan(refs)))
    cache = RecordingCache()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  local_directory=str(tmp_path / "dask")) as cluster, \
            distributed.Client(cluster) as client:
        scanner = Scanner(load_rules(()), options, cache=cache)
        scanner.layers.executor = DaskLayerExecutor(client=client)
        killer = KillOnFirstLayer(client)
        proxy.delay = 0.15  # slow blob fetches: the kill lands while layers are still in flight
        try:
            result = Fleet(scanner, killer).scan(refs)
        finally:
            proxy.delay = 0.0
    assert killer.killed is not None, "no worker was busy: nothing was killed"
    assert sorted(cache.puts) == sorted(set(cache.puts)) and len(cache.puts) == 35  # each layer once
    got = json.loads(report_for(Format.JSON, GroupBy.FINDING).render(result))
    assert per_image(got) == per_image(expected)
