"""The string constants of a CPython `.pyc` file, read from its marshal stream without running it.

In a `.pyc` every string sits between marshal framing bytes: a type byte and a length before it
(`Z` + 1 byte, `a`/`u`/`s` + 4 bytes, with FLAG_REF 0x80 set or not) and the next object's type
byte right after it (`N`, `)`, `z`, `\\xda`, `\\xe9`...). Read as raw bytes, that framing glues onto a
token and breaks the word boundaries, lengths and checksums of the rules. This reader walks the
stream object by object and returns each str/bytes object's bytes on its own: the view the
detectors see instead of the raw bytes (`decode.scan_bytes`).

Bounded: every object read consumes input; memory and time are linear in the input's size. `marshal.loads` is never called on image content. An unknown type, a version whose code
object layout is not known, or a truncated stream gives None: the caller scans the raw bytes.
"""
from __future__ import annotations

from typing import Optional

_FIXED = {ord(c): n for c, n in (("0", 0), ("N", 0), ("F", 0), ("T", 0), ("S", 0), (".", 0),
                                ("i", 4), ("I", 8), ("g", 8), ("y", 16), ("r", 4))}
_LONG_STR = frozenset(b"stuaA")  # 4-byte length
_SHORT_STR = frozenset(b"zZ")  # 1-byte length
_SEQUENCES = frozenset(b"[<>(")  # 4-byte count, then that many objects
_STRING_WIDTH = bytes(4 if c in _LONG_STR else 1 if c in _SHORT_STR else 0 for c in range(128))  # length bytes
# code object layouts by Python version: (leading 4-byte ints, fields after them: o object,
# i 4-byte int, b an object that is bytecode or a line table, not text)
_CODE_LAYOUTS = {
    (3, 0): (5, "boooooooib"),  # 3.0-3.7: argcount kwonly nlocals stacksize flags | code consts ...
    (3, 8): (6, "boooooooib"),  # 3.8-3.10: posonlyargcount added
    (3, 11): (5, "booooooo" + "ibb"),  # 3.11+: localsplusnames/kinds, qualname, exceptiontable
}


def pyc_header(data: bytes) -> Optional[int]:
    """The size of a `.pyc` header (16 bytes since 3.7, 12 for 3.3-3.6), None if not CPython 3."""
    if len(data) < 16 or data[2:4] != b"\r\n":
        return None
    magic = int.from_bytes(data[:2], "little")
    if 3390 <= magic < 3700:  # 3.7 .. 3.14 and a little beyond
        return 16
    if 3230 <= magic < 3390:
        return 12
    return None


def _layout(magic: int) -> tuple[int, str]:
    if magic >= 3450:  # 3.11a
        return _CODE_LAYOUTS[(3, 11)]
    if magic >= 3400:  # 3.8a
        return _CODE_LAYOUTS[(3, 8)]
    return _CODE_LAYOUTS[(3, 0)]


def pyc_strings(data: bytes) -> Optional[list[bytes]]:
    """The str and bytes objects of a `.pyc` (names, constants, docstrings; not bytecode or line
    tables), in stream order; None when `data` is not a whole CPython 3 `.pyc` this reader knows.

    One loop over a stack of what is still to read: [count, fields] entries, `fields` None for the
    items of a container (objects) or a code object's field kinds (`o` an object, `b` an object
    that is not text, `i` a 4-byte int) read from the end, `d` the rest of a dict. Every object
    read consumes input, so the work and the stack are bounded by the size of `data`."""
    header = pyc_header(data)
    if header is None:
        return None
    ints, fields = _layout(int.from_bytes(data[:2], "little"))
    out: list[bytes] = []
    size, pos = len(data), header
    todo: list[list] = [[1, None]]
    push, pop = todo.append, todo.pop
    try:
        while todo:
            top = todo[-1]
            kind = "o"
            if top[1] is None:  # one more item of a container
                top[0] -= 1
                if not top[0]:
                    pop()
            elif top[1] == "d":  # a dict: key-value pairs up to a NULL key
                if data[pos] == 0x30:
                    pos += 1
                    pop()
                    continue
                push([2, None])
                continue
            else:  # the next field of a code object
                top[0] -= 1
                kind = top[1][top[0]]
                if not top[0]:
                    pop()
                if kind == "i":
                    pos += 4
                    continue
            code = data[pos] & 0x7F
            pos += 1
            width = _STRING_WIDTH[code]
            if width:
                n = data[pos] if width == 1 else int.from_bytes(data[pos:pos + 4], "little")
                pos += width
                if n and kind == "o":
                    out.append(data[pos:pos + n])
                pos += n
            elif code in _FIXED:
                pos += _FIXED[code]
            elif code == 0x29:  # ")" small tuple
                if data[pos]:
                    push([data[pos], None])
                pos += 1
            elif code in _SEQUENCES:
                n, pos = int.from_bytes(data[pos:pos + 4], "little"), pos + 4
                if n > size - pos:  # each object takes at least one byte
                    return None
                if n:
                    push([n, None])
            elif code == 0x63:  # "c" code object
                pos += 4 * ints
                push([len(fields), fields[::-1]])
            elif code == 0x7B:  # "{"
                push([0, "d"])
            elif code == 0x6C:  # "l" long: signed count of 15-bit digits
                pos += 4 + 2 * abs(int.from_bytes(data[pos:pos + 4], "little", signed=True))
            elif code in (0x66, 0x78):  # "f", "x": old text floats and complexes
                for _ in range(1 if code == 0x66 else 2):
                    pos += 1 + data[pos]
            elif code == 0x3A:  # ":" slice (3.14): start, stop, step
                push([3, None])
            else:
                return None
            if pos > size:
                return None
    except IndexError:
        return None
    return out


def pyc_view(data: bytes) -> Optional[bytes]:
    """The strings of a `.pyc`, one a line (NULs in bytes constants made line breaks too)."""
    strings = pyc_strings(data)
    if strings is None:
        return None
    return b"\n".join(s.replace(b"\0", b"\n") for s in strings) + b"\n"
