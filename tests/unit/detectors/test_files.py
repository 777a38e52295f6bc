"""Credential files by path and shape, key stores by magic bytes."""
from __future__ import annotations

import json

import pytest

from scanner.detectors.files import CredentialFileDetector, parser_for
from scanner.detectors.rules import load_rules
from scanner.detectors.signature import SignatureDetector
from scanner.models import DetectorKind
from tests.corpus import material as m
from tests.corpus.kinds import KINDS
from tests.corpus.material import Rand

SIGNATURE = SignatureDetector(load_rules())
DETECTOR = CredentialFileDetector(SIGNATURE)
ALONE = CredentialFileDetector()
FILE_KINDS = [k for k in KINDS if k.category == "credential-files"]


def found(data: str | bytes, path: str, detector: CredentialFileDetector = ALONE) -> list[tuple[str, bytes]]:
    buf = data.encode() if isinstance(data, str) else data
    return [(m.rule_id, m.secret) for m in detector.scan(buf, path)]


@pytest.mark.parametrize("kind", FILE_KINDS, ids=lambda k: f"{k.id}:{k.name}")
def test_every_credential_file_kind(kind) -> None:
    plant = kind.make(Rand(f"files-{kind.name}"))
    secret = plant.secret.encode() if isinstance(plant.secret, str) else plant.secret
    buf = plant.text.encode() if isinstance(plant.text, str) else plant.text
    matches = list(ALONE.scan(buf, kind.path))
    assert (kind.id, secret) in [(match.rule_id, match.secret) for match in matches]
    assert all(buf[match.start:match.end] == match.secret for match in matches)


@pytest.mark.parametrize("kind", [k for k in FILE_KINDS if k.path and k.path.startswith("/root/")], ids=lambda k: k.name)
def test_found_by_member_name_inside_archives(kind) -> None:
    """A home directory in a backup tarball: the member path is relative."""
    plant = kind.make(Rand("member"))
    assert found(plant.text, kind.path.replace("/root/", "home/ci/")), kind.name


def test_offsets_point_at_the_secret() -> None:
    text = b"[internal]\nrepository = https://pypi.internal/\nusername = ci\npassword = 'Xk2!vR9p-Lq4#Zt8'\n"
    (match,) = ALONE.scan(text, "/root/.pypirc")
    assert text[match.start:match.end] == match.secret == b"Xk2!vR9p-Lq4#Zt8"
    assert match.detector is DetectorKind.FILE


@pytest.mark.parametrize("path", ["/root/.npmrc", "home/x/.npmrc", "/app/.yarnrc.yml", "/root/.pypirc",
                                  "/root/.docker/config.json", "/run/user/1000/containers/auth.json",
                                  "/run/containers/0/auth.json", "/root/.git-credentials", "/root/.config/git/credentials",
                                  "/root/.aws/credentials", "/root/.aws/config", "/root/.kube/config",
                                  "/srv/prod.kubeconfig", "/etc/kubernetes/admin.conf", "/root/.netrc",
                                  "/root/.pgpass", "/etc/shadow", "/etc/shadow-", "/etc/gshadow"])
def test_paths_recognised(path: str) -> None:
    assert parser_for(path) is not None


@pytest.mark.parametrize("path", ["/app/config.json", "/etc/passwd", "/app/credentials", "/srv/shadow.txt",
                                  "/usr/share/doc/netrc.5.gz", "/app/auth.json"])
def test_other_paths_not_parsed(path: str) -> None:
    assert parser_for(path) is None


@pytest.mark.parametrize("text,path", [
    ("registry=https://registry.npmjs.org/\nsave-exact=true\n", "/root/.npmrc"),
    ("//npm.internal/:_authToken=${NPM_TOKEN}\n", "/root/.npmrc"),
    (json.dumps({"auths": {"ghcr.io": {}}, "credsStore": "desktop"}), "/root/.docker/config.json"),
    (json.dumps({"auths": {"r.example": {"auth": m.b64(b"robot:")}}}), "/root/.docker/config.json"),  # no password
    ("root:*:19700:0:99999:7:::\ndaemon:*:19700::::::\nnobody:!:1::::::\napp:!!:19700::::::\n", "/etc/shadow"),
    ("[default]\nregion = eu-west-1\noutput = json\n", "/root/.aws/config"),
    ("apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    exec:\n      command: aws\n", "/root/.kube/config"),
    ("machine git.internal login ci password ${GIT_PASSWORD}\n", "/root/.netrc"),
    ("*:*:*:app:*\n", "/root/.pgpass"),
], ids=["npmrc-no-auth", "npmrc-reference", "docker-helpers", "docker-empty-password", "shadow-locked",
        "aws-config", "kubeconfig-exec", "netrc-reference", "pgpass-wildcard"])
def test_credential_files_without_credentials(text: str, path: str) -> None:
    assert found(text, path) == []


def test_a_value_a_rule_reports_is_left_to_the_rule() -> None:
    token = m.checksummed("ghp_", Rand("gc"))
    text = f"https://ci:{token}@github.com\n"
    assert found(text, "/root/.git-credentials") == [("git-credentials-password", token.encode())]
    assert found(text, "/root/.git-credentials", DETECTOR) == []
    assert [m.rule_id for m in SIGNATURE.scan(text.encode(), "/root/.git-credentials")] == ["github-pat"]


def test_shadow_hashes() -> None:
    r = Rand("shadow")
    sha512 = f"$6${r.b62(16)}${r.chars(m.B62 + './', 86)}"
    yescrypt = f"$y$j9T${r.b62(22)}${r.chars(m.B62 + './', 43)}"
    locked = "!" + sha512
    text = f"root:{sha512}:19700:0:99999:7:::\nci:{yescrypt}:19700::::::\nold:{locked}:19000::::::\nx:*:1::::::\n"
    assert [s for _, s in found(text, "/etc/shadow")] == [sha512.encode(), yescrypt.encode(), locked.encode()]


def test_key_stores_by_magic_bytes_wherever_they_are() -> None:
    r = Rand("stores")
    jks, p12, der = m.jks(r), m.pkcs12(r), m.pkcs8_der(r)
    assert found(jks, "/opt/app/conf/anything.bin") == [("java-keystore", jks)]
    assert found(p12, "/opt/app/conf/client.pfx") == [("pkcs12-keystore", p12)]
    assert found(der, "/etc/app/tls/server.key") == [("der-private-key", der)]
    assert found(der, "/etc/app/tls/server.bin") == []  # DER without a key's name: not claimed


def test_trust_stores_are_not_key_stores() -> None:
    r = Rand("trust")
    assert found(m.jks(r, private=False), "/usr/lib/jvm/java-17/lib/security/cacerts") == []
    assert found(m.pkcs12(r, with_key=False), "/etc/ssl/trust.p12") == []
    assert found(m.der(0x30, m.integer(2) + r.raw(300)), "/etc/ssl/ca.der") == []


def test_large_or_pathless_buffers_are_not_parsed() -> None:
    assert found("password = x" * 200000, "/root/.pypirc") == []
    assert list(ALONE.scan(b"//r/:_password=eHl6\n", None)) == []
