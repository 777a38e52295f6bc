"""The gate: every --fail-on threshold, --status, --fail-on-incomplete, triage, several images in
one call, suppressed findings counted and listed apart, --base-image; and gate.py on its own.

The images carry tokens that only the test rules below match (one rule per severity), so every
exit status here follows from findings we placed.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import click
import pytest

from scanner.cli import cli, main
from scanner.errors import ExitCode
from scanner.gate import Allowlist, BaseImage, Policy, Verdict, decide, gating, mark, suppress, verdict
from scanner.models import (DetectorKind, Finding, Hit, ImageResult, LayerInfo, LocationKind, ScanResult, Secret,
                            Severity, Skipped, SourceKind, Status)
from scanner.options import policy
from tests import imagekit as ik
from tests.unit.conftest import write_image
from tests.gateline import gate_only

GATE_RULES_YAML = """
rules:
  - id: gate-critical
    title: Critical test token
    severity: critical
    keywords: [lsgcrit_]
    regex: '(?P<secret>lsgcrit_[0-9a-z]{24})'
  - id: gate-high
    title: High test token
    severity: high
    keywords: [lsghigh_]
    regex: '(?P<secret>lsghigh_[0-9a-z]{24})'
  - id: gate-medium
    title: Medium test token
    severity: medium
    keywords: [lsgmed_]
    regex: '(?P<secret>lsgmed_[0-9a-z]{24})'
  - id: gate-low
    title: Low test token
    severity: low
    keywords: [lsglow_]
    regex: '(?P<secret>lsglow_[0-9a-z]{24})'
"""
TOKENS = {"critical": "lsgcrit_k3m9q4w7e1r6t5y0a8f2z7x4", "high": "lsghigh_p2l8n5b3v6c1x9z4m7q0w3e8",
          "medium": "lsgmed_r4t7y2u9i5o1p6a3s8d0f2g7", "low": "lsglow_h5j8k1l4z7x2c9v6b3n0m5q8"}
NEW_TOKEN = "lsghigh_n7b4v1c8x5z2l9k6j3h0g5f2"  # a secret added by a later build
THRESHOLDS = ["critical", "high", "medium", "low", "never"]
RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "never": 99}
MiB = 1 << 20


# --- images --------------------------------------------------------------------------------


def token_file(path: str, level: str) -> ik.Entry:
    return ik.file(path, f"value: {TOKENS[level]}\n".encode())


def one_finding_spec(level: str) -> ik.ImageSpec:
    return ik.ImageSpec([ik.LayerSpec("ADD app /app", [ik.dir("/app"), token_file(f"/app/{level}.txt", level)])])


def clean_spec() -> ik.ImageSpec:
    return ik.ImageSpec([ik.LayerSpec("ADD hello.txt /", [ik.file("/hello.txt", b"hello world\n")])])


def status_spec() -> ik.ImageSpec:
    """One finding per status: present critical, deleted high, overwritten medium, config and history low."""
    return ik.ImageSpec([
        ik.LayerSpec("ADD app /app", [ik.dir("/app"), token_file("/app/present.txt", "critical"),
                                      token_file("/app/gone.txt", "high"), token_file("/app/over.txt", "medium")]),
        ik.LayerSpec("RUN rm /app/gone.txt", [ik.whiteout("/app/gone.txt"), ik.file("/app/over.txt", b"nothing\n")]),
        ik.EmptyLayer(f"ENV LSG={TOKENS['low']}"),
    ], env=[f"LSG={TOKENS['low']}"])


def deleted_only_spec() -> ik.ImageSpec:
    return ik.ImageSpec([
        ik.LayerSpec("COPY .env /app/.env", [ik.dir("/app"), token_file("/app/.env", "critical")]),
        ik.LayerSpec("RUN rm /app/.env", [ik.whiteout("/app/.env")]),
    ])


def zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", bytes(16 * MiB))
    return buf.getvalue()


def bomb_spec() -> ik.ImageSpec:
    return ik.ImageSpec([ik.LayerSpec("ADD bomb.zip /srv/", [ik.dir("/srv"), ik.file("/srv/bomb.zip", zip_bomb())])])


def big_file_spec() -> ik.ImageSpec:
    return ik.ImageSpec([ik.LayerSpec("ADD blob /srv/", [ik.dir("/srv"), ik.file("/srv/big.bin", b"x" * 4096)])])


@pytest.fixture(scope="module")
def gate_rules(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gate-rules") / "gate.yaml"
    path.write_text(GATE_RULES_YAML)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """Every test image on disk, written once."""
    where = tmp_path_factory.mktemp("gate-images")
    specs = {level: one_finding_spec(level) for level in TOKENS}
    specs.update(clean=clean_spec(), status=status_spec(), deleted=deleted_only_spec(), bomb=bomb_spec(),
                 big=big_file_spec())
    return {name: write_image(where, spec, "oci-archive", "gzip", name=name)[0] for name, spec in specs.items()}


def run(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.fixture
def gate(capsys, gate_rules):
    """gate(*args) -> (exit, stdout, stderr) of `layerscan ARGS` with the test rules."""
    def scan(*args):
        return run(capsys, *args, "--rules", gate_rules, "--no-cache", "--no-progress")

    return scan


def json_report(out: str) -> dict:
    return json.loads(out)


# --- thresholds and exit codes --------------------------------------------------------------


def test_the_test_images_hold_exactly_the_findings_placed(gate, images):
    code, out, _ = gate(images["status"], "-f", "json")
    found = {(f["rule_id"], f["status"], f["location"]["path"]) for f in json_report(out)["findings"]}
    assert found == {("gate-critical", "present", "/app/present.txt"), ("gate-high", "deleted", "/app/gone.txt"),
                     ("gate-medium", "overwritten", "/app/over.txt"), ("gate-low", "config", "Env.LSG"),
                     ("gate-low", "history", "history[2]")}
    for level in TOKENS:
        code, out, _ = gate(images[level], "-f", "json")
        assert [f["rule_id"] for f in json_report(out)["findings"]] == [f"gate-{level}"]


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("level", list(TOKENS))
def test_every_threshold(gate, images, level, threshold):
    code, _, err = gate(images[level], "--fail-on", threshold)
    fails = RANK[level] >= RANK[threshold]
    assert (code, gate_only(err)) == (1, "FAIL") if fails else (0, "pass")


def test_the_default_threshold_fails_on_any_finding(gate, images):
    assert gate(images["low"])[0] == 1
    assert gate(images["clean"])[0] == 0


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_a_clean_image_passes_every_threshold(gate, images, threshold):
    assert gate(images["clean"], "--fail-on", threshold) == (
        0, gate(images["clean"])[1], "gate: pass (exit 0): no findings\n")


@pytest.mark.parametrize("status, severity, above", [
    ("present", "critical", None), ("deleted", "high", "critical"), ("overwritten", "medium", "high"),
    ("config", "low", "medium"), ("history", "low", "medium"),
])
def test_status_filter(gate, images, status, severity, above):
    """Only findings of the given status gate: at their severity they fail, one step above they pass."""
    assert gate(images["status"], "--status", status, "--fail-on", severity)[0] == 1
    if above is not None:
        assert gate(images["status"], "--status", status, "--fail-on", above)[0] == 0


def test_several_statuses(gate, images):
    assert gate(images["status"], "--status", "config", "--status", "history", "--fail-on", "medium")[0] == 0
    assert gate(images["status"], "--status", "config", "--status", "deleted", "--fail-on", "medium")[0] == 1


def test_deleted_secrets_gate_by_default(gate, images):
    """A deleted file is still in the image: it fails the default gate, not `--status present`."""
    assert gate(images["deleted"])[0] == 1
    assert gate(images["deleted"], "--status", "present")[0] == 0


def test_an_unknown_threshold_or_status_is_a_usage_error(gate, images):
    code, out, err = gate(images["clean"], "--fail-on", "severe")
    assert (code, out) == (2, "")
    assert err.startswith("layerscan: error: Invalid value for '--fail-on': 'severe' is not one of")
    assert len(err.splitlines()) == 1
    code, _, err = gate(images["clean"], "--status", "gone")
    assert code == 2 and len(err.splitlines()) == 1


# --- coverage: --fail-on-incomplete ---------------------------------------------------------


INCOMPLETE_LINE = ("layerscan: error: 1 item(s) not scanned and --fail-on-incomplete is set "
                   "(see the report's not-scanned list)\n"
                   "gate: FAIL (exit 2): 1 item not scanned in 1 image (--fail-on-incomplete)\n")


def test_a_zip_bomb_is_skipped_and_fails_only_when_asked(gate, images):
    code, out, err = gate(images["bomb"], "-f", "json")
    assert (code, gate_only(err)) == (0, "pass")
    [skipped] = json_report(out)["images"][0]["skipped"]
    assert (skipped["layer"], skipped["path"]) == (0, "/srv/bomb.zip")
    assert "expansion ratio over 200:1" in skipped["reason"]
    code, out, err = gate(images["bomb"], "--fail-on-incomplete")
    assert (code, err) == (2, INCOMPLETE_LINE)
    assert "not scanned: 1 item(s)" in out  # the report is still written, with what was skipped


def test_a_file_over_max_file_size_fails_only_when_asked(gate, images):
    assert gate(images["big"], "--max-file-size", "1K")[0] == 0
    assert gate(images["big"], "--max-file-size", "1K", "--fail-on-incomplete") == (
        2, gate(images["big"], "--max-file-size", "1K")[1], INCOMPLETE_LINE)
    assert gate(images["big"], "--max-file-size", "8K", "--fail-on-incomplete")[0] == 0  # under the limit: complete


def test_incomplete_is_worse_than_findings(gate, images):
    code, _, err = gate(images["bomb"], images["critical"], "--fail-on-incomplete")
    assert (code, err) == (2, INCOMPLETE_LINE)
    assert gate(images["bomb"], images["critical"], "--no-fail-on-incomplete")[0] == 1


# --- several images in one call -------------------------------------------------------------


def test_several_images_one_report_worst_status(gate, images):
    code, out, _ = gate(images["clean"], images["high"], images["low"], "-f", "json", "--fail-on", "high")
    doc = json_report(out)
    assert code == 1
    assert [i["ref"] for i in doc["images"]] == [str(images["clean"]), str(images["high"]), str(images["low"])]
    assert sorted((f["image"], f["rule_id"]) for f in doc["findings"]) == [
        (str(images["high"]), "gate-high"), (str(images["low"]), "gate-low")]
    assert doc["summary"]["findings"] == 2
    assert gate(images["clean"], images["low"], "--fail-on", "high")[0] == 0


def test_several_images_in_the_table(gate, images):
    code, out, _ = gate(images["clean"], images["medium"])
    assert code == 1
    assert f"{images['clean']} (oci-archive, 1 layers" in out and f"{images['medium']} (oci-archive, 1 layers" in out
    assert out.splitlines()[-1] == "1 finding(s): 1 medium in 2 image(s); 1 marked ! fail the gate"


def test_an_error_in_any_image_is_exit_2_and_no_report(gate, images, tmp_path):
    code, out, err = gate(images["critical"], tmp_path / "missing.tar")
    assert (code, out) == (2, "")
    assert err == f"layerscan: error: {tmp_path / 'missing.tar'}: no such file or directory\n"


# --- suppressed findings: counted, listed apart, never hidden --------------------------------


def test_suppressed_findings_are_counted_and_listed_apart(gate, images, tmp_path):
    code, out, _ = gate(images["status"], "-f", "json")
    doc = json_report(out)
    deleted = [f["fingerprint"] for f in doc["findings"] if f["status"] == "deleted"]
    baseline = tmp_path / "b.json"
    baseline.write_text(json.dumps({"schema": "layerscan-baseline/v1", "findings": [{"fingerprint": deleted[0]}]}))

    code, out, _ = gate(images["status"], "-f", "json", "--baseline", baseline)
    doc = json_report(out)
    assert code == 1
    assert len(doc["findings"]) == 5  # never hidden
    assert [(f["rule_id"], f["suppressed"]) for f in doc["findings"] if f["suppressed"]] == [("gate-high", "baseline")]
    assert doc["summary"]["findings"] == 4
    assert doc["summary"]["suppressed"] == {"baseline": 1}
    assert doc["summary"]["by_severity"] == {"critical": 1, "medium": 1, "low": 2}

    code, out, _ = gate(images["status"], "--baseline", baseline)
    lines = click.unstyle(out).splitlines()
    accepted = lines.index("accepted by the baseline: 1 finding(s)")
    assert lines[accepted + 1].split()[:3] == ["high", "gate-high", "deleted"]  # its row, apart
    assert not any("gate-high" in line for line in lines[:accepted])  # not among the active findings
    assert lines[-1] == ("4 finding(s): 1 critical, 1 medium, 2 low in 1 image(s); 4 marked ! fail the gate; "
                         "1 accepted (baseline, allowlist or base image)")


def test_everything_accepted_passes_and_says_so(gate, images, tmp_path):
    code, out, _ = gate(images["high"], "-f", "json")
    [fp] = [f["fingerprint"] for f in json_report(out)["findings"]]
    baseline = tmp_path / "b.json"
    baseline.write_text(json.dumps({"schema": "layerscan-baseline/v1", "findings": [{"fingerprint": fp}]}))
    code, out, err = gate(images["high"], "--baseline", baseline)
    assert (code, gate_only(err)) == (0, "pass")
    assert "no new secrets found" in out


def test_base_image_findings_are_inherited(gate, tmp_path):
    base_layer = ik.LayerSpec("ADD rootfs.tar /", [ik.dir("/etc"), token_file("/etc/base.conf", "critical")])
    base = ik.ImageSpec([base_layer, ik.EmptyLayer(f"ENV LSG={TOKENS['low']}")], env=[f"LSG={TOKENS['low']}"])
    app = ik.ImageSpec([base_layer, ik.EmptyLayer(f"ENV LSG={TOKENS['low']}"),
                        ik.LayerSpec("COPY app /app", [ik.dir("/app"), token_file("/app/app.txt", "medium")])],
                       env=[f"LSG={TOKENS['low']}"])
    base_path, _ = write_image(tmp_path, base, "oci-archive", "gzip", name="base")
    app_path, _ = write_image(tmp_path, app, "docker-oci", "none", name="app")

    code, out, _ = gate(app_path, "-f", "json", "--base-image", base_path)
    doc = json_report(out)
    assert code == 1
    assert sorted((f["rule_id"], f["status"], f["suppressed"]) for f in doc["findings"]) == [
        ("gate-critical", "present", "inherited"), ("gate-low", "config", "inherited"),
        ("gate-low", "history", "inherited"), ("gate-medium", "present", None)]
    assert doc["summary"]["suppressed"] == {"inherited": 3}
    assert gate(app_path, "--base-image", base_path, "--fail-on", "high")[0] == 0  # the app's own: medium
    assert gate(app_path, "--fail-on", "high")[0] == 1  # without it, the base's critical gates


# --- triage ---------------------------------------------------------------------------------


def test_triage_flag_reaches_the_policy():
    def parsed(*args: str) -> Policy:
        ctx = cli.commands["scan"].make_context("scan", ["x.tar", *args])
        return policy(ctx.params)

    assert parsed() == Policy(Severity.LOW, frozenset(Status), False, False)
    assert parsed("--fail-on-triaged") == Policy(Severity.LOW, frozenset(Status), False, True)
    assert parsed("--fail-on", "never", "--status", "present", "--fail-on-incomplete") == Policy(
        None, frozenset({Status.PRESENT}), True, False)


# --- gate.py on hand-made findings ------------------------------------------------------------


def finding(severity: Severity, status: Status = Status.PRESENT, *, rule: str = "r", path: str = "/app/x",
            kind: LocationKind = LocationKind.FILE, layer: int | None = 0, triage: str | None = None,
            sha: str = "ab" * 32, fp: str = "f" * 32, image: str = "img.tar") -> Finding:
    hit = Hit(rule, DetectorKind.SIGNATURE, severity, "T", path, 1, Secret(sha, "r****"), kind=kind)
    info = None if layer is None else LayerInfo(layer, f"sha256:{layer:064d}", f"sha256:{layer + 1:064d}", "RUN x")
    return Finding(fp, hit, image, status, info, triage=triage)


def result_of(*findings: Finding, skipped: tuple[Skipped, ...] = ()) -> ScanResult:
    return ScanResult((ImageResult("img.tar", SourceKind.OCI_ARCHIVE, None, (), tuple(findings), skipped),))


@pytest.mark.parametrize("threshold", [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, None])
def test_gating_by_threshold(threshold):
    findings = [finding(s, fp=s.value) for s in Severity]
    expected = [] if threshold is None else [s.value for s in Severity if s.rank >= threshold.rank]
    assert [f.fingerprint for f in gating(result_of(*findings), Policy(fail_on=threshold))] == expected


def test_triaged_findings_do_not_gate_by_default():
    result = result_of(finding(Severity.CRITICAL, triage="vendor"), finding(Severity.LOW, triage="known-public"))
    assert gating(result, Policy()) == []
    assert decide(result, Policy()) is ExitCode.CLEAN
    assert len(gating(result, Policy(fail_on_triaged=True))) == 2
    assert decide(result, Policy(fail_on_triaged=True)) is ExitCode.FINDINGS


def test_suppressed_findings_never_gate():
    result = result_of(replace(finding(Severity.CRITICAL), suppressed="baseline"))
    assert gating(result, Policy()) == []
    assert verdict(result, Policy()) == Verdict(ExitCode.CLEAN)


def test_verdict_and_its_reasons():
    f = finding(Severity.HIGH, Status.DELETED, rule="github-pat", path="/app/.env", layer=2, fp="1" * 32)
    c = finding(Severity.CRITICAL, Status.CONFIG, rule="aws", path="Env.KEY", kind=LocationKind.ENV, layer=None,
                fp="2" * 32)
    skipped = (Skipped("/srv/bomb.zip", "bomb", 0), Skipped("/srv/big", "big", 1))
    result = result_of(f, c, skipped=skipped)
    decided = verdict(result, Policy())
    assert decided == Verdict(ExitCode.FINDINGS, (f, c), (), Policy(), active=2)
    assert decided.reasons() == [f"img.tar: critical aws at Env.KEY (config) fingerprint {'2' * 32}",
                                 f"img.tar: high github-pat at /app/.env (deleted, layer 2) fingerprint {'1' * 32}"]
    strict = verdict(result, Policy(fail_on_incomplete=True))
    assert (strict.code, strict.skipped) == (ExitCode.ERROR, 2)
    assert strict.reasons()[0] == "img.tar: 2 item(s) not scanned (--fail-on-incomplete)"
    assert verdict(result_of(skipped=skipped), Policy(fail_on_incomplete=True)).code is ExitCode.ERROR
    assert verdict(result_of(skipped=skipped), Policy()).code is ExitCode.CLEAN


def test_allowlist_matches_by_secret_rule_or_path():
    f = finding(Severity.HIGH, rule="github-pat", path="/usr/share/doc/x/README", sha="cd" * 32)
    assert Allowlist(secrets=frozenset({"cd" * 32})).matches(f)
    assert Allowlist(rules=frozenset({"github-pat"})).matches(f)
    assert Allowlist(paths=(re.compile(r"^/usr/share/doc/"),)).matches(f)
    assert not Allowlist(secrets=frozenset({"ab" * 32}), rules=frozenset({"aws"}),
                         paths=(re.compile(r"^/app/"),)).matches(f)
    assert not Allowlist().matches(f)


def test_suppress_reasons_and_their_order():
    """Inherited first (it names where the secret came from), then baseline, then allowlist."""
    base_file = finding(Severity.HIGH, layer=0, fp="a" * 32)
    base_env = finding(Severity.HIGH, Status.CONFIG, path="Env.K", kind=LocationKind.ENV, layer=None, fp="b" * 32)
    own = finding(Severity.HIGH, layer=1, fp="c" * 32, rule="aws")
    listed = finding(Severity.HIGH, layer=1, fp="d" * 32, rule="jwt")
    other = finding(Severity.HIGH, layer=1, fp="e" * 32, rule="other")
    base = BaseImage(frozenset({"sha256:" + f"{1:064d}"}), frozenset({("Env.K", "ab" * 32)}))
    result = suppress(result_of(base_file, base_env, own, listed, other), baseline={"a" * 32, "c" * 32},
                      allowlist=Allowlist(rules=frozenset({"jwt", "aws"})), base=base)
    assert [f.suppressed for f in result.findings] == ["inherited", "inherited", "baseline", "allowlist", None]
    assert result.summary()["suppressed"] == {"inherited": 2, "baseline": 1, "allowlist": 1}
    assert result.summary()["findings"] == 1


# --- the verdict line: a golden for each outcome ----------------------------------------------------


def _sample() -> ScanResult:
    """6 critical/high findings in present, deleted and history, 2 medium in config."""
    findings = [finding(Severity.CRITICAL, Status.PRESENT, fp="1"), finding(Severity.HIGH, Status.DELETED, fp="2"),
                finding(Severity.HIGH, Status.HISTORY, fp="3"), finding(Severity.CRITICAL, Status.DELETED, fp="4"),
                finding(Severity.HIGH, Status.PRESENT, fp="5"), finding(Severity.CRITICAL, Status.HISTORY, fp="6"),
                finding(Severity.MEDIUM, Status.CONFIG, layer=None, fp="7"),
                finding(Severity.MEDIUM, Status.CONFIG, layer=None, fp="8")]
    return result_of(*findings)


VERDICT_LINES = [
    (_sample(), Policy(fail_on=Severity.HIGH),
     "gate: FAIL (exit 1): 6 findings at or above high in present, deleted, history"),
    (_sample(), Policy(fail_on=Severity.CRITICAL, statuses=frozenset({Status.CONFIG})),
     "gate: pass (exit 0): 8 findings, none at or above critical in config"),
    (_sample(), Policy(fail_on=Severity.CRITICAL),
     "gate: FAIL (exit 1): 3 findings at or above critical in present, deleted, history"),
    (_sample(), Policy(), "gate: FAIL (exit 1): 8 findings at or above low in present, deleted, config, history"),
    (result_of(finding(Severity.LOW, fp="1")), Policy(fail_on=Severity.MEDIUM),
     "gate: pass (exit 0): 1 finding, none at or above medium"),
    (result_of(finding(Severity.HIGH, Status.DELETED, fp="1")), Policy(),
     "gate: FAIL (exit 1): 1 finding at or above low in deleted"),
    (_sample(), Policy(fail_on=None), "gate: pass (exit 0): 8 findings, none gating (--fail-on never)"),
    (result_of(), Policy(), "gate: pass (exit 0): no findings"),
    (result_of(replace(finding(Severity.CRITICAL), suppressed="baseline")), Policy(),
     "gate: pass (exit 0): no findings"),
    (result_of(finding(Severity.CRITICAL, triage="vendor", fp="1"), finding(Severity.LOW, fp="2")),
     Policy(fail_on=Severity.HIGH), "gate: pass (exit 0): 2 findings, none at or above high (1 triaged: not gating)"),
    (result_of(finding(Severity.CRITICAL), skipped=(Skipped("/a.zip", "bomb", 0), Skipped("/b", "big", 1))),
     Policy(fail_on_incomplete=True), "gate: FAIL (exit 2): 2 items not scanned in 1 image (--fail-on-incomplete)"),
]


@pytest.mark.parametrize("result,policy,line", VERDICT_LINES)
def test_the_verdict_line(result, policy, line):
    assert verdict(result, policy).line() == line


def test_mark_flags_exactly_the_gating_findings():
    marked = mark(_sample(), Policy(fail_on=Severity.HIGH))
    assert [f.fingerprint for f in marked.findings if f.gating] == ["1", "2", "3", "4", "5", "6"]
    assert [f.gating for f in marked.findings if f.fingerprint in "78"] == [False, False]


def test_the_verdict_is_the_last_line_on_stderr(gate, images):
    code, out, err = gate(images["high"], "--fail-on", "critical")
    assert (code, err) == (0, "gate: pass (exit 0): 1 finding, none at or above critical\n")
    code, out, err = gate(images["high"], "-f", "json")
    assert (code, err) == (1, "gate: FAIL (exit 1): 1 finding at or above low in present\n")
    assert [f["gating"] for f in json_report(out)["findings"]] == [True]
    code, out, err = gate(images["high"], "-f", "sarif", "--fail-on", "critical")
    [result] = json.loads(out)["runs"][0]["results"]
    assert (result["level"], result["properties"]["gating"]) == ("warning", False)
    code, out, err = gate(images["high"], "-f", "sarif")
    [result] = json.loads(out)["runs"][0]["results"]
    assert (result["level"], result["properties"]["gating"]) == ("error", True)
