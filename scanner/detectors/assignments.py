"""Where a secret-named variable is assigned a value, on a line of text: the places the
keyword/entropy detector (`scanner.detectors.entropy`) looks at and the names it judges.

`SHAPE` (an assignment to a secret-ish name, with a value of 8 characters or more) and
`QUOTED_SHAPE` (one whose value is quoted) ride along in the prefilter's Hyperscan pass;
`assigned` lists the values after every operator of a line, `left_name` the secret-ish variable
name a value is assigned to, `locate` where detect-secrets' value sits in the line.
"""
from __future__ import annotations

import re
from typing import Iterator, Optional

NAME = (r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_.-]?key|auth[_.-]?key|priv(?:ate)?[_.-]?key|"
         r"access[_.-]?key|client[_.-]?key|service[_.-]?key|account[_.-]?key|db[_.-]?key|database[_.-]?key|"
         r"credentials?|signing[_.-]?key|encryption[_.-]?key|master[_.-]?key)")
OPERATOR = r"[\"'\]]{0,2}[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}@?[\"'`]?"
# where a secret-named variable is assigned something that could be a secret
SHAPE = rb"(?i)" + (NAME + r"[a-z0-9_.-]{0,24}" + OPERATOR + r"[^\s\"'`,;]{8}").encode()
# the text just left of a value that makes it the value of a secret-named variable
LEFT = re.compile(r"(?i)(?P<name>[a-z0-9_.:*-]{0,40}" + NAME + r"[a-z0-9_.-]{0,24})" + OPERATOR + r"$")
# the same, found fast: the secret-ish word first (a literal start the engine can skip to), then the
# variable name's start by walking left over its characters (`left_name`)
# (matched on lower-cased text without re's case-insensitive mode: many times faster, the same
# matches on the latin-1 text it is given)
LEFT_CORE = re.compile(r"(?P<core>" + NAME + r"[a-z0-9_.-]{0,24})" + OPERATOR + r"$")
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:*-")
LEFT_REACH = 120  # how far left of a value its variable name may start
LEFT_CORE_MAX = 52  # the longest text `LEFT_CORE` matches (a test checks it against the regex)


def left_name(line: str, at: int) -> Optional[str]:
    """The secret-ish variable name assigned the value at `at`: the `name` group of
    `LEFT.search(line, max(0, at - LEFT_REACH), at)`, or None where that finds nothing.

    `LEFT` itself starts with a character class that matches almost anywhere, so searching it
    tries every start; the leftmost match of its core (from the secret-ish word on) gives the same
    match, whose name then reaches left over name characters, at most 40 of them."""
    lo = max(0, at - LEFT_REACH)
    near = max(lo, at - LEFT_CORE_MAX)  # a match of the core ends at `at`: none starts further left
    m = LEFT_CORE.search(line[near:at].lower())
    if m is None:
        return None
    start = near + m.start()
    floor = max(lo, start - 40)
    while start > floor and line[start - 1] in NAME_CHARS:
        start -= 1
    return line[start:near + m.end("core")]


# a secret-ish name assigned a quoted value (`password = "`): the place a value of a file that
# quotes its values (source code) starts; matched on lower-cased bytes
QUOTED = re.compile((NAME + r"[a-z0-9_.-]{0,24}[\"'\]]{0,2}[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}@?[\"'`]").encode())
QUOTED_SHAPE = b"(?i)" + QUOTED.pattern  # found in the prefilter's pass: a file that needs one and has none is done


# a value right after an assignment operator: quoted, or up to whitespace and separators
VALUE = re.compile(r"(?::=|=>|=|:)[ \t]{0,4}@?(?P<q>[\"'`]?)(?P<v>[^\s\"'`,;]{8,512})(?P=q)")
OPERATORS = re.compile(r"[:=]")


def assigned(line: str) -> Iterator[tuple[int, str]]:
    """(offset, value) after every operator, overlapping: `{KEY:"~=:x..."}` holds one value, not
    the `=:` inside it."""
    seen: set[int] = set()
    for op in OPERATORS.finditer(line):
        m = VALUE.match(line, op.start())
        if m is not None and m.start("v") not in seen:
            seen.add(m.start("v"))
            yield m.start("v"), m.group("v")


def locate(line: str, value: str) -> tuple[int, str]:
    """Where detect-secrets' value sits in the line; an unquoted one ends at whitespace."""
    at = line.find(value)
    if at < 0:
        return -1, value
    quoted = at > 0 and line[at - 1] in "\"'`"
    if not quoted:
        value = re.split(r"[\s,;]", value, maxsplit=1)[0]
    return at, value.rstrip(";,")
