"""The async transport: the core's decisions around h11 on asyncio streams, or ``httpx`` through a proxy (API
calls, for triggers). Never blocks the event loop."""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from airflow_provider_msghistory.client.auth import Login
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.decoding import ACCEPT_ENCODING
from airflow_provider_msghistory.client.dialects.base import Dialect
from airflow_provider_msghistory.client.retry import NetworkFailure, RetryPolicy
from airflow_provider_msghistory.client.transport import Authorizing, CappedBody, TransportCore
from airflow_provider_msghistory.client.transport.pools import AsyncResponse, async_sender
from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse

T = TypeVar("T")


@functools.lru_cache(maxsize=1)
def _network_errors() -> tuple[type[Exception], ...]:
    """What a request raises when the network or the server fails it, or its time is up."""
    import httpx

    from airflow_provider_msghistory.client.transport import h11pool

    return (
        h11pool.ConnectFailed,
        h11pool.ExchangeFailed,
        h11pool.InvalidRequest,
        httpx.HTTPError,
        httpx.InvalidURL,
        OSError,
        asyncio.TimeoutError,
    )


class AsyncTransport(TransportCore):
    """HTTP on an h11 keep-alive pool (``httpx`` through a proxy) with the shared retry policy.

    :param config: client configuration.
    :param dialect: the vendor dialect (supplies auth headers).
    :param policy: retry policy (default: from ``config``).
    :param sleep: how to wait between attempts (tests pass a recorder).
    :param clock: monotonic clock for the total-time bound.
    """

    # The whole exchange, headers and body, runs within call_timeout.
    deadline_errors = (asyncio.TimeoutError,)

    def __init__(
        self,
        config: ClientConfig,
        dialect: Dialect,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, dialect, policy, clock)
        self._sender = async_sender(config)
        self._sleep = sleep

    def classify(self, exc: Exception) -> NetworkFailure | None:
        import ssl

        import httpx

        from airflow_provider_msghistory.client.transport import h11pool

        if isinstance(exc, h11pool.ConnectFailed):
            return None if exc.certificate else NetworkFailure.CONNECT
        if isinstance(exc, h11pool.ExchangeFailed):
            return NetworkFailure.AFTER_SEND
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            if isinstance(exc.__cause__, ssl.SSLCertVerificationError):
                return None
            return NetworkFailure.CONNECT
        if isinstance(exc, httpx.TransportError) and not isinstance(
            exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)
        ):
            return NetworkFailure.AFTER_SEND
        return None

    async def send(self, request: ApiRequest) -> RawResponse:
        """Send ``request`` with retries, through the auth flow (a login, a renewal after a 401); returns
        the final response, error statuses included."""
        run = self.authorizing(self.api_url(request))
        while (step := run.step) is not None:
            if isinstance(step, Login):
                await self._login(run, step)
            else:
                run.take(await self._exchange(request, step.headers))
        return run.answer

    async def _login(self, run: Authorizing, step: Login) -> None:
        async with step.alock():  # one login at a time; none when another client made it
            with self.authenticating():
                run.take(await self._exchange(step.request, {}) if step.needed() else None)

    async def _exchange(self, request: ApiRequest, credentials: Mapping[str, str]) -> RawResponse:
        headers = {"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING, **request.headers}
        attempts = self.attempts(request.endpoint, request.idempotent)
        while True:
            held = attempts.before()
            if held > 0:
                await self._sleep(held)
            await self.pacer.aacquire()
            try:
                exchange = self._attempt(request, {**headers, **credentials})
                response, body = await within(exchange, float(self.config.call_timeout))
            except _network_errors() as exc:
                await self._sleep(attempts.failed(exc))
                continue
            content = body.content(response.status_code)
            delay = attempts.answered(response.status_code, response.headers, content)
            if delay is None:
                return self.raw(response.status_code, response.headers, content)
            await self._sleep(delay)

    async def _attempt(
        self, request: ApiRequest, headers: Mapping[str, str]
    ) -> tuple[AsyncResponse, CappedBody]:
        """One request: the response and its capped body (past the cap the connection is dropped)."""
        url = self.api_url(request)
        response = await self._sender.send(request.method, url, request.params, request.json, headers)
        try:
            body = CappedBody(response.headers.get("Content-Encoding"), request.endpoint)
            async for chunk in response.aiter_raw():
                if not body.feed(chunk):
                    break
        finally:
            await response.aclose()
        return response, body

    @property
    def closed(self) -> bool:
        return self._sender.is_closed

    async def aclose(self) -> None:
        """Close the connections."""
        await self._sender.aclose()


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """``awaitable`` bounded by ``timeout`` seconds (``asyncio.TimeoutError`` past it).

    Python 3.11's ``asyncio.wait_for`` can swallow a cancellation that arrives as the awaited call
    completes (fixed in 3.12): a killed trigger would then go on waiting. ``asyncio.timeout`` has no
    such race.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)
