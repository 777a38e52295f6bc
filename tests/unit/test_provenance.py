"""Provenance on every finding (image digest, layer, history entry, removing layer), and many
images in one run: a layer shared between images is scanned once."""
from __future__ import annotations

import pytest

import scanner.layers.runner as runner
from scanner.models import LocationKind, Status
from scanner.pipeline import Scanner
from scanner.redact import redact
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import write_image
from tests.unit.test_pipeline import ADD_LINE, BUILD_ARG_SCRUBBED, leaky_spec


@pytest.fixture(scope="module")
def leaky(tmp_path_factory, unit_rules):
    path, archive = write_image(tmp_path_factory.mktemp("prov"), leaky_spec(), "oci-archive", "gzip")
    return Scanner(unit_rules).scan([str(path)]).images[0], archive.images[0]


def test_layers_carry_created_history_size_and_media_type(leaky):
    image, built = leaky
    assert [(l.created, l.history_index, l.blob_size, l.media_type) for l in image.layers] == [
        (f"2024-01-01T00:{h:02d}:00Z", h, b.size, b.media_type)
        for h, b in zip((0, 2, 3, 5, 6), built.layers)]


def test_the_history_every_step_scrubbed(leaky):
    image, _ = leaky
    assert [(h.index, h.empty_layer, h.layer) for h in image.history] == [
        (0, False, 0), (1, True, None), (2, False, 1), (3, False, 2), (4, True, None), (5, False, 3), (6, False, 4)]
    assert image.history[2].created_by == BUILD_ARG_SCRUBBED
    assert image.history[4].created_by == f"ENV DB_PASSWORD={redact(sc.DB_PASSWORD)}"
    assert image.history[4].created == "2024-01-01T00:04:00Z"


def test_file_findings_name_image_layer_step_and_removal(leaky):
    image, built = leaky
    deleted = next(f for f in image.findings if f.hit.path == "/app/deleted.env")
    assert deleted.image_digest == built.manifest_digest
    assert (deleted.layer.index, deleted.layer.created, deleted.history.index, deleted.history.created_by) == (
        0, "2024-01-01T00:00:00Z", 0, ADD_LINE)
    assert (deleted.removed_in.index, deleted.removed_in.digest, deleted.removed_in.created) == (
        1, built.layers[1].digest, "2024-01-01T00:02:00Z")
    assert deleted.hit.file is not None and deleted.hit.file.mode == 0o644


def test_config_and_history_findings_name_their_step(leaky):
    image, _ = leaky
    by_path = {f.hit.path: f for f in image.findings if f.layer is None or f.hit.kind is LocationKind.HISTORY}
    env = by_path["Env.DB_PASSWORD"]
    assert (env.status, env.history.index, env.history.created_by) == (
        Status.CONFIG, 4, f"ENV DB_PASSWORD={redact(sc.DB_PASSWORD)}")
    assert by_path["history[4]"].history.index == 4 and by_path["history[2]"].history.index == 2
    assert by_path["Labels.ci.token"].history is None  # no LABEL step in this history


def test_classic_builder_steps_set_env_label_and_cmd(tmp_path, unit_rules):
    spec = ik.ImageSpec([
        ik.LayerSpec("/bin/sh -c #(nop) ADD file:abc in / ", [ik.file("/x", b"x")]),
        ik.EmptyLayer("/bin/sh -c #(nop)  ENV GH_TOKEN=set-twice"),
        ik.EmptyLayer('/bin/sh -c #(nop)  LABEL ci.token=redacted-by-the-scan'),
        ik.EmptyLayer("/bin/sh -c #(nop)  ENV GH_TOKEN=set-again"),
        ik.EmptyLayer('/bin/sh -c #(nop)  CMD ["app" "--token" "$T"]'),
    ], env=[f"GH_TOKEN={sc.GITHUB_PAT}"], labels={"ci.token": sc.GITHUB_PAT},
        cmd=["app", f"--token={sc.GITHUB_PAT}"])
    path, _ = write_image(tmp_path, spec, "docker-legacy", "none")
    image = Scanner(unit_rules).scan([str(path)]).images[0]
    steps = {f.hit.path: f.history.index if f.history else None for f in image.findings
             if f.hit.kind is not LocationKind.HISTORY}
    assert steps == {"Env.GH_TOKEN": 3, "Labels.ci.token": 2, "Cmd": 4}


# --- many images, shared layers -------------------------------------------------------------------


BASE = ik.LayerSpec("ADD rootfs.tar / # buildkit", [
    ik.dir("/etc"), ik.file("/etc/key.env", f"K={sc.AWS_KEY_ID}\n".encode()), ik.hardlink("/etc/dangling", "/nowhere")])


def app(name: str) -> ik.LayerSpec:
    return ik.LayerSpec(f"COPY {name} /srv/ # buildkit", [ik.dir("/srv"), ik.file(f"/srv/{name}", name.encode())])


def test_a_layer_shared_by_images_of_one_archive_is_read_and_scanned_once(tmp_path, unit_rules, counted, monkeypatch):
    specs = [ik.ImageSpec([BASE, app("one")], tags=["m/one:1"]), ik.ImageSpec([app("two"), BASE], tags=["m/two:1"])]
    path, archive = write_image(tmp_path, specs, "oci-archive", "gzip")
    checked: list[int] = []
    monkeypatch.setattr(runner, "verify_layer", lambda layer, *_: checked.append(layer.index))
    result = Scanner(unit_rules).scan([str(path)])
    base = archive.images[0].layers[0].diff_id
    assert counted.count(base) == 1 and len(counted) == 3
    assert checked == []  # the very same blob: not even read again
    one, two = result.images
    assert [(f.hit.path, f.layer.index) for f in one.findings] == [("/etc/key.env", 0)]
    assert [(f.hit.path, f.layer.index) for f in two.findings] == [("/etc/key.env", 1)]
    assert [(s.layer, s.path) for s in one.skipped] == [(0, "/etc/dangling")]
    assert [(s.layer, s.path) for s in two.skipped] == [(1, "/etc/dangling")]


def test_the_same_layer_in_another_file_is_checked_not_scanned(tmp_path, unit_rules, counted):
    spec = ik.ImageSpec([BASE, app("one")], tags=["m/one:1"])
    legacy, a = write_image(tmp_path, spec, "docker-legacy", "none", "legacy")
    oci, b = write_image(tmp_path, spec, "oci-archive", "gzip", "oci")
    result = Scanner(unit_rules).scan([str(oci), str(legacy)])
    assert len(counted) == 2  # two distinct layers, each walked once
    assert [l.digest for l in result.images[0].layers] == [l.digest for l in b.images[0].layers]
    assert [l.digest for l in result.images[1].layers] == [ik.sha256(l.tar) for l in a.images[0].layers]
    assert [f.layer.digest for f in result.images[1].findings] == [ik.sha256(a.images[0].layers[0].tar)]


def test_a_copy_that_does_not_match_its_diff_id_is_an_error(tmp_path, unit_rules):
    from scanner.sources.interface import SourceError

    spec = ik.ImageSpec([BASE, app("one")], tags=["m/one:1"])
    good, _ = write_image(tmp_path, spec, "oci-archive", "gzip", "good")
    bad, archive = write_image(tmp_path, spec, "docker-legacy", "none", "bad")
    ik.corrupt(bad, archive.layer_member(0, 0))
    with pytest.raises(SourceError, match="digest mismatch"):
        Scanner(unit_rules).scan([str(good), str(bad)])


def test_the_same_layer_twice_in_one_image_is_scanned_once(tmp_path, unit_rules, counted):
    spec = ik.ImageSpec([app("one"), BASE, app("one")])
    path, archive = write_image(tmp_path, spec, "oci-layout", "zstd")
    image = Scanner(unit_rules).scan([str(path)]).images[0]
    assert len(counted) == 2 and len(image.layers) == 3
    assert [l.diff_id for l in image.layers] == [l.diff_id for l in archive.images[0].layers]


def lying_about(clean: ik.ImageSpec, monkeypatch) -> None:
    """Images written from here on get the config of `clean`'s layers: the diff_ids of layers
    they do not hold."""
    real = ik.image_config
    claimed = [l.diff_id for l in ik.build_image(clean).layers]
    monkeypatch.setattr(ik, "image_config", lambda spec, diff_ids: real(spec, claimed))


@pytest.mark.parametrize("second", ["cache", "same run"])
def test_a_blob_is_not_taken_for_the_layer_another_image_scanned(tmp_path, unit_rules, monkeypatch, second):
    """The manifest pins the blob, the config its diff_id: a blob whose digest is right but which is
    not the layer the config names must not borrow that layer's clean scan (from the cache, or
    from an image scanned earlier in the run): its bytes are decompressed and checked."""
    from scanner.cache import SqliteLayerCache
    from scanner.sources.interface import SourceError

    clean = ik.ImageSpec([ik.LayerSpec("ADD app /", [ik.file("/app/x", b"nothing here")])])
    leaky = ik.ImageSpec([ik.LayerSpec("ADD app /", [ik.file("/app/x", f"K={sc.AWS_KEY_ID}\n".encode())])])
    good, _ = write_image(tmp_path, clean, "oci-archive", "gzip", "good")
    with monkeypatch.context() as m:
        lying_about(clean, m)
        bad, _ = write_image(tmp_path, leaky, "oci-archive", "gzip", "bad")
    cache = SqliteLayerCache(str(tmp_path / "cache"))
    if second == "cache":
        Scanner(unit_rules, cache=cache).scan([str(good)])
        run = lambda: Scanner(unit_rules, cache=cache).scan([str(bad)])  # noqa: E731
    else:
        run = lambda: Scanner(unit_rules).scan([str(good), str(bad)])  # noqa: E731
    with pytest.raises(SourceError, match="diff_id.*digest mismatch"):
        run()
