"""The gate's verdict line, the last line on stderr of every scan (`gate: FAIL (exit 1): ...`)."""
from __future__ import annotations

import re

GATE_LINE = re.compile(r"gate: (pass|FAIL) \(exit (\d)\): [^\n]+\n\Z")


def gate_only(err: str) -> str:
    """'pass' or 'FAIL' when stderr holds nothing but the verdict line (no warning, no error);
    else stderr itself, so that a failing assertion shows what was there."""
    m = GATE_LINE.match(err)
    if m is None or (m.group(1) == "pass") != (m.group(2) == "0"):
        return err
    return m.group(1)
