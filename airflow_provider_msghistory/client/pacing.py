"""Client-side pacing: one rate limiter per API key and process, shared by every client of that key.

Vendors limit requests per API key (Qlara: 1,000 per minute with bursts of 50 per second). Every API
request of every client in the process, sync or async, paging or polling, first takes a permit from the
key's :class:`Pacer`, so parallel tasks on one worker share the budget instead of bouncing off the server.

The counting is PyrateLimiter's in-memory sliding-window log: the same algorithm and the same two rates
the vendor publishes, one bucket usable from threads (blocking) and from event loops (never blocking them),
no dependencies of its own. A hand-rolled token bucket would have to re-derive what it gets right (several
rates on one key, waiting without holding a lock, async waits). Each window is kept 5% longer than the
vendor's, so network jitter between our clock and the server's cannot squeeze one request too many into
its window; the sustained rate stays at 95% of the ceiling.

What the library cannot know comes from the server: a 429's ``retryAfter`` and ``X-RateLimit-Remaining:
0`` (another worker is spending the same key) hold every client of the key until the server's time is up.

A fleet of workers and triggerers on one key shares one bucket in Redis instead: see :mod:`.shared_pacing`.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: the client keeps each window this much longer than the server's (jitter margin)
WINDOW_MARGIN = 1.05
#: longest hold taken from a rate-limit header (a hostile or broken value must not park a worker)
MAX_HOLD = 120.0
#: an ``X-RateLimit-Reset`` this large is an epoch time (2001-09-09), not seconds to wait
EPOCH_FLOOR = 1e9


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` in any ``seconds``-long window.

    :param requests: requests allowed per window (> 0).
    :param seconds: window length in seconds (> 0).
    """

    requests: int
    seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.requests, bool) or not isinstance(self.requests, int) or self.requests < 1:
            raise ValueError(
                f"rate limit: requests must be a positive integer, e.g. 1000; got {self.requests!r}"
            )
        if not float(self.seconds) > 0:
            raise ValueError(f"rate limit: seconds must be positive, e.g. 60; got {self.seconds!r}")


class Pacer:
    """Permits for one API key: the vendor's rates, plus holds the server asks for.

    :param limits: the rates to keep under (all at once); none: only the server's holds.
    """

    def __init__(self, limits: Sequence[RateLimit]) -> None:
        from pyrate_limiter import InMemoryBucket, Limiter

        self.limits = tuple(limits)
        rates = limiter_rates(limits)
        # No published limit: the pacer still carries the server's holds for every client of the key.
        self._limiter = Limiter(InMemoryBucket(rates)) if rates else None
        self._hold_until = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        rates = ", ".join(f"{limit.requests}/{limit.seconds:g}s" for limit in self.limits)
        return f"Pacer({rates})"

    # --- permits ---------------------------------------------------------------------------------------
    def held_for(self) -> float:
        """Seconds every client of the key must still wait because the server said so."""
        return max(self._hold_until - time.monotonic(), 0.0)

    def acquire(self) -> None:
        """Block until a request may be sent (the caller waits out :meth:`held_for` first)."""
        if self._limiter is not None:
            self._limiter.try_acquire("api")

    async def aacquire(self) -> None:
        """:meth:`acquire` for an event loop: waits without blocking it."""
        if self._limiter is not None:
            await self._limiter.try_acquire_async("api")

    # --- what the server says --------------------------------------------------------------------------
    @property
    def hold_until(self) -> float:
        """The monotonic time until which the key is held (in the past when it is not)."""
        return self._hold_until

    def hold(self, seconds: float) -> float:
        """No client of the key sends for ``seconds`` (a 429's wait); returns :attr:`hold_until`."""
        seconds = min(max(float(seconds), 0.0), MAX_HOLD)
        with self._lock:
            self._hold_until = max(self._hold_until, time.monotonic() + seconds)
            return self._hold_until

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read ``X-RateLimit-Remaining`` (and ``-Reset``) of a response: at zero, hold until the reset."""
        remaining = _number(headers.get("X-RateLimit-Remaining"))
        if remaining is None or remaining > 0:
            return
        reset = _reset_seconds(headers.get("X-RateLimit-Reset"))
        self.hold(reset if reset is not None and reset > 0 else 1.0)


def limiter_rates(limits: Sequence[RateLimit]) -> list[Any]:
    """PyrateLimiter's rates for ``limits``: the binding ones, each window :data:`WINDOW_MARGIN` longer."""
    from pyrate_limiter import Rate

    return [
        Rate(limit.requests, math.ceil(limit.seconds * 1000 * WINDOW_MARGIN)) for limit in _binding(limits)
    ]


def _binding(limits: Sequence[RateLimit]) -> list[RateLimit]:
    """The limits that can bind, shortest window first (the library refuses redundant ones): a window
    allowing as many requests as a longer one is implied by it, and a longer window allowing a higher
    rate than a shorter one is implied by that."""
    kept: list[RateLimit] = []
    for limit in sorted(limits, key=lambda item: item.seconds):
        while kept and kept[-1].requests >= limit.requests:
            kept.pop()
        if kept and limit.requests / limit.seconds >= kept[-1].requests / kept[-1].seconds:
            continue
        kept.append(limit)
    return kept


def _reset_seconds(value: object) -> float | None:
    """``X-RateLimit-Reset`` as seconds from now: APIs send either seconds to wait or the epoch time of the
    reset (seconds or milliseconds); no wait is a billion seconds long."""
    number = _number(value)
    if number is None or number < EPOCH_FLOOR:
        return number
    return (number / 1000 if number >= EPOCH_FLOOR * 1000 else number) - time.time()


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


_PACERS: dict[tuple[str, str, tuple[RateLimit, ...]], Pacer] = {}
_PACERS_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child (a task process) is a process of its own: it starts with its own pacers (the
    parent's locks and background thread do not survive the fork)."""
    global _PACERS_LOCK
    _PACERS_LOCK = threading.Lock()
    _PACERS.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def pacer_for(base_url: str, identity: str, limits: Sequence[RateLimit]) -> Pacer:
    """The process's pacer of one API key at one base URL (created on first use).

    :param base_url: the API base URL.
    :param identity: the credential the vendor counts against (hashed here; never stored in clear).
    :param limits: its rates (a key configured with other rates gets its own pacer).
    """
    key = (base_url, hashlib.sha256(identity.encode()).hexdigest(), tuple(limits))
    with _PACERS_LOCK:
        pacer = _PACERS.get(key)
        if pacer is None:
            pacer = _PACERS[key] = Pacer(limits)
        return pacer
