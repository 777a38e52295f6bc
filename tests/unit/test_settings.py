"""`.layerscan.yaml`: found in the working directory or given with --config; every key works;
flags override it; a bad file is one error line naming the file, exit 2.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from scanner.cli import cli
from scanner.gate import Allowlist, Policy
from scanner.models import Severity, Status
from scanner.options import build, policy
from scanner.settings import SettingsError, find_settings, load_settings
from tests import imagekit as ik
from tests.unit.conftest import write_image
from tests.unit.test_gate import (GATE_RULES_YAML, TOKENS, big_file_spec, bomb_spec, deleted_only_spec, json_report,
                                  one_finding_spec, run, status_spec, token_file)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A working directory holding the gate rules (rules/gate.yaml) and the test images."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "gate.yaml").write_text(GATE_RULES_YAML)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("settings-images")
    specs = {"high": one_finding_spec("high"), "status": status_spec(), "deleted": deleted_only_spec(),
             "bomb": bomb_spec(), "big": big_file_spec()}
    return {name: write_image(where, spec, "oci-archive", "gzip", name=name)[0] for name, spec in specs.items()}


@pytest.fixture
def scan(capsys):
    """scan(*args) -> (exit, stdout, stderr); rules come from the settings file, not from flags."""
    def call(*args):
        return run(capsys, *args, "--no-progress")

    return call


def settings(directory: Path, text: str, name: str = ".layerscan.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def parsed(*args: str, command: str = "scan"):
    """The click context of `layerscan COMMAND ARGS`: parameters after settings and flags."""
    return cli.commands[command].make_context(command, ["x.tar", *args])


# --- finding the file ---------------------------------------------------------------------------


def test_found_in_the_working_directory(project):
    assert find_settings(None) is None
    settings(project, "fail-on: high\n")
    assert find_settings(None) == ".layerscan.yaml"
    settings(project, "fail-on: low\n", name="other.yaml")
    assert find_settings(str(project / "other.yaml")) == str(project / "other.yaml")
    with pytest.raises(SettingsError) as err:
        find_settings("nope.yaml")
    assert str(err.value) == "config file not found: nope.yaml"


def test_used_from_the_working_directory_and_from_config(project, images, scan):
    assert scan(images["high"], "--no-cache")[0] == 0  # no settings: the built-in rules miss the test token
    settings(project, "rules: [rules/gate.yaml]\n")
    assert scan(images["high"], "--no-cache")[0] == 1
    settings(project, "rules: [rules/gate.yaml]\nfail-on: critical\n")
    assert scan(images["high"], "--no-cache")[0] == 0
    elsewhere = project / "ci"
    elsewhere.mkdir()
    settings(elsewhere, "rules: [../rules/gate.yaml]\nfail-on: high\n", name="gate.yaml")
    # --config replaces ./.layerscan.yaml (no merging): its fail-on: high applies
    assert scan(images["high"], "--no-cache", "--config", elsewhere / "gate.yaml")[0] == 1


def test_a_missing_config_file_is_an_error(project, images, scan):
    code, out, err = scan(images["high"], "--config", "missing.yaml")
    assert (code, out, err) == (2, "", "layerscan: error: config file not found: missing.yaml\n")


# --- every key ----------------------------------------------------------------------------------


FULL = """\
fail-on: high
status: [present, config]
fail-on-incomplete: true
fail-on-triaged: true
baseline: ci/baseline.json
base-image: oci:base
rules: [rules/gate.yaml, /abs/rules]
disable-rules: [gate-low]
private-packages: ["acme-*", "@acme/*"]
allowlist:
  secrets: ["{sha}"]
  rules: [gate-medium]
  paths: ['^/usr/share/doc/']
limits: {{max-depth: 2, max-file-size: 1G, max-archive-bytes: 512M, max-layer-bytes: 8G, max-ratio: 100,
         max-file-findings: 50}}
workers: 2
cache-dir: cache
format: json
"""


def test_load_every_key(project):
    sha = "ab" * 32
    path = settings(project, FULL.format(sha=sha))
    defaults, allowlist = load_settings(str(path))
    assert defaults == {
        "fail_on": "high", "status": ("present", "config"), "fail_on_incomplete": True, "fail_on_triaged": True,
        "baseline": str(project / "ci/baseline.json"), "base_image": "oci:base",
        "extra_rules": (str(project / "rules/gate.yaml"), "/abs/rules"), "disable_rule": ("gate-low",),
        "private_package": ("acme-*", "@acme/*"),
        "max_depth": 2, "max_file_size": "1G", "max_archive_bytes": "512M", "max_layer_bytes": "8G",
        "max_ratio": 100, "max_file_findings": 50, "workers": 2, "cache_dir": str(project / "cache"), "fmt": "json",
    }
    assert allowlist.secrets == frozenset({sha}) and allowlist.rules == frozenset({"gate-medium"})
    assert [p.pattern for p in allowlist.paths] == ["^/usr/share/doc/"]


def test_every_key_reaches_the_command(project):
    settings(project, FULL.format(sha="ab" * 32).replace("/abs/rules", "rules"))
    ctx = parsed()
    p = ctx.params
    assert policy(p) == Policy(Severity.HIGH, frozenset({Status.PRESENT, Status.CONFIG}), True, True)
    assert (p["baseline"], p["base_image"], p["fmt"], p["workers"], p["cache_dir"]) == (
        str(project / "ci/baseline.json"), "oci:base", "json", 2, str(project / "cache"))
    assert p["extra_rules"] == (str(project / "rules/gate.yaml"), str(project / "rules"))
    assert p["disable_rule"] == ("gate-low",)
    assert p["private_package"] == ("acme-*", "@acme/*")
    assert (p["max_depth"], p["max_file_size"], p["max_archive_bytes"], p["max_layer_bytes"], p["max_ratio"],
            p["max_file_findings"]) == (2, 1 << 30, 512 << 20, 8 << 30, 100, 50)
    assert ctx.meta["allowlist"].rules == frozenset({"gate-medium"})


def test_flags_override_every_key(project):
    settings(project, FULL.format(sha="ab" * 32).replace("/abs/rules", "rules"))
    p = parsed("--fail-on", "low", "--status", "deleted", "--no-fail-on-incomplete", "--no-fail-on-triaged",
               "--baseline", "other.json", "--base-image", "base.tar", "--disable-rule", "gate-high",
               "--max-depth", "1", "--max-file-size", "1K", "--workers", "3", "--cache-dir", "/tmp/c",
               "-f", "table").params
    assert policy(p) == Policy(Severity.LOW, frozenset({Status.DELETED}), False, False)
    assert (p["baseline"], p["base_image"], p["disable_rule"], p["max_depth"], p["max_file_size"], p["workers"],
            p["cache_dir"], p["fmt"]) == ("other.json", "base.tar", ("gate-high",), 1, 1024, 3, "/tmp/c", "table")


def test_private_packages_reach_the_triage(project):
    settings(project, "private-packages: [acme-*]\n")
    assert build(parsed("--no-cache").params).options.private_packages == ("acme-*",)
    assert build(parsed("--no-cache", "--private-package", "@corp/*").params).options.private_packages == ("@corp/*",)


def test_fail_on_precedence(project, images, scan):
    """The file says critical, the high finding passes; the flag says high, it fails; and back."""
    settings(project, "rules: [rules/gate.yaml]\nfail-on: critical\n")
    assert scan(images["high"], "--no-cache")[0] == 0
    assert scan(images["high"], "--no-cache", "--fail-on", "high")[0] == 1
    settings(project, "rules: [rules/gate.yaml]\nfail-on: low\n")
    assert scan(images["high"], "--no-cache")[0] == 1
    assert scan(images["high"], "--no-cache", "--fail-on", "never")[0] == 0
    assert scan(images["high"], "--no-cache", "--fail-on", "critical")[0] == 0


def test_status_key(project, images, scan):
    settings(project, "rules: [rules/gate.yaml]\nstatus: [present]\n")
    assert scan(images["deleted"], "--no-cache")[0] == 0
    assert scan(images["deleted"], "--no-cache", "--status", "deleted")[0] == 1
    settings(project, "rules: [rules/gate.yaml]\nstatus: deleted\n")  # one status as a plain string
    assert scan(images["deleted"], "--no-cache")[0] == 1


def test_fail_on_incomplete_key(project, images, scan):
    settings(project, "rules: [rules/gate.yaml]\nfail-on-incomplete: true\n")
    assert scan(images["bomb"], "--no-cache")[0] == 2
    assert scan(images["bomb"], "--no-cache", "--no-fail-on-incomplete")[0] == 0


def test_limits_key(project, images, scan):
    settings(project, "rules: [rules/gate.yaml]\nformat: json\nlimits: {max-file-size: 1K}\n")
    code, out, _ = scan(images["big"], "--no-cache")
    [skipped] = json_report(out)["images"][0]["skipped"]
    assert (code, skipped["path"]) == (0, "/srv/big.bin")
    assert skipped["reason"].startswith("file of 4096 bytes is over the max file size")
    code, out, _ = scan(images["big"], "--no-cache", "--max-file-size", "8K")
    assert json_report(out)["images"][0]["skipped"] == []
    settings(project, "rules: [rules/gate.yaml]\nformat: json\nlimits: {max-ratio: 100000}\n")
    assert json_report(scan(images["bomb"], "--no-cache")[1])["images"][0]["skipped"] == []


def test_rules_and_disable_rules_keys(project, images, scan):
    settings(project, "rules: [rules]\nformat: json\n")  # a directory of rule files, relative to the file
    code, out, _ = scan(images["status"], "--no-cache")
    assert sorted({f["rule_id"] for f in json_report(out)["findings"]}) == [
        "gate-critical", "gate-high", "gate-low", "gate-medium"]
    settings(project, "rules: [rules]\nformat: json\ndisable-rules: [gate-low, gate-critical]\n")
    code, out, _ = scan(images["status"], "--no-cache")
    assert sorted({f["rule_id"] for f in json_report(out)["findings"]}) == ["gate-high", "gate-medium"]


def test_format_key(project, images, scan):
    settings(project, "rules: [rules]\nformat: sarif\n")
    assert json.loads(scan(images["high"], "--no-cache")[1])["version"] == "2.1.0"
    assert scan(images["high"], "--no-cache", "-f", "table")[1].splitlines()[-1] == (
        "1 finding(s): 1 high in 1 image(s); 1 marked ! fail the gate")


def test_baseline_key_relative_to_the_file(project, images, scan):
    (project / "ci").mkdir()
    assert scan("baseline", images["status"], "-o", project / "ci" / "accepted.json", "--no-cache",
                "--config", settings(project, "rules: [rules]\n", name="base.yaml"))[0] == 0
    settings(project / "ci", "rules: [../rules]\nbaseline: accepted.json\nformat: json\n", name="gate.yaml")
    code, out, _ = scan(images["status"], "--no-cache", "--config", project / "ci" / "gate.yaml")
    assert (code, json_report(out)["summary"]["suppressed"]) == (0, {"baseline": 5})


def test_base_image_key(project, scan):
    base_layer = ik.LayerSpec("ADD rootfs.tar /", [ik.dir("/etc"), token_file("/etc/base.conf", "high")])
    write_image(project, ik.ImageSpec([base_layer]), "oci-layout", "gzip", name="base")
    app = ik.ImageSpec([base_layer, ik.LayerSpec("COPY app /app", [ik.dir("/app"), token_file("/app/a", "low")])])
    app_path, _ = write_image(project, app, "oci-archive", "gzip", name="app")
    settings(project, "rules: [rules]\nbase-image: base\nformat: json\n")  # the OCI layout dir ./base
    code, out, _ = scan(app_path, "--no-cache")
    doc = json_report(out)
    assert code == 1  # the app's own low finding
    assert [(f["rule_id"], f["suppressed"]) for f in doc["findings"]] == [("gate-high", "inherited"), ("gate-low", None)]
    assert scan(app_path, "--no-cache", "--fail-on", "medium")[0] == 0
    code, out, _ = scan(app_path, "--no-cache", "--base-image", str(app_path))  # the flag wins: all inherited
    assert (code, json_report(out)["summary"]["suppressed"]) == (0, {"inherited": 2})
    settings(project, "rules: [rules]\nfail-on: medium\n")
    assert scan(app_path, "--no-cache")[0] == 1  # without a base image, the base's high finding gates


@pytest.mark.parametrize("allowlist, suppressed", [
    ("{secrets: ['%s']}" % hashlib.sha256(TOKENS["high"].encode()).hexdigest(), ["gate-high"]),
    ("{rules: [gate-low]}", ["gate-low", "gate-low"]),
    ("{paths: ['^/app/(gone|over)']}", ["gate-high", "gate-medium"]),
])
def test_allowlist_key(project, images, scan, allowlist, suppressed):
    settings(project, f"rules: [rules]\nformat: json\nallowlist: {allowlist}\n")
    code, out, _ = scan(images["status"], "--no-cache")
    doc = json_report(out)
    assert sorted(f["rule_id"] for f in doc["findings"] if f["suppressed"] == "allowlist") == suppressed
    assert doc["summary"]["suppressed"] == {"allowlist": len(suppressed)}


def test_workers_and_cache_dir_keys(project, images, scan):
    settings(project, "rules: [rules]\nworkers: 1\ncache-dir: .cache/layers\n")
    assert scan(images["high"])[0] == 1
    assert any((project / ".cache" / "layers").iterdir())  # the cache was written there
    assert parsed().params["workers"] == 1


def test_fail_on_triaged_key(project):
    settings(project, "fail-on-triaged: true\n")
    assert policy(parsed().params).fail_on_triaged is True
    assert policy(parsed("--no-fail-on-triaged").params).fail_on_triaged is False


def test_the_baseline_command_reads_the_file_too(project, images, scan):
    settings(project, "rules: [rules]\nfail-on: critical\ndisable-rules: [gate-high]\n")  # fail-on: not its option
    code, _, err = scan("baseline", images["status"], "-o", project / "b.json", "--no-cache")
    assert (code, err) == (0, f"wrote 4 fingerprint(s) to {project / 'b.json'}\n")


# --- bad files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("fail-on: [\n", "{f}: not valid YAML"),
    ("- fail-on\n", "{f}: expected a mapping of settings"),
    ("fail_on: high\n", "{f}: unknown setting(s) fail_on"),
    ("fail-on: severe\n", "{f}: fail-on: 'severe' is not one of 'critical', 'high', 'medium', 'low', 'never'."),
    ("status: [gone]\n", "{f}: status: 'gone' is not one of 'present', 'deleted', 'overwritten', 'config', 'history'."),
    ("status: {a: 1}\n", "{f}: status must be a list of strings"),
    ("fail-on-incomplete: maybe\n", "{f}: fail-on-incomplete: 'maybe' is not a valid boolean. Recognized values: "
     ", 0, 1, f, false, n, no, off, on, t, true, y, yes"),
    ("fail-on-triaged: 7\n", "{f}: fail-on-triaged: 7 is not valid here"),
    ("workers: lots\n", "{f}: workers: 'lots' is not a valid integer range."),
    ("workers: 0\n", "{f}: workers: 0 is not in the range 1<=x<=256."),
    ("format: xml\n", "{f}: format: 'xml' is not one of {formats}."),
    ("baseline: 3\n", "{f}: baseline must be a path"),
    ("rules: [nothere.yaml]\n", "{f}: rules: Path '{d}/nothere.yaml' does not exist."),
    ("limits: {max-file-size: lots}\n", "{f}: limits.max-file-size: 'lots' is not a size (e.g. 512, 64K, 100M, 2G)"),
    ("limits: {max-depth: 99}\n", "{f}: limits.max-depth: 99 is not in the range 0<=x<=32."),
    ("limits: {max-size: 1}\n", "{f}: limits takes max-archive-bytes, max-depth, max-file-findings, max-file-size, max-findings, max-image-bytes, "
     "max-image-files, max-layer-bytes, max-ratio, timeout"),
    ("allowlist: [a]\n", "{f}: allowlist takes secrets, rules and paths"),
    ("private-packages: [1]\n", "{f}: private-packages must be a list of strings"),
    ("private-packages: ['']\n", "{f}: private-packages: '' is not a package name pattern"),
    ("private-packages: ['*']\n", "{f}: private-packages: '*' would name every package private"),
    ('private-packages: ["a\\tb"]\n', "{f}: private-packages: 'a\\tb' is not a package name pattern"),
    ("allowlist: {secrets: [abc]}\n", "{f}: allowlist.secrets are sha256 hex digests (as in the JSON report)"),
    ("allowlist: {paths: ['(']}\n", "{f}: allowlist.paths: bad regex (missing ), unterminated subpattern at "
     "position 0)"),
])
def test_a_bad_file_is_one_line_exit_2(project, images, scan, text, message):
    from scanner.reports import Format

    formats = ", ".join(repr(f.value) for f in Format)
    settings(project, text)
    code, out, err = scan(images["high"], "--no-cache")
    assert (code, out) == (2, "")
    assert err == "layerscan: error: " + message.format(f=".layerscan.yaml", d=project, formats=formats) + "\n"
    settings(project, text, name="given.yaml")
    (project / ".layerscan.yaml").unlink()
    code, _, err = scan(images["high"], "--no-cache", "--config", project / "given.yaml")
    assert code == 2
    assert err == "layerscan: error: " + message.format(f=project / "given.yaml", d=project, formats=formats) + "\n"


def test_an_empty_file_is_no_settings(project):
    settings(project, "")
    assert load_settings(".layerscan.yaml") == ({}, Allowlist())


def test_paths_relative_to_the_file_not_the_working_directory(project):
    (project / "sub").mkdir()
    path = settings(project / "sub", "baseline: b.json\nbase-image: docker-daemon:base:1\ncache-dir: /var/c\n",
                    name="s.yaml")
    defaults, _ = load_settings(str(path))
    assert defaults == {"baseline": str(project / "sub" / "b.json"), "base_image": "docker-daemon:base:1",
                        "cache_dir": "/var/c"}
    assert re.fullmatch(r".*/sub/b\.json", defaults["baseline"])


def test_cache_max_size_from_the_file_and_the_flag(project):
    settings(project, "cache-max-size: 3G\n")
    assert parsed().params["cache_max_size"] == 3 << 30
    assert parsed("--cache-max-size", "512M").params["cache_max_size"] == 512 << 20
