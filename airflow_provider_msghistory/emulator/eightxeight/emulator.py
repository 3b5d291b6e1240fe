"""``EightByEightEmulator``: 8x8's log export jobs, its knobs and the helpers tests use.

Requests are served by ``app`` (over the jobs of ``jobs``), rows come from ``data``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..faults import Faults
from ..httpserver import Handler
from ..requestlog import RequestLog
from ..server import Emulator
from ..settling import DataClock
from ..timeutil import to_epoch_ms
from .app import ENDPOINTS, SUB_ACCOUNT, EightByEightApp
from .data import PRODUCTS, LogDataset, render_csv
from .jobs import MONTH_SECONDS, OUTCOMES, Job, JobStore, Options


class EightByEightEmulator(Emulator):
    """8x8's SMS log export jobs on loopback; downloads on the API's own host (``vendor="8x8"``).

    :param host: interface to bind.
    :param port: API port (0 = a free one).
    :param api_key: the valid Bearer key.
    :param sub_account_id: the account's sub-account (another one gets 403 code 1001).
    :param product: ``sms`` (SMS columns) or ``chatapps`` (Chat Apps columns, a row per status step,
        ``channelUserId`` filter); the real products differ by host only.
    :param messages: messages in the log dataset.
    :param seed: seed of the dataset (ids of jobs and links are random: unique across restarts).
    :param start: first day of the dataset (UTC midnight), OffsetDateTime string or aware datetime.
    :param days: days the dataset covers.
    :param export_delay: seconds from start to the job's outcome (queued the first half, running after).
    :param link_ttl: seconds the download links live after the job succeeds (8x8: one month).
    :param latency: seconds added to every response.
    :param rate_limit: ``None`` (off) or ``(per_minute, burst_per_second)`` per sub-account; 429 carries
        ``Retry-After``.
    :param parts: files per succeeded job (rows split evenly, in order; a part may hold only the header).
    :param gzip_parts: gzip every part (``True``) or those indexes (0-based).
    :param zip_parts: zip every part or those indexes (one CSV member each); wins over ``gzip_parts``.
    :param header_mismatch: index of a part whose header differs (the last column is ``text``).
    :param job_outcome: force every job's end: ``succeeded``, ``empty``, ``failed`` or ``error``
        (default: ``succeeded``, or ``empty`` when no row matches).
    :param to_inclusive: ``to`` covers its whole second (a bare date: its whole day); ``False``: exclusive.
    :param line_terminator: record separator of the CSV files (RFC 4180: CRLF).
    :param download_requires_auth: links answer 401 without the Bearer header.
    :param export_size_bytes: jobs serve about this many bytes of synthetic rows in ``parts`` files
        (constant memory; for benchmarks): rows spread over the requested window plus, per 4,096 rows,
        one at its end second; not compressed.
    :param timestamp_style: how ``createdat`` and the other timestamps are written (not published):
        ``iso`` ``2025-01-02T00:00:00.000Z`` or ``space`` ``2025-01-02 00:00:00.000`` (UTC, no zone).
    :param link_host: host name the download links carry instead of ``host`` (e.g. ``"localhost"``: the
        same server under another origin, for testing that the Bearer key is not sent to it).
    :param request_log_limit: entries kept in the request log.
    :param clock: the instant the data is read at, an OffsetDateTime string or aware datetime (default:
        the wall clock): statuses settle against it (:mod:`~airflow_provider_msghistory.emulator.settling`);
        move it with :meth:`set_clock`.
    """

    vendor = "8x8"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "demo-key",
        sub_account_id: str = "acme-sms_01",
        product: str = "sms",
        messages: int = 2000,
        seed: int = 1,
        start: str | datetime = "2025-01-01T00:00:00Z",
        days: int = 31,
        export_delay: float = 3.0,
        link_ttl: float = MONTH_SECONDS,
        latency: float = 0.0,
        rate_limit: tuple[int, int] | None = None,
        parts: int = 1,
        gzip_parts: bool | Sequence[int] = False,
        zip_parts: bool | Sequence[int] = False,
        header_mismatch: int | None = None,
        job_outcome: str | None = None,
        to_inclusive: bool = True,
        line_terminator: str = "\r\n",
        download_requires_auth: bool = False,
        export_size_bytes: int | None = None,
        link_host: str | None = None,
        timestamp_style: str = "iso",
        request_log_limit: int = 100_000,
        clock: str | datetime | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must be a non-empty string, e.g. api_key='demo-key'")
        if not SUB_ACCOUNT.fullmatch(sub_account_id):
            raise ValueError("sub_account_id must match ^[A-Za-z0-9\\-._&]{3,50}$, e.g. 'acme-sms_01'")
        if product not in PRODUCTS:
            raise ValueError(f"product must be one of {PRODUCTS}, e.g. product='chatapps'")
        if parts < 1:
            raise ValueError("parts must be >= 1, e.g. parts=3")
        if export_delay < 0 or link_ttl <= 0:
            raise ValueError("export_delay must be >= 0 and link_ttl > 0, e.g. export_delay=3")
        if job_outcome is not None and job_outcome not in OUTCOMES:
            raise ValueError(f"job_outcome must be one of {OUTCOMES} or None, e.g. job_outcome='empty'")
        if header_mismatch is not None and not 0 <= header_mismatch < parts:
            raise ValueError(f"header_mismatch must be a part index in 0..{parts - 1}, e.g. 1")
        if export_size_bytes is not None and (gzip_parts or zip_parts or product != "sms"):
            raise ValueError(
                "export_size_bytes serves plain SMS parts: leave gzip_parts, zip_parts and product off"
            )
        if line_terminator not in ("\r\n", "\n"):
            raise ValueError("line_terminator must be '\\r\\n' or '\\n'")
        self.api_key = api_key
        self._link_host = link_host
        self.sub_account_id = sub_account_id
        self.data_clock = DataClock(clock)
        self.dataset = LogDataset(
            product, sub_account_id, messages, seed, to_epoch_ms(start), days, timestamp_style,
            self.data_clock,
        )  # fmt: skip
        options = Options(
            export_delay, link_ttl, parts, gzip_parts, zip_parts, header_mismatch, job_outcome,
            to_inclusive, line_terminator, download_requires_auth, export_size_bytes,
        )  # fmt: skip
        faults, log = Faults(endpoints=ENDPOINTS), RequestLog(request_log_limit)
        self._jobs = JobStore(self.dataset, options)
        self._app = EightByEightApp(api_key, sub_account_id, self._jobs, faults, log, latency)
        super().__init__(self._app, host=host, ports=(port,))
        self.set_rate_limit(rate_limit)

    def _handlers(self) -> tuple[Handler, ...]:
        return (self._app.handle_api,)

    def _started(self) -> None:
        host = self.host if self._link_host is None else self._link_host
        self._app.link_origin = f"http://{host}:{self.port}"

    def airflow_conn_json(self, **extra: Any) -> str:
        """``{"conn_type": "msghistory", "host": base_url, "password": key, "extra": {"vendor": "8x8",
        "sub_account_id": ...}}``; ``extra`` adds or overrides extras."""
        extras = {"vendor": "8x8", "sub_account_id": self.sub_account_id, **extra}
        conn = {"conn_type": "msghistory", "host": self.base_url, "password": self.api_key, "extra": extras}
        return json.dumps(conn)

    @property
    def exports_url(self) -> str:
        """``{base_url}/api/v1/subaccounts/{id}/messages/exports``."""
        return f"{self.base_url}/api/v1/subaccounts/{self.sub_account_id}/messages/exports"

    # ------------------------------------------------------------------------------------------- state
    @property
    def options(self) -> Options:
        """The job-building knobs, live: change ``parts``, ``gzip_parts``, ... between jobs."""
        return self._jobs.options

    @property
    def jobs(self) -> dict[str, Job]:
        """Jobs by id (a snapshot of the mapping; the Job objects are live)."""
        with self._jobs.lock:
            return dict(self._jobs.jobs)

    def job(self, job_id: str) -> Job:
        """The job (``KeyError`` if unknown): ``.status``, ``.params``, ``.rows``, ``.parts``."""
        with self._jobs.lock:
            return self._jobs.jobs[job_id]

    @property
    def cancelled_jobs(self) -> list[str]:
        """Job ids a DELETE was received for, in order (a finished job is not changed by it)."""
        with self._jobs.lock:
            return list(self._jobs.cancelled)

    def complete_job(self, job_id: str) -> None:
        """End the job now with its outcome (``succeeded`` or ``empty``, unless forced)."""
        self._jobs.complete(self.job(job_id))

    def fail_job(self, job_id: str, status: str = "failed") -> None:
        """End the job now as ``failed`` or ``error``."""
        if status not in ("failed", "error"):
            raise ValueError("status must be 'failed' or 'error'")
        self._jobs.fail(self.job(job_id), status)

    def expire_links(self, job_id: str) -> None:
        """The job's download links expire now (downloads answer 410; the status still says succeeded)."""
        self._jobs.expire(self.job(job_id))

    def job_parts(self, job_id: str) -> list[bytes]:
        """The job's files as served (gzip or zip bytes where compressed)."""
        return [b"".join(part.content.iter_from(0)) for part in self.job(job_id).parts]

    def submit_job(self, rows_from: str | datetime, rows_to: str | datetime, *, ready: bool = True) -> str:
        """Add a job without HTTP holding the rows created in ``[rows_from, rows_to)``; returns its id."""
        rows = self.dataset.select(to_epoch_ms(rows_from), to_epoch_ms(rows_to))
        job = self._jobs.create({"from": str(rows_from), "to": str(rows_to)}, rows)
        if ready:
            self.complete_job(job.job_id)
        return job.job_id

    def expected_rows(
        self,
        start: str | datetime,
        end: str | datetime,
        phone_number: str | None = None,
        countries: Sequence[str] | None = None,
        channel_user_id: str | None = None,
    ) -> list[dict[str, str]]:
        """The rows whose ``createdat`` lies in the half-open ``[start, end)``, oldest first."""
        rows = self.dataset.select(
            to_epoch_ms(start), to_epoch_ms(end), phone_number, countries, channel_user_id=channel_user_id
        )
        return [self.dataset.as_dict(r) for r in rows]

    def expected_csv(
        self,
        start: str | datetime,
        end: str | datetime,
        phone_number: str | None = None,
        countries: Sequence[str] | None = None,
        channel_user_id: str | None = None,
    ) -> bytes:
        """The exact CSV a correct provider stores for ``[start, end)``: the header once, then the rows as
        served (same quoting, same line terminator)."""
        rows = self.dataset.select(
            to_epoch_ms(start), to_epoch_ms(end), phone_number, countries, channel_user_id=channel_user_id
        )
        return render_csv(self.dataset.columns, rows, self.options.line_terminator)
