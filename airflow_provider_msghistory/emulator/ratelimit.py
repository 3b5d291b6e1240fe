"""Per-key rate limiter with the documented numbers: N requests per minute and a per-second burst."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """Outcome of one request: allowed or not, and what the X-RateLimit-* headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimiter:
    """Sliding-window log per key: at most ``per_minute`` in any 60 s and ``burst`` in any 1 s.

    Rejected requests do not count against the window.

    :param per_minute: requests allowed per rolling minute (production: 1000, trial: 100).
    :param burst: requests allowed per rolling second (production: 50, trial: 10).
    :param clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1 or burst < 1:
            raise ValueError("rate_limit must be positive, e.g. rate_limit=(1000, 50)")
        self.per_minute = per_minute
        self.burst = burst
        self._clock = clock
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> Verdict:
        now = self._clock()
        with self._lock:
            log = self._log.setdefault(key, deque())
            while log and log[0] <= now - 60.0:
                log.popleft()
            in_second = len(log) - _first_after(log, now - 1.0)
            reset = math.ceil(log[0] + 60.0 - now) if log else 60
            if len(log) >= self.per_minute:
                wait = max(1, math.ceil(log[0] + 60.0 - now))
                return Verdict(False, self.per_minute, 0, reset, wait)
            if in_second >= self.burst:
                oldest_in_second = log[len(log) - in_second]
                wait = max(1, math.ceil(oldest_in_second + 1.0 - now))
                return Verdict(False, self.per_minute, self.per_minute - len(log), reset, wait)
            log.append(now)
            return Verdict(True, self.per_minute, self.per_minute - len(log), reset, 0)


def _first_after(log: deque[float], threshold: float) -> int:
    """Index of the first entry newer than ``threshold`` (entries are in time order; scan from the end)."""
    index = len(log)
    while index > 0 and log[index - 1] > threshold:
        index -= 1
    return index
