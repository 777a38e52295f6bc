"""The table as a person sees it: the real CLI in a pseudo-terminal of 80, 100 and 160 columns.
No line is wider than the terminal, colour only there (and never with NO_COLOR), goldens for
the sample image at each width."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from scanner.reports.fit import cells

REPO = Path(__file__).resolve().parents[3]
SAMPLE = "sample_images/leaky-app.tar"  # relative to REPO, the CLI's working directory
GOLDENS = Path(__file__).parent / "goldens"
SGR = re.compile(r"\x1b\[[0-9;]*m")


def in_terminal(columns: int, *args: str, env: dict | None = None) -> str:
    """What `layerscan ARGS` writes to a terminal `columns` wide (its stdout; stderr, the verdict
    line, goes to `in_terminal.err`)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    environ.update(env or {}, TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "scanner", "--no-progress", "--no-cache", *args],
                            stdin=slave, stdout=slave, stderr=subprocess.PIPE, cwd=REPO, env=environ)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 1
    in_terminal.err = proc.stderr.read().decode()  # type: ignore[attr-defined]
    proc.stderr.close()
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_no_line_wider_than_the_terminal(columns):
    shown = in_terminal(columns, str(SAMPLE))
    plain = SGR.sub("", shown)
    assert "\x1b" not in plain  # only colour, no other escape
    assert shown != plain  # colour: this is a terminal
    wide = [line for line in plain.splitlines() if cells(line) > columns]
    assert wide == []
    assert in_terminal.err == ("gate: FAIL (exit 1): 8 findings at or above low in present, deleted, "  # type: ignore
                               "overwritten, config, history\n")
    golden = GOLDENS / f"sample-{columns}.txt"
    if os.environ.get("LAYERSCAN_UPDATE_GOLDENS"):
        golden.write_text(plain)
    assert plain == golden.read_text()


def test_two_lines_per_finding_on_a_narrow_terminal():
    narrow = SGR.sub("", in_terminal(80, str(SAMPLE))).splitlines()
    wide = SGR.sub("", in_terminal(160, str(SAMPLE))).splitlines()
    assert len(narrow) - len(wide) == 1 + 8  # a second header line, and a second line per finding


def test_wide_prints_everything():
    shown = SGR.sub("", in_terminal(80, str(SAMPLE), "--wide"))
    assert "10: COPY config/settings.prod.yaml /app/config/settings.yaml # buildkit" in shown
    assert "…" not in shown


def test_no_color_and_columns():
    shown = in_terminal(160, str(SAMPLE), env={"NO_COLOR": "1", "COLUMNS": "90"})
    assert "\x1b" not in shown
    assert max(cells(line) for line in shown.splitlines()) <= 90


def test_a_file_gets_no_colour_and_every_column(tmp_path):
    report = tmp_path / "report.txt"
    assert in_terminal(80, str(SAMPLE), "-o", str(report)) == ""
    text = report.read_text()
    assert "\x1b" not in text and "…" not in text
    assert in_terminal.err.splitlines() == [  # type: ignore[attr-defined]
        "8 finding(s): 6 critical, 2 high in 1 image(s)", f"wrote {report}",
        "gate: FAIL (exit 1): 8 findings at or above low in present, deleted, "
        "overwritten, config, history"]
