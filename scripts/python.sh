# Sourced by install-deps.sh and test.sh: sets PYTHON, the interpreter the tests run with.
# $PYTHON when set; else `python` (or `python3`), unless that is a Python whose pip refuses to
# install packages (Debian's system Python, PEP 668 "externally managed"): then the virtual
# environment .venv beside the checkout, made once (Debian's python3-venv is installed first).
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python
    command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
    if "$PYTHON" - <<'PY'
import os, sys, sysconfig
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if managed and sys.prefix == sys.base_prefix else 1)
PY
    then
        [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
        PYTHON=.venv/bin/python
    fi
fi
