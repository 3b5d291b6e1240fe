"""The retry policy shared by the sync and async transports.

Rules: 429 waits ``Retry-After`` (header), else the body's ``retryAfter`` (capped), else exponential backoff;
500/502/503/504 and network errors back off exponentially with jitter; other 4xx are final. Every call is
bounded both in attempts and in total time.

A request that creates an export (not idempotent) is retried only when the server certainly did not
process it: a connect error (nothing was sent), 429 or 503 (the server refused it). A 500/502/504, a reset
or a read timeout may come after the export was created, and a blind retry would create a duplicate.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

from airflow_provider_msghistory.client.pacing import MAX_HOLD

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
REFUSED_STATUSES = frozenset({429, 503})  # the server did not act on the request


class NetworkFailure(Enum):
    """How a request failed without an HTTP response."""

    CONNECT = "connect"  # never reached the server: safe to retry anything
    AFTER_SEND = "after_send"  # reset or read timeout: the server may have acted


@dataclass(frozen=True)
class RetryPolicy:
    """Decides whether and how long to wait before another attempt.

    :param max_attempts: attempts per call, the first included.
    :param max_retry_time: total seconds a call may spend waiting and retrying.
    :param backoff_base: first backoff delay (doubles each retry).
    :param backoff_max: cap on a single computed backoff delay.
    :param max_wait: cap on any single wait, server-requested ones included (tests lower it).
    """

    max_attempts: int = 5
    max_retry_time: float = 120.0
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    max_wait: float | None = None

    def backoff(self, attempt: int) -> float:
        """Exponential delay with equal jitter after failed ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def delay_for_status(
        self,
        status: int,
        headers: Mapping[str, str],
        body: Any,
        attempt: int,
        elapsed: float,
        idempotent: bool,
    ) -> float | None:
        """Seconds to wait before retrying after an HTTP ``status``, or ``None`` to stop."""
        if status not in RETRYABLE_STATUSES or (not idempotent and status not in REFUSED_STATUSES):
            return None
        delay = self.backoff(attempt)
        if status == 429:
            delay = retry_after_seconds(headers, body) or delay
        return self._bounded(delay, attempt, elapsed)

    def delay_for_failure(
        self, failure: NetworkFailure, attempt: int, elapsed: float, idempotent: bool
    ) -> float | None:
        """Seconds to wait before retrying after a network failure, or ``None`` to stop."""
        if not idempotent and failure is not NetworkFailure.CONNECT:
            return None
        return self._bounded(self.backoff(attempt), attempt, elapsed)

    def _bounded(self, delay: float, attempt: int, elapsed: float) -> float | None:
        if attempt >= self.max_attempts:
            return None
        if self.max_wait is not None:
            delay = min(delay, self.max_wait)
        if elapsed + delay > self.max_retry_time:
            return None
        return max(delay, 0.0)


def retry_after_seconds(headers: Mapping[str, str], body: Any) -> float | None:
    """The wait the server asked for: ``Retry-After`` (seconds or HTTP date), else body ``retryAfter``;
    at most :data:`~airflow_provider_msghistory.client.pacing.MAX_HOLD` (``Retry-After: 86400`` must not park
    a worker for a day, nor ``1e400`` overflow a sleep)."""
    header = headers.get("Retry-After") or headers.get("retry-after")
    seconds = _to_seconds(header) if header else None
    if seconds is None and isinstance(body, Mapping):
        seconds = _to_seconds(body.get("retryAfter"))
    return None if seconds is None else min(seconds, MAX_HOLD)


def _to_seconds(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        if not isinstance(value, str):
            return None
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0 if seconds == seconds else None
    return seconds
