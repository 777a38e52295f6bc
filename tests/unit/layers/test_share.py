"""Idle workers help a walk (`scanner.layers.share`): the layer's scan is what the walk makes alone.

The helper here is a real forked process serving the walk's batches, as in the runner's pool."""
from __future__ import annotations

import gzip
import os
import random
import time
from functools import partial
from multiprocessing import get_context

import pytest

import scanner.layers.share as share_module
from scanner.layers.share import DECLINED, Share
from scanner.layers.walk import scan_layer, scan_sent
from scanner.limits import Limits
from scanner.sources.interface import SourceError
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import layer_file, raw_entry

ENV = f"AWS_ACCESS_KEY_ID={sc.AWS_KEY_ID}\n".encode()
DPKG_STATUS = b"Package: tzdata\nStatus: install ok installed\nVersion: 2024a-1\nArchitecture: all\n\n"


def filler(i: int, size: int = 3000) -> bytes:
    """Text without a secret that compresses as text does (about 2:1, far from a bomb's ratio)."""
    rng = random.Random(i)
    return b"".join(b"%d %s\n" % (n, rng.randbytes(24).hex().encode()) for n in range(size // 56))


def entries() -> list[ik.Entry]:
    """Every kind of file and entry a walk meets, in an order that makes the outcomes of a file
    sent to a helper and of later entries interleave."""
    out = [ik.dir("/app"), ik.file("/var/lib/dpkg/status", DPKG_STATUS)]
    for i in range(40):
        out.append(ik.file(f"/app/plain{i}.txt", filler(i)))
        if i % 5 == 0:
            out.append(ik.file(f"/app/env{i}", ENV))  # a hit, then hardlinks to it
            out.append(ik.hardlink(f"/app/link{i}", f"/app/env{i}"))
        if i % 7 == 0:
            out.append(ik.file(f"/app/man{i}.gz", gzip.compress(filler(i) + ENV, mtime=0)))  # small gzip
            out.append(ik.file(f"/app/bundle{i}.zip", ik.pack_zip({"a/.env": ENV, "b.txt": filler(i)})))
    out += [
        ik.file("/app/big.gz", gzip.compress(filler(0, 3 << 20) + ENV, mtime=0)),  # over the small-gzip size
        ik.file("/app/large.txt", filler(1, 300_000) + ENV),  # over SEND_MAX here: stays with the walk
        ik.file("/app/env0", b"replaced: nothing here\n"),  # the same path again, now clean
        ik.hardlink("/app/relinked", "/app/env0"),  # a link to the file as it is now: no hit
        ik.hardlink("/app/early", "/app/later"),  # target after the link: not held
        ik.file("/app/later", ENV),
        ik.hardlink("/app/missing", "/nowhere"),
        ik.file("/app/empty", b""),
        ik.file("/app/many", ENV * 30),  # over max file findings (set to 20 below)
    ]
    out.append(raw_entry("app/odd", b"x" * 10, type_=b"Z"))  # an unknown type: named, not scanned
    return out


LIMITS = Limits(max_file_findings=20)


class Helper:
    """A forked process serving the share's batches, as a pool worker with no layer would."""

    def __init__(self, share: Share, content, limits: Limits, scan_file=scan_sent) -> None:
        ctx = get_context("fork")
        self.share, self._served = share, ctx.SimpleQueue()
        serve = partial(share.serve, partial(scan_file, content, limits))
        self._process = ctx.Process(target=lambda: self._served.put(serve()), daemon=True)
        self._process.start()
        deadline = time.monotonic() + 10
        while share._credits.get_value() < share_module.CREDITS and time.monotonic() < deadline:
            time.sleep(0.001)  # serving: the walk's first files find it free

    def stop(self) -> int:
        self.share.stop(1)
        served = self._served.get()
        self._process.join(10)
        return served


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of a few files, files over 64 KiB kept by the walk: many batches in a small layer."""
    monkeypatch.setattr(share_module, "BATCH_FILES", 3)
    monkeypatch.setattr(share_module, "SEND_MAX", 64 << 10)


def shared_scan(layer, content, limits: Limits = LIMITS, scan_file=scan_sent):
    share = Share(get_context("fork"), 2)
    share.join()  # the walk's slot; the helper forks with it, and never reads it
    helper = Helper(share, content, limits, scan_file)
    try:
        return scan_layer(layer, content, limits=limits, share=share), share, helper
    finally:
        served = helper.stop()
        helper.served = served


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_walk_with_a_helper_gives_what_it_gives_alone(tmp_path, content, small_batches, compression):
    layer = layer_file(tmp_path / "l.tar", entries(), compression)
    alone = scan_layer(layer, content, limits=LIMITS)
    shared, _, helper = shared_scan(layer, content)
    # The helper granted its credits before the walk began, so each of the first batches went to it
    # (more do as its timing allows: asserting more would fail on a busy machine, as CI showed).
    assert helper.served >= share_module.CREDITS
    assert shared == alone
    assert {h.path for h in alone.hits} >= {"/app/env5", "/app/link5", "/app/later", "/app/many", "/app/big.gz",
                                           "/app/large.txt", "/app/man7.gz", "/app/bundle7.zip"}
    assert "/app/link0" in {h.path for h in alone.hits} and "/app/relinked" not in {h.path for h in alone.hits}
    assert all(h.file is not None and h.file.sha256 for h in shared.hits)
    assert [s.path for s in alone.skipped] == ["/app/early", "/app/missing", "/app/many", "/app/odd"]
    assert alone.packages and shared.packages == alone.packages


def test_an_archive_that_expands_past_what_was_set_aside_is_scanned_by_the_walk(tmp_path, content,
                                                                                small_batches, monkeypatch):
    monkeypatch.setattr(share_module, "ASIDE", 1 << 20)  # big.gz expands 3 MiB: declined, scanned by the walk
    monkeypatch.setattr(share_module, "SEND_MAX", 8 << 20)
    seen = get_context("fork").SimpleQueue()  # from the helper's process

    def spy(*args):
        reply = scan_sent(*args)
        seen.put((args[2], reply is DECLINED))
        return reply

    layer = layer_file(tmp_path / "l.tar", [e for e in entries() if e.path in ("/app/big.gz", "/app/env5")], "gzip")
    shared, _, _ = shared_scan(layer, content, scan_file=spy)
    assert shared == scan_layer(layer, content, limits=LIMITS)
    assert "/app/big.gz" in {h.path for h in shared.hits}
    replies = []
    while not seen.empty():
        replies.append(seen.get())
    assert replies == [("/app/env5", False), ("/app/big.gz", True)]


def test_a_helper_that_fails_gives_the_files_back(tmp_path, content, small_batches):
    def broken(content, limits, path, ordinal, data, held):
        raise RuntimeError("a bug in the helper")

    layer = layer_file(tmp_path / "l.tar", entries(), "gzip")
    shared, _, helper = shared_scan(layer, content, scan_file=broken)
    assert helper.served >= share_module.CREDITS
    assert shared == scan_layer(layer, content, limits=LIMITS)


def test_the_layer_budget_holds_with_files_out(tmp_path, content, small_batches):
    """Near its max layer bytes, what a walk with a helper leaves unscanned is named as it is alone."""
    man = [ik.file(f"/man/page{i}.gz", gzip.compress(filler(i, 200_000), mtime=0)) for i in range(30)]
    layer = layer_file(tmp_path / "l.tar", man, "gzip")
    limits = Limits(max_layer_bytes=3 << 20)
    shared, _, _ = shared_scan(layer, content, limits)
    reasons = {s.reason for s in shared.skipped}
    assert any("max layer bytes" in r for r in reasons)
    alone = scan_layer(layer, content, limits=limits)
    assert {s.path for s in shared.skipped} >= {s.path for s in alone.skipped}


def test_replies_to_a_walk_that_failed_do_not_reach_the_next(tmp_path, content, small_batches):
    good = layer_file(tmp_path / "good.tar", entries(), "gzip", index=1)
    tar = ik.layer_tar(entries())
    cut = layer_file(tmp_path / "cut.tar", tar=tar[:len(tar) * 2 // 3], compression="gzip", check=False)
    share = Share(get_context("fork"), 2)
    share.join()
    helper = Helper(share, content, LIMITS)
    try:
        with pytest.raises(SourceError, match="corrupt tar|unexpected end"):
            scan_layer(cut, content, limits=LIMITS, share=share)
        again = scan_layer(good, content, limits=LIMITS, share=share)
    finally:
        helper.stop()
    assert again == scan_layer(good, content, limits=LIMITS)


def test_a_one_layer_image_is_scanned_by_every_worker(tmp_path, unit_rules, monkeypatch):
    """The runner gives a lone large layer helpers from the start; the findings are the same."""
    from scanner.pipeline import ScanOptions, Scanner
    from tests.unit.conftest import write_image

    real = share_module.Share.serve
    done = get_context("fork").Queue()
    monkeypatch.setattr(share_module.Share, "serve", lambda self, f: done.put(real(self, f)) or 0)
    # about 5 MB of blob: over the runner's POOL_MIN_BYTES
    files = [ik.file(f"/data/f{i}.txt", os.urandom(2500).hex().encode() + (ENV if i % 50 == 0 else b""))
             for i in range(2000)]
    spec = ik.ImageSpec([ik.LayerSpec("ADD data /", files)])
    path, _ = write_image(tmp_path, spec, "oci-archive", "gzip")
    one = Scanner(unit_rules, ScanOptions(workers=1)).scan([str(path)])
    waited, take_now = [], share_module.Share.take

    def take(self):  # the walk's first file waits for the helper: it gets files on a busy machine too
        if not waited:
            waited.append(True)
            return self._credits.acquire(True, 30)
        return take_now(self)

    monkeypatch.setattr(share_module.Share, "take", take)
    two = Scanner(unit_rules, ScanOptions(workers=2)).scan([str(path)])
    assert done.get(timeout=30) > 0  # the files the helper scanned
    assert [(f.hit.path, f.hit.line) for f in two.images[0].findings] == \
        [(f.hit.path, f.hit.line) for f in one.images[0].findings]
    assert len(one.images[0].findings) == 40

