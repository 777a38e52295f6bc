"""The planted cases of bench/realworld.py: secrets a build put into a package tree.

Each case is a way an image author's secret ends up among installed packages, where provenance
triage must NOT hide it: a package file changed after its package installed it, a file no package
lists, a package installed from a local path. The secrets are made here (random from a fixed seed,
so the image stays cached; never issued by any provider), shaped like the providers' documented
formats, with a valid checksum where the format has one (tests/secrets_catalog.py).
`write_context` writes the files bench/realworld/images/planted.Dockerfile copies.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import string
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.secrets_catalog import checksummed  # noqa: E402

SITE = "/opt/venv/lib/python3.11/site-packages"
ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Plant:
    case: str       # what kind of planting it is
    path: str       # where in the image the secret must be reported (untriaged)
    secret: str     # the planted value (never printed: the report shows its sha256 only)
    how: str        # one line for the table

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.secret.encode()).hexdigest()


def _chars(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _secrets() -> dict[str, str]:
    rng = random.Random("layerscan bench/realworld plants v1")
    return {
        "slack": f"xoxb-{_chars(rng, 10, string.digits)}-{_chars(rng, 13, string.digits)}-{_chars(rng, 24)}",
        "stripe": "sk_live_51" + _chars(rng, 97),
        "sendgrid": f"SG.{_chars(rng, 22)}.{_chars(rng, 43)}",
        "gitlab": "glpat-" + _chars(rng, 20),
        "github": checksummed("ghp_", _chars(rng, 30)),
        "npm": checksummed("npm_", _chars(rng, 30)),
        "anthropic": "sk-ant-api03-" + _chars(rng, 93, ALNUM + "_-") + "AA",
        "github_oauth": checksummed("gho_", _chars(rng, 30)),
    }


def plants() -> list[Plant]:
    s = _secrets()
    return [
        Plant("pypi-patched", f"{SITE}/requests/__version__.py", s["slack"],
              "a later layer appends to a package file (digest no longer matches RECORD)"),
        Plant("pypi-new-file", f"{SITE}/acme_settings.py", s["stripe"],
              "a module dropped straight into site-packages"),
        Plant("pypi-new-file-in-package", f"{SITE}/requests/_extra.py", s["sendgrid"],
              "a file no RECORD lists, in a package dir, same layer as pip install"),
        Plant("pypi-local-dir", f"{SITE}/acme_billing/settings.py", s["gitlab"],
              "pip install ./acme-billing (direct_url.json: the author's own code)"),
        Plant("npm-later-layer", "/app/node_modules/express/lib/deploy.js", s["github"],
              "a later layer writes a new file into node_modules/express/"),
        Plant("npm-patched", "/app/node_modules/debug/src/index.js", s["npm"],
              "a later layer appends to a package file"),
        Plant("npm-top-level", "/app/node_modules/deploy-settings.json", s["anthropic"],
              "a file directly in node_modules/, same layer as npm install"),
        Plant("npm-file-dep", "/app/node_modules/acme-config/index.js", s["github_oauth"],
              "a package from a file: dependency (vendor/acme-config-1.0.0.tgz)"),
    ]


def _tgz(files: dict[str, str]) -> bytes:
    """A reproducible npm package tarball (members under package/, fixed mtime)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo("package/" + name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def _npm_package_json(list_file: Path) -> dict:
    deps = {}
    for line in list_file.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.rpartition("@")
            deps[name] = version
    return deps


def write_context(out: Path, data_dir: Path) -> None:
    """Write generated/plants/ (the planted image's files) under OUT."""
    p = {plant.case: plant.secret for plant in plants()}
    files = {
        "requests-patch.py": f'\n# deploy hook\nSLACK_TOKEN = "{p["pypi-patched"]}"\n',
        "acme_settings.py": f'"""ACME deploy settings."""\nSTRIPE_API_KEY = "{p["pypi-new-file"]}"\n',
        "requests_extra.py": f'SENDGRID_API_KEY = "{p["pypi-new-file-in-package"]}"\n',
        "acme-billing/pyproject.toml": ('[build-system]\nrequires = ["setuptools>=61"]\n'
                                        'build-backend = "setuptools.build_meta"\n\n[project]\n'
                                        'name = "acme-billing"\nversion = "0.3.0"\n\n'
                                        '[tool.setuptools]\npackages = ["acme_billing"]\n'),
        "acme-billing/acme_billing/__init__.py": "",
        "acme-billing/acme_billing/settings.py": f'GITLAB_TOKEN = "{p["pypi-local-dir"]}"\n',
        "express-deploy.js": f'module.exports = {{ githubToken: "{p["npm-later-layer"]}" }};\n',
        "debug-patch.js": f'\nprocess.env.NPM_TOKEN = process.env.NPM_TOKEN || "{p["npm-patched"]}";\n',
        "deploy-settings.json": json.dumps({"anthropicApiKey": p["npm-top-level"]}) + "\n",
    }
    root = out / "generated" / "plants"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    pkg = {"name": "acme-config", "version": "1.0.0", "main": "index.js"}
    (root / "vendor").mkdir(exist_ok=True)
    (root / "vendor" / "acme-config-1.0.0.tgz").write_bytes(_tgz({
        "package.json": json.dumps(pkg, indent=2) + "\n",
        "index.js": f'module.exports = {{ githubOAuthToken: "{p["npm-file-dep"]}" }};\n'}))
    deps = _npm_package_json(data_dir / "slice-npm.txt")
    deps["acme-config"] = "file:vendor/acme-config-1.0.0.tgz"
    (root / "package.json").write_text(json.dumps(
        {"name": "acme-app", "version": "1.0.0", "private": True, "dependencies": deps}, indent=2) + "\n")
