"""Secrets in the image config and history: every place, its location path, no placeholders."""
from __future__ import annotations

import hashlib

import pytest

from scanner.detectors.config import ConfigScanner, history_pairs, named_secret
from scanner.detectors.content import ContentScanner
from scanner.detectors.interface import DetectorError
from scanner.detectors.rules import load_rules
from scanner.detectors.signature import SignatureDetector
from scanner.models import DetectorKind, LocationKind, Severity
from scanner.redact import scrub
from tests import secrets_catalog as sc

NAMED = "secret-named-variable"
K = LocationKind


@pytest.fixture(scope="module")
def config_scanner(unit_rules) -> ConfigScanner:
    return ConfigScanner(ContentScanner([SignatureDetector(unit_rules)], keep_values=True))


def found(scanner: ConfigScanner, config: dict) -> list[tuple[LocationKind, str, str, str]]:
    return [(h.kind, h.path, h.rule_id, h.secret.value) for h in scanner.scan(config)]


def cfg(history=None, **inner) -> dict:
    return {"config": inner, "history": history or [], "rootfs": {"type": "layers", "diff_ids": []}}


def test_env(config_scanner):
    config = cfg(Env=["PATH=/usr/local/bin:/usr/bin", f"AWS_ACCESS_KEY_ID={sc.AWS_KEY_ID}",
                      f"DB_PASSWORD={sc.DB_PASSWORD}", "HOME=/root", f"SECRET_KEY={sc.DJANGO_SECRET_KEY}"])
    assert found(config_scanner, config) == [
        (K.ENV, "Env.AWS_ACCESS_KEY_ID", "unit-aws-key-id", sc.AWS_KEY_ID),
        (K.ENV, "Env.DB_PASSWORD", NAMED, sc.DB_PASSWORD),
        (K.ENV, "Env.SECRET_KEY", NAMED, sc.DJANGO_SECRET_KEY),
    ]


def test_env_hit_fields(config_scanner):
    [hit] = config_scanner.scan(cfg(Env=[f"DB_PASSWORD={sc.DB_PASSWORD}"]))
    assert (hit.detector, hit.severity, hit.line, hit.ordinal, hit.inner_path) == (
        DetectorKind.CONFIG, Severity.HIGH, None, -1, None)
    assert hit.secret.sha256 == hashlib.sha256(sc.DB_PASSWORD.encode()).hexdigest()
    assert hit.secret.redacted == "Pq****...v7"


def test_labels(config_scanner):
    config = cfg(Labels={"maintainer": "ops@example.com", "ci.github-token": sc.GITHUB_PAT,
                         "com.example.api_key": sc.STRIPE_LIVE_KEY, "version": "1.2.3"})
    assert found(config_scanner, config) == [
        (K.LABEL, "Labels.ci.github-token", "unit-github-pat", sc.GITHUB_PAT),
        (K.LABEL, "Labels.com.example.api_key", NAMED, sc.STRIPE_LIVE_KEY),
    ]


def test_cmd_entrypoint_healthcheck(config_scanner):
    config = cfg(
        Cmd=["/app/server", f"--db-password={sc.DB_PASSWORD}", "--port=8080"],
        Entrypoint=["/bin/sh", "-c", f"AWS_ACCESS_KEY_ID={sc.AWS_KEY_ID} exec /app/run"],
        Healthcheck={"Test": ["CMD-SHELL", f"curl -fsS -H 'X-Token: {sc.GITHUB_PAT}' http://localhost/"],
                     "Interval": 30000000000},
    )
    assert found(config_scanner, config) == [
        (K.CMD, "Cmd", NAMED, sc.DB_PASSWORD),
        (K.ENTRYPOINT, "Entrypoint", "unit-aws-key-id", sc.AWS_KEY_ID),
        (K.HEALTHCHECK, "Healthcheck", "unit-github-pat", sc.GITHUB_PAT),
    ]


def test_cmd_as_a_string(config_scanner):
    config = cfg(Cmd=f"run --api-key={sc.STRIPE_LIVE_KEY}")
    assert found(config_scanner, config) == [(K.CMD, "Cmd", NAMED, sc.STRIPE_LIVE_KEY)]


def test_build_args_in_history(config_scanner):
    history = [
        {"created_by": "ADD rootfs.tar / # buildkit"},
        {"created_by": "ARG NPM_TOKEN", "empty_layer": True},
        {"created_by": "ARG GITHUB_TOKEN", "empty_layer": True},
        {"created_by": f"|2 NPM_TOKEN={sc.NPM_TOKEN} GITHUB_TOKEN={sc.GITHUB_PAT} /bin/sh -c npm ci "
                       "&& echo PASSWORD=notabuildargatall"},
    ]
    assert found(config_scanner, cfg(history)) == [
        (K.HISTORY, "history[3]", "unit-github-pat", sc.GITHUB_PAT),
        (K.HISTORY, "history[3]", NAMED, sc.NPM_TOKEN),
    ]


def test_history_index_counts_empty_layer_entries(config_scanner):
    history = [{"created_by": "ENV A=1", "empty_layer": True}] * 5 + [
        {"created_by": f"RUN echo {sc.AWS_KEY_ID} > /k"},
        {"created_by": "LABEL x=y", "empty_layer": True},
        {"created_by": f"CMD [\"run\", \"{sc.GITHUB_PAT}\"]", "empty_layer": True},
    ]
    assert found(config_scanner, cfg(history)) == [
        (K.HISTORY, "history[5]", "unit-aws-key-id", sc.AWS_KEY_ID),
        (K.HISTORY, "history[7]", "unit-github-pat", sc.GITHUB_PAT),
    ]


@pytest.mark.parametrize("line", [
    f"ENV DB_PASSWORD={sc.DB_PASSWORD}",
    f"/bin/sh -c #(nop)  ENV DB_PASSWORD={sc.DB_PASSWORD}",
    f"ENV LANG=C.UTF-8 DB_PASSWORD={sc.DB_PASSWORD} TZ=UTC",
    f'ENV DB_PASSWORD="{sc.DB_PASSWORD}"',
    f"ARG DB_PASSWORD={sc.DB_PASSWORD}",
])
def test_env_lines_in_history(config_scanner, line):
    history = [{"created_by": "ADD x /"}, {"created_by": line, "empty_layer": True}]
    assert found(config_scanner, cfg(history)) == [(K.HISTORY, "history[1]", NAMED, sc.DB_PASSWORD)]


@pytest.mark.parametrize("value", [
    "${TOKEN}", "$TOKEN", '"${NPM_TOKEN}"', "changeme", "CHANGEME", "'changeme'", "{{ .Token }}",
    "<your-token>", "xxxxxxxxxxxx", "********", "your-token-here", "$(cat /run/secrets/token)",
    "/run/secrets/token", "short",
])
def test_placeholders_are_not_reported(config_scanner, value):
    history = [{"created_by": f"|1 NPM_TOKEN={value} /bin/sh -c npm ci"},
               {"created_by": f"ENV API_TOKEN={value}", "empty_layer": True}]
    config = cfg(history, Env=[f"API_TOKEN={value}", f"DB_PASSWORD={value}"],
                 Labels={"secret": value}, Cmd=["run", f"--password={value}"])
    assert found(config_scanner, config) == []


@pytest.mark.parametrize("name", ["GITHUB_TOKEN_FILE", "DB_PASSWORD_PATH", "AUTH_URL", "TOKEN_TTL",
                                  "SECRETS_DIR", "API_KEY_ID", "MAINTAINER", "TOKENIZER_MODEL"])
def test_names_that_do_not_hold_a_secret(config_scanner, name):
    assert found(config_scanner, cfg(Env=[f"{name}=Zq8Wm3Xt7Lp2Rv9N"])) == []


def test_same_secret_twice_in_one_entry_is_one_hit(config_scanner):
    config = cfg(Cmd=["run", sc.AWS_KEY_ID, sc.AWS_KEY_ID])
    assert found(config_scanner, config) == [(K.CMD, "Cmd", "unit-aws-key-id", sc.AWS_KEY_ID)]


def test_signature_hit_suppresses_the_name_hit_for_the_same_value(config_scanner):
    config = cfg(Env=[f"GITHUB_TOKEN={sc.GITHUB_PAT}"])
    assert found(config_scanner, config) == [(K.ENV, "Env.GITHUB_TOKEN", "unit-github-pat", sc.GITHUB_PAT)]


def test_odd_config_shapes_do_not_crash(config_scanner):
    assert found(config_scanner, {"config": None, "history": None}) == []
    assert found(config_scanner, {"config": {"Env": None, "Labels": ["a"], "Healthcheck": "x"},
                                  "history": ["not a dict", {"created_by": None}, {}]}) == []
    assert found(config_scanner, {}) == []


def test_history_pairs():
    assert history_pairs("|2 A=x B=y /bin/sh -c make C=z") == [("A", "x"), ("B", "y")]
    assert history_pairs("/bin/sh -c #(nop)  ENV A=1 B=2") == [("A", "1"), ("B", "2")]
    assert history_pairs("RUN make TOKEN=abc") == [("TOKEN", "abc")]


def test_named_secret():
    m = named_secret("NPM_TOKEN", sc.NPM_TOKEN)
    assert (m.rule_id, m.secret, m.start, m.end) == (NAMED, sc.NPM_TOKEN.encode(), 0, len(sc.NPM_TOKEN))
    assert named_secret("NPM_TOKEN", "${NPM_TOKEN}") is None
    assert named_secret("NPM_VERSION", sc.NPM_TOKEN) is None


# --- built-in rules: these need `signatures/*.yaml` rules that another engineer is writing ---------


def builtin_scanner_for(sample: str, what: str) -> ConfigScanner:
    """The built-in rules, or a skip when none of them covers `sample` yet."""
    try:
        rules = load_rules()
    except DetectorError as exc:
        pytest.skip(f"no built-in rules yet ({exc})")
    if not any(rule.pattern.search(sample.encode()) for rule in rules.rules):
        pytest.skip(f"no built-in rule for {what} yet")
    return ConfigScanner(ContentScanner([SignatureDetector(rules)], keep_values=True))


def test_credentials_in_a_url_in_a_run_line():
    line = f"RUN git clone {sc.URL_CREDENTIAL} /src"
    scanner = builtin_scanner_for(line, "credentials in a URL")
    history = [{"created_by": "ADD x /"}, {"created_by": line}]
    hits = scanner.scan(cfg(history))
    assert {h.path for h in hits} == {"history[1]"}
    assert any(sc.URL_PASSWORD in (h.secret.value or "") for h in hits), [h.rule_id for h in hits]
    assert sc.URL_PASSWORD not in scrub(line, [h.secret.value for h in hits])


def test_bearer_token_in_a_run_line():
    token = "Zk8Qw3Rt6Yp1Ls4Dh7FmVt8mQz2xLk4R9sWe"
    line = f'RUN curl -fsSL -H "Authorization: Bearer {token}" https://artifacts.internal.example/pkg.tgz'
    scanner = builtin_scanner_for(line, "an Authorization: Bearer header")
    history = [{"created_by": "ADD x /"}, {"created_by": line}]
    hits = scanner.scan(cfg(history))
    assert [(h.path, h.secret.value) for h in hits if h.secret.value and token in h.secret.value] != []
    assert {h.path for h in hits} == {"history[1]"}
    assert token not in scrub(line, [h.secret.value for h in hits])


def test_lone_surrogates_from_json_are_spelt_out(config_scanner):
    """JSON may carry "\\ud800": such text cannot be encoded as it is; it must not crash the scan."""
    config = cfg([{"created_by": f"RUN \ud800 echo {sc.AWS_KEY_ID}"}],
                 Env=[f"TOKEN\udce9=x{sc.GITHUB_PAT}"], Labels={"k\ud800": sc.GITHUB_PAT})
    assert found(config_scanner, config) == [
        (K.ENV, "Env.TOKEN\\udce9", "unit-github-pat", sc.GITHUB_PAT),
        (K.LABEL, "Labels.k\\ud800", "unit-github-pat", sc.GITHUB_PAT),
        (K.HISTORY, "history[0]", "unit-aws-key-id", sc.AWS_KEY_ID),
    ]


def test_fields_read_since_issue_19(config_scanner):
    """OnBuild, WorkingDir, Shell, StopSignal, the Volumes and ExposedPorts keys, an old config's
    container_config and the history's comment and author: a secret there is reported."""
    config = cfg(
        [{"created_by": "ADD x /"}, {"created_by": "RUN make", "comment": f"built with {sc.GITHUB_PAT}",
                                     "author": f"ci AWS_ACCESS_KEY_ID={sc.AWS_KEY_ID}"}],
        OnBuild=["RUN true", f"RUN curl -H 'X-Token: {sc.GITHUB_PAT}' http://x/"],
        WorkingDir=f"/srv/{sc.AWS_KEY_ID}", Shell=["/bin/sh", "-c", f"DB_PASSWORD={sc.DB_PASSWORD}"],
        StopSignal=sc.AWS_KEY_ID, Volumes={f"/data/{sc.GITHUB_PAT}": {}}, ExposedPorts={f"{sc.AWS_KEY_ID}/tcp": {}})
    config["container_config"] = {"Env": [f"DB_PASSWORD={sc.DB_PASSWORD}"], "Cmd": ["/bin/sh", "-c", f"echo {sc.AWS_KEY_ID}"],
                                  "Entrypoint": [sc.GITHUB_PAT], "Labels": {"token": sc.NPM_TOKEN}}
    assert found(config_scanner, config) == [
        (K.ENV, "container_config.Env.DB_PASSWORD", NAMED, sc.DB_PASSWORD),
        (K.LABEL, "container_config.Labels.token", NAMED, sc.NPM_TOKEN),
        (K.CMD, "container_config.Cmd", "unit-aws-key-id", sc.AWS_KEY_ID),
        (K.ENTRYPOINT, "container_config.Entrypoint", "unit-github-pat", sc.GITHUB_PAT),
        (K.ONBUILD, "OnBuild[1]", "unit-github-pat", sc.GITHUB_PAT),
        (K.WORKDIR, "WorkingDir", "unit-aws-key-id", sc.AWS_KEY_ID),
        (K.STOPSIGNAL, "StopSignal", "unit-aws-key-id", sc.AWS_KEY_ID),
        (K.SHELL, "Shell", NAMED, sc.DB_PASSWORD),
        (K.VOLUME, f"Volumes./data/{sc.GITHUB_PAT}", "unit-github-pat", sc.GITHUB_PAT),
        (K.EXPOSE, f"ExposedPorts.{sc.AWS_KEY_ID}/tcp", "unit-aws-key-id", sc.AWS_KEY_ID),
        (K.HISTORY, "history[1].comment", "unit-github-pat", sc.GITHUB_PAT),
        (K.HISTORY, "history[1].author", "unit-aws-key-id", sc.AWS_KEY_ID),
    ]


def test_container_config_values_the_config_holds_too_are_reported_once(config_scanner):
    env, cmd = [f"DB_PASSWORD={sc.DB_PASSWORD}"], ["run", sc.AWS_KEY_ID]
    config = cfg(Env=env, Cmd=cmd, Labels={"api_token": sc.NPM_TOKEN})
    config["container_config"] = {"Env": env + [f"API_TOKEN={sc.STRIPE_LIVE_KEY}"], "Cmd": cmd,
                                  "Labels": {"api_token": sc.NPM_TOKEN}}
    assert [(k, p) for k, p, _, _ in found(config_scanner, config)] == [
        (K.ENV, "Env.DB_PASSWORD"), (K.LABEL, "Labels.api_token"), (K.CMD, "Cmd"), (K.ENV, "container_config.Env.API_TOKEN")]


def test_odd_shapes_of_the_new_fields_do_not_crash(config_scanner):
    config = cfg([{"comment": 3, "author": ["a"]}], OnBuild="RUN x", Volumes=["/a"], ExposedPorts=8080,
                 WorkingDir=["/"], Shell=None, StopSignal=9)
    config["container_config"] = ["not", "a", "dict"]
    assert found(config_scanner, config) == []
