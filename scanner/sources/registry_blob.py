"""A registry blob as a stream: `RemoteReader` reads it over the registry client, resuming a
connection dropped mid-blob with a `Range` request, within the run's deadline (kept on the
worker's clock: `BlobOrigin.deadline`). The caller (`blobs.open_blob`) checks length and digest."""
from __future__ import annotations

import contextlib
import io
import re
from typing import Iterator, Optional

import requests

from scanner.models import Blob
from scanner.sources.bounded import CHUNK
from scanner.sources.interface import SourceError
from scanner.sources.registry_http import _DROPS, BlobOrigin, RegistryClient


class RemoteReader(io.RawIOBase):
    """A blob's bytes from the registry. A connection dropped mid-blob is reopened with a
    `Range` request from where it stopped (or re-read and skipped, if the registry ignores
    Range), up to the retry policy's attempts; the caller hashes what it gets."""

    def __init__(self, client: RegistryClient, digest: str, size: int, what: str) -> None:
        self.client, self.digest, self.size, self.what = client, digest, size, what
        self.offset = 0
        self._resp: Optional[requests.Response] = None
        self._skip = 0
        self._connections = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self.offset < self.size:
            if self._resp is None:
                self._open()
            want = min(self._skip or len(buffer), 1 << 20)
            self.client.deadline.check(f"while {self.client.endpoint.host} sent {self.what}")
            try:  # what one read of the socket gives: a registry that drips is timed between reads
                data = self._resp.raw.read1(min(want, CHUNK * 16), decode_content=False)
            except _DROPS as exc:
                stopped = self.client.stopped(self.what)
                if stopped is not None:
                    self._close_response()
                    raise stopped from None
                self._dropped(exc.__class__.__name__)
                continue
            if not data:  # the response ended as it said it would: the blob is short, not cut
                self._close_response()
                raise SourceError(f"{self.what}: the registry sent {self.offset} bytes, the manifest says {self.size}")
            if self._skip:  # the registry ignored Range: drop what was already read
                self._skip -= len(data)
                continue
            n = len(data)
            buffer[:n] = data
            self.offset += n
            return n
        return 0

    def _open(self) -> None:
        self._connections += 1
        headers = {"Range": f"bytes={self.offset}-"} if self.offset else {}
        resp = self.client.get(f"blobs/{self.digest}", headers, whole=False)
        if resp.status_code == 206 and self.offset:
            start = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if not start or int(start.group(1)) != self.offset:
                resp.close()
                raise SourceError(f"{self.what}: the registry resumed the blob at the wrong offset")
            self._skip = 0
        elif resp.status_code == 200:
            self._skip = self.offset
        else:
            error = self.client.status_error(resp, self.what)
            resp.close()
            raise error
        self._resp = resp

    def _dropped(self, reason: str) -> None:
        self._close_response()
        policy = self.client.endpoint.retry
        if self._connections >= policy.attempts:
            raise SourceError(f"{self.what}: connection to {self.client.endpoint.host} dropped mid-blob "
                              f"{self._connections} times ({reason}); gave up at byte {self.offset} of {self.size}")
        policy.pause(self._connections - 1, self.client.deadline, f"{self.what} from {self.client.endpoint.host}")

    def _close_response(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def close(self) -> None:
        self._close_response()
        super().close()


@contextlib.contextmanager
def open_remote(blob: Blob, what: str) -> Iterator[RemoteReader]:
    """A registry blob as a stream: the caller (`blobs.open_blob`) checks length and digest."""
    origin: BlobOrigin = blob.origin
    if not isinstance(origin, BlobOrigin) or blob.digest is None:
        raise SourceError(f"{what}: a registry blob without its registry or digest")
    client = RegistryClient(origin.endpoint, origin.repository, origin.deadline)
    reader = RemoteReader(client, blob.digest, blob.size, what)
    try:
        yield reader
    finally:
        reader.close()
        client.close()
