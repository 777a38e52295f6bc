#!/usr/bin/env bash
# The whole test suite: unit and integration tests. The integration tests start and stop the
# real components themselves (Docker engine, registry). Extra arguments go to pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

. scripts/python.sh  # the interpreter install-deps.sh installed into

# Bounded fuzzing of the parsers first (FUZZ_SECONDS per target, 10 by default, 0 to skip): a crash
# fails the run, and its input is kept under fuzz/crashes/ for a regression test (see SECURITY.md).
"$PYTHON" fuzz/run.py --seconds "${FUZZ_SECONDS:-10}"

exec "$PYTHON" -m pytest -q "$@"
