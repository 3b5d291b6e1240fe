"""A job's N download links -> one merged CSV: each part downloaded (resumably) and merged in order
(:mod:`.merge`). No Airflow here (the benchmark drives it).

A plain CSV part is merged as it arrives (``stream=True``): no copy of it on local disk. A broken download
resumed with ``Range`` continues where it broke; one that must start over from byte 0 cannot, since the
merged output (a multipart upload, a gzip stream) cannot be rewound, so :class:`MergeStartOver` asks the
caller to start the whole merge over, spooling every part this time. A packed part (gzip, zip) always goes
through a local temporary file first: a zip needs a seekable file. One part is on local disk at a time.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from typing import IO, Any

from airflow_provider_msghistory.client.errors import ExportExpiredError, WaitFailedError
from airflow_provider_msghistory.client.models import ExportStatus
from airflow_provider_msghistory.client.waiting import decide
from airflow_provider_msghistory.transfers.download import (
    ByteCount,
    Downloader,
    Link,
    LinkSource,
    ResumableDownload,
)
from airflow_provider_msghistory.transfers.merge import (
    GZIP_MAGIC,
    MAX_PART_BYTES,
    ZIP_MAGIC,
    CsvMerger,
    PartFeed,
    part_streams,
)

EXPIRED_HELP = "its download links expired and the vendor cannot regenerate them: a new export is needed"


class JobFileLinks:
    """The link of one of a job's files; a rejected link is replaced by the job's current one.

    :param client: the export client (``get_export``).
    :param export_id: the provider's export id.
    :param files: the job's file URLs as first seen.
    :param index: which file.
    """

    def __init__(self, client: Any, export_id: str, files: Sequence[str], index: int) -> None:
        self.client = client
        self.export_id = export_id
        self.files = tuple(files)
        self.index = index
        self._issued = 0

    def fresh(self) -> Link:
        self._issued += 1
        if self._issued == 1:
            return Link(self.files[self.index])
        job = self.client.get_export(self.export_id)
        # The same decision as the wait: a job now cancelled, expired or without files fails here.
        decision = decide(job, 0, 0, can_regenerate=False)
        if decision.action != "done" or not job.files:
            if job.status is ExportStatus.EXPIRED:
                raise ExportExpiredError(None, f"export {self.export_id}: {EXPIRED_HELP}", "download")
            raise WaitFailedError(self.export_id, f"its job changed mid-transfer: {decision.reason}")
        if len(job.files) != len(self.files):
            raise ExportExpiredError(
                None,
                f"export {self.export_id}: its file list changed mid-transfer; submit a new export",
                "download",
            )
        return Link(job.files[self.index])


class MergeStartOver(Exception):
    """A part merged as it arrived must start over from byte 0: the merged output must be begun again
    (with ``stream=False``, each part spooled to a temporary file that can start over on its own)."""


_MAGIC_BYTES = max(len(GZIP_MAGIC), len(ZIP_MAGIC))


class _PartSink:
    """Where a part's bytes go as they arrive. Streaming, its first bytes decide: plain CSV goes straight
    into the merger, a packed part (gzip, zip) into the temporary file, to be unpacked once complete.
    Not streaming, every part goes into the temporary file."""

    def __init__(self, merger: CsvMerger, label: str, file: IO[bytes], stream: bool) -> None:
        self.merger = merger
        self.label = label
        self.file = file
        self.stream = stream
        self.feed: PartFeed | None = None
        self._head = b""  # the first bytes, until there are enough to tell

    def write(self, chunk: bytes) -> None:
        if self.feed is not None:
            self.feed.write(chunk)
        elif not self.stream or self.file.tell():
            self.file.write(chunk)
        elif len(head := self._head + chunk) < _MAGIC_BYTES:
            self._head = head
        else:
            self._head = b""
            if head.startswith((GZIP_MAGIC, ZIP_MAGIC)):
                self.file.write(head)
            else:
                self.feed = self.merger.feed(self.label)
                self.feed.write(head)

    def restart(self) -> None:
        if self.feed is not None:
            raise MergeStartOver(f"{self.label} had to start over from byte 0")
        self._head = b""
        self.file.seek(0)
        self.file.truncate()

    def close(self, max_part_bytes: int) -> None:
        """The part is complete: finish feeding it, or unpack and merge the temporary file."""
        if self._head:  # fewer bytes than any magic number: plain
            self.feed = self.merger.feed(self.label)
            self.feed.write(self._head)
        if self.feed is not None:
            self.feed.close()
            return
        self.file.flush()
        for stream_label, stream in part_streams(self.file, self.label, max_part_bytes):
            self.merger.add(stream, stream_label)


def download_parts(
    client: Downloader,
    links: Sequence[LinkSource],
    merger: CsvMerger,
    *,
    label: str,
    max_attempts: int,
    log: logging.Logger | Any,
    max_part_bytes: int = MAX_PART_BYTES,
    stream: bool = False,
) -> None:
    """Download each part in order and merge it; raises on a part that cannot be had or merged (or that
    unpacks to more than ``max_part_bytes``).

    :param stream: merge plain CSV parts as they arrive (``merger`` needs :meth:`CsvMerger.feed`); a part
        that must then start over from byte 0 raises :class:`MergeStartOver`, and nothing merged so far
        can be kept. Without it each part is complete on local disk before it is merged.
    """
    total = len(links)
    for number, source in enumerate(links, 1):
        part_label = f"{label} part {number} of {total}"
        with tempfile.TemporaryFile(prefix="msghistory-part-") as file:
            sink = _PartSink(merger, part_label, file, stream)
            ResumableDownload(
                client,
                source,
                sink,
                label=part_label,
                max_attempts=max_attempts,
                log=log,
                digest=ByteCount,  # the merged CSV is hashed; the part's raw bytes need only counting
                read_ahead=0,  # merging is the work: a reader thread would only add hand-overs
            ).run()
            sink.close(max_part_bytes)
