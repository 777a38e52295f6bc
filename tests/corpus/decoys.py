"""Decoys: what an image holds that looks like a secret and is not one. None may be reported
(untriaged): documentation examples, placeholders and templates, lockfiles and checksums, public
keys and certificates, UUIDs and git SHAs, high-entropy data that is not a credential, code that
only names secrets, trust stores. Vendor files and known-public keys are laid out by `build.py`
(they need a package database next to them).
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Callable

from tests.corpus import material as m
from tests.corpus.material import Rand


@dataclass(frozen=True)
class Decoy:
    id: str
    category: str
    name: str  # the file's name (decides how it is read)
    make: Callable[[Rand], str | bytes]


DECOYS: list[Decoy] = []


def decoy(id: str, category: str, name: str):
    def register(make: Callable[[Rand], str | bytes]) -> Callable[[Rand], str | bytes]:
        DECOYS.append(Decoy(id, category, name, make))
        return make
    return register


def _add(id: str, category: str, name: str, text: str) -> None:
    DECOYS.append(Decoy(id, category, name, lambda r, t=text: t))


# --- documentation examples ----------------------------------------------------------------------
_add("aws-docs-keys", "doc-example", "credentials.ini",
     "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
_add("aws-docs-keys-env", "doc-example", "aws.env",
     "AWS_ACCESS_KEY_ID=AKIAI44QH8DHBEXAMPLE\nAWS_SECRET_ACCESS_KEY=je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY\n")
_add("jwt-io-example", "doc-example", "auth.env",
     "API_TOKEN=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0Ijo"
     "xNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\n")
_add("stripe-docs-key", "doc-example", "stripe.env", "STRIPE_SECRET_KEY=sk_test_4eC39HqLyjWDarjtT1zdp7dc\n")
_add("github-token-bad-checksum", "doc-example", "gh.env", "GITHUB_TOKEN=ghp_" + "R7kq2Lw9ZxT4mVb8Nc3Hs6Pd1Fj5Gy" + "AAAAAA\n")
_add("sequential-token", "doc-example", "gh2.env", "GITHUB_TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyz\n")


@decoy("readme-passwords", "doc-example", "README.md")
def _readme(r: Rand) -> str:
    return ("# Deploying\n\nSet the database password and the API key before starting:\n\n```sh\n"
            f"export DB_PASSWORD={r.password(16)}\nexport API_KEY={r.hex(32)}\n"
            f"curl -u admin:{r.b62(14)} https://localhost:8080/api\n```\n")


@decoy("env-example", "doc-example", ".env.example")
def _env_example(r: Rand) -> str:
    return f"DB_PASSWORD={r.password(16)}\nSECRET_KEY={r.b62(40)}\nAPI_TOKEN={r.b64u(32)}\n"


@decoy("man-page", "doc-example", "deploy.1")
def _man(r: Rand) -> str:
    return f'.TH DEPLOY 1\n.SH EXAMPLE\ndeploy --password {r.b62(12)} --token {r.b62(24)} prod\n'


@decoy("sphinx-doc", "doc-example", "usage.rst")
def _rst(r: Rand) -> str:
    return (f'Example::\n\n    client = Client(api_key="{r.hex(32)}", secret="{r.b62(30)}")\n'
            f'    "Password": "{r.password(14)}",\n')


_add("example-values-json", "doc-example", "examples-1.json", json.dumps({"examples": {"CreateUser": [
    {"input": {"UserName": "Bob", "Password": "h]6EszR}vJ*m"},
     "output": {"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"}}]}}, indent=2))
_add("typed-example-passwords", "doc-example", "tutorial.yaml",
     "db:\n  password: A1b2c3d4\n  token: abcd1234efgh5678ijkl\nadmin_password: P@55w0rd!\nsecret: TopSecret1\n")
_add("orm-docstrings", "doc-example", "engine.py",
     '''"""Connect with a URL::

    engine = create_engine("postgresql+psycopg2://scott:tiger@localhost/test")
'''
     '''    engine = create_engine("mssql+pyodbc://scott:tiger^5HHH@mssql2017:1433/test?driver=ODBC+Driver+18")
'''
     '''    engine = create_engine("mysql+mysqldb://root:root@localhost/app")
"""
''')
_add("stored-password-hashes", "doc-example", "password_hash.yml",
     "EXAMPLES: |\n  # the hash of a password, as /etc/shadow holds it\n"
     "  password: '$6$/bQCntzQ7VrgVcFa$VaMkmevkY1dqrx8neaenUDlVU.6L/.ojRbrnI4ID.yBHU6XON1cB422scCiXu1qMOVGF3U.wq8uG3VH'\n"
     "  admin_password: '$2b$12$ujYVRD9v9z87lpvLqeWNuOFDI4QzSSYHoRyYydW6XK4.kgqfwOXzO'\n"
     "  api_password: 'pbkdf2_sha256$600000$Ew8Lp0Tz3KqR$Xe2Vh0Fj7kQmZpWcY4aLbN9rTsUd1GoI5yHvKxBnMq8='\n")
_add("disguised-weak-words", "doc-example", "inventory.py",
     '''EXAMPLES = """\n[all.vars]\nansible_password = "03#pa33w0rd"\nbecome_password = "s3cr#t!!"\n"""\n''')


@decoy("doc-pyc", "doc-example", "engine.cpython-311.pyc")
def _doc_pyc(r: Rand) -> bytes:
    import importlib.util
    import marshal

    code = compile('"""Use create_engine("postgresql://scott:tiger@localhost/test")."""\n'
                   'PATTERN = "events-webhook(-preprod)?[!/].+"\nHEADER = "x-amz-security-token"\n', "engine.py", "exec")
    return importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code)


_add("k8s-secret-public-values", "placeholder", "tls-secret.yaml",
     "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata:\n  name: web\ndata:\n"
     "  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJzakNDQVZpZ0F3SUJBZ0lVCg==\n"
     "  password: Y2hhbmdlbWU=\nstringData:\n  token: ${API_TOKEN}\n")

# --- placeholders and templates ------------------------------------------------------------------
_add("env-references", "placeholder", "app.env",
     "DB_PASSWORD=${DB_PASSWORD}\nAPI_KEY=$API_KEY\nSECRET_KEY=${SECRET_KEY:-}\nTOKEN=$(cat /run/secrets/token)\n")
_add("helm-template", "placeholder", "secret.yaml",
     'apiVersion: v1\nkind: Secret\nstringData:\n  password: "{{ .Values.db.password }}"\n  token: {{ required "token" .Values.token }}\n')
_add("angle-placeholders", "placeholder", "config.yaml",
     "api_key: <your-api-key>\npassword: <password>\nclient_secret: <CLIENT_SECRET>\n")
_add("word-placeholders", "placeholder", "defaults.conf",
     "password = changeme\nsecret = xxxxxxxxxxxxxxxx\napi_key = your-key-here\ntoken = REPLACE_ME\nauth_token = ********\n")
_add("format-placeholders", "placeholder", "db.py",
     'DSN = "postgres://%(user)s:%(password)s@%(host)s/app"\nPASSWORD = os.environ["DB_PASSWORD"]\n'
     'TOKEN = settings.API_TOKEN\nsecret = get_secret("api")\n')
_add("jinja-template", "placeholder", "nginx.conf.j2",
     "proxy_set_header Authorization \"Bearer {{ api_token }}\";\n# password: {{ vault_password }}\n")
_add("terraform-vars", "placeholder", "main.tf",
     'resource "aws_db_instance" "db" {\n  password = var.db_password\n  username = "admin"\n}\n')
_add("docker-secret-mount", "placeholder", "Dockerfile",
     "RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci\nENV DB_PASSWORD_FILE=/run/secrets/db_password\n")

# --- lockfiles and checksums ---------------------------------------------------------------------


@decoy("package-lock", "lockfile", "package-lock.json")
def _package_lock(r: Rand) -> str:
    deps = {f"node_modules/pkg-{i}": {"version": f"1.{i}.0", "resolved": f"https://registry.npmjs.org/pkg-{i}/-/pkg-{i}-1.{i}.0.tgz",
                                      "integrity": "sha512-" + m.b64(r.raw(64))} for i in range(40)}
    return json.dumps({"name": "app", "lockfileVersion": 3, "packages": deps}, indent=2)


@decoy("yarn-lock", "lockfile", "yarn.lock")
def _yarn(r: Rand) -> str:
    return "".join(f'pkg-{i}@^1.0.0:\n  version "1.{i}.0"\n  resolved "https://registry.yarnpkg.com/pkg-{i}/-/pkg-{i}-1.{i}.0.tgz#{r.hex(40)}"\n'
                   f'  integrity sha512-{m.b64(r.raw(64))}\n\n' for i in range(30))


@decoy("go-sum", "lockfile", "go.sum")
def _gosum(r: Rand) -> str:
    return "".join(f"github.com/acme/mod{i} v1.{i}.0 h1:{m.b64(r.raw(32))}\ngithub.com/acme/mod{i} v1.{i}.0/go.mod "
                   f"h1:{m.b64(r.raw(32))}\n" for i in range(40))


@decoy("pip-record", "lockfile", "RECORD")
def _record(r: Rand) -> str:
    return "".join(f"acme/mod{i}.py,sha256={m.b64u(r.raw(32))},{r.randrange(100, 9999)}\n" for i in range(60))


@decoy("dpkg-md5sums", "lockfile", "acme.md5sums")
def _md5sums(r: Rand) -> str:
    return "".join(f"{r.hex(32)}  usr/share/acme/file{i}.dat\n" for i in range(60))


@decoy("sha256sums", "lockfile", "SHA256SUMS")
def _sums(r: Rand) -> str:
    return "".join(f"{r.hex(64)}  release-{i}.tar.gz\n" for i in range(30))


@decoy("requirements-hashes", "lockfile", "requirements.txt")
def _reqs(r: Rand) -> str:
    return "".join(f"pkg{i}==1.{i}.0 \\\n    --hash=sha256:{r.hex(64)} \\\n    --hash=sha256:{r.hex(64)}\n" for i in range(20))


@decoy("cargo-lock", "lockfile", "Cargo.lock")
def _cargo(r: Rand) -> str:
    return "".join(f'[[package]]\nname = "crate{i}"\nversion = "0.{i}.0"\nsource = "registry+https://github.com/rust-lang/'
                   f'crates.io-index"\nchecksum = "{r.hex(64)}"\n\n' for i in range(30))


@decoy("poetry-lock", "lockfile", "poetry.lock")
def _poetry(r: Rand) -> str:
    return "".join(f'[[package]]\nname = "pkg{i}"\nversion = "1.{i}"\nfiles = [\n    {{file = "pkg{i}-1.{i}.tar.gz", '
                   f'hash = "sha256:{r.hex(64)}"}},\n]\n\n' for i in range(20))


@decoy("sri-html", "lockfile", "index.html")
def _sri(r: Rand) -> str:
    return "".join(f'<script src="/static/app{i}.js" integrity="sha384-{m.b64(r.raw(48))}" crossorigin="anonymous"></script>\n'
                   for i in range(10))


# --- public keys and certificates ----------------------------------------------------------------


@decoy("public-key-pem", "public-key", "server.pub")
def _pub(r: Rand) -> str:
    return m.pem("PUBLIC KEY", m.seq(m.seq(m.oid("1.2.840.113549.1.1.1"), b"\x05\x00"), m.der(0x03, b"\x00" + m.rsa_der(r))))


@decoy("certificate", "public-key", "server.crt")
def _cert(r: Rand) -> str:
    return m.pem("CERTIFICATE", m.seq(m.seq(m.integer(2), m.integer(r.getrandbits(64))), m.der(0x03, b"\x00" + r.raw(256))))


@decoy("ssh-public-keys", "public-key", "authorized_keys")
def _authorized(r: Rand) -> str:
    return "".join(f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{m.b64(r.raw(32))} user{i}@laptop\n" for i in range(5)) + \
        f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{m.b64(r.raw(256))} ci@build\n"


@decoy("known-hosts", "public-key", "known_hosts")
def _known_hosts(r: Rand) -> str:
    return "".join(f"|1|{m.b64(r.raw(20))}|{m.b64(r.raw(20))} ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAI"
                   f"bmlzdHAyNTYAAABB{m.b64(r.raw(65))}\n" for _ in range(5))


@decoy("pgp-public-key", "public-key", "release.asc")
def _pgp_pub(r: Rand) -> str:
    body = m.b64(bytes([0x99, 0x01, 0x0D]) + r.raw(269))
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + "\n".join(lines) + "\n-----END PGP PUBLIC KEY BLOCK-----\n"


@decoy("jwks", "public-key", "jwks.json")
def _jwks(r: Rand) -> str:
    return json.dumps({"keys": [{"kty": "RSA", "kid": r.hex(16), "use": "sig", "alg": "RS256",
                                 "n": m.b64u(r.raw(256)), "e": "AQAB"}]}, indent=2)


@decoy("ca-bundle", "public-key", "ca-certificates.crt")
def _bundle(r: Rand) -> str:
    return "".join(_cert(r) for _ in range(5))


# --- UUIDs, git SHAs and other ids ---------------------------------------------------------------


@decoy("git-refs", "uuid-sha", "packed-refs")
def _packed(r: Rand) -> str:
    return "# pack-refs with: peeled fully-peeled sorted\n" + "".join(
        f"{r.hex(40)} refs/heads/branch-{i}\n" for i in range(20))


@decoy("package-json-githead", "uuid-sha", "package.json")
def _pkg(r: Rand) -> str:
    return json.dumps({"name": "lib", "version": "2.1.0", "gitHead": r.hex(40), "_id": "lib@2.1.0",
                       "_shasum": r.hex(40), "_resolved": f"git+https://github.com/acme/lib.git#{r.hex(40)}"}, indent=2)


@decoy("request-ids", "uuid-sha", "trace.json")
def _ids(r: Rand) -> str:
    return json.dumps({"requestId": r.uuid(), "correlation_token": r.uuid(), "session_id": r.uuid(),
                       "client_token": r.uuid(), "idempotency_key": r.uuid(), "commit": r.hex(40)}, indent=2)


@decoy("docker-digests", "uuid-sha", "manifest.json")
def _digests(r: Rand) -> str:
    return json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + r.hex(64)},
                       "layers": [{"digest": "sha256:" + r.hex(64), "size": r.randrange(10**7)} for _ in range(5)]}, indent=2)


@decoy("pagination-tokens", "uuid-sha", "response.json")
def _pages(r: Rand) -> str:
    return json.dumps({"NextToken": m.b64(r.raw(96)), "ContinuationToken": m.b64(r.raw(48)), "ChangeToken": r.uuid(),
                       "LockToken": r.uuid(), "nextPageToken": r.b64u(40), "csrf_token": r.b64u(43)}, indent=2)


# --- high-entropy data that is not a credential --------------------------------------------------


@decoy("data-uri", "noise", "logo.css")
def _data_uri(r: Rand) -> str:
    return f".logo {{ background: url(data:image/png;base64,{m.b64(r.raw(3000))}); }}\n"


@decoy("source-map", "noise", "app.js.map")
def _sourcemap(r: Rand) -> str:
    return json.dumps({"version": 3, "sources": ["src/auth.ts"], "names": ["token", "password"],
                       "mappings": ";".join(r.b64(40) for _ in range(100)),
                       "sourcesContent": ["const token = getToken(req);\nconst password: string = form.password;\n"]})


@decoy("binary-blob", "noise", "model.bin")
def _binary(r: Rand) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + r.raw(20000)


@decoy("gzip-random", "noise", "cache.gz")
def _gz(r: Rand) -> bytes:
    return gzip.compress(r.raw(5000), mtime=0)


@decoy("hashes-in-config", "noise", "build-info.yaml")
def _hashes(r: Rand) -> str:
    return (f"checksum: {r.hex(64)}\netag: \"{r.hex(32)}\"\nnonce: {m.b64(r.raw(16))}\nsalt_rounds: 12\n"
            f"fingerprint: {':'.join(r.hex(2) for _ in range(20))}\nbuild_sha: {r.hex(40)}\n")


# --- code that only names secrets ----------------------------------------------------------------
_add("python-code", "code", "auth.py",
     "def login(user: str, password: str, token: Optional[str] = None) -> Session:\n"
     "    api_key = os.environ.get('API_KEY')\n    secret = load_secret(path)\n"
     "    if password == confirm_password:\n        self.password = password\n    private_key: RSAPrivateKey\n")
_add("typescript-code", "code", "auth.ts",
     "type ArrowToken = ArrowToken$1;\nconst token = await getAccessToken(client);\n"
     "export interface Creds { password: string; apiKey?: string }\nlastSignificantToken = \"?InterpolationInTemplate\";\n")
_add("java-code", "code", "Auth.java",
     "private static final String PASSWORD_FIELD = \"password\";\nString secret = config.getSecret(\"db\");\n")
_add("go-code", "code", "auth.go",
     "token := os.Getenv(\"GITHUB_TOKEN\")\npassword, err := readPassword(os.Stdin)\nvar apiKey = flag.String(\"api-key\", \"\", \"API key\")\n")
_add("shell-code", "code", "entrypoint.sh",
     '#!/bin/sh\nexport PGPASSWORD="$DB_PASSWORD"\nread -s -p "Password: " password\nAPI_KEY=$(cat /run/secrets/api_key)\n')
_add("cfn-types", "code", "types.json",
     '{"AWS::SecretsManager::Secret": "c85175a4ebcce361", "AWS::ApiGateway::ApiKey": "48205d4ffd7feba3",\n'
     ' "arn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:prod/db-a1b2c3"}\n')

# --- trust stores and accounts without secrets ---------------------------------------------------


@decoy("java-truststore", "truststore", "cacerts")
def _truststore(r: Rand) -> bytes:
    return m.jks(r, private=False)


@decoy("pkcs12-certs-only", "truststore", "trust.p12")
def _p12(r: Rand) -> bytes:
    return m.pkcs12(r, with_key=False)


_add("shadow-no-passwords", "truststore", "etc/shadow",
     "root:*:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nnobody:!:19700::::::\napp:!!:19700:0:99999:7:::\n")
_add("npmrc-no-auth", "truststore", ".npmrc", "registry=https://registry.npmjs.org/\nsave-exact=true\nfund=false\n")
_add("docker-config-helpers", "truststore", ".docker/config.json",
     json.dumps({"auths": {"ghcr.io": {}}, "credsStore": "desktop", "credHelpers": {"gcr.io": "gcloud"}}))


CATEGORIES = sorted({d.category for d in DECOYS} | {"vendor", "known-public"})
