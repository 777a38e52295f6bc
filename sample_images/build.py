"""Rewrite the sample images in this directory, byte for byte the same on every run.

    python sample_images/build.py          # from anywhere

leaky-app.tar      legacy `docker save` of leaky-app:1.0, uncompressed layers
leaky-app-oci.tar  the same image as Docker 25+ `docker save` writes it, zstd layers
clean-app.tar      legacy `docker save` of clean-app:1.0: no secret anywhere (scan exits 0)

`EXPECTED` below is what a correct scan reports for each image (README.md says it in prose);
tests load this module with importlib to compare against it.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests import secrets_catalog as cat  # noqa: E402
from tests.imagekit import (  # noqa: E402
    EmptyLayer, ImageSpec, LayerSpec, dir, file, hardlink, layer_tar, opaque, symlink, whiteout,
    write_docker_archive_legacy, write_docker_archive_oci,
)

BUILDKIT = "buildkit.dockerfile.v0"
NODE_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# --- the shared base image (made with the classic builder, like most official images) -------

OS_RELEASE = b"""PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
HOME_URL="https://www.debian.org/"
"""
PASSWD = b"""root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
node:x:1000:1000::/home/node:/bin/sh
"""
GROUP = b"root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\nnode:x:1000:\n"
BUSYBOX = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"BusyBox v1.36.1 multi-call binary.\x00Usage: busybox [function [arguments]...]\x00"
APK_INDEX = b"C:Q1abc\nP:musl\nV:1.2.4-r2\n"


def base_rootfs() -> LayerSpec:
    entries = [
        dir("/bin"), file("/bin/busybox", BUSYBOX, mode=0o755), symlink("/bin/sh", "busybox"),
        hardlink("/bin/ash", "/bin/busybox"),
        dir("/etc"), file("/etc/os-release", OS_RELEASE), file("/etc/passwd", PASSWD), file("/etc/group", GROUP),
        file("/etc/hostname", b"localhost\n"), symlink("/etc/localtime", "/usr/share/zoneinfo/UTC"),
        dir("/home"), dir("/home/node", uid=1000, gid=1000),
        dir("/root", mode=0o700), dir("/tmp", mode=0o1777),
        dir("/usr"), dir("/usr/local"), dir("/usr/local/bin"),
        dir("/var"), dir("/var/cache"), dir("/var/cache/apk"), file("/var/cache/apk/APKINDEX.txt", APK_INDEX),
    ]
    tar = layer_tar(entries)
    return LayerSpec(f"/bin/sh -c #(nop) ADD file:{hashlib.sha256(tar).hexdigest()} in / ", entries)


def base_steps() -> list:
    return [base_rootfs(), EmptyLayer('/bin/sh -c #(nop)  CMD ["/bin/sh"]')]


# --- leaky-app:1.0 ------------------------------------------------------------------------

ENTRYPOINT_SH = b"""#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ]; then
  set -- node "$@"
fi
exec "$@"
"""
PACKAGE_JSON = b'{\n  "name": "leaky-app",\n  "version": "1.0.0",\n  "main": "server.js",\n  "dependencies": {"left-pad": "1.3.0"}\n}\n'
LEFT_PAD = b"module.exports = function leftPad(s, n, c) { s = String(s); while (s.length < n) s = (c || ' ') + s; return s; };\n"
LEFT_PAD_INTEGRITY = "sha512-" + __import__("base64").b64encode(hashlib.sha512(LEFT_PAD).digest()).decode()
PACKAGE_LOCK = (
    '{\n  "name": "leaky-app",\n  "version": "1.0.0",\n  "lockfileVersion": 3,\n  "packages": {\n'
    '    "node_modules/left-pad": {\n      "version": "1.3.0",\n'
    '      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",\n'
    f'      "integrity": "{LEFT_PAD_INTEGRITY}"\n    }}\n  }}\n}}\n'
).encode()
NPMRC = b"//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n"
SERVER_JS = b"""const http = require('http');
const leftPad = require('left-pad');
const slackToken = process.env.SLACK_BOT_TOKEN;
http.createServer((req, res) => {
  res.end(leftPad('ok', 4) + (slackToken ? ' slack on' : ''));
}).listen(3000);
"""
DOTENV = f"""# Local development settings -- do not commit
NODE_ENV=development
PORT=3000
AWS_ACCESS_KEY_ID={cat.AWS_KEY_ID}
AWS_SECRET_ACCESS_KEY={cat.AWS_SECRET_KEY}
AWS_DEFAULT_REGION=eu-west-1
""".encode()
SETTINGS = """# Application settings{env}
server:
  port: 3000
  log_level: {level}
github:
  org: example
  token: {token}
  repo: example/leaky-app
"""
SETTINGS_DEV = SETTINGS.format(env="", level="debug", token=cat.GITHUB_PAT).encode()
SETTINGS_PROD = SETTINGS.format(env=" (production)", level="warn", token=cat.GITHUB_OAUTH).encode()
SSH_CONFIG = b"Host github.com\n  IdentityFile ~/.ssh/id_ed25519\n  StrictHostKeyChecking yes\n"
HEALTHCHECK = {"Test": ["CMD-SHELL", "wget -qO- http://localhost:3000/healthz || exit 1"],
               "Interval": 30_000_000_000, "Timeout": 5_000_000_000, "Retries": 3}
LEAKY_LABELS = {"org.opencontainers.image.source": "https://github.com/example/leaky-app",
                "org.opencontainers.image.version": "1.0"}


def bk(created_by: str, entries: list) -> LayerSpec:
    """A layer made by BuildKit (its history comment)."""
    return LayerSpec(created_by, entries, comment=BUILDKIT)


def bk_empty(created_by: str) -> EmptyLayer:
    return EmptyLayer(created_by, comment=BUILDKIT)


def node_base_steps() -> list:
    """A node-like base: rootfs plus the entrypoint script (classic builder, `COPY file:<hex>`)."""
    entry = file("/usr/local/bin/docker-entrypoint.sh", ENTRYPOINT_SH, mode=0o755)
    copy = LayerSpec(f"/bin/sh -c #(nop) COPY file:{hashlib.sha256(ENTRYPOINT_SH).hexdigest()} in /usr/local/bin/ ",
                     [dir("/usr"), dir("/usr/local"), dir("/usr/local/bin"), entry])
    return base_steps() + [
        EmptyLayer("/bin/sh -c #(nop)  ENV NODE_VERSION=20.11.1"),
        copy,
        EmptyLayer('/bin/sh -c #(nop)  ENTRYPOINT ["docker-entrypoint.sh"]'),
        EmptyLayer('/bin/sh -c #(nop)  CMD ["node"]'),
    ]


def leaky_app_steps() -> list:
    app = [dir("/app")]
    return node_base_steps() + [
        bk("WORKDIR /app", app),                                                        # layer 2, h6
        bk_empty("ARG NPM_TOKEN"),                                                      # h7
        bk("COPY package.json package-lock.json .npmrc ./ # buildkit", app + [          # layer 3, h8
            file("/app/package.json", PACKAGE_JSON), file("/app/package-lock.json", PACKAGE_LOCK),
            file("/app/.npmrc", NPMRC)]),
        bk(f"RUN |1 NPM_TOKEN={cat.NPM_TOKEN} /bin/sh -c npm ci --omit=dev # buildkit", app + [  # layer 4, h9
            dir("/app/node_modules"), dir("/app/node_modules/left-pad"),
            file("/app/node_modules/left-pad/index.js", LEFT_PAD),
            file("/app/node_modules/left-pad/package.json", b'{"name":"left-pad","version":"1.3.0"}\n')]),
        bk("COPY server.js ./ # buildkit", app + [file("/app/server.js", SERVER_JS)]),  # layer 5, h10
        bk("COPY .env /app/.env # buildkit", app + [file("/app/.env", DOTENV)]),       # layer 6, h11
        bk("COPY config/settings.yaml /app/config/settings.yaml # buildkit", app + [   # layer 7, h12
            dir("/app/config"), file("/app/config/settings.yaml", SETTINGS_DEV)]),
        bk("COPY deploy_key /root/.ssh/id_ed25519 # buildkit", [                        # layer 8, h13
            dir("/root", mode=0o700), dir("/root/.ssh", mode=0o700),
            file("/root/.ssh/id_ed25519", cat.OPENSSH_PRIVATE_KEY.encode(), mode=0o600),
            file("/root/.ssh/config", SSH_CONFIG, mode=0o600)]),
        bk("RUN /bin/sh -c rm /app/.env # buildkit", app + [whiteout("/app/.env")]),   # layer 9, h14
        bk("COPY config/settings.prod.yaml /app/config/settings.yaml # buildkit", app + [  # layer 10, h15
            dir("/app/config"), file("/app/config/settings.yaml", SETTINGS_PROD)]),
        bk("RUN /bin/sh -c rm -rf /root/.ssh && mkdir -m 700 /root/.ssh # buildkit", [  # layer 11, h16
            dir("/root", mode=0o700), dir("/root/.ssh", mode=0o700), opaque("/root/.ssh", mode=0o700)]),
        bk_empty("ENV NODE_ENV=production"),                                           # h17
        bk_empty(f"ENV SLACK_BOT_TOKEN={cat.SLACK_BOT_TOKEN}"),                        # h18
        bk_empty("LABEL " + " ".join(f"{k}={v}" for k, v in LEAKY_LABELS.items())),    # h19
        bk_empty("EXPOSE map[3000/tcp:{}]"),                                           # h20
        bk_empty('HEALTHCHECK &{["CMD-SHELL" "wget -qO- http://localhost:3000/healthz || exit 1"] '
                 '"30s" "5s" "0s" "0s" \'\\x03\'}'),                                   # h21
        bk_empty("USER node"),                                                         # h22
        bk_empty('CMD ["node" "server.js"]'),                                          # h23
    ]


def leaky_app() -> ImageSpec:
    return ImageSpec(
        leaky_app_steps(), tags=["leaky-app:1.0"],
        env=[NODE_PATH, "NODE_VERSION=20.11.1", "NODE_ENV=production", f"SLACK_BOT_TOKEN={cat.SLACK_BOT_TOKEN}"],
        labels=dict(LEAKY_LABELS), entrypoint=["docker-entrypoint.sh"], cmd=["node", "server.js"],
        healthcheck=dict(HEALTHCHECK), user="node", working_dir="/app", exposed_ports=["3000/tcp"],
    )


# --- clean-app:1.0 ------------------------------------------------------------------------

REQUIREMENTS = b"flask==3.0.2\ngunicorn==21.2.0\n"
FLASK_INIT = b'__version__ = "3.0.2"\n'
MAIN_PY = b"""import os

from flask import Flask

app = Flask(__name__)
app.config["DATABASE_URL"] = os.environ.get("DATABASE_URL", "sqlite:///app.db")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8000)
"""
BUILD_LOG = b"Collecting flask==3.0.2\nSuccessfully installed flask-3.0.2 gunicorn-21.2.0\n"
SITE = "/usr/local/lib/python3.12/site-packages"


def clean_app_steps() -> list:
    srv = [dir("/srv")]
    site = [dir("/usr"), dir("/usr/local"), dir("/usr/local/lib"), dir("/usr/local/lib/python3.12"), dir(SITE)]
    return base_steps() + [
        bk("WORKDIR /srv", srv),                                                       # layer 1, h2
        bk_empty("ENV PYTHONUNBUFFERED=1"),                                            # h3
        bk("COPY requirements.txt ./ # buildkit", srv + [file("/srv/requirements.txt", REQUIREMENTS)]),  # layer 2, h4
        bk("RUN /bin/sh -c pip install --no-cache-dir -r requirements.txt > /tmp/build.log # buildkit",  # layer 3, h5
           [dir("/tmp", mode=0o1777), file("/tmp/build.log", BUILD_LOG)] + site + [
               dir(SITE + "/flask"), file(SITE + "/flask/__init__.py", FLASK_INIT)]),
        bk("RUN /bin/sh -c rm /tmp/build.log && rm -rf /var/cache/apk && mkdir /var/cache/apk # buildkit", [  # layer 4, h6
            dir("/tmp", mode=0o1777), whiteout("/tmp/build.log"),
            dir("/var"), dir("/var/cache"), dir("/var/cache/apk"), opaque("/var/cache/apk")]),
        bk("COPY app/ ./app/ # buildkit", srv + [                                      # layer 5, h7
            dir("/srv/app"), file("/srv/app/__init__.py", b""), file("/srv/app/main.py", MAIN_PY)]),
        bk_empty("EXPOSE map[8000/tcp:{}]"),                                           # h8
        bk_empty("USER nobody"),                                                       # h9
        bk_empty('CMD ["python" "-m" "app.main"]'),                                    # h10
    ]


def clean_app() -> ImageSpec:
    return ImageSpec(
        clean_app_steps(), tags=["clean-app:1.0"],
        env=["PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONUNBUFFERED=1"],
        labels={"org.opencontainers.image.source": "https://github.com/example/clean-app"},
        cmd=["python", "-m", "app.main"], user="nobody", working_dir="/srv", exposed_ports=["8000/tcp"],
    )


# --- what a correct scan reports ----------------------------------------------------------
# secret: the name in tests/secrets_catalog.py; layer / removed_in: 0-based layer index;
# history: 0-based index into the config's history (empty_layer entries counted).

LEAKY_FINDINGS = [
    {"secret": "NPM_TOKEN", "kind": "history", "path": "history[9]", "line": None,
     "layer": None, "status": "history", "removed_in": None},
    {"secret": "AWS_KEY_ID", "kind": "file", "path": "/app/.env", "line": 4,
     "layer": 6, "status": "deleted", "removed_in": 9},
    {"secret": "AWS_SECRET_KEY", "kind": "file", "path": "/app/.env", "line": 5,
     "layer": 6, "status": "deleted", "removed_in": 9},
    {"secret": "GITHUB_PAT", "kind": "file", "path": "/app/config/settings.yaml", "line": 7,
     "layer": 7, "status": "overwritten", "removed_in": 10},
    {"secret": "OPENSSH_PRIVATE_KEY", "kind": "file", "path": "/root/.ssh/id_ed25519", "line": 1,
     "layer": 8, "status": "deleted", "removed_in": 11},
    {"secret": "GITHUB_OAUTH", "kind": "file", "path": "/app/config/settings.yaml", "line": 7,
     "layer": 10, "status": "present", "removed_in": None},
    {"secret": "SLACK_BOT_TOKEN", "kind": "env", "path": "Env.SLACK_BOT_TOKEN", "line": None,
     "layer": None, "status": "config", "removed_in": None},
    {"secret": "SLACK_BOT_TOKEN", "kind": "history", "path": "history[18]", "line": None,
     "layer": None, "status": "history", "removed_in": None},
]

EXPECTED = {
    "leaky-app.tar": LEAKY_FINDINGS,
    "leaky-app-oci.tar": LEAKY_FINDINGS,
    "clean-app.tar": [],
}


def build(out_dir: Path = HERE) -> dict:
    """Write the three images into `out_dir`; returns {file name: Archive}."""
    return {
        "leaky-app.tar": write_docker_archive_legacy([leaky_app()], out_dir / "leaky-app.tar"),
        "leaky-app-oci.tar": write_docker_archive_oci([leaky_app()], out_dir / "leaky-app-oci.tar",
                                                      compression="zstd"),
        "clean-app.tar": write_docker_archive_legacy([clean_app()], out_dir / "clean-app.tar"),
    }


def main() -> None:
    for name, archive in build().items():
        digest = hashlib.sha256(archive.path.read_bytes()).hexdigest()
        print(f"{name:20} {archive.path.stat().st_size:7} bytes  sha256:{digest[:16]}  "
              f"{len(archive.images[0].layers)} layers")


if __name__ == "__main__":
    main()
