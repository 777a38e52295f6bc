"""Heuristics the detectors share to tell a secret from what only looks like one.

Value checks (a placeholder, a typed example, text, an identifier from code), file checks
(documentation and templates, source code) and the left context of a match (a type or resource
name). Each takes bytes or a path, never raises, and runs only on a match a regex already made:
nothing here loops over a whole buffer.
"""
from __future__ import annotations

import binascii
import math
import re
from collections import Counter
from functools import lru_cache
from typing import Optional
from urllib.parse import unquote_to_bytes

from detect_secrets.filters.heuristic import is_sequential_string, is_templated_secret

# Values that stand in for a secret in templates and docs. Whole-value matches, lower-case.
_PLACEHOLDERS = {
    b"changeme", b"change-me", b"change_me", b"password", b"secret", b"example", b"redacted",
    b"your-key-here", b"your_key_here", b"yourkeyhere", b"your-token-here", b"your_token_here",
    b"none", b"null", b"true", b"false", b"undefined", b"todo", b"fixme", b"dummy", b"test",
}
# Marks of a documentation value anywhere in it (`wJalr...EXAMPLEKEY`, `EXAMPLE-PASSWORD`, `my-dummy-key`);
# `example` as a domain (`git.internal.example`, RFC 2606) names a host, not a fake value
_MARKS = (b"sample", b"dummy", b"placeholder", b"changeme", b"change_me", b"redacted", b"xxxx", b"****", b"...")
_EXAMPLE = re.compile(rb"(?<![.@])example(?!\.(?:com|org|net)\b)")
# The words example passwords are made of, once digits, punctuation and l33t are taken out
_WORDS = {b"password", b"passwd", b"passphrase", b"secret", b"topsecret", b"pass", b"admin", b"root",
          b"letmein", b"qwerty", b"welcome", b"default", b"changeit", b"test", b"demo", b"foobar", b"mypassword",
          b"mysecret", b"supersecret", b"secretkey", b"secretpassword", b"anonymous", b"guest", b"user",
          b"masterkey", b"tiger"}  # Firebird's documented default, Oracle's demo account's
_LEET = bytes.maketrans(b"01345$7@", b"oieassta")
_NOT_LETTERS = re.compile(rb"[^a-z]")
# printf / Go / str.format fields (`wrong%d`, `%vHTTP2_...`, `{0}`), not a `%` in a random password
_FORMAT_FIELD = re.compile(rb"^%[sdvwq]|%[sd]$|\{[0-9]?\}")
# Documentation files: context-only rules (no prefix, no validator) do not run there, since the
# passwords and tokens in docs are examples. Provider tokens and keys are still found in them.
_DOC_EXT = re.compile(r"(?i)\.(?:rst|md|markdown|mdx|adoc|asciidoc|rdoc|org|texi|texinfo|info(?:-\d+)?|pod|html?)"
                      r"(?:\.gz)?$")
_DOC_NAME = re.compile(r"(?i)^(?:readme|changelog|changes|news|history)(?:\.(?:txt|md|rst|gz))?$"
                       r"|^(?:METADATA|PKG-INFO)$"  # a Python package's long description
                       r"|^(?!.*\.so\b)[^/]*(?<![0-9])\.[1-9][a-z]{0,3}(?:\.gz)?$")  # man pages: ls.1, Net::SSLeay.3pm
# templates and examples: .env.example, config.sample.yml, settings.py.dist, examples-1.json
_TEMPLATE_NAME = re.compile(r"(?i)(?:^|[._-])(?:example|examples|sample|samples|template|tmpl|tpl|dist)(?:[._-]|$)")


_CODE_EXT = re.compile(r"(?i)\.(?:py|pyi|js|mjs|cjs|jsx|ts|mts|cts|tsx|java|kt|scala|groovy|go|rb|php|c|h|cc|cpp|"
                       r"hpp|cs|rs|swift|m|mm|pl|pm|lua|dart|vue|svelte|map)$")  # .map: source maps hold code
QUOTES = (b'"', b"'", b"`")


@lru_cache(maxsize=4096)  # asked for every buffer and candidate line of a file
def is_source_code(path: Optional[str]) -> bool:
    """Source code: `key: Type` and `key = name` there are code; only a quoted value is data."""
    return bool(path) and bool(_CODE_EXT.search(path))


@lru_cache(maxsize=4096)
def is_documentation(path: Optional[str]) -> bool:
    if not path:
        return False
    name = path.rpartition("/")[2]
    return bool(_DOC_EXT.search(path) or _DOC_NAME.match(name) or _TEMPLATE_NAME.search(name))


def looks_typed(value: bytes) -> bool:
    """Alphabet and digit walks people type for examples (`abcd1234`, `a1b2c3d4`, `AB1C2defGH`): a
    third of neighbours (or of characters two apart) ascending; random text has about 3%."""
    t = value.lower()
    n = len(t)
    if n < 8 or n > 512:
        return False

    def ascending(lag: int) -> float:
        hits = sum(1 for a, b in zip(t, t[lag:]) if b == a + 1 and (97 <= a < 122 or 48 <= a < 57))
        return hits / (n - lag)

    return ascending(1) >= 0.3 or ascending(2) >= 0.3 or _mashed(t) or _word_and_count(value)


# a word, then a counted suffix, the way example passwords are made (`Cisco#123`, `maglev123`,
# `catalyst@123`, `C1sco12`): the word's digits read as letters, the suffix an ascending digit run
_WORD_COUNT = re.compile(rb"(?P<word>[A-Za-z][A-Za-z0-9]{2,30}?)[!@#$%&*._-]?(?P<count>[0-9]{2,4})[!@#$%&*._-]?")


def _word_and_count(value: bytes) -> bool:
    m = _WORD_COUNT.fullmatch(value)
    if m is None:
        return False
    digits = m.group("count")
    word = m.group("word").lower().translate(_LEET)
    return (all(b == a + 1 for a, b in zip(digits, digits[1:])) and word.isalpha() and len(word) >= 4
            and _wordlike(word))


_HOME_ROW = frozenset(b"asdfghjkl")
_HOME_RUN = re.compile(rb"[asdfghjkl]{6}")
_LOWER_DIGITS = re.compile(rb"[a-z0-9]+")


def _mashed(low: bytes) -> bool:
    """Keys mashed on the home row for an example (`2kjshdfp92i34asdasd`, `sdf0o9823sjdfsdf`): half of
    the characters from `asdfghjkl`, six of them in a row, nothing but lower-case letters and digits
    (random strings of those have a quarter of them from the home row, and such a run rarely)."""
    return (len(low) <= 32 and _LOWER_DIGITS.fullmatch(low) is not None and _HOME_RUN.search(low) is not None
            and sum(c in _HOME_ROW for c in low) * 2 >= len(low))


_WORD = re.compile(rb"[A-Z]?[a-z]{3,}")
_FOUR_CONSONANTS = re.compile(rb"[^aeiouy]{4}")
_WEAK = (b"password", b"secret", b"passwd")


def _wordlike(run: bytes) -> bool:
    low = run.lower()
    return sum(c in b"aeiouy" for c in low) >= 0.3 * len(low) and not _FOUR_CONSONANTS.search(low)


_IDENT_PART = re.compile(rb"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_IDENT = re.compile(rb"_?[A-Za-z][A-Za-z_.]*[0-9]{0,4}")
_SHORT_WORDS = {b"id", b"io", b"db", b"of", b"to", b"by", b"is", b"on", b"in", b"at", b"or", b"ok", b"v", b"am",
                b"an", b"as", b"be", b"do", b"go", b"if", b"it", b"me", b"my", b"no", b"so", b"up", b"us", b"we"}
_NO_VOWEL_RUN = re.compile(rb"[^aeiouyAEIOUY]{5}")


def looks_like_identifier(value: bytes) -> bool:
    """A name from code, not a generated value: `_DSAPrivateKey`, `AWSAccessKeyId`, `rsa.RSAPrivateKey`,
    `PrivateKeyFlagsV2`: camel- or snake-case words of 3+ letters with vowels, acronyms of up to 5
    letters, digits only at the end. Random base62 strings of 12+ characters pass it 99% of the time."""
    if len(value) < 10 or not _IDENT.fullmatch(value):
        return False
    tokens = [t for part in re.split(rb"[_.]", value) for t in _IDENT_PART.findall(part) if not t.isdigit()]
    for t in tokens:
        if t.isupper():
            if len(t) > 5:
                return False
        elif len(t) < 3 and t.lower() not in _SHORT_WORDS:
            return False
        elif not any(c in b"aeiouyAEIOUY" for c in t) or _NO_VOWEL_RUN.search(t):
            return False
    return sum(1 for t in tokens if len(t) >= 3 and not t.isupper()) >= 2


def looks_like_text(value: bytes) -> bool:
    """Not a generated secret: mostly words (`Mustbe8characters`, `DeviceCodeCredentialDelete...`),
    a weak word in l33t (`N0tSoS3cretP4ssw0rd`), or repetitive (`GPL-1.0GPL-2.0GPL-3.0...`).
    Random base62 or lower-case+digit strings of 12+ characters pass it 99.5% of the time."""
    n = len(value)
    if n >= 12 and sum(c in b"0123456789" for c in value) <= 0.15 * n:
        words = [w for w in _WORD.findall(value) if _wordlike(w)]
        if (len(words) >= 2 or (words and len(words[0]) >= 16)) and sum(map(len, words)) >= 0.75 * n:
            return True
    if n <= 40:
        letters = _NOT_LETTERS.sub(b"", value.lower().translate(_LEET))
        if any(w in letters for w in _WEAK) or _disguised_weak_word(value.lower()):
            return True
    if n >= 24:
        grams = [value[i:i + 3] for i in range(n - 2)]
        return len(set(grams)) < 0.6 * len(grams)
    return False


# a weak word with some of its letters (not the first) swapped for digits or symbols, whatever the
# substitution (`pa33w0rd`, `p@$$w*rd`, `s3cr#t`): at least half of its letters kept
_DISGUISED = [(w, re.compile(w[:1] + b"".join(b"[" + bytes([c]) + rb"\W\d_]" for c in w[1:])))
              for w in _WEAK]


def _disguised_weak_word(low: bytes) -> bool:
    for word, pattern in _DISGUISED:
        for m in pattern.finditer(low):
            if sum(a == b for a, b in zip(m.group(), word)) * 2 >= len(word):
                return True
    return False


# stored hashes, not passwords: crypt(3) (`$1$`, `$5$`, `$6$`, bcrypt `$2b$`, yescrypt `$y$`), PHC strings
# (`$argon2id$`, `$scrypt$`, `$pbkdf2-sha256$`), Django's `pbkdf2_sha256$<n>$salt$hash`, LDAP `{SSHA}`,
# PostgreSQL's `md5<hex>` and `SCRAM-SHA-256$...`, MySQL's `*<40 hex>`
_HASH = re.compile(rb"\$(?:1|2[abxy]?|5|6|7|y|gy|md5|sha1|apr1|argon2(?:id|i|d)|scrypt|pbkdf2(?:-sha(?:1|256|512))?|"
                   rb"bcrypt(?:-sha256)?)\$[./A-Za-z0-9$=+,-]{8,}"
                   rb"|(?:pbkdf2_sha(?:1|256|512)|argon2|bcrypt(?:_sha256)?|scrypt|sha1|md5|crypt)\$[./A-Za-z0-9$=+,-]{8,}"
                   rb"|\{(?:SSHA(?:256|512)?|SHA(?:256|512)?|SMD5|MD5|CRYPT|PBKDF2[A-Z0-9-]*|ARGON2)\}[./A-Za-z0-9$=+-]{8,}"
                   rb"|md5[0-9a-f]{32}|SCRAM-SHA-(?:1|256)\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=:]+|\*[0-9A-F]{40}")


def looks_like_hash(value: bytes) -> bool:
    """A password hash in one of the stored formats: what a password-hash rule reports, not a password."""
    return bool(_HASH.fullmatch(value.strip(b"'\"")))


# the passwords documentation pairs with a user name: Oracle's demo account scott/tiger (in
# SQLAlchemy's, Django's and many ORMs' docs, also as `tiger^5HHH`), `foo:bar`, `john:doe`
_DEMO_PAIRS = {b"scott": b"tiger", b"foo": b"bar", b"john": b"doe", b"jdoe": b"doe", b"alice": b"alice",
               b"bob": b"bob", b"user": b"pass", b"username": b"pass"}


def is_example_credential(user: bytes, password: bytes) -> bool:
    """A `user:password` pair from documentation: the password is the user name (`postgres:postgres`),
    a placeholder, or the one the docs pair with that user (`scott:tiger`, `scott:tiger^5HHH`)."""
    u, p = unquote_to_bytes(user).lower(), unquote_to_bytes(password).lower()  # `P%40SSWORD` is `P@SSWORD`
    if u and (p == u or p.startswith(u + b"@")):
        return True
    demo = _DEMO_PAIRS.get(u)
    letters = _NOT_LETTERS.sub(b"", p.translate(_LEET))
    return bool(demo and letters.startswith(demo)) or is_placeholder(password) or is_placeholder(p)


def shannon_entropy(data: bytes) -> float:
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def is_placeholder(secret: bytes) -> bool:
    """Templated, indirect or obviously fake values (`${X}`, `{{ x }}`, `<token>`, `xxxx`, `changeme`,
    `EXAMPLEKEY`, `P@55w0rd!`, `abcd1234`, `wrong%d`)."""
    low = secret.lower().strip(b"'\"\\")
    if low in _PLACEHOLDERS or len(set(low)) <= 2:
        return True
    if low.startswith((b"${", b"$(", b"{{", b"<", b"%(", b"#{")) or low.endswith((b"}}", b">")):
        return True
    if any(mark in low for mark in _MARKS) or _EXAMPLE.search(low) or _FORMAT_FIELD.search(secret):
        return True
    if len(low) <= 32 and (_NOT_LETTERS.sub(b"", low) in _WORDS
                           or _NOT_LETTERS.sub(b"", low.translate(_LEET)) in _WORDS):
        return True
    text = secret.decode("latin-1")
    return is_templated_secret(text) or bool(_CALL.match(text)) or is_sequential_string(text)


_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def encodes_placeholder(secret: bytes) -> bool:
    """base64 of a placeholder (`Y2hhbmdlbWU=`, `changeme`): a Kubernetes Secret's `data:` value
    or an encoded default, as fake as the text it encodes."""
    if len(secret) < 8 or len(secret) % 4 or not _BASE64.fullmatch(secret):
        return False
    text = binascii.a2b_base64(secret)
    return text.isascii() and text.decode("ascii").isprintable() and is_placeholder(text)


# an indirect reference: get_secret(), env["X"], `password = get_secret()`
_CALL = re.compile(r"^(?:[\w.]+\s*[=:]\s*)?[A-Za-z_][\w.]*[\[(]\S*[\])]$")


_NAME_TAIL = re.compile(rb"[A-Za-z0-9_.:*-]{1,80}$")


def in_type_name(buf: bytes, at: int) -> bool:
    """The name a context rule matched is part of a type or resource name, not a variable:
    `AWS::SecretsManager::Secret`, `arn:aws:secretsmanager:...:secret:name`."""
    m = _NAME_TAIL.search(buf, max(0, at - 80), at)
    if m is None:
        return False
    name = m.group()
    return b"::" in name or (name.endswith(b":") and name.count(b":") >= 2)
