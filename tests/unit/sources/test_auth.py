"""Where registry credentials come from, and that they never show."""
from __future__ import annotations

import base64
import json
import os
import pickle
import stat

import pytest

from scanner.models import Blob, BlobKind
from scanner.sources.auth import Credentials, parse_challenge, resolve_credentials
from scanner.sources.interface import SourceError
from scanner.sources.registry_http import BlobOrigin, Endpoint

SECRET = "s3cr3t-Pa55w0rd-never-shown"


def write_config(tmp_path, doc: dict) -> str:
    (tmp_path / "config.json").write_text(json.dumps(doc))
    return str(tmp_path / "config.json")


def test_explicit_credentials_win():
    creds = resolve_credentials("r.example", "me", SECRET)
    assert (creds.username, creds.password, creds.source) == ("me", SECRET, "--username")


@pytest.mark.parametrize("user, password", [("me", None), (None, SECRET), ("", SECRET)])
def test_username_and_password_go_together(user, password):
    with pytest.raises(SourceError, match="--username needs --password-stdin"):
        resolve_credentials("r.example", user, password)


def test_docker_config_auths(tmp_path):
    auth = base64.b64encode(f"bob:{SECRET}".encode()).decode()
    path = write_config(tmp_path, {"auths": {"r.example:5000": {"auth": auth}}})
    creds = resolve_credentials("r.example:5000", config_path=path)
    assert (creds.username, creds.password, creds.source) == ("bob", SECRET, "docker config")
    assert resolve_credentials("other.example", config_path=path) is None


def test_docker_hub_entry_and_identity_token(tmp_path):
    path = write_config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"identitytoken": SECRET}}})
    creds = resolve_credentials("docker.io", config_path=path)
    assert creds.identity_token == SECRET and creds.password == ""


def test_credential_helper(tmp_path, monkeypatch):
    """credHelpers: the docker SDK runs `docker-credential-NAME get`, as the docker CLI does."""
    helper = tmp_path / "bin" / "docker-credential-unittest"
    helper.parent.mkdir()
    helper.write_text("#!/bin/sh\nread server\n"
                      f"printf '{{\"ServerURL\":\"%s\",\"Username\":\"helper-user\",\"Secret\":\"{SECRET}\"}}' \"$server\"\n")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    path = write_config(tmp_path, {"credHelpers": {"r.example": "unittest"}})
    creds = resolve_credentials("r.example", config_path=path)
    assert (creds.username, creds.password) == ("helper-user", SECRET)


def test_a_failing_credential_helper_is_one_clear_error(tmp_path, monkeypatch):
    helper = tmp_path / "bin" / "docker-credential-broken"
    helper.parent.mkdir()
    helper.write_text(f"#!/bin/sh\necho 'boom {SECRET}' >&2\nexit 1\n")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    path = write_config(tmp_path, {"credsStore": "broken"})
    with pytest.raises(SourceError) as err:
        resolve_credentials("r.example", config_path=path)
    assert "credential helper failed" in str(err.value) and SECRET not in str(err.value)


def test_no_config_is_anonymous(tmp_path):
    assert resolve_credentials("r.example", config_path=str(tmp_path / "none.json")) is None


def test_credentials_never_show_but_travel_to_workers():
    creds = Credentials("me", SECRET, "tok-" + SECRET)
    endpoint = Endpoint("r.example", credentials=creds)
    blob = Blob("https://r.example/v2/a/blobs/sha256:x", 0, 1, "sha256:x", kind=BlobKind.REGISTRY,
                origin=BlobOrigin(endpoint, "a"))
    for shown in (repr(creds), str(creds), repr(endpoint), repr(blob), repr(BlobOrigin(endpoint, "a"))):
        assert SECRET not in shown
    again = pickle.loads(pickle.dumps(blob))
    assert again.origin.endpoint.credentials.password == SECRET


@pytest.mark.parametrize("header, scheme, params", [
    ('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
     "bearer", {"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull"}),
    ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
    ('BEARER realm="x"', "bearer", {"realm": "x"}),
    ("Basic", "basic", {}),
])
def test_challenges(header, scheme, params):
    challenge = parse_challenge(header)
    assert (challenge.scheme, challenge.params) == (scheme, params)


def test_no_challenge():
    assert parse_challenge("") is None


def test_scan_options_never_show_the_password():
    from scanner.pipeline import ScanOptions
    from scanner.sources.remote import RegistryOptions

    options = ScanOptions(registry=RegistryOptions(username="me", password=SECRET))
    assert SECRET not in repr(options) and SECRET not in str(options)
