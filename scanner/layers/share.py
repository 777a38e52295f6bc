"""Workers with no layer left help the ones still walking one: a walk sends batches of files to
them and scans the rest itself.

A layer is walked by one worker process: one stream, one tar walk, one order of events. When
fewer layers are left than workers (a one-layer image, or the largest layer of an image, still
walking after the others), the free workers would sit idle while the walking worker's one core
scans every file. Here they take files off it: the walk reads a file of up to SEND_MAX bytes
whole, puts it in a batch and goes on; a helper scans the batch with the same `FileScanner`
(`walk.scan_sent`) and sends back each file's hits, skipped content, digests and the bytes it
expanded from archives. The walk settles every entry in stream order (`walk._Walk`), so it builds
the result it would have built alone.

Flow: every helper grants `CREDITS` batches (one being scanned, the others on their way); a walk
sends a batch only against a credit, so a batch never waits long for a helper, and a file no
helper is free for is scanned where it is. An archive sent holds ASIDE bytes of the layer's expansion budget;
one that expands more comes back declined, and the walk scans it itself, against the budget as
it is then. (While archives are out, what they hold is counted as spent: a layer that gets near
its `max layer bytes` may reach it a few files earlier than a lone walk would; what is not
scanned is named either way.) Files over SEND_MAX stay with the walk.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional

from scanner.layers.nested import HEAD, FileScanner, archive_kind

CREDITS = 4  # batches a helper takes at a time: one scanned, three on their way
BATCH_BYTES = 2 << 20  # a batch of small files: about 5 ms of a helper's time
BATCH_FILES = 512
SEND_MAX = 8 << 20  # bytes of the largest file sent (read whole, held until it is back)
ASIDE = 64 << 20  # expansion budget an archive sent holds; one that needs more is declined
DECLINED = None  # a helper's reply for an archive that expands past ASIDE


class Share:
    """The channels between the workers of one pool: made in the parent before the workers fork,
    inherited by each (`join` gives it its slot)."""

    def __init__(self, ctx, workers: int) -> None:
        # queues, not bare pipes: a put hands the batch to a feeder thread, and the walk (the
        # busy one) goes on; writing it from the walk's own thread made the walk 15% slower
        self.jobs = ctx.Queue()
        self.results = [ctx.Queue() for _ in range(workers)]  # one per worker: its walks' replies
        # semaphores, not shared values: those live in a file multiprocessing makes in /dev/shm,
        # and a scan writes no file; a semaphore's count is read without a system call
        self._credits = ctx.Semaphore(0)
        self._replies = [ctx.Semaphore(0) for _ in range(workers)]  # replies put in each worker's queue
        self._slots = ctx.SimpleQueue()
        for slot in range(workers):
            self._slots.put(slot)
        self.slot: Optional[int] = None

    def join(self) -> None:
        self.slot = self._slots.get()

    def take(self) -> bool:
        """A credit for one batch, if a helper has one to give."""
        return self._credits.acquire(False)

    def grant(self, n: int) -> None:
        for _ in range(n):
            self._credits.release()

    def serve(self, scan_file: Callable[[str, int, bytes, int], Any]) -> int:
        """A helper's loop: scan the batches sent until `stop`; returns the files it scanned. An
        error scanning a batch declines all of it: the walk scans those files and meets it there."""
        served = 0
        self.grant(CREDITS)
        while True:
            job = self.jobs.get()
            if job is None:
                return served
            slot, epoch, number, files = job
            try:
                replies = [scan_file(path, ordinal, data, held) for path, ordinal, data, held in files]
            except Exception:  # noqa: BLE001 - the walk gets the files back and raises what it meets
                replies = [DECLINED] * len(files)
            self.results[slot].put((epoch, number, replies))
            self._replies[slot].release()
            served += len(files)
            self.grant(1)

    def reply(self, block: bool) -> Optional[tuple]:
        """The next reply in this worker's queue; None, without `block`, if no helper put one. A
        reply counted is on its way (a feeder thread writes it): `get` waits for it."""
        if not self._replies[self.slot].acquire(block):  # type: ignore[index]
            return None
        return self.results[self.slot].get()  # type: ignore[index]

    def stop(self, helpers: int) -> None:
        for _ in range(helpers):
            self.jobs.put(None)


@dataclass
class Ticket:
    """A file of the walk out with a helper; `reply` set when it comes back."""
    path: str
    ordinal: int
    info: Any  # its tar header, for the provenance of its hits
    data: Optional[bytes]
    held: int  # expansion budget set aside for it
    reply: Any = None
    back: bool = False


class Outbox:
    """One walk's side of the share: which files go, their batches, the replies."""

    def __init__(self, share: Share, files: FileScanner) -> None:
        self.share, self.files = share, files
        self._batch: Optional[list[Ticket]] = None  # open against a credit
        self._bytes = 0
        self._out: dict[int, list[Ticket]] = {}  # batch number -> its files, sent, not back
        self._number = 0
        self._epoch = os.urandom(8)  # replies to an earlier walk of this worker (it failed) are not ours
        self.sent = 0

    def wants(self, size: int) -> bool:
        """Whether a file of `size` bytes could go (a batch is open, or a helper is free)."""
        if not 0 < size <= SEND_MAX:
            return False
        if self._batch is None:
            if not self.share.take():
                return False
            self._batch = []  # open: the credit is its own until it is sent, or given back empty
        return True

    def send(self, path: str, ordinal: int, info, data: bytes) -> Optional[Ticket]:
        """The file's ticket, or None: it is the walk's to scan (an archive, and no budget to spare)."""
        held = 0
        if archive_kind(data[:HEAD]) is not None:
            if not self.files.set_aside(ASIDE):
                return self._maybe_close()
            held = ASIDE
        ticket = Ticket(path, ordinal, info, data, held)
        self._batch.append(ticket)  # type: ignore[union-attr]
        self._bytes += len(data)
        if self._bytes >= BATCH_BYTES or len(self._batch) >= BATCH_FILES:  # type: ignore[arg-type]
            self.flush()
        return ticket

    def _maybe_close(self) -> None:
        """A file that stays: an open batch with nothing in it gives its credit back by going empty."""
        if self._batch == []:
            self._batch = None
            self.share.grant(1)
        return None

    def flush(self) -> None:
        if not self._batch:
            self._maybe_close()
            return
        self._number += 1
        self._out[self._number] = self._batch
        self.share.jobs.put((self.share.slot, self._epoch, self._number,
                             [(t.path, t.ordinal, t.data, t.held) for t in self._batch]))
        self.sent += len(self._batch)
        self._batch, self._bytes = None, 0

    def collect(self, block: bool) -> None:
        """Take the replies that are in (with `block`, wait for one first)."""
        while self._out:
            got = self.share.reply(block)
            if got is None:
                return
            epoch, number, replies = got
            if epoch != self._epoch:
                continue
            block = False
            for ticket, reply in zip(self._out.pop(number), replies):
                ticket.reply, ticket.back = reply, True
                if reply is not DECLINED:
                    ticket.data = None


class Pending:
    """The entries of a walk after the first file still out, settled in stream order: a file's
    hits (and those of hardlinks to it) land where a lone walk would have put them."""

    MAX = 4096  # entries held back before the walk waits for the helpers

    def __init__(self, outbox: Outbox, settle: Callable[[Ticket], None]) -> None:
        self.outbox, self._settle = outbox, settle
        self._queue: deque = deque()

    def __bool__(self) -> bool:
        return bool(self._queue)

    def add(self, item) -> None:
        """A ticket, or the outcome of a later entry (a callable)."""
        self._queue.append(item)

    def settle(self, wait: bool = False) -> None:
        """Settle what can be, in order; with `wait` (or too much held back), all of it."""
        q = self._queue
        while q:
            head = q[0]
            if isinstance(head, Ticket):
                while not head.back:
                    must = wait or len(q) > self.MAX
                    if must:
                        self.outbox.flush()  # the head may sit in the batch not sent yet
                    self.outbox.collect(block=must)
                    if not head.back and not must:
                        return
                self._settle(q.popleft())
            else:
                q.popleft()()

    def finish(self) -> None:
        self.outbox.flush()
        self.settle(wait=True)
