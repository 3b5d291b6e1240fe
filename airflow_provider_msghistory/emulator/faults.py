"""Fault injection: scripted queues per endpoint, or seeded random draws.

Endpoints are named by each vendor; Qlara's: ``submit`` (A, C, D), ``history`` (B), ``list`` (E), ``link``
(F), ``regenerate`` (G) and ``download`` (storage). Actions: an HTTP status (``500``, ``503``, ``429``,
...), ``"reset"`` (TCP reset, no response), ``"slow"`` / ``"slow:SECONDS"`` (delayed answer),
``"truncate"`` / ``"truncate:BYTES"`` (download closes early while Content-Length claims the full size),
``"fail"`` (submit: the export will FAIL), ``"expire"`` (link: the link expires right after it is handed
out; download: ``"expire[:BYTES]"``, the link expires while the body is in flight, which then breaks off
like a truncation, so the resume meets an expired link), ``"norange"`` (download: ``Range`` is ignored, the
whole file is sent with a 200, as by a server without range support) and ``"ok"`` (no fault).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

_ONLY_ON = {
    "truncate": {"download"}, "norange": {"download"}, "fail": {"submit"}, "expire": {"link", "download"},
}  # fmt: skip


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind`` is a status code as text or an action name."""

    kind: str
    status: int | None = None
    seconds: float = 0.0
    keep_bytes: int = 0


class Faults:
    """Fault plan of one emulator; ``injected`` counts the faults actually served, by kind.

    :param slow_seconds: delay of a ``"slow"`` fault without an explicit duration.
    :param truncate_bytes: bytes a ``"truncate"`` download sends before closing, unless given.
    :param retry_after: ``retryAfter`` seconds of an injected 429.
    :param endpoints: the endpoint names this vendor's server knows.
    """

    def __init__(
        self,
        endpoints: Iterable[str],
        slow_seconds: float = 2.0,
        truncate_bytes: int = 1024,
        retry_after: int = 1,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self.slow_seconds = slow_seconds
        self.truncate_bytes = truncate_bytes
        self.retry_after = retry_after
        self.injected: dict[str, int] = {}
        self._queues: dict[str, deque[Fault | None]] = {}
        self._random: random.Random | None = None
        self._odds: list[tuple[str, float]] = []
        self._random_endpoints: frozenset[str] = frozenset(self.endpoints)
        self._lock = threading.Lock()

    def script(self, endpoint: str, actions: Iterable[int | str | None]) -> None:
        """Queue ``actions`` for the next requests to ``endpoint`` (appended to what is queued)."""
        self._check_endpoint(endpoint)
        parsed = [self._parse(endpoint, a) for a in actions]
        with self._lock:
            self._queues.setdefault(endpoint, deque()).extend(parsed)

    def random(
        self,
        seed: int,
        *,
        p_500: float = 0.0,
        p_503: float = 0.0,
        p_429: float = 0.0,
        p_reset: float = 0.0,
        p_slow: float = 0.0,
        p_truncate: float = 0.0,
        p_fail: float = 0.0,
        p_expire: float = 0.0,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Inject faults with these probabilities per request (after any scripted queue is used up)."""
        odds = [
            ("500", p_500), ("503", p_503), ("429", p_429), ("reset", p_reset), ("slow", p_slow),
            ("truncate", p_truncate), ("fail", p_fail), ("expire", p_expire),
        ]  # fmt: skip
        for name, p in odds:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"p_{name} must be a probability between 0 and 1, e.g. p_{name}=0.05")
        chosen = frozenset(endpoints) if endpoints is not None else frozenset(self.endpoints)
        for endpoint in chosen:
            self._check_endpoint(endpoint)
        with self._lock:
            self._random = random.Random(seed)
            self._odds = [(name, p) for name, p in odds if p > 0]
            self._random_endpoints = chosen

    def clear(self) -> None:
        """Drop every scripted and random fault (the counters stay)."""
        with self._lock:
            self._queues.clear()
            self._random = None
            self._odds = []

    def pending(self, endpoint: str) -> int:
        """Scripted actions still queued for ``endpoint``."""
        with self._lock:
            return len(self._queues.get(endpoint, ()))

    def next(self, endpoint: str) -> Fault | None:
        """The fault for this request to ``endpoint``, counted in ``injected``; ``None`` = serve normally."""
        with self._lock:
            queue = self._queues.get(endpoint)
            if queue:
                fault = queue.popleft()
            elif self._random is not None and endpoint in self._random_endpoints:
                fault = self._draw(endpoint)
            else:
                fault = None
            if fault is not None:
                self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
            return fault

    def _draw(self, endpoint: str) -> Fault | None:
        assert self._random is not None
        roll = self._random.random()
        for name, p in self._odds:
            if endpoint not in _ONLY_ON.get(name, {endpoint}):
                continue
            if roll < p:
                return self._parse(endpoint, name)
            roll -= p
        return None

    def _parse(self, endpoint: str, action: int | str | None) -> Fault | None:
        if action is None or action == "ok":
            return None
        if isinstance(action, int) and not isinstance(action, bool):
            if not 100 <= action <= 599:
                raise ValueError(f"fault status {action} is not an HTTP status, e.g. 503")
            return Fault(str(action), status=action)
        if isinstance(action, str):
            if action.isdigit():
                return self._parse(endpoint, int(action))
            name, _, arg = action.partition(":")
            if name in _ONLY_ON and endpoint not in _ONLY_ON[name]:
                raise ValueError(f"fault {name!r} applies to {sorted(_ONLY_ON[name])}, not {endpoint!r}")
            try:
                if name in ("reset", "norange"):
                    return Fault(name)
                if name == "slow":
                    return Fault("slow", seconds=float(arg) if arg else self.slow_seconds)
                if name == "truncate" or (name == "expire" and endpoint == "download"):
                    return Fault(name, keep_bytes=int(arg) if arg else self.truncate_bytes)
                if name in ("fail", "expire"):
                    return Fault(name)
            except ValueError:
                raise ValueError(
                    f"fault {action!r} has a bad argument, e.g. 'slow:0.5' or 'truncate:100'"
                ) from None
        raise ValueError(
            f"unknown fault {action!r}; use a status (503), 'reset', 'slow[:s]', 'truncate[:bytes]', "
            "'norange', 'fail', 'expire' or 'ok'"
        )

    def _check_endpoint(self, endpoint: str) -> None:
        if endpoint not in self.endpoints:
            raise ValueError(
                f"unknown endpoint {endpoint!r}; one of {self.endpoints}, e.g. {self.endpoints[-1]!r}"
            )
