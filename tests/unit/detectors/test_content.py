"""Chunked content scanning: every secret once, at its right line, whatever the chunk borders."""
from __future__ import annotations

import hashlib
import io

import pytest

from scanner.detectors.content import ContentScanner
from scanner.detectors.entropy import EntropyDetector
from scanner.detectors.files import CredentialFileDetector
from scanner.detectors.interface import Detector
from scanner.detectors.rules import load_rule_files, load_rules
from scanner.detectors.signature import SignatureDetector
from scanner.models import DetectorKind, Hit, Secret, Severity
from tests import secrets_catalog as sc
from tests.corpus.build import layout

KEY = sc.AWS_KEY_ID.encode()  # 20 bytes
CHUNK, OVERLAP = 64, 32


@pytest.fixture(scope="module")
def small(unit_rules) -> ContentScanner:
    return ContentScanner([SignatureDetector(unit_rules)], keep_values=True, chunk=CHUNK, overlap=OVERLAP)


def filler(n: int) -> bytes:
    """n bytes of text with a newline every 10 bytes, no secret in it."""
    return b"".join(b"abcdefghi\n" for _ in range(n // 10 + 1))[:n]


def short_reads(data: bytes, most: int):
    stream = io.BytesIO(data)
    return lambda n: stream.read(min(n, most))


def located(scanner: ContentScanner, data: bytes, read=None) -> list[tuple[str, int, int, bytes]]:
    read = read or io.BytesIO(data).read
    return [(loc.match.rule_id, loc.match.start, loc.line, loc.match.secret) for loc in scanner.scan_stream(read, "/f")]


@pytest.mark.parametrize("offset", range(0, 3 * CHUNK + 5))
def test_secret_at_every_offset_is_found_once_with_its_line(small, offset):
    data = filler(offset) + KEY + b"\n" + filler(150)
    line = filler(offset).count(b"\n") + 1
    assert located(small, data) == [("unit-aws-key-id", offset, line, KEY)]


@pytest.mark.parametrize("border", [CHUNK, 2 * CHUNK - OVERLAP, 2 * CHUNK])
@pytest.mark.parametrize("shift", range(-len(KEY), 1))
def test_secret_straddling_a_chunk_border(small, border, shift):
    """`border` is where a read ends; the key starts `-shift` bytes before it."""
    offset = border + shift
    data = filler(offset) + KEY + filler(200)
    assert located(small, data) == [("unit-aws-key-id", offset, filler(offset).count(b"\n") + 1, KEY)]


def test_secret_ending_the_file_exactly_at_a_border(small):
    data = filler(CHUNK - len(KEY)) + KEY
    assert located(small, data) == [("unit-aws-key-id", CHUNK - len(KEY), 5, KEY)]


@pytest.mark.parametrize("most", [1, 7, 33, 64, 1000])
def test_short_reads_change_nothing(small, most):
    data = filler(100) + KEY + filler(77) + KEY + b"\n" + filler(3)
    expected = [("unit-aws-key-id", 100, 11, KEY), ("unit-aws-key-id", 197, 18, KEY)]
    assert located(small, data, short_reads(data, most)) == expected


def test_line_numbers_across_many_chunks(small):
    lines = [f"line {i}: nothing here".encode() for i in range(300)]
    secret_lines = [3, 17, 64, 65, 150, 299]
    for n in secret_lines:
        lines[n - 1] = b"key=" + KEY + b" # on line %d" % n
    data = b"\n".join(lines) + b"\n"
    found = located(small, data)
    assert [(rule, line) for rule, _, line, _ in found] == [("unit-aws-key-id", n) for n in secret_lines]
    assert [start for _, start, _, _ in found] == [data.index(b"key=" + KEY + b" # on line %d" % n) + 4
                                                  for n in secret_lines]


def test_two_secrets_side_by_side_on_a_border(small):
    gh = sc.GITHUB_PAT.encode()
    data = filler(CHUNK - 10) + KEY + gh + filler(100)
    found = sorted(located(small, data), key=lambda f: f[1])
    assert found == [("unit-aws-key-id", CHUNK - 10, 6, KEY), ("unit-github-pat", CHUNK + 10, 6, gh)]


def test_crlf_lines(small):
    data = b"a\r\nb\r\n" + KEY + b"\r\n"
    assert located(small, data) == [("unit-aws-key-id", 6, 3, KEY)]


def test_private_key_spanning_chunks(unit_rules):
    scanner = ContentScanner([SignatureDetector(unit_rules)], chunk=128, overlap=1024)
    pem = sc.RSA_PRIVATE_KEY.encode().strip()
    data = filler(300) + pem + b"\n" + filler(700)
    found = located(scanner, data)
    assert found == [("unit-private-key", 300, 31, pem)]


@pytest.mark.parametrize("chunk", [CHUNK, 1 << 20])
def test_binary_content_has_no_line(unit_rules, chunk):
    scanner = ContentScanner([SignatureDetector(unit_rules)], chunk=chunk, overlap=OVERLAP)
    data = b"\x7fELF\x00\x01\n\n\n" + filler(40) + KEY + b"\x00" + filler(200)
    assert located(scanner, data) == [("unit-aws-key-id", 49, None, KEY)]


def test_binary_secret_on_a_border_found_once(small):
    data = b"\x00" * 50 + KEY + b"\x00" * 100
    assert located(small, data) == [("unit-aws-key-id", 50, None, KEY)]


def test_empty_and_clean_content(small):
    assert located(small, b"") == []
    assert located(small, filler(1000)) == []


def test_hits_carry_the_whole_location(unit_rules):
    scanner = ContentScanner([SignatureDetector(unit_rules)], keep_values=True)
    data = b"x\ny\nAWS=" + KEY + b"\n"
    assert scanner.hits(io.BytesIO(data).read, "/app/.env", 7) == [Hit(
        rule_id="unit-aws-key-id", detector=DetectorKind.SIGNATURE, severity=Severity.CRITICAL,
        title="AWS access key id (unit)", path="/app/.env", line=3,
        secret=Secret(hashlib.sha256(KEY).hexdigest(), "AKIA****...TB3P"), inner_path=None, ordinal=7)]
    assert scanner.hits(io.BytesIO(data).read, "/x", 0)[0].secret.value == sc.AWS_KEY_ID


def test_values_dropped_unless_kept(unit_rules):
    scanner = ContentScanner([SignatureDetector(unit_rules)], keep_values=False)
    [hit] = scanner.hits(io.BytesIO(KEY).read, "/x", 0, inner_path="a/b.properties")
    assert hit.secret.value is None
    assert hit.inner_path == "a/b.properties"


def test_memory_is_bounded_by_the_chunk(small):
    """Every read asks for at most one chunk: a 1 MiB file never sits whole in one buffer."""
    data = filler(1 << 20)
    stream = io.BytesIO(data)
    asked: list[int] = []

    def read(n: int) -> bytes:
        asked.append(n)
        return stream.read(n)

    small.scan_stream(read, "/big")
    assert set(asked) == {CHUNK}
    assert len(asked) == len(data) // CHUNK + 1


CONTEXT_RULE = r"""
rules:
  - id: unit-context-password
    title: Password after its keyword (unit)
    severity: medium
    keywords: [db_password]
    regex: '(?i)db_password\s*=\s*(?P<secret>[A-Za-z0-9!#$%&*+-]{12,24})'
"""


@pytest.fixture(scope="module")
def context_scanner(tmp_path_factory) -> ContentScanner:
    from scanner.detectors.rules import load_rule_files

    path = tmp_path_factory.mktemp("ctx") / "ctx.yaml"
    path.write_text(CONTEXT_RULE)
    return ContentScanner([SignatureDetector(load_rule_files([path]))], chunk=CHUNK, overlap=OVERLAP)


@pytest.mark.parametrize("offset", range(0, 2 * CHUNK + 5))
def test_secret_whose_context_straddles_a_border(context_scanner, offset):
    """The regex needs `DB_PASSWORD = ` before the secret: a border between them must not lose it."""
    line = b"DB_PASSWORD = " + sc.DB_PASSWORD.encode()
    data = filler(offset) + line + b"\n" + filler(150)
    secret_at = offset + len(b"DB_PASSWORD = ")
    assert located(context_scanner, data) == [
        ("unit-context-password", secret_at, filler(offset).count(b"\n") + 1, sc.DB_PASSWORD.encode())]


def test_line_numbers_whatever_the_order_of_the_matches():
    from scanner.detectors.content import line_numbers
    from scanner.detectors.interface import Match
    buf = b"a\nb\n\nKEY\nx KEY\n"
    at = [buf.rindex(b"KEY"), 0, buf.index(b"KEY"), 2]
    matches = [Match("r", DetectorKind.SIGNATURE, Severity.LOW, "t", s, s + 1, b"k") for s in at]
    assert line_numbers(buf, matches) == [5, 1, 4, 2]
    assert line_numbers(buf, matches, first=10) == [14, 10, 13, 11]
    assert line_numbers(buf, []) == []


def test_most_stops_reading_after_the_chunk_that_passes_it(small):
    """A file made of secrets: reading stops once there are more than `most` matches (lines still
    right), so memory does not grow with it."""
    data = b"".join(KEY[:4] + b"%016d" % i + b"\n" for i in range(2000))
    reads = []

    def read(n):
        reads.append(n)
        return stream.read(n)
    stream = io.BytesIO(data)
    found = small.scan_stream(read, "/f", most=5)
    assert 5 < len(found) < 20 and [loc.line for loc in found] == list(range(1, len(found) + 1))
    assert len(reads) < 10  # of about 660 chunks
    assert len(small.scan_stream(io.BytesIO(data).read, "/f")) == 2000


# --- the gate: detectors that need a hit of the shared prefilter pass --------------------------


class _Counting(Detector):
    """A detector that counts the buffers it is asked about, and finds nothing."""

    def __init__(self, gate=None) -> None:
        self.seen, self._gate_of = 0, gate

    def gate(self):
        return self._gate_of

    def scan(self, buf, path=None):
        self.seen += 1
        return iter(())


@pytest.fixture(scope="module")
def real() -> tuple[SignatureDetector, ContentScanner]:
    signature = SignatureDetector(load_rules())
    content = ContentScanner([signature, EntropyDetector(signature), CredentialFileDetector(signature)],
                             keep_values=True)
    return signature, content


def ungated(content: ContentScanner) -> ContentScanner:
    out = ContentScanner(content.detectors, keep_values=True)
    out._gate, out._ungated = None, out.detectors  # every detector asked about every buffer
    return out


def gate_cases() -> list[tuple[str, bytes]]:
    """Every rule's examples, alone and assigned in a config line, under several kinds of path;
    every file of the quality corpus (planted secrets, vendor files, decoys) under its own path."""
    cases: list[tuple[str, bytes]] = []
    for rule in load_rules().rules:
        for example in (*rule.positives, *rule.negatives):
            value = example.encode()
            for path in ("/app/.env", "/app/settings.py", "/usr/share/doc/x/README.md", "/root/.npmrc"):
                cases += [(path, value), (path, b"API_TOKEN=" + value + b"\n"), (path, b'password = "' + value + b'"\n')]
    lay = layout(0)
    cases += [(e.path, e.data) for e in (*lay.base, *lay.added) if e.data]
    return cases


def test_gated_detectors_are_not_asked_about_a_buffer_the_pass_finds_nothing_in(real) -> None:
    signature, _ = real
    gated, other = _Counting(gate=signature), _Counting()
    content = ContentScanner([signature, gated, other])
    content.scan_buffer(b"plain text, nothing shaped like a secret\n", "/app/a.txt")
    assert (gated.seen, other.seen) == (0, 1)
    content.scan_buffer(b"token = 'aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRva2Vu'\n", "/app/a.txt")
    assert (gated.seen, other.seen) == (1, 2)


def test_no_gate_without_one_shared_pass(real, unit_rules) -> None:
    signature, _ = real
    two = ContentScanner([_Counting(gate=signature), _Counting(gate=SignatureDetector(unit_rules))])
    two.scan_buffer(b"nothing here", "/a")
    assert [d.seen for d in two.detectors] == [1, 1]  # two passes: every detector is asked


def test_credential_files_are_still_parsed_where_the_pass_finds_nothing(real) -> None:
    _, content = real
    line = b"db.example.com:5432:app:me:Sup3rS3cretV4lue\n"
    assert content.detectors[0].prescan(line).empty  # no keyword, no assignment: nothing for the pass
    assert [m.rule_id for m in content.scan_buffer(line, "/root/.pgpass")] == ["pgpass-password"]


def test_the_gate_changes_no_finding(real) -> None:
    """The gate only skips work: every case finds what it finds with every detector asked."""
    _, content = real
    plain = ungated(content)
    cases = gate_cases()
    assert len(cases) > 1000
    quiet = sum(content.detectors[0].prescan(data).empty for _, data in cases)
    assert 0 < quiet < len(cases)  # the gate is taken, and not taken
    for path, data in cases:
        assert content.scan_buffer(data, path) == plain.scan_buffer(data, path), (path, data[:80])


def test_a_rule_no_pass_places_runs_on_every_buffer_ungated(tmp_path, monkeypatch) -> None:
    """Without Hyperscan a rule without keywords cannot be placed: it runs over every buffer, so
    the signature detector has no gate, and the entropy detector keeps the pass's (its shapes)."""
    monkeypatch.setenv("LAYERSCAN_PREFILTER", "python")
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - id: bare\n    title: t\n    severity: high\n"
                    "    regex: '(?P<secret>zqx[0-9]{12})'\n")
    signature = SignatureDetector(load_rule_files([path]))
    content = ContentScanner([signature, EntropyDetector(signature)], keep_values=True)
    assert signature.gate() is None
    assert [m.rule_id for m in content.scan_buffer(b"id zqx123456789012\n", "/a.txt")] == ["bare"]
