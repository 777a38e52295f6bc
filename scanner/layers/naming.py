"""What reports call the members of archives, and what they say of what stopped one: names as
shown in inner paths (relative, undecodable bytes and control characters escaped) and the
one-line reasons for corrupt, truncated or unsupported content.
"""
from __future__ import annotations

import posixpath
from typing import Optional

import stream_unzip as su
import zstandard

from scanner.layers.feed import human_size

REST = "; rest of the archive not scanned"
ZSTD_MAX_WINDOW = 1 << 25  # a zstd frame that needs more decoder memory is skipped, not decoded


CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}  # as walk.norm_path: never raw in a report


def clean(name: str) -> str:
    """A member name as shown in inner paths: relative, undecodable bytes escaped."""
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").translate(CONTROL)
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name


def zip_name(raw: bytes) -> str:
    try:
        return clean(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return clean(raw.decode("cp437"))


def gzip_name(head: bytes) -> Optional[str]:
    """The original file name a gzip header carries (FNAME), if any."""
    if len(head) < 10 or not head[3] & 0x08:
        return None
    pos = 10
    if head[3] & 0x04:
        pos += 2 + int.from_bytes(head[10:12], "little")
    end = head.find(b"\0", pos)
    name = posixpath.basename(head[pos:end].decode("latin-1").replace("\\", "/")) if end > 0 else ""
    return name or None


def plain_name(base: str, suffixes: tuple[str, ...], renames: dict[str, str]) -> str:
    """The name of a compressed file's content: its own name (`base`) less the compression suffix."""
    stem, ext = posixpath.splitext(base)
    if ext.lower() in renames:
        return stem + renames[ext.lower()]
    return stem if ext.lower() in suffixes and stem else base


def stream_reason(label: str, exc: BaseException) -> str:
    if isinstance(exc, zstandard.ZstdError) and "too much memory" in str(exc):
        return f"{label}: a frame needs over {human_size(ZSTD_MAX_WINDOW)} of decoder memory: not decoded"
    return f"{label}: corrupt stream ({why(exc)})"


def why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, EOFError):
        return "truncated"
    return text[:120] or exc.__class__.__name__


_MEMBER_PHRASES: tuple[tuple[type, str], ...] = (
    (su.CRC32IntegrityError, "corrupt member {m} (bad CRC)"),
    (su.SizeIntegrityError, "corrupt member {m} (size mismatch)"),
    (su.TruncatedDataError, "truncated in member {m}" + REST),
    (su.PasswordError, "encrypted member {m} (no password)" + REST),
    (su.MissingPasswordError, "encrypted member {m} (no password)" + REST),
    (su.UnsupportedFeatureError, "member {m} uses an unsupported zip feature ({cls})" + REST),
)


def zip_member_phrase(exc: BaseException, member: Optional[str]) -> str:
    for cls, phrase in _MEMBER_PHRASES:
        if isinstance(exc, cls):
            return phrase.format(m=member, cls=exc.__class__.__name__)
    return f"corrupt member {member} (bad compressed data: {exc.__class__.__name__}){REST}"


def zip_archive_phrase(exc: BaseException, last: Optional[str], resumed: bool) -> str:
    """What stopped a zip between members (the next local header could not be read)."""
    where = f"after member {last}" if last is not None else "at its start"
    if resumed:
        return f"cannot go on after the corrupt member {last}"
    if isinstance(exc, su.TruncatedDataError):
        return f"truncated {where}"
    if isinstance(exc, su.NotStreamUnzippable):
        name = zip_name(exc.args[0]) if exc.args and isinstance(exc.args[0], bytes) else "?"
        return f"stored member {name} has a data descriptor (cannot be streamed)"
    if isinstance(exc, su.UnsupportedCompressionTypeError):
        return f"unsupported compression method {exc.args[0]} {where}"
    if isinstance(exc, su.UnexpectedSignatureError):
        return f"corrupt archive {where} (unexpected signature)"
    return f"corrupt archive {where} ({exc.__class__.__name__})"
