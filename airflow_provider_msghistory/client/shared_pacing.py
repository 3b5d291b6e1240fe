"""Pacing shared by a fleet: every worker and triggerer of one API key takes permits from one Redis bucket.

A per-process pacer (:mod:`.pacing`) keeps N processes on one key at N times its limit. With a Redis URL in
``ClientConfig.rate_limit_store`` the permits come from PyrateLimiter's Redis bucket instead: the same
sliding-window log and the same margin, one sorted set per key, checked and filled by one Lua script, so
processes on any host share the key's budget. A hold the server asked for (a 429's wait,
``X-RateLimit-Remaining: 0``) is written to Redis too, and every process of the key waits it out before its
next request. The Redis keys are digests of the base URL and the credential, never the credential.

The store is a help, never a dependency: when Redis cannot be reached (at the first request or mid-load)
the pacer logs one warning and paces per process (the limiter it inherits), tries Redis again after
:data:`STORE_RETRY` seconds and logs when it is back. Redis calls have a :data:`STORE_TIMEOUT` deadline.

The bucket's timestamps are the hosts' wall clocks (as PyrateLimiter keeps them), so the hosts' clocks must
agree (NTP): a skew of a second shifts that host's windows by a second.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from airflow_provider_msghistory.client.pacing import MAX_HOLD, Pacer, RateLimit, limiter_rates

log = logging.getLogger(__name__)

#: seconds between attempts to reach the store again once it failed (paced per process meanwhile)
STORE_RETRY = 30.0
#: deadline of one Redis call (connect or reply): a hung store must not park the loads
STORE_TIMEOUT = 2.0
#: added to the bucket's wait before trying again
RETRY_MARGIN = 0.01
KEY_PREFIX = "msghistory:pace:"

# Extend the stored hold (epoch ms), never shorten it; it expires with itself.
_HOLD_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 0
"""


def _store_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError)


def _retry_in(wait_ms: int) -> float:
    """Seconds until the bucket has room again, and a little more (the server's window may start later)."""
    return max(wait_ms, 0) / 1000 + RETRY_MARGIN


def _held_seconds(value: Any) -> float:
    """Seconds left of a stored hold (capped: a broken value must not park a process)."""
    if value is None:
        return 0.0
    try:
        until_ms = int(value)
    except (TypeError, ValueError):
        return 0.0
    return min(max(until_ms / 1000 - time.time(), 0.0), MAX_HOLD)


class _Store:
    """What the sync and async sides share: the keys, the rates, and the hold arithmetic.

    Each process trims the bucket's expired entries, and renews its expiry of two longest windows, at its
    first permit and then at most every half window (PyrateLimiter's leaker thread would fail outside the
    fallback when Redis goes away): a permit still inside its window is never expired with the key, and a
    bucket every process left disappears."""

    def __init__(self, key: str, rates: list[Any]) -> None:
        self.key = key
        self.hold_key = key + ":hold"
        self.rates = rates
        window_ms = max((rate.interval for rate in rates), default=60_000)  # no rates: holds alone
        self.ttl_ms = 2 * window_ms
        self.trim_every = window_ms / 2000
        self.trimmed = -math.inf

    def trim_due(self) -> bool:
        now = time.monotonic()
        if now - self.trimmed < self.trim_every:
            return False
        self.trimmed = now
        return True

    @staticmethod
    def hold_args(until_epoch: float) -> list[int]:
        return [int(until_epoch * 1000), max(int((until_epoch - time.time()) * 1000), 1) + 1000]


class _SyncStore(_Store):
    def __init__(self, url: str, key: str, rates: list[Any]) -> None:
        from pyrate_limiter import RedisBucket
        from redis import Redis

        super().__init__(key, rates)
        self.redis = Redis.from_url(url, socket_timeout=STORE_TIMEOUT, socket_connect_timeout=STORE_TIMEOUT)
        try:
            # loads the script: reaches the server (no published limit: only the holds are shared)
            self.bucket = RedisBucket.init(rates, self.redis, key) if rates else None
        except BaseException:
            self.redis.close()
            raise
        self.hold_script = self.redis.register_script(_HOLD_SCRIPT)
        self.lock = threading.Lock()  # a put and the wait it records belong together

    def acquire(self) -> None:
        """Each try carries the time it is made: PyrateLimiter's own blocking loop dates a retry by the sleep
        it planned, and a process that overslept (a loaded host) would then be counted in the past, where
        the other processes' newer permits are not seen."""
        from pyrate_limiter import RateItem

        while True:
            if (held := _held_seconds(self.redis.get(self.hold_key))) > 0:
                time.sleep(held)
                continue
            if self.bucket is None:
                return
            item = RateItem("api", self.bucket.now())
            with self.lock:
                if self.bucket.put(item):
                    break
                wait_ms = self.bucket.waiting(item)
            time.sleep(_retry_in(wait_ms))
        if self.trim_due():
            self.bucket.leak(self.bucket.now())
            self.redis.pexpire(self.key, self.ttl_ms)

    def hold(self, until_epoch: float) -> None:
        self.hold_script(keys=[self.hold_key], args=self.hold_args(until_epoch))

    def close(self) -> None:
        self.redis.close()


class _AsyncStore(_Store):
    """One event loop's connections (asyncio Redis connections belong to the loop that opened them)."""

    def __init__(self, redis: Any, bucket: Any, key: str, rates: list[Any]) -> None:
        super().__init__(key, rates)
        self.redis = redis
        self.bucket = bucket
        self.hold_script = redis.register_script(_HOLD_SCRIPT)

    @classmethod
    async def open(cls, url: str, key: str, rates: list[Any]) -> _AsyncStore:
        from pyrate_limiter import RedisBucket
        from redis.asyncio import Redis

        redis = Redis.from_url(url, socket_timeout=STORE_TIMEOUT, socket_connect_timeout=STORE_TIMEOUT)
        try:
            bucket = await RedisBucket.init(rates, redis, key) if rates else None
        except BaseException:
            await redis.aclose()
            raise
        return cls(redis, bucket, key, rates)

    async def acquire(self) -> None:
        from pyrate_limiter import RateItem

        while True:
            if (held := _held_seconds(await self.redis.get(self.hold_key))) > 0:
                await asyncio.sleep(held)
                continue
            if self.bucket is None:
                return
            item = RateItem("api", self.bucket.now())
            if await self.bucket.put(item):
                break
            # read in the same step as the put recorded it (no await between: no other coroutine ran)
            await asyncio.sleep(_retry_in(self.bucket.waiting(item)))
        if self.trim_due():
            await self.bucket.leak(self.bucket.now())
            await self.redis.pexpire(self.key, self.ttl_ms)

    async def hold(self, until_epoch: float) -> None:
        await self.hold_script(keys=[self.hold_key], args=self.hold_args(until_epoch))


class SharedPacer(Pacer):
    """A :class:`~.pacing.Pacer` whose permits and holds live in Redis, per process when Redis is away.

    :param limits: the rates to keep under (all at once).
    :param store: the Redis URL (``redis://``, ``rediss://`` or ``unix://``).
    :param key: the bucket's Redis key (a digest; see :func:`shared_pacer_for`).
    """

    def __init__(self, limits: Sequence[RateLimit], store: str, key: str) -> None:
        super().__init__(limits)
        self._store_url = store
        self._key = key
        self._rates = limiter_rates(limits)
        self._state = threading.Lock()
        self._sync: _SyncStore | None = None
        self._loops: dict[asyncio.AbstractEventLoop, asyncio.Future[_AsyncStore]] = {}
        self._down_until = 0.0  # monotonic: paced per process until then
        self._degraded = False
        self._publishing: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return "Shared" + super().__repr__()

    # --- permits ---------------------------------------------------------------------------------------
    def acquire(self) -> None:
        if self._store_up():
            try:
                self._sync_store().acquire()
            except _store_errors() as exc:
                self._lost(exc)
            else:
                self._reached()
                return
        super().acquire()

    async def aacquire(self) -> None:
        if self._store_up():
            try:
                await (await self._async_store()).acquire()
            except _store_errors() as exc:
                self._lost(exc)
            else:
                self._reached()
                return
        await super().aacquire()

    # --- what the server says --------------------------------------------------------------------------
    def hold(self, seconds: float) -> float:
        """Hold this process (see :meth:`Pacer.hold`) and, through Redis, every other process of the key."""
        until = super().hold(seconds)
        if not self._store_up():
            return until
        until_epoch = time.time() + until - time.monotonic()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                self._sync_store().hold(until_epoch)
            except _store_errors() as exc:
                self._lost(exc)
        else:  # on an event loop: written by a task, never by a blocking call
            task = loop.create_task(self._ahold(until_epoch))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        return until

    async def _ahold(self, until_epoch: float) -> None:
        try:
            await (await self._async_store()).hold(until_epoch)
        except _store_errors() as exc:
            self._lost(exc)

    # --- the store -------------------------------------------------------------------------------------
    def _store_up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _sync_store(self) -> _SyncStore:
        store = self._sync
        if store is not None:
            return store
        # Connected outside the lock: an event loop taking it must never wait on a slow connect.
        store = _SyncStore(self._store_url, self._key, self._rates)
        with self._state:
            if self._sync is None:
                self._sync = store
                return store
            winner = self._sync
        store.close()  # another thread connected first
        return winner

    async def _async_store(self) -> _AsyncStore:
        loop = asyncio.get_running_loop()
        with self._state:
            for other in [other for other in self._loops if other.is_closed()]:
                del self._loops[other]
            opening = self._loops.get(loop)
            if opening is None:  # the loop's first caller opens it; the others await the same future
                opening = self._loops[loop] = asyncio.ensure_future(
                    _AsyncStore.open(self._store_url, self._key, self._rates)
                )
        return await asyncio.shield(opening)

    def _lost(self, exc: BaseException) -> None:
        """Pace per process for :data:`STORE_RETRY` seconds; warn once per outage."""
        with self._state:
            self._down_until = time.monotonic() + STORE_RETRY
            stale, self._sync = self._sync, None
            self._loops.clear()  # the next attempt reconnects (a restarted Redis forgot the script)
            warn, self._degraded = not self._degraded, True
        if stale is not None:
            stale.close()
        if warn:
            log.warning(
                "Shared rate limiter: Redis is unreachable (%s: %s); pacing this process on its own, so "
                "the fleet may exceed the API key's limit and see 429s until Redis is back (next try in "
                "%.0f s)",
                type(exc).__name__,
                exc,
                STORE_RETRY,
            )

    def _reached(self) -> None:
        if self._degraded:
            with self._state:
                back, self._degraded = self._degraded, False
            if back:
                log.info("Shared rate limiter: Redis is reachable again; pacing with the fleet")


def store_key(base_url: str, identity: str) -> str:
    """The bucket's Redis key of one API key at one base URL: a digest, never the credential."""
    return KEY_PREFIX + hashlib.sha256(f"{base_url}\n{identity}".encode()).hexdigest()


_SHARED: dict[tuple[str, str, tuple[RateLimit, ...]], SharedPacer] = {}
_SHARED_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    """A forked task process opens connections of its own (the parent's sockets are not its to use)."""
    global _SHARED_LOCK
    _SHARED_LOCK = threading.Lock()
    _SHARED.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def shared_pacer_for(base_url: str, identity: str, limits: Sequence[RateLimit], store: str) -> SharedPacer:
    """The process's shared pacer of one API key at one base URL (created on first use; connects lazily).

    :param base_url: the API base URL.
    :param identity: the credential the vendor counts against (only its digest is kept).
    :param limits: its rates.
    :param store: the Redis URL.
    """
    if importlib.util.find_spec("redis") is None:  # at client creation (task start), not at a request
        raise ValueError(
            "rate_limit_store: the shared rate limit needs the redis package; install "
            "\"airflow-provider-msghistory[redis]\" on every worker and triggerer"
        )
    key = store_key(base_url, identity)
    with _SHARED_LOCK:
        pacer = _SHARED.get((store, key, tuple(limits)))
        if pacer is None:
            pacer = _SHARED[(store, key, tuple(limits))] = SharedPacer(limits, store, key)
        return pacer
