"""The resumable download loop: pre-signed link -> sink, in chunks, surviving expiry and broken streams.

No Airflow here (the benchmark drives it directly). A rejected link (403: expired or tampered) is replaced
by a fresh one; a broken or truncated body is resumed with ``Range`` where the server answers 206, and
restarted from byte 0 where it does not (or where the file behind the link may have changed). Attempts are
bounded.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_msghistory.client.errors import ApiConnectionError, MsgHistoryError
from airflow_provider_msghistory.transfers.streaming import CsvDigest, ProgressLog

CHUNK_SIZE = 1 << 20
READ_AHEAD = 4  # chunks buffered between the network thread and the writer: memory stays bounded
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


class DownloadError(MsgHistoryError):
    """The download could not be completed within its attempts (or the server sent inconsistent data)."""


@dataclass(frozen=True)
class Link:
    """A download URL and the generation of the file behind it.

    :param url: the pre-signed URL (a credential: never logged).
    :param generation: bumps when the export was regenerated: bytes of an older generation cannot be
        resumed, since the file may differ.
    """

    url: str
    generation: int = 0


class LinkSource(Protocol):
    def fresh(self) -> Link:
        """A newly issued download link (regenerating the export first if it expired)."""


class Sink(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def restart(self) -> None:
        """Forget everything written so far."""


class Downloader(Protocol):
    def open_download(self, url: str, offset: int = 0) -> Any: ...


@dataclass
class DownloadStats:
    """What one download took.

    :param digest: size, SHA-256 and rows of the CSV as served.
    :param total: size the server announced (``None`` if it did not).
    :param failures: failed attempts that were recovered from.
    :param resumes: times the download continued with a 206 range response.
    :param restarts: times it started over from byte 0.
    """

    digest: CsvDigest | ByteCount
    total: int | None
    failures: int = 0
    resumes: int = 0
    restarts: int = 0


class ByteCount:
    """Counts bytes only (the resume offset): for parts whose content is hashed after merging."""

    def __init__(self) -> None:
        self.size = 0

    def hash_chunk(self, chunk: bytes) -> None:
        pass

    def count_chunk(self, chunk: bytes) -> None:
        self.size += len(chunk)


class ResumableDownload:
    """Download one export into ``sink``, resuming or restarting on failure.

    :param client: anything with ``open_download(url, offset)`` (the API client: it sends no auth header).
    :param links: issues fresh links.
    :param sink: receives the bytes in order.
    :param label: names the download in logs, e.g. ``"export exp_1"``.
    :param max_attempts: failed attempts allowed before giving up (>= 1).
    :param chunk_size: bytes per read.
    :param retry_delay: base seconds to wait after a broken stream (doubles, capped at 10 s).
    :param log: logger for progress and retries.
    :param sleep: how to wait (tests pass a recorder).
    :param digest: what to keep of the bytes: :class:`CsvDigest` (size, SHA-256 and rows of the file as
        served), or :class:`ByteCount` when the bytes are digested later anyway (merged parts).
    :param read_ahead: chunks a helper thread reads (and hashes) ahead of the sink; 0: read in this
        thread, cheaper in CPU when the sink's own work leaves the helper nothing to do but receive.
    """

    def __init__(
        self,
        client: Downloader,
        links: LinkSource,
        sink: Sink,
        *,
        label: str,
        max_attempts: int = 5,
        chunk_size: int = CHUNK_SIZE,
        retry_delay: float = 1.0,
        log: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        digest: Callable[[], CsvDigest | ByteCount] = CsvDigest,
        read_ahead: int = READ_AHEAD,
    ) -> None:
        self.client = client
        self.links = links
        self.sink = sink
        self.label = label
        self.max_attempts = max_attempts
        self.chunk_size = chunk_size
        self.retry_delay = retry_delay
        self.log = log or logging.getLogger(__name__)
        self.sleep = sleep
        self.digest = digest
        self.read_ahead = read_ahead
        self.stats = DownloadStats(digest(), None)
        self.progress = ProgressLog(self.log, label)

    def run(self) -> DownloadStats:
        link: Link | None = None
        written_generation: int | None = None
        identity: FileIdentity | None = None  # of the file whose bytes the sink holds
        while True:
            if link is None:
                link = self.links.fresh()
            if self.stats.digest.size and link.generation != written_generation:
                self._start_over("the export was regenerated, so the file may differ")
            offset = self.stats.digest.size
            try:
                with self.client.open_download(link.url, offset) as response:
                    status = response.status_code
                    if status in (401, 403, 410):
                        # A pre-signed URL answers 403 once expired (or tampered), an API-host link 410
                        # Gone: get a new one (the link source says when none can be had).
                        self._failed(f"download link rejected (HTTP {status}, expired?)", wait=False)
                        link = None
                        continue
                    if status == 416 and offset:
                        self._failed("the server refused the resume range (HTTP 416)", wait=False)
                        self._start_over("the resume range was refused")
                        continue
                    if status not in (200, 206):
                        # Only these carry the file: a 204, or a 3xx left unfollowed (no Location), is no CSV.
                        self._failed(f"download answered HTTP {status}, not the file (200 or 206)")
                        continue
                    headers = response.headers
                    _refuse_content_encoding(headers, self.label)
                    if status == 206:
                        same_file, total = self._accept_range(headers, offset, identity)
                        if not same_file:
                            continue  # not the rest of the same file: start over on the next attempt
                    else:
                        if offset:
                            self._start_over("the server ignored the Range request (HTTP 200)")
                        total = _int_or_none(headers.get("Content-Length"))
                        identity = FileIdentity.of(headers, total)
                    self.stats.total = self.progress.total = total
                    written_generation = link.generation
                    self._copy(response)
            except ApiConnectionError as error:
                self._failed(str(error))
                continue
            done = self.stats.digest.size
            total = self.stats.total
            if total is not None and done < total:
                self._failed(f"body ended after {done:,} of {total:,} bytes")
                continue
            if total is not None and done > total:
                raise DownloadError(f"{self.label}: got {done:,} bytes, more than the {total:,} announced")
            self.log.info("Downloaded %s: %s", self.label, self.progress.describe(done))
            return self.stats

    def _copy(self, response: Any) -> None:
        digest = self.stats.digest
        chunks = response.iter_bytes(self.chunk_size)
        if self.read_ahead:
            # Hashing runs in the reader thread, counting and writing here: two cores share the work.
            chunks = read_ahead(chunks, self.read_ahead, on_read=digest.hash_chunk)
        for chunk in chunks:
            if not self.read_ahead:
                digest.hash_chunk(chunk)
            self.sink.write(chunk)
            digest.count_chunk(chunk)
            self.progress.update(digest.size)

    def _accept_range(
        self, headers: Any, offset: int, identity: FileIdentity | None
    ) -> tuple[bool, int | None]:
        """Whether a 206 continues the bytes we hold (else start over: another range, or another file, whose
        bytes must never be spliced onto the first one's), and the total size it announces."""
        match = _CONTENT_RANGE.match(headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != offset:
            self._start_over(f"the server answered a different range ({headers.get('Content-Range')!r})")
            return False, None
        total = None if match.group(3) == "*" else int(match.group(3))
        differs = "the first response was lost" if identity is None else identity.differs(headers, total)
        if differs:
            self._start_over(f"the resumed response may belong to another file ({differs})")
            return False, None
        self.stats.resumes += 1
        self.log.info("Resuming %s at byte %s", self.label, f"{offset:,}")
        return True, total

    def _start_over(self, reason: str) -> None:
        self.log.warning("Restarting %s from byte 0: %s", self.label, reason)
        self.sink.restart()
        self.stats.digest = self.digest()
        self.stats.restarts += 1

    def _failed(self, reason: str, wait: bool = True) -> None:
        self.stats.failures += 1
        if self.stats.failures >= self.max_attempts:
            raise DownloadError(
                f"{self.label}: gave up after {self.stats.failures} failed attempt(s); last: {reason}"
            )
        delay = min(self.retry_delay * 2 ** (self.stats.failures - 1), 10.0) if wait else 0.0
        self.log.warning(
            "%s: %s; attempt %d of %d in %.1fs",
            self.label,
            reason,
            self.stats.failures + 1,
            self.max_attempts,
            delay,
        )
        if delay:
            self.sleep(delay)


@dataclass(frozen=True)
class FileIdentity:
    """What tells that a resumed (206) response serves the same file as the first (200) one.

    :param size: the total size the first response announced (``None``: it did not).
    :param etag: its ``ETag``, if any.
    :param last_modified: its ``Last-Modified``, if any.
    """

    size: int | None
    etag: str | None
    last_modified: str | None

    @classmethod
    def of(cls, headers: Any, size: int | None) -> FileIdentity:
        return cls(size, headers.get("ETag"), headers.get("Last-Modified"))

    def differs(self, headers: Any, total: int | None) -> str | None:
        """Why a 206 with ``headers`` announcing ``total`` bytes cannot be the same file; ``None`` if it is.

        The total size must be known and equal; validators present on both sides must match.
        """
        if self.size is None or total is None:
            return "its total size cannot be compared"
        if total != self.size:
            return f"total size {total:,}, not {self.size:,}"
        for name, ours in (("ETag", self.etag), ("Last-Modified", self.last_modified)):
            theirs = headers.get(name)
            if ours and theirs and ours != theirs:
                return f"{name} {theirs!r}, not {ours!r}"
        return None


def _refuse_content_encoding(headers: Any, label: str) -> None:
    """A body sent with a content encoding (gzip...) despite ``Accept-Encoding: identity`` is not the CSV:
    storing it would write gzip under ``.csv`` and count rows of compressed bytes. Refused, not decoded:
    its size, ``Range`` offsets and ETag all describe the encoded bytes, so it could not be resumed or
    checked as the file."""
    encoding = (headers.get("Content-Encoding") or "").strip().lower()
    if encoding not in ("", "identity"):
        raise DownloadError(
            f"{label}: the storage host sent the file with Content-Encoding {encoding!r} although the "
            "download asked for identity; refusing to store encoded bytes as the CSV (the object must be "
            "served without a Content-Encoding; compression='gzip' compresses on our side)"
        )


def read_ahead(
    chunks: Iterator[bytes], depth: int, on_read: Callable[[bytes], None] | None = None
) -> Iterator[bytes]:
    """Yield ``chunks``, read by a helper thread up to ``depth`` chunks ahead.

    The socket read (and ``on_read``, called in the helper thread on each chunk in order) then overlaps
    the consumer's work. Errors of the source are re-raised here, after the chunks read before them; when
    the consumer stops early the reader stops too.
    """
    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for chunk in chunks:
                if on_read is not None:
                    on_read(chunk)
                if not offer(("chunk", chunk)):
                    return
            offer(("end", None))
        except BaseException as error:  # handed to the consumer, which decides
            offer(("error", error))

    thread = threading.Thread(target=pump, name="msghistory-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()  # the reader gives up within 0.1 s; closing the response ends its read


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
