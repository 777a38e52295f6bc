"""Baselines: `layerscan baseline IMAGE -o FILE`, then `--baseline FILE` accepts exactly those
findings; a new secret still fails; a rebuilt image keeps its fingerprints; the file never holds
a secret nor a secret's hash; bad files are one error line, exit 2.
"""
from __future__ import annotations

import hashlib
import json

import pytest

from scanner import __version__
from scanner.baseline import SCHEMA, BaselineError, baseline_document, load_baseline, write_baseline
from tests import imagekit as ik
from tests.unit.conftest import write_image
from tests.unit.reports.conftest import build_result
from tests.unit.reports.test_end_to_end import CATALOGUE, everything_spec, needles
from tests.unit.test_gate import GATE_RULES_YAML, NEW_TOKEN, json_report, run, status_spec, token_file
from tests.gateline import gate_only


@pytest.fixture
def cli(capsys, tmp_path):
    """cli(*args) -> (exit, stdout, stderr), with the gate rules (see test_gate) unless builtin_only."""
    rules = tmp_path / "gate.yaml"
    rules.write_text(GATE_RULES_YAML)

    def call(*args, builtin_only: bool = False):
        extra = [] if builtin_only else ["--rules", rules]
        return run(capsys, *args, *extra, "--no-cache", "--no-progress")

    return call


def status_image(tmp_path, name="status", kind="oci-archive", compression="gzip", extra=None):
    spec = status_spec()
    if extra is not None:  # last: an inserted step would shift the history[N] of the ENV step
        spec.steps.append(extra)
    return write_image(tmp_path, spec, kind, compression, name=name)


def fingerprints(out: str, suppressed=False) -> list[str]:
    doc = json_report(out)
    return [f["fingerprint"] for f in doc["findings"] if bool(f["suppressed"]) == suppressed]


# --- the round trip through the CLI ------------------------------------------------------------


def test_baseline_then_scan_accepts_exactly_those(cli, tmp_path):
    path, _ = status_image(tmp_path)
    code, before, _ = cli(path, "-f", "json")
    assert code == 1
    code, out, err = cli("baseline", path, "-o", tmp_path / "b.json")
    assert (code, out) == (0, "")
    assert err == f"wrote 5 fingerprint(s) to {tmp_path / 'b.json'}\n"
    assert sorted(load_baseline(str(tmp_path / "b.json"))) == sorted(fingerprints(before))

    code, after, err = cli(path, "-f", "json", "--baseline", tmp_path / "b.json")
    assert (code, gate_only(err)) == (0, "pass")
    assert sorted(fingerprints(after, suppressed=True)) == sorted(fingerprints(before))
    assert json_report(after)["summary"]["suppressed"] == {"baseline": 5}
    assert json_report(after)["summary"]["findings"] == 0


def test_a_new_secret_still_fails(cli, tmp_path):
    old, _ = status_image(tmp_path, name="old")
    cli("baseline", old, "-o", tmp_path / "b.json")
    added = ik.LayerSpec("COPY new.txt /app/", [ik.file("/app/new.txt", f"value: {NEW_TOKEN}\n".encode())])
    new, _ = status_image(tmp_path, name="new", extra=added)
    code, out, _ = cli(new, "-f", "json", "--baseline", tmp_path / "b.json")
    doc = json_report(out)
    assert code == 1
    assert [(f["rule_id"], f["location"]["path"]) for f in doc["findings"] if not f["suppressed"]] == [
        ("gate-high", "/app/new.txt")]
    assert sorted(fingerprints(out, suppressed=True)) == sorted(load_baseline(str(tmp_path / "b.json")))


def test_the_same_secret_somewhere_new_still_fails(cli, tmp_path):
    """A fingerprint names the location too: an accepted secret copied to a new path is a new finding."""
    old, _ = status_image(tmp_path, name="old")
    cli("baseline", old, "-o", tmp_path / "b.json")
    copied = ik.LayerSpec("COPY . /srv/", [ik.dir("/srv"), token_file("/srv/present.txt", "critical")])
    new, _ = status_image(tmp_path, name="new", extra=copied)
    code, out, _ = cli(new, "-f", "json", "--baseline", tmp_path / "b.json")
    assert code == 1
    assert [f["location"]["path"] for f in json_report(out)["findings"] if not f["suppressed"]] == ["/srv/present.txt"]


def test_a_rebuilt_image_keeps_its_fingerprints(cli, tmp_path):
    """Other layer bytes, digests, timestamps and archive format: the same findings accepted."""
    first, a1 = status_image(tmp_path, name="first")
    spec = status_spec()
    spec.steps[0].entries.append(ik.file("/built", b"2025-06-01T12:00:00Z\n"))
    spec.steps[0].created = "2025-06-01T12:00:00Z"
    second, a2 = write_image(tmp_path, spec, "docker-legacy", "none", name="second")
    assert a1.images[0].layers[0].diff_id != a2.images[0].layers[0].diff_id
    cli("baseline", first, "-o", tmp_path / "b.json")
    code, out, _ = cli(second, "-f", "json", "--baseline", tmp_path / "b.json")
    assert code == 0
    doc = json_report(out)
    assert doc["summary"]["suppressed"] == {"baseline": 5}
    assert doc["images"][0]["layers"][0]["diff_id"] == a2.images[0].layers[0].diff_id


def test_one_baseline_for_several_images(cli, tmp_path):
    a, _ = write_image(tmp_path, ik.ImageSpec([ik.LayerSpec("A", [token_file("/a.txt", "high")])]), "oci-archive",
                       "gzip", name="a")
    b, _ = write_image(tmp_path, ik.ImageSpec([ik.LayerSpec("B", [token_file("/b.txt", "low")])]), "oci-archive",
                       "gzip", name="b")
    code, _, err = cli("baseline", a, b, "-o", tmp_path / "b.json")
    assert (code, err) == (0, f"wrote 2 fingerprint(s) to {tmp_path / 'b.json'}\n")
    doc = json.loads((tmp_path / "b.json").read_text())
    assert [(e["image"], e["location"], e["rule_id"]) for e in doc["findings"]] == [
        (str(a), "/a.txt", "gate-high"), (str(b), "/b.txt", "gate-low")]
    assert cli(a, b, "--baseline", tmp_path / "b.json")[0] == 0
    assert cli(b, "--baseline", tmp_path / "b.json")[0] == 0


def test_the_baseline_file_holds_no_secret_nor_its_hash(cli, tmp_path):
    """Every catalogue value planted, the built-in rules: the file has fingerprints, rules, paths only."""
    path, _ = write_image(tmp_path, everything_spec(), "oci-archive", "gzip", name="everything")
    code, out, _ = cli(path, "-f", "json", builtin_only=True)
    found = json_report(out)["findings"]
    assert code == 1 and len(found) >= 20
    code, _, _ = cli("baseline", path, "-o", tmp_path / "b.json", builtin_only=True)
    assert code == 0
    text = (tmp_path / "b.json").read_text()
    assert [n for n in needles() if n in text] == []
    hashes = {hashlib.sha256(v.encode()).hexdigest() for v in CATALOGUE.values()}
    hashes |= {f["secret"]["sha256"] for f in found}
    assert [h for h in hashes if h in text or h[:32] in text] == []
    assert len(json.loads(text)["findings"]) == len(found)


# --- the file itself --------------------------------------------------------------------------


def test_document_shape():
    result = build_result(reveal=True)
    doc = baseline_document(result)
    assert doc["schema"] == SCHEMA == "layerscan-baseline/v1"
    assert doc["tool"] == {"name": "layerscan", "version": __version__}
    assert doc["findings"] == [
        {"fingerprint": "f" * 32, "rule_id": "github-pat", "location": "/app/.env", "status": "deleted",
         "image": "leaky.tar"},
        {"fingerprint": "e" * 32, "rule_id": "aws-access-key-id",
         "location": "/app/app.jar!BOOT-INF/classes/app.properties", "status": "present", "image": "leaky.tar"},
        {"fingerprint": "d" * 32, "rule_id": "secret-named-variable", "location": "Env.DB_PASSWORD",
         "status": "config", "image": "leaky.tar"},
        {"fingerprint": "c" * 32, "rule_id": "secret-named-variable", "location": "history[2]",
         "status": "history", "image": "leaky.tar"},
    ]
    assert set(doc) == {"schema", "tool", "findings"}


def test_write_and_load_round_trip(tmp_path):
    result = build_result(reveal=True)  # values in memory: still never written
    assert write_baseline(result, str(tmp_path / "b.json")) == 4
    assert load_baseline(str(tmp_path / "b.json")) == frozenset({"c" * 32, "d" * 32, "e" * 32, "f" * 32})
    text = (tmp_path / "b.json").read_text()
    assert text.endswith("}\n")
    for f in result.findings:
        assert f.hit.secret.value not in text and f.hit.secret.sha256 not in text


@pytest.mark.parametrize("content, message", [
    (None, "cannot read baseline {p}: No such file or directory"),
    ("{not json", "baseline {p}: not valid JSON"),
    ('{"schema": "layerscan/v1", "findings": []}',
     "baseline {p}: not a layerscan-baseline/v1 file (write one with `layerscan baseline`)"),
    ('[1, 2]', "baseline {p}: not a layerscan-baseline/v1 file (write one with `layerscan baseline`)"),
    ('{"schema": "layerscan-baseline/v1", "findings": {}}',
     "baseline {p}: not a layerscan-baseline/v1 file (write one with `layerscan baseline`)"),
    ('{"schema": "layerscan-baseline/v1", "findings": [{"rule_id": "x"}]}',
     "baseline {p}: every entry needs a fingerprint"),
    ('{"schema": "layerscan-baseline/v1", "findings": [{"fingerprint": ""}]}',
     "baseline {p}: every entry needs a fingerprint"),
])
def test_bad_baseline_files(tmp_path, content, message):
    p = tmp_path / "b.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(BaselineError) as err:
        load_baseline(str(p))
    assert str(err.value) == message.format(p=p)


def test_a_bad_baseline_is_one_error_line_exit_2(cli, tmp_path):
    path, _ = status_image(tmp_path)
    (tmp_path / "b.json").write_text("{not json")
    code, out, err = cli(path, "--baseline", tmp_path / "b.json")
    assert (code, out, err) == (2, "", f"layerscan: error: baseline {tmp_path / 'b.json'}: not valid JSON\n")
    code, out, err = cli(path, "--baseline", tmp_path / "missing.json")
    assert (code, out) == (2, "")
    assert err == f"layerscan: error: cannot read baseline {tmp_path / 'missing.json'}: No such file or directory\n"


def test_baseline_into_a_missing_directory(cli, tmp_path):
    path, _ = status_image(tmp_path)
    target = tmp_path / "nowhere" / "b.json"
    code, out, err = cli("baseline", path, "-o", target)
    assert (code, out) == (2, "")
    assert err == f"layerscan: error: cannot write baseline {target}: No such file or directory\n"


def test_baseline_needs_an_output(cli, tmp_path):
    path, _ = status_image(tmp_path)
    code, _, err = cli("baseline", path)
    assert code == 2
    assert err.startswith("layerscan: error: Missing option '--output' / '-o'")


def test_a_baseline_of_a_clean_image_is_empty(cli, tmp_path):
    path, _ = write_image(tmp_path, ik.ImageSpec([ik.LayerSpec("A", [ik.file("/x", b"x\n")])]), "oci-archive",
                          "gzip")
    assert cli("baseline", path, "-o", tmp_path / "b.json")[:2] == (0, "")
    assert json.loads((tmp_path / "b.json").read_text())["findings"] == []
    assert load_baseline(str(tmp_path / "b.json")) == frozenset()
