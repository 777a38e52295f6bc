"""tests.imagekit builds valid images, the same bytes every time, in every format; and the
committed sample images are what sample_images/build.py says they are."""
from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import posixpath
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests import imagekit as ik
from tests import secrets_catalog as cat

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_images"
ARCHIVE_KINDS = ("docker-legacy", "docker-oci", "oci-archive", "crane")


# --- helpers ---------------------------------------------------------------------------------


def members(tar_bytes: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        return tf.getmembers()


def raw_names(tar_bytes: bytes) -> list[str]:
    """Names as stored (tarfile strips a directory's trailing slash on reading)."""
    out, pos = [], 0
    while pos + 512 <= len(tar_bytes) and tar_bytes[pos:pos + 512] != b"\0" * 512:
        hdr = tar_bytes[pos:pos + 512]
        size = int(hdr[124:136].rstrip(b"\0 ") or b"0", 8)
        if hdr[156:157] not in (b"x", b"g", b"L"):
            out.append(hdr[:100].rstrip(b"\0").decode())
        pos += 512 + -(-size // 512) * 512
    return out


def spec(tag: str = "app:1.0", secret: bytes = b"", **kw) -> ik.ImageSpec:
    base = ik.LayerSpec("/bin/sh -c #(nop) ADD file:abc in / ", [ik.dir("/etc"), ik.file("/etc/os-release", b"ID=test\n")])
    steps = [
        base,
        ik.EmptyLayer("ARG TOKEN", comment="buildkit.dockerfile.v0"),
        ik.LayerSpec("COPY .env /app/.env # buildkit", [ik.dir("/app"), ik.file("/app/.env", b"A=1\n" + secret)]),
        ik.EmptyLayer("ENV X=1"),
        ik.LayerSpec("RUN /bin/sh -c rm /app/.env # buildkit", [ik.dir("/app"), ik.whiteout("/app/.env")]),
    ]
    return ik.ImageSpec(steps, tags=[tag] if tag else [], env=["X=1"], cmd=["sh"], labels={"a": "b"}, **kw)


def write(kind: str, images, path: Path, **kw) -> ik.Archive:
    target = path / ("layout" if kind == "oci-layout" else f"{kind}.tar")
    return ik.WRITERS[kind](images, target, **kw)


def resolve(files: dict[str, bytes], kind: str) -> list[tuple[dict, list[bytes]]]:
    """An independent reader: (config, layer blobs) of every image, every digest checked."""
    if kind in ("oci-layout", "oci-archive"):
        return [img for desc in json.loads(files["index.json"])["manifests"] for img in _resolve_oci(files, desc)]
    out = []
    for entry in json.loads(files["manifest.json"]):
        config_bytes = files[entry["Config"]]
        if kind == "docker-legacy":
            assert entry["Config"] == ik.sha256(config_bytes).split(":")[1] + ".json"
        else:
            assert entry["Config"].split(":")[-1].split("/")[-1] == ik.sha256(config_bytes).split(":")[1]
        out.append((json.loads(config_bytes), [files[name] for name in entry["Layers"]]))
    return out


def _blob(files: dict, desc: dict) -> bytes:
    data = files[ik.blob_path(desc["digest"])]
    assert ik.sha256(data) == desc["digest"] and len(data) == desc["size"]
    return data


def _resolve_oci(files: dict, desc: dict) -> list:
    doc = json.loads(_blob(files, desc))
    assert doc["mediaType"] == desc["mediaType"]
    if "manifests" in doc:
        return [img for child in doc["manifests"] for img in _resolve_oci(files, child)]
    layers = []
    for layer in doc["layers"]:
        blob = _blob(files, layer)
        suffix = {"none": ("v1.tar", ".diff.tar"), "gzip": ("+gzip", ".tar.gzip"), "zstd": ("+zstd",)}[ik.sniff(blob)]
        assert layer["mediaType"].endswith(suffix)
        layers.append(blob)
    return [(json.loads(_blob(files, doc["config"])), layers)]


def check_config(config: dict, blobs: list[bytes]) -> None:
    assert config["rootfs"]["diff_ids"] == [ik.sha256(ik.decompress(b)) for b in blobs]
    assert len([h for h in config["history"] if not h.get("empty_layer")]) == len(blobs)


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        reason = f"{binary} is not installed (apt-get install {binary}) so the cross-check cannot run"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def skopeo(*args: str) -> str:
    cmd = [need("skopeo"), "--insecure-policy", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return proc.stdout


# --- layers ------------------------------------------------------------------------------------


def test_layer_tar_writes_entries_like_docker():
    tar = ik.layer_tar([
        ik.dir("/app"), ik.file("/app/.env", b"K=v\n", mode=0o600, uid=1000, gid=1000),
        ik.whiteout("/app/old.txt"), ik.dir("/root/.ssh", mode=0o700), ik.opaque("/root/.ssh"),
        ik.symlink("/bin/sh", "busybox"), ik.file("/bin/busybox", b"\x7fELF"),
        ik.hardlink("/bin/ash", "/bin/busybox"), ik.fifo("/run/pipe"), ik.device("/dev/null", 1, 3),
    ])
    assert raw_names(tar) == ["app/", "app/.env", "app/.wh.old.txt", "root/.ssh/", "root/.ssh/.wh..wh..opq",
                              "bin/sh", "bin/busybox", "bin/ash", "run/pipe", "dev/null"]
    by_name = {m.name: m for m in members(tar)}
    env = by_name["app/.env"]
    assert (env.size, env.mode, env.uid, env.gid, env.mtime, env.uname) == (4, 0o600, 1000, 1000, 0, "")
    assert by_name["app/.wh.old.txt"].isfile() and by_name["app/.wh.old.txt"].size == 0
    assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "busybox"
    assert by_name["bin/ash"].islnk() and by_name["bin/ash"].linkname == "bin/busybox"
    assert by_name["run/pipe"].isfifo() and by_name["dev/null"].ischr()
    assert tar.endswith(b"\0" * 1024) and len(tar) % 512 == 0


def test_layer_tar_options():
    entries = [ik.dir("app"), ik.file("app/x", b"1", mtime=1700000000), ik.hardlink("app/y", "app/x")]
    dotted = ik.layer_tar(entries, dot_slash=True, mtime=42)
    assert raw_names(dotted) == ["./app/", "./app/x", "./app/y"]
    m = {i.name: i for i in members(dotted)}
    assert m["./app"].mtime == 42 and m["./app/x"].mtime == 1700000000 and m["./app/y"].linkname == "./app/x"
    long = "/d/" + "n" * 150
    for fmt in ("pax", "gnu"):
        assert [i.name for i in members(ik.layer_tar([ik.file(long, b"z")], fmt=fmt))] == [long[1:]]
    assert not ik.layer_tar([ik.file("a", b"1")], end_marker=False).endswith(b"\0" * 1024)


def test_raw_entry_is_written_verbatim():
    info = tarfile.TarInfo("../../etc/evil")
    info.size = 3
    assert [m.name for m in members(ik.layer_tar([ik.raw(info, b"abc")]))] == ["../../etc/evil"]


def test_same_entries_same_bytes():
    make = lambda: ik.layer_tar([ik.dir("/a"), ik.file("/a/b", b"x" * 700), ik.symlink("/c", "/a/b")])
    assert make() == make()


@pytest.mark.parametrize("how", ik.COMPRESSIONS)
def test_compress_is_deterministic_and_sniffable(how):
    data = ik.layer_tar([ik.file("/f", b"hello " * 100)])
    blob = ik.compress(data, how)
    assert blob == ik.compress(data, how)
    assert ik.sniff(blob) == how and ik.decompress(blob) == data
    if how == "gzip":
        assert blob[4:8] == b"\0\0\0\0" and gzip.decompress(blob) == data  # mtime 0


def test_unknown_compression_and_docker_zstd_are_refused():
    with pytest.raises(ValueError):
        ik.compress(b"", "bzip2")
    with pytest.raises(ValueError):
        ik.build_image(spec(), "zstd", "docker")


# --- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ik.COMPRESSIONS)
def test_build_image_digests_diff_ids_and_history(how):
    img = ik.build_image(spec(), how)
    for layer, step in zip(img.layers, img.spec.layers):
        assert layer.tar == step.tar_bytes() and ik.decompress(layer.blob) == layer.tar
        assert layer.diff_id == ik.sha256(layer.tar) and layer.digest == ik.sha256(layer.blob)
    assert img.config["rootfs"] == {"type": "layers", "diff_ids": [l.diff_id for l in img.layers]}
    hist = img.config["history"]
    assert [h.get("empty_layer", False) for h in hist] == [False, True, False, True, False]
    assert [l.history_index for l in img.layers] == [0, 2, 4]
    assert hist[2]["created_by"] == "COPY .env /app/.env # buildkit" and hist[1]["comment"] == "buildkit.dockerfile.v0"
    assert img.config["config"] == {"Env": ["X=1"], "Cmd": ["sh"], "Labels": {"a": "b"}}
    m = img.manifest
    assert m["config"] == {"mediaType": ik.OCI_CONFIG, "digest": img.config_digest, "size": len(img.config_bytes)}
    assert m["layers"] == [{"mediaType": ik.layer_media_type(how), "digest": l.digest, "size": len(l.blob)}
                           for l in img.layers]
    assert img.manifest_digest == ik.sha256(img.manifest_bytes) == ik.sha256(ik.canonical_json(m))


def test_media_types():
    assert ik.layer_media_type("none") == "application/vnd.oci.image.layer.v1.tar"
    assert ik.layer_media_type("gzip") == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert ik.layer_media_type("zstd") == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert ik.layer_media_type("gzip", "docker") == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    docker = ik.build_image(spec(), "gzip", "docker")
    assert docker.manifest["mediaType"] == ik.DOCKER_MANIFEST and docker.manifest["config"]["mediaType"] == ik.DOCKER_CONFIG


def test_per_layer_overrides():
    s = spec()
    s.steps[0].compression = "zstd"
    s.steps[2].tar = b"not a tar at all"
    s.steps[4].media_type = "application/x-odd"
    img = ik.build_image(s, "gzip")
    assert [l.compression for l in img.layers] == ["zstd", "gzip", "gzip"]
    assert ik.decompress(img.layers[1].blob) == b"not a tar at all"
    assert img.manifest["layers"][2]["mediaType"] == "application/x-odd"
    raw = ik.build_image(ik.ImageSpec(s.steps, raw_config=b"{nope"))
    assert raw.config is None and raw.config_bytes == b"{nope"


def test_refs():
    assert ik.split_tag("leaky-app:1.0") == ("leaky-app", "1.0")
    assert ik.split_tag("localhost:5000/app") == ("localhost:5000/app", "latest")
    assert ik.normalize_ref("leaky-app:1.0") == "docker.io/library/leaky-app:1.0"
    assert ik.normalize_ref("me/app:2") == "docker.io/me/app:2"
    assert ik.normalize_ref("ghcr.io/me/app:2") == "ghcr.io/me/app:2"


# --- writers -----------------------------------------------------------------------------------

ALL_KINDS = tuple(ik.WRITERS)


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("how", ik.COMPRESSIONS)
def test_writer_is_deterministic_and_valid(kind, how, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first = write(kind, [spec()], tmp_path / "a", compression=how)
    second = write(kind, [spec()], tmp_path / "b", compression=how)
    assert ik.read_archive(first.path) == ik.read_archive(second.path) == first.files
    if kind != "oci-layout":
        assert first.path.read_bytes() == second.path.read_bytes()
    (config, blobs), = resolve(first.files, kind)
    check_config(config, blobs)
    assert [ik.sniff(b) for b in blobs] == [how] * 3
    img = first.images[0]
    assert first.files[first.layer_member(0, 1)] == img.layers[1].blob
    assert first.files[first.config_member(0)] == img.config_bytes
    if first.manifest_member(0):
        assert first.files[first.manifest_member(0)] == img.manifest_bytes


def test_docker_legacy_layout(tmp_path):
    arc = ik.write_docker_archive_legacy([spec()], tmp_path / "x.tar")
    entry, = json.loads(arc.files["manifest.json"])
    assert entry["RepoTags"] == ["app:1.0"] and all(l.endswith("/layer.tar") for l in entry["Layers"])
    top = entry["Layers"][-1].split("/")[0]
    assert json.loads(arc.files["repositories"]) == {"app": {"1.0": top}}
    assert arc.files[f"{top}/VERSION"] == b"1.0" and json.loads(arc.files[f"{top}/json"])["id"] == top
    assert arc.files["manifest.json"].endswith(b"\n")


def test_docker_oci_layout(tmp_path):
    arc = ik.write_docker_archive_oci([spec()], tmp_path / "x.tar", compression="zstd")
    assert json.loads(arc.files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    entry, = json.loads(arc.files["manifest.json"])
    assert entry["Config"].startswith("blobs/sha256/") and all(l.startswith("blobs/sha256/") for l in entry["Layers"])
    desc, = json.loads(arc.files["index.json"])["manifests"]
    assert desc["annotations"] == {ik.CONTAINERD_NAME: "docker.io/library/app:1.0", ik.REF_NAME: "1.0"}
    assert json.loads(arc.files[ik.blob_path(desc["digest"])])["layers"][0]["mediaType"].endswith("+zstd")


def test_crane_layout(tmp_path):
    arc = ik.write_crane_archive([spec()], tmp_path / "x.tar")
    entry, = json.loads(arc.files["manifest.json"])
    assert entry["Config"].startswith("sha256:") and entry["Config"] in arc.files
    assert all(l.endswith(".tar.gz") and ik.sha256(arc.files[l]) == "sha256:" + l[:-7] for l in entry["Layers"])
    assert list(arc.files)[-1] == "manifest.json" and not any(m.isdir() for m in members(arc.path.read_bytes()))
    jib = ik.write_crane_archive(spec(), tmp_path / "jib.tar", config_name="config.json")
    assert json.loads(jib.files["manifest.json"])[0]["Config"] == "config.json"


def test_oci_layout_ref_names(tmp_path):
    full = ik.write_oci_layout([spec("leaky-app:1.0")], tmp_path / "full")
    tag = ik.write_oci_layout([spec("leaky-app:1.0")], tmp_path / "tag", ref_style="tag")
    refs = lambda a: [d["annotations"][ik.REF_NAME] for d in json.loads(a.files["index.json"])["manifests"]]
    assert refs(full) == ["leaky-app:1.0"] and refs(tag) == ["1.0"]
    assert (tmp_path / "full" / "oci-layout").is_file() and (tmp_path / "full" / ik.blob_path(full.images[0].manifest_digest)).is_file()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_several_images_share_blobs(kind, tmp_path):
    arc = write(kind, [spec("one:1", b"B=2\n"), spec("two:2", b"C=3\n"), spec("")], tmp_path)
    images = resolve(arc.files, kind)
    assert len(images) == 3 and len(arc.images) == 3
    for config, blobs in images:
        check_config(config, blobs)
    assert images[0][1][0] == images[1][1][0] and images[0][1][1] != images[1][1][1]
    base_members = {arc.layer_member(i, 0) for i in range(3)}
    assert len(base_members) == 1  # the shared base layer is stored once


def test_image_index(tmp_path):
    arm = spec(architecture="arm64", variant="v8")
    for kind in ("oci-layout", "oci-archive", "docker-oci"):
        arc = write(kind, [ik.IndexSpec([spec(), arm], tags=["multi:1"])], tmp_path / kind)
        desc, = json.loads(arc.files["index.json"])["manifests"]
        assert desc["mediaType"] == ik.OCI_INDEX and ik.blob_path(desc["digest"]) == arc.index_member
        nested = json.loads(arc.files[arc.index_member])["manifests"]
        assert [m["platform"] for m in nested] == [{"architecture": "amd64", "os": "linux"},
                                                   {"architecture": "arm64", "os": "linux", "variant": "v8"}]
        assert len(resolve(arc.files, "oci-layout")) == 2
    with pytest.raises(ValueError):
        ik.write_crane_archive([ik.IndexSpec([spec()])], tmp_path / "c.tar")


# --- damage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_corrupt_replace_remove(kind, tmp_path):
    arc = write(kind, [spec()], tmp_path)
    layer = arc.layer_member(0, 1)
    ik.corrupt(arc.path, layer)
    changed = ik.read_archive(arc.path)
    assert len(changed[layer]) == len(arc.files[layer]) and changed[layer] != arc.files[layer]
    assert {k: v for k, v in changed.items() if k != layer} == {k: v for k, v in arc.files.items() if k != layer}
    ik.replace_member(arc.path, "manifest.json" if kind != "oci-layout" else "index.json", b"not json {")
    ik.remove_member(arc.path, arc.config_member(0))
    after = ik.read_archive(arc.path)
    assert arc.config_member(0) not in after and b"not json {" in after.values()


def test_truncate(tmp_path):
    arc = ik.write_oci_archive([spec()], tmp_path / "x.tar")
    layer = arc.layer_member(0, 0)
    ik.truncate(arc.path, 10, member=layer)
    assert ik.read_archive(arc.path)[layer] == arc.files[layer][:10]
    size = arc.path.stat().st_size
    ik.truncate(arc.path)
    assert arc.path.stat().st_size == size // 2
    try:
        assert len(ik.read_archive(arc.path)) < len(arc.files)
    except tarfile.TarError:
        pass  # cut inside a member: also what a truncated download looks like


# --- cross-checks with skopeo and umoci -------------------------------------------------------


@pytest.mark.parametrize("how", ik.COMPRESSIONS)
def test_skopeo_reads_oci_layout_and_archive(how, tmp_path):
    need("skopeo")
    layout = ik.write_oci_layout([spec("app:1.0")], tmp_path / "layout", compression=how)
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{layout.path}:app:1.0"))
    assert raw == layout.images[0].manifest
    archive = ik.write_oci_archive([spec("app:1.0")], tmp_path / "x.tar", compression=how)
    info = json.loads(skopeo("inspect", f"oci-archive:{archive.path}:app:1.0"))
    assert info["Layers"] == [l.digest for l in archive.images[0].layers] and info["Env"] == ["X=1"]


@pytest.mark.parametrize("kind", ["docker-legacy", "docker-oci", "crane"])
@pytest.mark.parametrize("how", ik.COMPRESSIONS)
def test_skopeo_reads_docker_archives(kind, how, tmp_path):
    need("skopeo")
    arc = write(kind, [spec("one:1"), spec("two:2", b"X=9\n")], tmp_path, compression=how)
    for i, tag in enumerate(["one:1", "two:2"]):
        info = json.loads(skopeo("inspect", f"docker-archive:{arc.path}:{tag}"))
        assert info["Labels"] == {"a": "b"} and len(info["Layers"]) == 3
        assert json.loads(skopeo("inspect", "--config", f"docker-archive:{arc.path}:{tag}")) == arc.images[i].config


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_skopeo_copies_every_format_to_oci(kind, tmp_path):
    need("skopeo")
    arc = write(kind, [spec("app:1.0")], tmp_path, compression="gzip")
    transport = {"oci-layout": "oci", "oci-archive": "oci-archive"}.get(kind, "docker-archive")
    src = f"{transport}:{arc.path}" + (":app:1.0" if transport.startswith("oci") else "")
    skopeo("copy", src, f"oci:{tmp_path / 'copy'}:copied")
    copied = ik.read_archive(tmp_path / "copy")
    (config, blobs), = resolve(copied, "oci-layout")
    check_config(config, blobs)
    assert config["rootfs"] == arc.images[0].config["rootfs"]


def test_skopeo_picks_platform_from_index(tmp_path):
    need("skopeo")
    arm = spec(architecture="arm64")
    arc = ik.write_oci_layout([ik.IndexSpec([spec(), arm], tags=["multi:1"])], tmp_path / "l")
    assert json.loads(skopeo("inspect", "--raw", f"oci:{arc.path}:multi:1"))["mediaType"] == ik.OCI_INDEX
    info = json.loads(skopeo("--override-arch", "arm64", "inspect", f"oci:{arc.path}:multi:1"))
    assert info["Architecture"] == "arm64"


# --- the committed sample images ----------------------------------------------------------------


@pytest.fixture(scope="module")
def build_module():
    loaded = importlib.util.spec_from_file_location("sample_images_build", SAMPLES / "build.py")
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rebuilt(build_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    return build_module.build(out)


def test_build_py_is_deterministic_and_committed(build_module, rebuilt, tmp_path):
    again = build_module.build(tmp_path)
    for name, arc in rebuilt.items():
        committed = SAMPLES / name
        assert arc.path.read_bytes() == again[name].path.read_bytes()
        assert committed.is_file(), f"run python sample_images/build.py ({name} is missing)"
        assert committed.stat().st_size < 200_000
        if name == "leaky-app-oci.tar":  # zstd bytes may differ between libzstd versions
            (config, blobs), = resolve(ik.read_archive(committed), "docker-oci")
            assert ik.canonical_json(config) == arc.images[0].config_bytes
            assert [ik.decompress(b) for b in blobs] == [l.tar for l in arc.images[0].layers]
        else:
            assert committed.read_bytes() == arc.path.read_bytes(), f"{name} is stale: run sample_images/build.py"


def final_files(layers: list[bytes]) -> dict[str, int]:
    """A tiny overlay: visible path -> index of the layer that wrote it."""
    visible: dict[str, int] = {}
    for index, tar in enumerate(layers):
        for m in members(tar):
            path = "/" + m.name.lstrip("./").rstrip("/")
            parent, base = posixpath.split(path)
            if base == ".wh..wh..opq":
                visible = {p: i for p, i in visible.items() if not p.startswith(parent + "/")}
            elif base.startswith(".wh."):
                gone = posixpath.join(parent, base[4:])
                visible = {p: i for p, i in visible.items() if p != gone and not p.startswith(gone + "/")}
            else:
                visible[path] = index
    return visible


def locate(value: str, layers: list[bytes], config: dict) -> set[tuple]:
    """Every place a secret value sits: (kind, path, line, layer)."""
    found = set()
    for index, tar in enumerate(layers):
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            for m in tf.getmembers():
                text = tf.extractfile(m).read().decode("utf-8", "replace") if m.isfile() else ""
                for line, content in enumerate(text.splitlines(), 1):
                    if value.splitlines()[0] in content:
                        found.add(("file", "/" + m.name, line, index))
    for i, h in enumerate(config["history"]):
        if value in h.get("created_by", ""):
            found.add(("history", f"history[{i}]", None, None))
    for item in config["config"].get("Env", []):
        if value in item:
            found.add(("env", "Env." + item.split("=", 1)[0], None, None))
    for key, val in config["config"].get("Labels", {}).items():
        if value in val:
            found.add(("label", "Labels." + key, None, None))
    return found


@pytest.mark.parametrize("name", ["leaky-app.tar", "leaky-app-oci.tar", "clean-app.tar"])
def test_sample_expectations_match_the_image(name, build_module):
    kind = "docker-oci" if name == "leaky-app-oci.tar" else "docker-legacy"
    (config, blobs), = resolve(ik.read_archive(SAMPLES / name), kind)
    check_config(config, blobs)
    layers = [ik.decompress(b) for b in blobs]
    visible = final_files(layers)
    expected = build_module.EXPECTED[name]
    planted = set()
    for secret in [n for n in dir(cat) if n.isupper() and isinstance(getattr(cat, n), str) and n != "BASE62"]:
        if secret == "URL_PASSWORD":
            continue  # a substring of URL_CREDENTIAL
        for kind_, path, line, layer in locate(getattr(cat, secret), layers, config):
            planted.add((secret, kind_, path, line, layer))
    assert planted == {(f["secret"], f["kind"], f["path"], f["line"], f["layer"]) for f in expected}
    for f in expected:
        if f["kind"] != "file":
            assert f["status"] == f["kind"].replace("env", "config")
        elif f["status"] == "present":
            assert visible.get(f["path"]) == f["layer"]
        else:
            assert visible.get(f["path"]) != f["layer"]
            removal = layers[f["removed_in"]]
            wrote_again = f["path"] in {"/" + m.name for m in members(removal) if m.isfile()}
            assert wrote_again == (f["status"] == "overwritten")


def test_umoci_applies_the_sample_whiteouts_as_expected(build_module, tmp_path):
    umoci = need("umoci")
    layout = ik.write_oci_layout([build_module.leaky_app()], tmp_path / "layout", ref_style="tag")
    proc = subprocess.run([umoci, "unpack", "--rootless", "--image", f"{layout.path}:1.0", str(tmp_path / "bundle")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "bundle" / "rootfs"
    assert not (root / "app/.env").exists() and list((root / "root/.ssh").iterdir()) == []
    assert cat.GITHUB_OAUTH.encode() in (root / "app/config/settings.yaml").read_bytes()
    assert os.readlink(root / "bin/sh") == "busybox" and (root / "app/server.js").is_file()


@pytest.mark.parametrize("damage", ["corrupt", "remove"])
def test_skopeo_rejects_the_damaged_layout(damage, tmp_path):
    need("skopeo")
    arc = ik.write_oci_layout([spec("app:1.0")], tmp_path / "layout")
    layer = arc.layer_member(0, 1)
    if damage == "corrupt":
        ik.corrupt(arc.path, layer)
    else:
        ik.remove_member(arc.path, layer)
    proc = subprocess.run([need("skopeo"), "--insecure-policy", "copy", f"oci:{arc.path}:app:1.0",
                           f"oci:{tmp_path / 'copy'}:x"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
