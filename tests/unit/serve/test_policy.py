"""The `serve:` section of `.layerscan.yaml`: per-repository rules, first match wins."""
from __future__ import annotations

import json

import pytest

from scanner.gate import Policy
from scanner.models import Severity, Status
from scanner.serve.policy import RepositoryPolicy, load_serve_policy
from scanner.settings import SettingsError, load_settings


def write(tmp_path, text: str):
    path = tmp_path / ".layerscan.yaml"
    path.write_text(text)
    return str(path)


def test_rules_match_in_order_and_inherit_the_default(tmp_path):
    (tmp_path / "pay.json").write_text(json.dumps({"schema": "layerscan-baseline/v1", "findings": [{"fingerprint": "ab"}]}))
    path = write(tmp_path, """
fail-on: high
serve:
  on-timeout: allow
  repositories:
    - {match: "sandbox/*", fail-on: never}
    - {match: "pay/*", fail-on: medium, status: [present], baseline: pay.json, on-timeout: deny}
    - {match: "*", fail-on-triaged: true}
""")
    load_settings(path)  # the scan's own loader accepts the section
    default = RepositoryPolicy(Policy(fail_on=Severity.HIGH))
    found = load_serve_policy(path, default)
    assert found.default.on_timeout == "allow"
    assert found.for_repository("sandbox/x").policy.fail_on is None
    pay = found.for_repository("pay/api")
    assert (pay.policy.fail_on, pay.policy.statuses, pay.baseline, pay.on_timeout) == (
        Severity.MEDIUM, frozenset({Status.PRESENT}), frozenset({"ab"}), "deny")
    other = found.for_repository("team/app")
    assert (other.policy.fail_on, other.policy.fail_on_triaged, other.on_timeout) == (Severity.HIGH, True, "allow")


def test_no_settings_file_means_the_default_everywhere():
    default = RepositoryPolicy(Policy(), frozenset({"x"}), "deny")
    assert load_serve_policy(None, default).for_repository("any/thing") is default


@pytest.mark.parametrize("section, says", [
    ("serve: {on-timeout: maybe}", "on-timeout is deny or allow"),
    ("serve: {repositories: [{fail-on: low}]}", "a rule is a mapping with match"),
    ("serve: {repositories: [{match: x, fail-on: severe}]}", "fail-on takes"),
    ("serve: {repositories: [{match: x, status: [gone]}]}", "status takes"),
    ("serve: {listen: 1}", "serve takes on-timeout and repositories"),
])
def test_bad_rules_name_the_file_and_the_place(tmp_path, section, says):
    path = write(tmp_path, section + "\n")
    with pytest.raises(SettingsError, match=says) as info:
        load_serve_policy(path, RepositoryPolicy())
    assert path in str(info.value)
