"""The command line: exit codes, one error line, --output only on success, `rules`, `--version`."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.cli import built_in_detector_rules

from scanner import __version__
from scanner.cli import main
from scanner.detectors.interface import DetectorError
from scanner.detectors.rules import load_rules
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import write_image
from tests.gateline import gate_only

REPO = Path(__file__).resolve().parents[2]


def clean_spec() -> ik.ImageSpec:
    return ik.ImageSpec([ik.LayerSpec("ADD hello.txt /", [ik.file("/hello.txt", b"hello world\n")])],
                        tags=["unit/clean:1"])


def leaky_spec() -> ik.ImageSpec:
    return ik.ImageSpec([
        ik.LayerSpec("ADD app /app", [ik.dir("/app"), ik.file("/app/.env", f"KEY={sc.AWS_KEY_ID}\n".encode())]),
        ik.LayerSpec("RUN rm /app/.env", [ik.whiteout("/app/.env")]),
    ], tags=["unit/leaky:1"])


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.fixture
def scan_args(unit_rules_path):
    return ["--rules", str(unit_rules_path), "--no-cache", "--no-progress"]


def test_exit_0_when_clean(tmp_path, capsys, scan_args):
    path, _ = write_image(tmp_path, clean_spec(), "oci-archive", "gzip")
    code, out, err = run(capsys, str(path), *scan_args)
    assert (code, gate_only(err)) == (0, "pass")
    assert out.splitlines()[-1] == "0 finding(s) in 1 image(s)"


def test_exit_1_when_findings(tmp_path, capsys, scan_args):
    path, _ = write_image(tmp_path, leaky_spec(), "docker-legacy", "none")
    code, out, err = run(capsys, str(path), *scan_args)
    assert (code, gate_only(err)) == (1, "FAIL")
    assert "unit-aws-key-id" in out and "deleted in 1" in out
    assert sc.AWS_KEY_ID not in out


def test_scan_subcommand_is_the_default(tmp_path, capsys, scan_args):
    path, _ = write_image(tmp_path, leaky_spec(), "oci-layout", "zstd")
    implicit = run(capsys, str(path), "--format", "json", *scan_args)
    explicit = run(capsys, "scan", str(path), "--format", "json", *scan_args)
    assert implicit == explicit
    assert implicit[0] == 1


def test_json_output_and_reveal(tmp_path, capsys, scan_args):
    path, _ = write_image(tmp_path, leaky_spec(), "crane", "gzip")
    code, out, _ = run(capsys, str(path), "-f", "json", *scan_args)
    doc = json.loads(out)
    assert code == 1
    assert [(f["rule_id"], f["status"], f["location"]["path"]) for f in doc["findings"]
            if f["rule_id"].startswith("unit-")] == [("unit-aws-key-id", "deleted", "/app/.env")]
    assert sc.AWS_KEY_ID not in out
    code, out, _ = run(capsys, str(path), "-f", "json", "--reveal", *scan_args)
    assert [f["secret"]["value"] for f in json.loads(out)["findings"] if f["rule_id"] == "unit-aws-key-id"] == [
        sc.AWS_KEY_ID]


# --- bad input: exit 2, one line on stderr --------------------------------------------------------


def _truncate(path, archive):
    ik.truncate(path)


def _corrupt_layer(path, archive):
    ik.corrupt(path, archive.layer_member(0, 0))


def _digest(path, archive):
    ik.corrupt(path, archive.layer_member(0, 0), offset=4)  # gzip header mtime: same content, other bytes


def _missing_blob(path, archive):
    ik.remove_member(path, archive.layer_member(0, 1))


def _manifest_not_json(path, archive):
    ik.replace_member(path, "index.json" if archive.kind.startswith("oci") else "manifest.json", b"{nope")


def _bad_index_digest(path, archive):
    index = json.loads(ik.read_archive(path)["index.json"])
    index["manifests"][0]["digest"] = "sha256:not-hex"
    ik.replace_member(path, "index.json", json.dumps(index).encode())


DAMAGE = [
    ("oci-archive", "gzip", _truncate, "truncated archive"),
    ("docker-legacy", "none", _truncate, "truncated archive"),
    ("oci-archive", "gzip", _corrupt_layer, "corrupt compressed stream"),
    ("oci-layout", "zstd", _corrupt_layer, "corrupt compressed stream"),
    ("docker-oci", "gzip", _digest, "digest mismatch"),
    ("docker-legacy", "none", _corrupt_layer, "diff_id: digest mismatch"),
    ("crane", "gzip", _missing_blob, "missing"),
    ("oci-layout", "gzip", _missing_blob, "missing"),
    ("docker-oci", "gzip", _manifest_not_json, "manifest.json: not valid JSON"),
    ("oci-archive", "gzip", _manifest_not_json, "index.json: not valid JSON"),
    ("oci-layout", "gzip", _bad_index_digest, "bad digest 'sha256:not-hex'"),
]


def one_error_line(err: str, fragment: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("layerscan: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("kind,compression,damage,fragment", DAMAGE, ids=[
    f"{k}-{c}-{d.__name__.strip('_')}" for k, c, d, _ in DAMAGE])
def test_exit_2_with_one_error_line(tmp_path, capsys, scan_args, kind, compression, damage, fragment):
    path, archive = write_image(tmp_path, leaky_spec(), kind, compression)
    damage(path, archive)
    code, out, err = run(capsys, str(path), *scan_args)
    assert (code, out) == (2, "")
    one_error_line(err, fragment)


def test_exit_2_for_a_path_that_does_not_exist(tmp_path, capsys, scan_args):
    code, out, err = run(capsys, str(tmp_path / "nope.tar"), *scan_args)
    assert (code, out) == (2, "")
    one_error_line(err, f"{tmp_path / 'nope.tar'}: no such file or directory")


def test_exit_2_for_a_gzipped_archive(tmp_path, capsys, scan_args):
    path, _ = write_image(tmp_path, leaky_spec(), "docker-oci", "none")
    gz = tmp_path / "image.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    code, out, err = run(capsys, str(gz), *scan_args)
    assert (code, out) == (2, "")
    one_error_line(err, "the archive itself is compressed")


def test_exit_2_for_an_unknown_image_name(tmp_path, capsys, scan_args):
    path, _ = write_image(tmp_path, leaky_spec(), "docker-oci", "gzip")
    code, out, err = run(capsys, f"{path}:unit/other:2", *scan_args)
    assert (code, out) == (2, "")
    one_error_line(err, "no image named 'unit/other:2' (names: unit/leaky:1)")


def test_exit_2_for_a_layer_count_mismatch(tmp_path, capsys, scan_args):
    spec = leaky_spec()
    spec.extra = {"rootfs": {"type": "layers", "diff_ids": [ik.sha256(b"one")]}}
    path, _ = write_image(tmp_path, spec, "oci-archive", "gzip")
    code, out, err = run(capsys, str(path), *scan_args)
    assert (code, out) == (2, "")
    one_error_line(err, "manifest lists 2 layers, config has 1 diff_ids")


def test_exit_2_for_a_bad_rule_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: x\n    title: t\n    severity: high\n    regex: '(no group)'\n")
    path, _ = write_image(tmp_path, clean_spec(), "oci-archive", "gzip")
    code, out, err = run(capsys, str(path), "--rules", str(bad), "--no-cache")
    assert (code, out) == (2, "")
    one_error_line(err, "named group")


def test_usage_errors_exit_2_without_traceback(tmp_path, capsys, scan_args):
    for args in ([], ["--format", "bogus", "x.tar"], ["scan"]):
        code, out, err = run(capsys, *args)
        assert code == 2 and "Traceback" not in err, args


# --- --output -------------------------------------------------------------------------------------


def test_output_written_on_success(tmp_path, capsys, scan_args):
    path, _ = write_image(tmp_path, leaky_spec(), "oci-archive", "gzip")
    report = tmp_path / "report.json"
    code, out, err = run(capsys, str(path), "-f", "json", "-o", str(report), *scan_args)
    # a report in a file: the summary, where it went and the verdict on stderr (a CI log says why)
    assert (code, out, err) == (1, "", f"2 finding(s): 2 critical in 1 image(s)\nwrote {report}\n"
                                       "gate: FAIL (exit 1): 2 findings at or above low in deleted\n")
    assert json.loads(report.read_text())["summary"]["findings"] >= 1


def test_output_written_for_a_clean_scan(tmp_path, capsys, scan_args):
    path, _ = write_image(tmp_path, clean_spec(), "oci-archive", "gzip")
    report = tmp_path / "report.txt"
    assert run(capsys, str(path), "--output", str(report), *scan_args) == (
        0, "", f"0 finding(s) in 1 image(s)\nwrote {report}\ngate: pass (exit 0): no findings\n")
    assert report.read_text().endswith("0 finding(s) in 1 image(s)\n")


def test_output_not_written_when_the_scan_fails(tmp_path, capsys, scan_args):
    path, archive = write_image(tmp_path, leaky_spec(), "oci-archive", "gzip")
    ik.corrupt(path, archive.layer_member(0, 1))
    report = tmp_path / "report.json"
    code, out, err = run(capsys, str(path), "-f", "json", "-o", str(report), *scan_args)
    assert (code, out) == (2, "")
    one_error_line(err, "layer 1")
    assert not report.exists()
    report.write_text("previous report\n")
    assert run(capsys, str(path), "-f", "json", "-o", str(report), *scan_args)[0] == 2
    assert report.read_text() == "previous report\n"  # a failed scan leaves an old report alone


def test_output_into_a_missing_directory(tmp_path, capsys, scan_args):
    path, _ = write_image(tmp_path, clean_spec(), "oci-archive", "gzip")
    code, out, err = run(capsys, str(path), "-o", str(tmp_path / "no" / "such" / "dir.json"), *scan_args)
    assert (code, out) == (2, "")
    one_error_line(err, "cannot write")


# --- rules and version ----------------------------------------------------------------------------


def test_rules_lists_rules(capsys, unit_rules_path):
    code, out, err = run(capsys, "rules", "--rules", str(unit_rules_path))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "unit (3 rules, 2 services)" in lines  # the family is the rule file's name
    assert f"  {'unit-aws-key-id':40} critical AWS access key id (unit)" in lines
    assert f"  {'unit-github-pat':40} high     GitHub token (unit)" in lines
    assert f"  {'unit-private-key':40} critical Private key (unit)" in lines
    m = re.fullmatch(r"(\d+) signature rules for (\d+) services in (\d+) families \(rule set [0-9a-f]{12}\) "
                     r"and (\d+) detector rules", lines[-1])
    assert m
    headers = [line for line in lines[:-1] if not line.startswith("  ")]
    assert len(headers) == int(m.group(3)) + 1  # the families, and the code detectors
    assert int(m.group(1)) + int(m.group(4)) == len(lines) - 1 - len(headers)
    assert f"  {'docker-config-credential':40} critical Registry credential in a Docker/Podman auth file  " \
           "[file detector]" in lines


def test_rules_lists_the_builtin_rules_by_family(capsys):
    try:
        builtin = load_rules()
    except DetectorError as exc:
        pytest.skip(f"no built-in rules yet ({exc})")
    code, out, err = run(capsys, "rules")
    assert (code, err) == (0, "")
    detector_rules = built_in_detector_rules()
    services = {r.service for r in builtin.rules if r.service}
    families = {r.family for r in builtin.rules}
    assert out.splitlines()[-1] == (f"{len(builtin)} signature rules for {len(services)} services in "
                                    f"{len(families)} families (rule set {builtin.digest[:12]}) "
                                    f"and {len(detector_rules)} detector rules")
    listed = [line.split()[0] for line in out.splitlines()[:-1] if line.startswith("  ")]
    by_family = sorted(builtin.rules, key=lambda r: r.family)  # stable: file order within a family
    assert listed == [r.id for r in by_family] + [d[0] for d in detector_rules]
    payments = next(line for line in out.splitlines() if line.startswith("payments ("))
    count = sum(r.family == "payments" for r in builtin.rules)
    assert payments.startswith(f"payments ({count} rules, ")


def test_version(capsys):
    assert run(capsys, "--version") == (0, f"layerscan, version {__version__}\n", "")


# --- the real process: `python -m scanner` ------------------------------------------------------------


def python_m(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LAYERSCAN_DEBUG"}
    env.update(HOME=str(home), TMPDIR=str(home / "tmp"), XDG_CACHE_HOME=str(home / "cache"),
               PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "scanner", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def sandbox(tmp_path) -> tuple[Path, Path]:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    for d in (cwd, home, home / "tmp", home / "cache"):
        d.mkdir()
    return cwd, home


def test_python_m_scanner(tmp_path, sandbox, unit_rules_path):
    cwd, home = sandbox
    images = tmp_path / "images"
    images.mkdir()
    path, _ = write_image(images, leaky_spec(), "oci-archive", "zstd")
    before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in images.iterdir())

    version = python_m(["--version"], cwd, home)
    assert (version.returncode, version.stdout) == (0, f"layerscan, version {__version__}\n")

    found = python_m([str(path), "--rules", str(unit_rules_path), "--no-cache", "-f", "json"], cwd, home)
    assert (found.returncode, gate_only(found.stderr)) == (1, "FAIL")
    assert "unit-aws-key-id" in found.stdout and sc.AWS_KEY_ID not in found.stdout

    clean, _ = write_image(images, clean_spec(), "docker-legacy", "none", name="clean")
    ok = python_m([str(clean), "--rules", str(unit_rules_path), "--no-cache"], cwd, home)
    assert (ok.returncode, gate_only(ok.stderr)) == (0, "pass")

    bad = python_m([str(images / "missing.tar"), "--rules", str(unit_rules_path), "--no-cache"], cwd, home)
    assert (bad.returncode, bad.stdout) == (2, "")
    one_error_line(bad.stderr, "no such file or directory")

    # nothing written: no extraction, no temp files, the images as they were
    assert [p for p in cwd.rglob("*")] == [] and [p for p in (home / "tmp").rglob("*")] == []
    assert [p for p in (home / "cache").rglob("*")] == []
    after = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in images.iterdir() if p.name != "clean.tar")
    assert after == before


# --- no raw secret in any output format, with the built-in rules too ------------------------------------


def test_no_catalogue_value_in_any_format_without_reveal(tmp_path, capsys, scan_args):
    from scanner.reports import Format
    from tests.unit.reports.test_end_to_end import everything_spec, needles

    try:
        load_rules()
    except DetectorError as exc:
        pytest.skip(f"no built-in rules yet ({exc})")
    spec = everything_spec()
    bearer = "Zk8Qw3Rt6Yp1Ls4Dh7FmVt8mQz2xLk4R9sWe"
    run_line = (f"RUN /bin/sh -c git clone {sc.URL_CREDENTIAL} /src && curl -fsSL "
                f'-H "Authorization: Bearer {bearer}" https://artifacts.internal.example/pkg.tgz | tar xz')
    if all(r.pattern.search(run_line.encode()) is None for r in load_rules().rules):
        run_line = "RUN /bin/sh -c true"  # no built-in rule for these yet: test_config.py skips them
    spec.steps.append(ik.LayerSpec(run_line, [ik.file("/src/README", b"readme\n")]))
    path, _ = write_image(tmp_path, spec, "docker-oci", "gzip")
    for fmt in Format:
        code, out, err = run(capsys, str(path), "-f", fmt.value, *scan_args)
        assert (code, gate_only(err)) == (1, "FAIL"), fmt
        assert [n for n in needles() + [bearer] if n in out] == [], fmt
    code, out, _ = run(capsys, str(path), "-f", "json", "--reveal", *scan_args)
    values = {f["secret"]["value"] for f in json.loads(out)["findings"]}
    assert {sc.AWS_KEY_ID, sc.NPM_TOKEN, sc.GITHUB_PAT, sc.DB_PASSWORD} <= values


def test_parallel_scan_writes_nothing(tmp_path, sandbox, unit_rules_path):
    """Big enough for worker processes: they write nothing either, and find the same."""
    cwd, home = sandbox
    images = tmp_path / "images"
    images.mkdir()
    blobs = [os.urandom(2 << 20) for _ in range(3)]
    spec = ik.ImageSpec([ik.LayerSpec(f"ADD blob{i} /data/", [
        ik.file(f"/data/blob{i}", blob), ik.file(f"/data/key{i}", f"K={sc.AWS_KEY_ID}\n".encode())])
        for i, blob in enumerate(blobs)])
    path, _ = write_image(images, spec, "oci-archive", "gzip")
    before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in images.iterdir())
    done = python_m([str(path), "--rules", str(unit_rules_path), "--no-cache", "--workers", "3", "-f", "json"],
                    cwd, home)
    assert (done.returncode, gate_only(done.stderr)) == (1, "FAIL")
    assert sorted((f["layer"]["index"], f["location"]["path"]) for f in json.loads(done.stdout)["findings"]
                  if f["rule_id"] == "unit-aws-key-id") == [(0, "/data/key0"), (1, "/data/key1"), (2, "/data/key2")]
    assert [p for p in cwd.rglob("*")] == [] and [p for p in (home / "tmp").rglob("*")] == []
    assert [p for p in (home / "cache").rglob("*")] == []
    assert sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in images.iterdir()) == before
