"""Values found by a file's structure: Kubernetes Secret manifests and SQL dump credential columns."""
from __future__ import annotations

import base64
import json

import pytest

from scanner.detectors.content import ContentScanner
from scanner.detectors.files import CredentialFileDetector
from scanner.detectors.rules import load_rules
from scanner.detectors.signature import SignatureDetector

PW = "Vq7rT2kLx9Wm"
TOKEN = "hY3nB8vQz1KcR5tLp0Wd"
BCRYPT = "$2b$12$ujYVRD9v9z87lpvLqeWNuOFDI4QzSSYHoRyYydW6XK4.kgqfwOXzO"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.fixture(scope="module")
def content() -> ContentScanner:
    sig = SignatureDetector(load_rules())
    return ContentScanner([sig, CredentialFileDetector(sig)], keep_values=True)


def found(content: ContentScanner, text: str, path: str) -> list[tuple[str, int, bytes]]:
    return sorted((loc.match.rule_id, loc.line, loc.match.secret) for loc in content.scan_whole(text.encode(), path))


# --- Kubernetes Secrets ---------------------------------------------------------------------------

SECRET = f"""apiVersion: v1
kind: Secret
metadata:
  name: app
type: Opaque
data:
  whatever-name: {b64(PW)}
  ca.crt: {b64("-----BEGIN CERTIFICATE-----" + chr(10) + "MIIB" + chr(10))}
  empty: ""
stringData:
  config.ini: |
    [db]
    host = db
  second: {TOKEN}
"""


def test_every_data_value_is_decoded_and_string_data_is_reported(content):
    got = found(content, SECRET, "/deploy/secret.yaml")
    assert ("kubernetes-secret", 7, PW.encode()) in got
    assert ("kubernetes-secret", 14, TOKEN.encode()) in got
    assert not any(b"CERTIFICATE" in s for _, _, s in got)


def test_multi_document_helm_output(content):
    text = ("---\n# Source: app/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\ndata:\n  k: v\n"
            "---\n# Source: app/templates/secret.yaml\n" + SECRET)
    got = found(content, text, "/srv/rendered.yml")
    assert ("kubernetes-secret", 15, PW.encode()) in got
    assert all(s != b"v" for _, _, s in got)


def test_json_manifest_and_list_of_items(content):
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": {"k": b64(PW)}}]}
    got = found(content, json.dumps(doc, indent=2), "/k8s/all.json")
    assert [(r, s) for r, _, s in got] == [("kubernetes-secret", PW.encode())]


def test_not_a_secret_manifest(content):
    cm = SECRET.replace("kind: Secret", "kind: ConfigMap")
    assert found(content, cm, "/deploy/cm.yaml") == []
    assert found(content, SECRET, "/deploy/secret.txt") == []  # not a manifest file


def test_unrendered_template_and_bad_base64_are_not_parsed(content):
    template = SECRET.replace(f"whatever-name: {b64(PW)}", "pw: {{ .Values.pw | b64enc }}\n  bad: not*base64")
    assert all(s != PW.encode() for _, _, s in found(content, template, "/chart/templates/secret.yaml"))


def test_placeholder_values_are_not_reported(content):
    text = SECRET.replace(b64(PW), b64("changeme")).replace(f"second: {TOKEN}", "second: ${TOKEN}")
    assert [s for _, _, s in found(content, text, "/deploy/secret.yaml")] == [b"[db]\nhost = db\n"]


# --- SQL dumps ------------------------------------------------------------------------------------

COPY = f"""--
-- PostgreSQL database dump
--
COPY public.users (id, email, password, api_token, reset_at) FROM stdin;
1\talice@corp.internal\t{PW}\t{TOKEN}\t\\N
2\tbob@corp.internal\t{BCRYPT}\t\\N\t2024-01-01
\\.

COPY public.events (id, payload) FROM stdin;
1\tpassword=notacolumn
\\.
"""


def test_copy_rows_credential_columns(content):
    got = found(content, COPY, "/backup/db.sql")
    assert ("sql-dump-credential", 5, PW.encode()) in got
    assert ("sql-dump-credential", 5, TOKEN.encode()) in got
    assert ("sql-password-hash", 6, BCRYPT.encode()) in got
    assert all(s not in (b"\\N", b"2024-01-01", b"alice@corp.internal") for _, _, s in got)


def test_insert_with_column_list(content):
    text = (f"INSERT INTO `accounts` (`id`, `name`, `secret_key`, `password_hash`) VALUES "
            f"(1, 'it''s', '{PW}', '5f4dcc3b5aa765d61d8327deb882cf99'),\n(2, 'b', NULL, 'x');\n")
    got = found(content, text, "/docker-entrypoint-initdb.d/seed.sql")
    assert [(r, s) for r, _, s in got] == [("sql-dump-credential", PW.encode()),
                                           ("sql-password-hash", b"5f4dcc3b5aa765d61d8327deb882cf99")]


def test_insert_without_column_list_uses_create_table(content):
    text = (f"CREATE TABLE `users` (\n  `id` int NOT NULL,\n  `login` varchar(64),\n  `passwd` varchar(128),\n"
            f"  PRIMARY KEY (`id`)\n);\nINSERT INTO `users` VALUES (1,'root','{PW}'),(2,'svc','{TOKEN}');\n")
    got = found(content, text, "/backup/mysql.sql")
    assert [s for _, _, s in got] == [PW.encode(), TOKEN.encode()]


def test_role_statements_are_rules(content):
    text = f"CREATE ROLE app WITH LOGIN PASSWORD '{PW}';\nCREATE USER 'x'@'%' IDENTIFIED BY '{TOKEN}';\n"
    got = found(content, text, "/backup/roles.sql")
    assert [(r, s) for r, _, s in got] == [("sql-identified-by", TOKEN.encode()), ("sql-role-password", PW.encode())]


def test_sql_rows_only_in_sql_files(content):
    assert found(content, COPY, "/srv/notes.txt") == []


def test_a_gzipped_dump_in_an_image(tmp_path):
    """`pg_dump | gzip > db.sql.gz` in a layer: the walk inflates it, its rows are read."""
    import gzip

    from scanner.cache import NullCache
    from scanner.pipeline import ScanOptions, Scanner
    from tests import imagekit as ik

    layer = ik.LayerSpec("RUN pg_dump app | gzip > /backup/db.sql.gz").add(
        ik.file("backup/db.sql.gz", gzip.compress(COPY.encode())))
    image = tmp_path / "img.tar"
    ik.write_docker_archive_oci([ik.ImageSpec([layer], tags=["t:1"])], image)
    result = Scanner(load_rules(), ScanOptions(workers=1), cache=NullCache()).scan([str(image)])
    rules = sorted((f.hit.rule_id, f.hit.line, f.hit.path) for f in result.findings)
    assert ("sql-dump-credential", 5, "/backup/db.sql.gz") in rules and ("sql-password-hash", 6, "/backup/db.sql.gz") in rules
