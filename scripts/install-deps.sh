#!/usr/bin/env bash
# Install what the test suite needs: the real components (Docker engine, registry, skopeo,
# umoci, zstd, htpasswd, a static busybox for the tests' base image, openssl, chromium for the
# HTML report's browser test, PostgreSQL for the shared layer cache, debootstrap for the base of
# bench/realworld.py's images, Go for the tar differential test's reference reader in
# tests/hostile/gotar) and the package itself with its test extras. Idempotent, and quick when
# everything is already there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEB_PACKAGES=(docker.io docker-registry skopeo umoci zstd apache2-utils busybox-static openssl chromium podman
              postgresql debootstrap golang-go python3-venv)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    as_root apt-get update -q
    as_root apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}"
fi

. scripts/python.sh  # after apt: a venv for a Python whose pip refuses to install (PEP 668)

# The editable install is current when it points at this checkout, was made after the last
# change to the packaging files, and the requirements those files declare are all satisfied.
# (-I: the checkout's own layerscan.egg-info must not shadow the installed metadata.)
editable_install_is_current() {
    "$PYTHON" -I - "$PWD" <<'EOF'
import configparser, json, os, sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

repo = sys.argv[1]
try:
    dist = metadata.distribution("layerscan")
    url = json.loads(dist.read_text("direct_url.json") or "{}")
except (metadata.PackageNotFoundError, ValueError):
    sys.exit(1)
if not url.get("dir_info", {}).get("editable") or url.get("url") != "file://" + repo:
    sys.exit(1)
stamp = os.path.getmtime(str(dist._path))  # the dist-info directory
for name in ("setup.cfg", "setup.py", "pyproject.toml"):
    path = os.path.join(repo, name)
    if os.path.exists(path) and os.path.getmtime(path) > stamp:
        sys.exit(1)
cfg = configparser.ConfigParser()
cfg.read(os.path.join(repo, "setup.cfg"))
lines = cfg.get("options", "install_requires", fallback="").splitlines()
lines += cfg.get("options.extras_require", "test", fallback="").splitlines()
for line in filter(None, (l.strip() for l in lines)):
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        sys.exit(1)
    if not req.specifier.contains(version, prereleases=True):
        sys.exit(1)
EOF
}

if ! editable_install_is_current; then
    echo "install-deps: pip install -e '.[test]'" >&2
    "$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test]'
fi
