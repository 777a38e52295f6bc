"""What of an image may leave the scanner: secrets only as a hash and a redacted form, unless the
user asks with --reveal; every other string escaped of terminal controls (`escape`)."""
from __future__ import annotations

import hashlib
import unicodedata
from typing import Iterable

from scanner.models import Secret


def redact(value: str) -> str:
    """Enough to recognise a secret, never enough to use it: `ghp_****...Xy9Q`."""
    n = len(value)
    if n >= 20:
        return f"{value[:4]}****...{value[-4:]}"
    if n >= 12:
        return f"{value[:2]}****...{value[-2:]}"
    return "****"


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def make_secret(raw: bytes, keep_value: bool) -> Secret:
    text = decode(raw)
    lines = text.strip().splitlines() or [""]
    if len(lines) > 1 and lines[0].startswith("-----BEGIN"):
        shown = f"{lines[0]} ****...(redacted)"  # a PEM header names the kind, not the key
    else:
        shown = redact(text)
    return Secret(hashlib.sha256(raw).hexdigest(), shown, text if keep_value else None)


def scrub(text: str | None, secrets: Iterable[str]) -> str | None:
    """`text` with every given secret value replaced by its redacted form (longest first)."""
    if text is None:
        return None
    for value in sorted(set(secrets), key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, redact(value))
    return text


class Scrubber:
    """`scrub` of many texts with the same secrets (an image's history lines), in time linear in
    the texts: past a few secrets, the values are indexed once by their first characters and their
    length, and each text is read once, every secret found replaced by its redacted form (the
    longest that starts at a place). 12,000 secrets and as many history lines took minutes the
    other way."""

    FEW = 64  # up to this many secrets, `scrub`'s loop of `in` checks (C speed) is quicker
    PREFIX = 4

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({v for v in secrets if v}, key=len, reverse=True)
        many = len(values) > self.FEW
        self.short = [v for v in values if not many or len(v) < self.PREFIX]
        by_prefix: dict[str, dict[int, set[str]]] = {}
        for v in values if many else ():
            if len(v) >= self.PREFIX:
                by_prefix.setdefault(v[:self.PREFIX], {}).setdefault(len(v), set()).add(v)
        self.index = {k: sorted(sizes.items(), reverse=True) for k, sizes in by_prefix.items()}

    def __call__(self, text: str | None) -> str | None:
        if text is None or not self.index:
            return scrub(text, self.short)
        out, last, i, end, p = [], 0, 0, len(text) - self.PREFIX, self.PREFIX
        while i <= end:
            for size, same in self.index.get(text[i:i + p], ()):
                if text[i:i + size] in same:
                    out += (text[last:i], redact(text[i:i + size]))
                    i = last = i + size
                    break
            else:
                i += 1
        return scrub("".join(out) + text[last:], self.short)


# --- escaping: nothing from an image reaches a terminal, a page or a log raw ----------------------

_SPELT: dict[int, str] = {}


def _spelt(c: str) -> str:
    """How one unsafe character is shown: `\\xNN` below U+0100 (as the walk spells paths), else `\\uNNNN`."""
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def _unsafe(c: str) -> bool:
    """C0 and C1 controls, DEL, and Unicode format, separator and surrogate characters: bidi
    overrides and isolates (U+202A-U+202E, U+2066-U+2069), zero-width ones, U+2028/U+2029."""
    return unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn") and c != " "


def escape(text: object) -> str:
    """The one escaping function for every string that came from an image (paths, history,
    Env and Label names and values, references, skip reasons, error messages): every format
    and the progress bar show it through here. Printable text comes back as it was."""
    s = "" if text is None else str(text)
    if s.isascii() and s.isprintable():  # nearly every string: nothing to do
        return s
    return "".join(_SPELT.get(ord(c)) or _spell(c) if _unsafe(c) else c for c in s)


def _spell(c: str) -> str:
    shown = _SPELT[ord(c)] = _spelt(c)
    return shown
