#!/usr/bin/env bash
# The whole test suite: unit and integration tests. The integration tests start and stop the
# real components themselves (Docker engine, registry). Extra arguments go to pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

PYTHON="${PYTHON:-python}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

exec "$PYTHON" -m pytest -q "$@"
