"""End to end through the pipeline on images written by imagekit: exact findings for every status."""
from __future__ import annotations

import hashlib

import pytest

from scanner.models import LocationKind, Skipped, SourceKind, Status
from scanner.pipeline import ScanOptions, Scanner
from scanner.redact import redact
from scanner.sources.interface import SourceError
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import FORMATS, write_image

NAMED = "secret-named-variable"
AWS, GH, PEM = "unit-aws-key-id", "unit-github-pat", "unit-private-key"
P, D, O, C, H = Status.PRESENT, Status.DELETED, Status.OVERWRITTEN, Status.CONFIG, Status.HISTORY

BUILD_ARG_LINE = f"|1 NPM_TOKEN={sc.NPM_TOKEN} /bin/sh -c rm /app/deleted.env && npm ci"
BUILD_ARG_SCRUBBED = f"|1 NPM_TOKEN={redact(sc.NPM_TOKEN)} /bin/sh -c rm /app/deleted.env && npm ci"
COPY_LINE = "COPY over.env /app/config/over.env # buildkit"
RM_CACHE = "RUN /bin/sh -c rm -rf /app/cache # buildkit"
OPAQUE_LINE = "RUN /bin/sh -c rm -rf /app/opq && mkdir /app/opq # buildkit"
ADD_LINE = "ADD rootfs.tar / # buildkit"


def leaky_spec(extra_file: bytes = b"", created: str | None = None) -> ik.ImageSpec:
    """One secret per status. `extra_file`/`created` change the layer digests, not the secrets."""
    layer0 = [
        ik.dir("/app"),
        ik.file("/app/present.env", f"# config\nREGION=eu\nAWS_ACCESS_KEY_ID={sc.AWS_KEY_ID}\n".encode()),
        ik.file("/app/deleted.env", f"GITHUB_TOKEN={sc.GITHUB_PAT}\n".encode()),
        ik.dir("/app/config"),
        ik.file("/app/config/over.env", f"X=1\nKEY={sc.AWS_KEY_ID}\n".encode()),
        ik.dir("/app/cache"),
        ik.file("/app/cache/key.pem", sc.RSA_PRIVATE_KEY.encode()),
        ik.dir("/app/opq"),
        ik.file("/app/opq/secret.txt", f"\n{sc.GITHUB_PAT}\n".encode()),
    ]
    if extra_file:
        layer0.append(ik.file("/app/unrelated.txt", extra_file))
    return ik.ImageSpec([
        ik.LayerSpec(ADD_LINE, layer0, created=created),
        ik.EmptyLayer("ARG NPM_TOKEN"),
        ik.LayerSpec(BUILD_ARG_LINE, [ik.whiteout("/app/deleted.env"), ik.dir("/app/node_modules"),
                                      ik.file("/app/node_modules/x.js", b"module.exports = 1\n"),
                                      ik.hardlink("/app/dangling", "/app/nowhere")]),
        ik.LayerSpec(COPY_LINE, [ik.file("/app/config/over.env", b"X=1\nKEY=from-the-vault\n")]),
        ik.EmptyLayer(f"ENV DB_PASSWORD={sc.DB_PASSWORD}"),
        ik.LayerSpec(RM_CACHE, [ik.whiteout("/app/cache")]),
        ik.LayerSpec(OPAQUE_LINE, [ik.dir("/app/opq"), ik.opaque("/app/opq")]),
    ], tags=["unit/leaky:1"], env=["PATH=/usr/bin", f"DB_PASSWORD={sc.DB_PASSWORD}"],
        labels={"ci.token": sc.GITHUB_PAT, "maintainer": "ops"})


EXPECTED = [
    # rule, kind, path, line, status, layer index, layer created_by, removed_in index, removed_in created_by
    (AWS, "file", "/app/present.env", 3, P, 0, ADD_LINE, None, None),
    (GH, "file", "/app/deleted.env", 1, D, 0, ADD_LINE, 1, BUILD_ARG_SCRUBBED),
    (AWS, "file", "/app/config/over.env", 2, O, 0, ADD_LINE, 2, COPY_LINE),
    (PEM, "file", "/app/cache/key.pem", 1, D, 0, ADD_LINE, 3, RM_CACHE),
    (GH, "file", "/app/opq/secret.txt", 2, D, 0, ADD_LINE, 4, OPAQUE_LINE),
    (NAMED, "env", "Env.DB_PASSWORD", None, C, None, None, None, None),
    (GH, "label", "Labels.ci.token", None, C, None, None, None, None),
    (NAMED, "history", "history[2]", None, H, 1, BUILD_ARG_SCRUBBED, None, None),
    (NAMED, "history", "history[4]", None, H, None, None, None, None),
]
SECRETS = [sc.AWS_KEY_ID, sc.GITHUB_PAT, sc.AWS_KEY_ID, sc.RSA_PRIVATE_KEY.strip(), sc.GITHUB_PAT,
           sc.DB_PASSWORD, sc.GITHUB_PAT, sc.NPM_TOKEN, sc.DB_PASSWORD]


def rows(result) -> list[tuple]:
    out = []
    for f in result.findings:
        h = f.hit
        out.append((h.rule_id, h.kind.value, h.path, h.line, f.status,
                    None if f.layer is None else f.layer.index, None if f.layer is None else f.layer.created_by,
                    None if f.removed_in is None else f.removed_in.index,
                    None if f.removed_in is None else f.removed_in.created_by))
    return out


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
@pytest.mark.parametrize("kind", FORMATS)
def test_exact_findings_for_every_status(tmp_path, unit_rules, kind, compression):
    path, archive = write_image(tmp_path, leaky_spec(), kind, compression)
    result = Scanner(unit_rules).scan([str(path)])
    assert rows(result) == EXPECTED
    [image] = result.images
    assert image.ref == str(path)
    built = archive.images[0]
    for f in result.findings:
        assert f.image == str(path)
        if f.layer is not None:
            assert f.layer.digest == built.layers[f.layer.index].digest
            assert f.layer.diff_id == built.layers[f.layer.index].diff_id
    assert [f.hit.secret.sha256 for f in result.findings] == [hashlib.sha256(s.encode()).hexdigest() for s in SECRETS]
    assert all(f.hit.secret.value is None for f in result.findings)  # not without reveal
    assert image.skipped == (Skipped("/app/dangling", "hardlink to /app/nowhere, which this layer does not hold", 1),)


def test_layer_infos(tmp_path, unit_rules):
    path, archive = write_image(tmp_path, leaky_spec(), "oci-archive", "gzip")
    [image] = Scanner(unit_rules).scan([str(path)]).images
    built = archive.images[0]
    assert [(li.index, li.digest, li.diff_id, li.created_by, li.files, li.bytes) for li in image.layers] == [
        (i, b.digest, b.diff_id, created_by, files, len(b.tar))
        for i, (b, created_by, files) in enumerate(zip(
            built.layers, [ADD_LINE, BUILD_ARG_SCRUBBED, COPY_LINE, RM_CACHE, OPAQUE_LINE], [5, 2, 1, 0, 0]))]
    assert (image.source, image.digest, image.platform) == (SourceKind.OCI_ARCHIVE, built.manifest_digest, "linux/amd64")


def test_reveal_keeps_values(tmp_path, unit_rules):
    path, _ = write_image(tmp_path, leaky_spec(), "oci-layout", "gzip")
    result = Scanner(unit_rules, ScanOptions(reveal=True)).scan([str(path)])
    assert result.reveal is True
    assert [f.hit.secret.value for f in result.findings] == SECRETS


def test_statuses_of_config_findings(tmp_path, unit_rules):
    path, _ = write_image(tmp_path, leaky_spec(), "docker-legacy", "none")
    result = Scanner(unit_rules).scan([str(path)])
    kinds = {f.hit.kind: f.status for f in result.findings if f.hit.kind is not LocationKind.FILE}
    assert kinds == {LocationKind.ENV: C, LocationKind.LABEL: C, LocationKind.HISTORY: H}


# --- fingerprints ---------------------------------------------------------------------------------


def test_fingerprints_stable_across_a_rebuild(tmp_path, unit_rules):
    first, a1 = write_image(tmp_path, leaky_spec(), "oci-archive", "gzip", name="first")
    second, a2 = write_image(tmp_path, leaky_spec(b"rebuilt\n", created="2025-06-01T00:00:00Z"),
                             "docker-legacy", "none", name="second")
    assert a1.images[0].layers[0].digest != a2.images[0].layers[0].digest  # a real rebuild
    r1 = Scanner(unit_rules).scan([str(first)])
    r2 = Scanner(unit_rules).scan([str(second)])
    assert [f.layer.digest for f in r1.findings if f.layer] != [f.layer.digest for f in r2.findings if f.layer]
    assert [f.fingerprint for f in r1.findings] == [f.fingerprint for f in r2.findings]
    fps = [f.fingerprint for f in r1.findings]
    assert len(set(fps)) == len(fps)
    assert all(len(fp) == 32 and int(fp, 16) >= 0 for fp in fps)


def test_fingerprints_do_not_depend_on_reveal_or_status(tmp_path, unit_rules):
    spec = lambda later: ik.ImageSpec([ik.LayerSpec("L0", [ik.file("/app/.env", sc.AWS_KEY_ID.encode())]),
                                       ik.LayerSpec("L1", later)])
    p1, _ = write_image(tmp_path, spec([ik.file("/x", b"x")]), "oci-layout", "gzip", name="kept")
    p2, _ = write_image(tmp_path, spec([ik.whiteout("/app/.env")]), "oci-layout", "gzip", name="removed")
    [f1] = Scanner(unit_rules).scan([str(p1)]).findings
    [f2] = Scanner(unit_rules, ScanOptions(reveal=True)).scan([str(p2)]).findings
    assert (f1.status, f2.status) == (P, D)
    assert f1.fingerprint == f2.fingerprint


def test_same_secret_rewritten_in_a_later_layer_is_two_findings(tmp_path, unit_rules):
    env = f"KEY={sc.AWS_KEY_ID}\n".encode()
    spec = ik.ImageSpec([ik.LayerSpec("L0", [ik.file("/app/.env", env)]),
                         ik.LayerSpec("L1", [ik.file("/other", b"x")]),
                         ik.LayerSpec("L2", [ik.file("/app/.env", env)])])
    path, _ = write_image(tmp_path, spec, "oci-archive", "zstd")
    findings = Scanner(unit_rules).scan([str(path)]).findings
    assert [(f.layer.index, f.status, None if f.removed_in is None else f.removed_in.index)
            for f in findings] == [(0, O, 2), (2, P, None)]
    assert findings[0].hit.secret.sha256 == findings[1].hit.secret.sha256
    assert findings[0].fingerprint != findings[1].fingerprint


def test_same_secret_in_two_files_are_distinct(tmp_path, unit_rules):
    spec = ik.ImageSpec([ik.LayerSpec("L0", [ik.file("/a", sc.AWS_KEY_ID.encode()),
                                             ik.file("/b", sc.AWS_KEY_ID.encode())])])
    path, _ = write_image(tmp_path, spec, "oci-layout", "none")
    fps = [f.fingerprint for f in Scanner(unit_rules).scan([str(path)]).findings]
    assert len(fps) == 2 and fps[0] != fps[1]


# --- several images and sources ---------------------------------------------------------------------


def test_multi_image_archive_scans_each(tmp_path, unit_rules):
    a = ik.ImageSpec([ik.LayerSpec("A", [ik.file("/a", sc.AWS_KEY_ID.encode())])], tags=["unit/a:1"])
    b = ik.ImageSpec([ik.LayerSpec("B", [ik.file("/b", sc.GITHUB_PAT.encode())])], tags=["unit/b:1"])
    path, _ = write_image(tmp_path, [a, b], "docker-oci", "gzip")
    result = Scanner(unit_rules).scan([str(path)])
    assert [(f.image, f.hit.rule_id, f.hit.path) for f in result.findings] == [
        (f"{path}:unit/a:1", AWS, "/a"), (f"{path}:unit/b:1", GH, "/b")]
    only_b = Scanner(unit_rules).scan([f"{path}:unit/b:1"])
    assert [(f.image, f.hit.path) for f in only_b.findings] == [(f"{path}:unit/b:1", "/b")]


def test_several_specs_in_one_scan(tmp_path, unit_rules):
    a = ik.ImageSpec([ik.LayerSpec("A", [ik.file("/a", sc.AWS_KEY_ID.encode())])])
    p1, _ = write_image(tmp_path, a, "crane", "gzip", name="one")
    p2, _ = write_image(tmp_path, a, "oci-layout", "zstd", name="two")
    result = Scanner(unit_rules).scan([str(p1), str(p2)])
    assert [i.ref for i in result.images] == [str(p1), str(p2)]
    assert result.summary() == {"findings": 2, "by_severity": {"critical": 2}, "by_status": {"present": 2},
                                "skipped": 0, "suppressed": {}, "triaged": {}}


def test_clean_image(tmp_path, unit_rules):
    spec = ik.ImageSpec([ik.LayerSpec("L0", [ik.file("/hello.txt", b"hello\n")])], env=["PATH=/usr/bin"])
    path, _ = write_image(tmp_path, spec, "oci-archive", "gzip")
    result = Scanner(unit_rules).scan([str(path)])
    assert result.findings == ()
    assert result.summary() == {"findings": 0, "by_severity": {}, "by_status": {}, "skipped": 0, "suppressed": {}, "triaged": {}}


def test_bad_layer_fails_the_whole_scan(tmp_path, unit_rules):
    path, archive = write_image(tmp_path, leaky_spec(), "oci-archive", "gzip")
    ik.corrupt(path, archive.layer_member(0, 2))
    with pytest.raises(SourceError):
        Scanner(unit_rules).scan([str(path)])


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def begin(self, label: str, total_bytes: int) -> None:
        self.calls.append(("begin", label, total_bytes))

    def advance(self, nbytes: int) -> None:
        self.calls.append(("advance", nbytes))

    def end(self) -> None:
        self.calls.append(("end",))


def test_progress_protocol(tmp_path, unit_rules):
    path, archive = write_image(tmp_path, leaky_spec(), "oci-archive", "gzip")
    recorder = Recorder()
    Scanner(unit_rules, progress=recorder).scan([str(path)])
    total = sum(layer.size for layer in archive.images[0].layers)
    assert recorder.calls[0] == ("begin", str(path), total)
    assert recorder.calls[-1] == ("end",)
    assert sum(c[1] for c in recorder.calls if c[0] == "advance") == total


def test_odd_text_in_names_and_config_reaches_every_report(tmp_path, unit_rules):
    import json as _json
    import tarfile

    from scanner.reports import Format, report_for

    info = tarfile.TarInfo(b"app/caf\xe9.env".decode("utf-8", "surrogateescape"))
    data = f"K={sc.AWS_KEY_ID}\n".encode()
    info.size = len(data)
    tar = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + data + b"\0" * (-len(data) % 512 + 1024)
    spec = ik.ImageSpec([ik.LayerSpec("ADD x /", tar=tar)])
    config = ik.build_image(spec).config
    config["config"]["Env"] = [f"TOKEN\udce9={sc.GITHUB_PAT}"]
    config["history"][0]["created_by"] = f"RUN \ud800 echo {sc.GITHUB_PAT}"
    spec.raw_config = _json.dumps(config).encode()  # ASCII JSON with escaped lone surrogates
    path, _ = write_image(tmp_path, spec, "oci-archive", "gzip")
    result = Scanner(unit_rules).scan([str(path)])
    assert [(f.hit.path, f.hit.rule_id) for f in result.findings] == [
        ("/app/caf\\xe9.env", AWS), ("Env.TOKEN\\udce9", GH), ("history[0]", GH)]
    assert result.images[0].layers[0].created_by == f"RUN \\ud800 echo {redact(sc.GITHUB_PAT)}"
    for fmt in Format:
        report_for(fmt).render(result).encode("utf-8")
