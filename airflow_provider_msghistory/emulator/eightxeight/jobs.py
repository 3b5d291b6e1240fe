"""8x8 export jobs without HTTP: a job's outcome and parts (CSV, gzip or zip files, or big synthetic ones),
its status over time (queued, running, then its outcome; ``cancelled``) and its links' expiry."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..content import BytesContent, Content
from .data import LogDataset, LogRow, gzip_bytes, mismatched, render_csv, synthetic_parts, zip_bytes

WORKING = ("queued", "running")
OUTCOMES = ("succeeded", "empty", "failed", "error")
MONTH_SECONDS = 30 * 86_400


@dataclass
class Part:
    """One file of a job: its content as served (CSV, gzip or zip), download token and ETag."""

    token: str
    content: Content
    compression: str | None
    etag: str

    @classmethod
    def of(cls, content: Content, compression: str | None = None) -> Part:
        token = secrets.token_urlsafe(24)
        return cls(token, content, compression, '"' + hashlib.sha256(token.encode()).hexdigest()[:32] + '"')


@dataclass
class Job:
    """One export job (times are wall-clock epoch seconds).

    :param job_id: the opaque 64-character id.
    :param params: the request body as received.
    :param rows: the rows the job holds (after the window, filters and ``limit``).
    :param parts: the files it serves once succeeded.
    :param outcome: ``succeeded`` / ``empty`` / ``failed`` / ``error`` reached at ``ready_at``.
    """

    job_id: str
    params: dict[str, Any]
    rows: list[LogRow]
    parts: list[Part]
    created_at: float
    ready_at: float
    outcome: str
    link_ttl: float
    cancelled: bool = False
    expires_override: float | None = None
    deletes: int = 0

    def status_at(self, now: float) -> str:
        if self.cancelled:
            return "cancelled"
        if now < self.ready_at:
            return "queued" if now < (self.created_at + self.ready_at) / 2 else "running"
        return self.outcome

    @property
    def status(self) -> str:
        return self.status_at(time.time())

    @property
    def expires_at(self) -> float:
        return self.expires_override if self.expires_override is not None else self.ready_at + self.link_ttl


@dataclass
class Options:
    """How jobs are built (see :class:`~.emulator.EightByEightEmulator` for each knob)."""

    export_delay: float
    link_ttl: float
    parts: int
    gzip_parts: bool | Sequence[int]
    zip_parts: bool | Sequence[int]
    header_mismatch: int | None
    job_outcome: str | None
    to_inclusive: bool
    line_terminator: str
    download_requires_auth: bool
    export_size_bytes: int | None


class JobStore:
    """The sub-account's export jobs and their download parts, by job id and part token; thread-safe.

    :param dataset: the rows (and columns) the parts are rendered from.
    :param options: how jobs are built, live.
    """

    def __init__(self, dataset: LogDataset, options: Options) -> None:
        self.dataset = dataset
        self.options = options
        self.jobs: dict[str, Job] = {}
        self.parts: dict[str, tuple[Job, int]] = {}
        self.cancelled: list[str] = []  # job ids a DELETE was received for, in order
        self.lock = threading.RLock()

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def part(self, token: str) -> tuple[Job, int] | None:
        """The job and part index a download token names."""
        with self.lock:
            return self.parts.get(token)

    def cancel(self, job: Job) -> None:
        """A DELETE: a working job becomes ``cancelled``, a finished one is not changed."""
        with self.lock:
            job.deletes += 1
            self.cancelled.append(job.job_id)
            if job.status in WORKING:
                job.cancelled = True

    def create(
        self,
        params: dict[str, Any],
        rows: list[LogRow],
        fail: bool = False,
        synthetic_window: tuple[int, int] | None = None,
    ) -> Job:
        """A new job; ``synthetic_window`` (with ``export_size_bytes``) serves big synthetic parts instead."""
        options = self.options
        outcome = options.job_outcome or ("succeeded" if rows or synthetic_window else "empty")
        if fail:
            outcome = "failed"
        parts: list[Part] = []
        if outcome == "succeeded" and synthetic_window is not None and options.export_size_bytes:
            big = synthetic_parts(
                options.export_size_bytes, options.parts, *synthetic_window, options.line_terminator
            )
            parts = [Part.of(content) for content in big]
        elif outcome == "succeeded":
            parts = self._parts(rows)
        now = time.time()
        job = Job(
            job_id=secrets.token_hex(32),
            params=dict(params),
            rows=rows,
            parts=parts,
            created_at=now,
            ready_at=now + options.export_delay,
            outcome=outcome,
            link_ttl=options.link_ttl,
        )
        with self.lock:
            self.jobs[job.job_id] = job
            for index, part in enumerate(parts):
                self.parts[part.token] = (job, index)
        return job

    def _parts(self, rows: list[LogRow]) -> list[Part]:
        options = self.options
        count = options.parts
        size = -(-len(rows) // count) if rows else 0
        parts = []
        for index in range(count):
            chunk = rows[index * size : (index + 1) * size]
            columns = self.dataset.columns
            if options.header_mismatch == index:
                columns = mismatched(columns)
            data = render_csv(columns, chunk, options.line_terminator)
            compression = None
            if _chosen(options.zip_parts, index):
                data, compression = zip_bytes(data, f"sms-logs-{index + 1}.csv"), "zip"
            elif _chosen(options.gzip_parts, index):
                data, compression = gzip_bytes(data), "gzip"
            parts.append(Part.of(BytesContent(data), compression))
        return parts

    def complete(self, job: Job) -> None:
        """The job ends now with its outcome."""
        with self.lock:
            job.ready_at = min(job.ready_at, time.time())

    def fail(self, job: Job, outcome: str) -> None:
        """The job ends now as ``failed`` or ``error`` (no parts)."""
        with self.lock:
            job.outcome, job.parts = outcome, []
            job.ready_at = min(job.ready_at, time.time())

    def expire(self, job: Job) -> None:
        """The job's links expire now."""
        with self.lock:
            job.expires_override = min(job.expires_at, time.time())


def _chosen(which: bool | Sequence[int], index: int) -> bool:
    return which if isinstance(which, bool) else index in which
