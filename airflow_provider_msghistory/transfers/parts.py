"""A job's N download links -> one merged CSV: each part downloaded (resumably) to a local temporary
file, then unpacked and merged in order (:mod:`.merge`). No Airflow here (the benchmark drives it).

A part goes through a temporary file because a broken download may have to start over from byte 0, and
the merged output (a multipart upload, a gzip stream) cannot be rewound; a zip part needs a seekable file
anyway. One part is on local disk at a time.
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
from airflow_provider_msghistory.transfers.merge import MAX_PART_BYTES, CsvMerger, part_streams

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


class _TempSink:
    def __init__(self, file: IO[bytes]) -> None:
        self.file = file

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)

    def restart(self) -> None:
        self.file.seek(0)
        self.file.truncate()


def download_parts(
    client: Downloader,
    links: Sequence[LinkSource],
    merger: CsvMerger,
    *,
    label: str,
    max_attempts: int,
    log: logging.Logger | Any,
    max_part_bytes: int = MAX_PART_BYTES,
) -> None:
    """Download each part in order and merge it; raises on a part that cannot be had or merged (or that
    unpacks to more than ``max_part_bytes``)."""
    total = len(links)
    for number, source in enumerate(links, 1):
        part_label = f"{label} part {number} of {total}"
        with tempfile.TemporaryFile(prefix="msghistory-part-") as file:
            ResumableDownload(
                client,
                source,
                _TempSink(file),
                label=part_label,
                max_attempts=max_attempts,
                log=log,
                digest=ByteCount,  # the merged CSV is hashed; the part's raw bytes need only counting
            ).run()
            file.flush()
            for stream_label, stream in part_streams(file, part_label, max_part_bytes):
                merger.add(stream, stream_label)
