"""Two thin HTTP transports sharing one retry policy: sync on ``requests``, async on ``httpx``.

Auth headers are added per request and only when the URL's origin (scheme, host, port) is the API base
URL's: never in session defaults, never on redirects (API calls do not follow them) and never on downloads,
whose pre-signed URLs carry their own authorisation and usually point at another host.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.dialects.base import ApiRequest, Dialect
from airflow_provider_msghistory.client.errors import ApiConnectionError
from airflow_provider_msghistory.client.models import redact_url
from airflow_provider_msghistory.client.pacing import Pacer, RateLimit, pacer_for
from airflow_provider_msghistory.client.retry import NetworkFailure, RetryPolicy

if TYPE_CHECKING:
    import httpx
    import requests

log = logging.getLogger(__name__)

DOWNLOAD_ENDPOINT = "download"
_QUERY = re.compile(r"\?[^\s'\")]*")
_MAX_TEXT = 2000


@dataclass(frozen=True)
class RawResponse:
    """A fully read API response.

    :param status_code: HTTP status.
    :param headers: response headers (case-insensitive mapping).
    :param body: decoded JSON body, or ``None`` when empty or not JSON.
    :param text: the start of the body as text (for error messages).
    """

    status_code: int
    headers: Mapping[str, str]
    body: Any
    text: str


def policy_from_config(config: ClientConfig) -> RetryPolicy:
    """The retry policy a config asks for."""
    return RetryPolicy(
        max_attempts=int(config.max_attempts),
        max_retry_time=float(config.max_retry_time),
        backoff_base=float(config.backoff_base),
        backoff_max=float(config.backoff_max),
    )


def pacer_from_config(config: ClientConfig, dialect: Dialect) -> Pacer | None:
    """The process-wide pacer of the config's API key: the dialect's published limits, or the config's
    overrides (``requests_per_second`` / ``requests_per_minute``); ``None`` when no limit is known."""
    overrides = {1.0: config.requests_per_second, 60.0: config.requests_per_minute}
    limits = [
        RateLimit(overrides.get(float(limit.seconds)) or limit.requests, limit.seconds)
        for limit in dialect.rate_limits
    ]
    for seconds, requests in overrides.items():
        if requests and all(float(limit.seconds) != seconds for limit in limits):
            limits.append(RateLimit(requests, seconds))
    if not limits:
        return None
    identity = config.api_key or f"{config.username}:{config.password}"
    return pacer_for(config.base_url, identity, limits)


class _Throttle:
    """One call's view of the key's pacer: wait out holds (except the one this call set and already slept
    through), take a permit, and report what the server said about the limit."""

    def __init__(self, pacer: Pacer | None) -> None:
        self.pacer = pacer
        self._own_hold: float | None = None

    def hold_to_wait(self) -> float:
        if self.pacer is None or self.pacer.hold_until == self._own_hold:
            return 0.0
        return self.pacer.held_for()

    def rate_limited(self, delay: float) -> None:
        if self.pacer is not None:
            self._own_hold = self.pacer.hold(delay)

    def observe(self, headers: Mapping[str, str]) -> None:
        if self.pacer is not None:
            self.pacer.observe(headers)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def _decode(content: bytes) -> tuple[Any, str]:
    text = content[:_MAX_TEXT].decode("utf-8", errors="replace")
    if not content.strip():
        return None, text
    try:
        return json.loads(content), text
    except ValueError:
        return None, text


class _TransportBase:
    def __init__(self, config: ClientConfig, dialect: Dialect, policy: RetryPolicy | None) -> None:
        self.config = config
        self.dialect = dialect
        self.policy = policy or policy_from_config(config)
        self._origin = _origin(config.base_url)
        self._auth = dialect.auth_headers(config)
        self.pacer = pacer_from_config(config, dialect)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.config.base_url!r}, vendor={self.dialect.name!r})"

    def _api_url(self, request: ApiRequest) -> str:
        return self.config.base_url + request.path

    def _api_headers(self, url: str, request: ApiRequest) -> dict[str, str]:
        headers = {"Accept": "application/json", **request.headers}
        if _origin(url) == self._origin:
            headers.update(self._auth)
        else:  # a dialect built an absolute URL elsewhere: it gets no credentials
            log.warning("Not sending credentials to %s: not the API base URL's host", redact_url(url))
        return headers

    def _safe(self, text: str) -> str:
        """``text`` with query strings and secrets removed (exception texts quote URLs)."""
        text = _QUERY.sub("?<redacted>", text)
        for secret in self.config.secrets:
            text = text.replace(secret, "***")
        return text

    def _log_retry(self, endpoint: str, what: str, delay: float, attempt: int) -> None:
        log.warning(
            "%s: %s; retrying in %.1f s (attempt %d of %d)",
            endpoint,
            what,
            delay,
            attempt + 1,
            self.policy.max_attempts,
        )


# --- sync ---------------------------------------------------------------------------------------------
def _no_auth(request: Any) -> Any:
    """Explicit no-op auth: stops ``requests`` from adding credentials from ``~/.netrc``."""
    return request


def _classify_requests_error(exc: requests.RequestException) -> NetworkFailure | None:
    """CONNECT when nothing reached the server, AFTER_SEND when it may have, None when retrying is futile."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(
        exc,
        (
            requests.exceptions.SSLError,
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidHeader,
        ),
    ):
        return None
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return NetworkFailure.CONNECT
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
            return NetworkFailure.CONNECT
        return NetworkFailure.AFTER_SEND
    return NetworkFailure.AFTER_SEND


class DownloadResponse:
    """A streaming download (sync). Bytes are yielded exactly as stored (no content decoding).

    :param response: the open ``requests`` response.
    :param safe: redacts text for error messages.
    """

    def __init__(self, response: requests.Response, safe: Callable[[str], str]) -> None:
        self._response = response
        self._safe = safe
        self.status_code: int = response.status_code
        self.headers: Mapping[str, str] = response.headers

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes; a broken stream raises ApiConnectionError."""
        received = 0
        try:
            for chunk in self._response.raw.stream(chunk_size, decode_content=False):
                received += len(chunk)
                yield chunk
        except Exception as exc:  # urllib3/requests/OS errors all mean the same: the stream broke
            raise ApiConnectionError(
                f"download interrupted after {received} bytes: {self._safe(repr(exc))}", DOWNLOAD_ENDPOINT
            ) from None


class SyncTransport(_TransportBase):
    """HTTP on a pooled ``requests.Session`` with the shared retry policy.

    :param config: client configuration.
    :param dialect: the vendor dialect (supplies auth headers).
    :param policy: retry policy (default: from ``config``).
    :param session: a session to use (default: a new pooled one, closed by :meth:`close`).
    :param sleep: how to wait between attempts (tests pass a recorder).
    :param clock: monotonic clock for the total-time bound.
    """

    def __init__(
        self,
        config: ClientConfig,
        dialect: Dialect,
        *,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, dialect, policy)
        self._own_session = session is None
        self._session = session if session is not None else self._new_session()
        self._sleep = sleep
        self._clock = clock

    @staticmethod
    def _new_session() -> requests.Session:
        import requests
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def send(self, request: ApiRequest) -> RawResponse:
        """Send ``request`` with retries; returns the final response, error statuses included."""
        url = self._api_url(request)
        response = self._send(
            request.endpoint,
            request.method,
            url,
            self._api_headers(url, request),
            params=request.params,
            json_body=request.json,
            idempotent=request.idempotent,
            stream=False,
            redirects=False,
            throttle=_Throttle(self.pacer),
        )
        body, text = _decode(response.content)
        return RawResponse(response.status_code, response.headers, body, text)

    @contextmanager
    def open_download(self, url: str, offset: int = 0) -> Iterator[DownloadResponse]:
        """Stream ``url`` (no auth header); ``offset > 0`` asks for ``Range: bytes=offset-``."""
        headers = {"Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={int(offset)}-"
        response = self._send(
            DOWNLOAD_ENDPOINT,
            "GET",
            url,
            headers,
            params=None,
            json_body=None,
            idempotent=True,
            stream=True,
            redirects=True,
        )
        try:
            yield DownloadResponse(response, self._safe)
        finally:
            response.close()

    def _send(
        self,
        endpoint: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        params: Mapping[str, Any] | None,
        json_body: Any,
        idempotent: bool,
        stream: bool,
        redirects: bool,
        throttle: _Throttle | None = None,
    ) -> requests.Response:
        import requests

        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            if throttle is not None and throttle.pacer is not None:
                held = throttle.hold_to_wait()
                if held > 0:
                    self._sleep(held)
                throttle.pacer.acquire()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=dict(headers),
                    timeout=(self.config.connect_timeout, self.config.read_timeout),
                    verify=self.config.verify,
                    allow_redirects=redirects,
                    stream=stream,
                    auth=_no_auth,
                )
            except requests.exceptions.RequestException as exc:
                failure = _classify_requests_error(exc)
                delay = (
                    None
                    if failure is None
                    else self.policy.delay_for_failure(failure, attempt, self._clock() - started, idempotent)
                )
                what = self._safe(f"{type(exc).__name__}: {exc}")
                if delay is None:
                    raise ApiConnectionError(f"{what} (after {attempt} attempt(s))", endpoint) from None
                self._log_retry(endpoint, what, delay, attempt)
                self._sleep(delay)
                continue
            if throttle is not None:
                throttle.observe(response.headers)
            if response.status_code < 400:
                return response
            if stream:
                body: Any = None
            else:
                body, _ = _decode(response.content)
            delay = self.policy.delay_for_status(
                response.status_code, response.headers, body, attempt, self._clock() - started, idempotent
            )
            if delay is None:
                return response
            response.close()
            if response.status_code == 429 and throttle is not None:
                throttle.rate_limited(delay)  # every client of the key waits, not only this one
            self._log_retry(endpoint, f"HTTP {response.status_code}", delay, attempt)
            self._sleep(delay)

    def close(self) -> None:
        """Close the session if this transport created it."""
        if self._own_session:
            self._session.close()


# --- async --------------------------------------------------------------------------------------------
def _classify_httpx_error(exc: Exception) -> NetworkFailure | None:
    import httpx

    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        if isinstance(exc.__cause__, ssl.SSLCertVerificationError):
            return None
        return NetworkFailure.CONNECT
    if isinstance(exc, httpx.TransportError) and not isinstance(
        exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)
    ):
        return NetworkFailure.AFTER_SEND
    return None


class AsyncDownloadResponse:
    """A streaming download (async). Bytes are yielded exactly as stored (no content decoding).

    :param response: the open ``httpx`` response.
    :param safe: redacts text for error messages.
    """

    def __init__(self, response: httpx.Response, safe: Callable[[str], str]) -> None:
        self._response = response
        self._safe = safe
        self.status_code: int = response.status_code
        self.headers: Mapping[str, str] = response.headers

    async def iter_bytes(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes; a broken stream raises ApiConnectionError."""
        import httpx

        received = 0
        try:
            async for chunk in self._response.aiter_raw(chunk_size):
                received += len(chunk)
                yield chunk
        except (httpx.HTTPError, OSError) as exc:
            raise ApiConnectionError(
                f"download interrupted after {received} bytes: {self._safe(repr(exc))}", DOWNLOAD_ENDPOINT
            ) from None


@functools.lru_cache(maxsize=8)
def shared_ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """One TLS context per ``verify`` setting per process.

    Building one loads the CA bundle (~40 ms and ~0.8 MB each): a triggerer running a thousand async
    clients must neither repeat that per client nor do it on its event loop.
    """
    import httpx

    if verify is False:
        return False
    if verify is True:
        return httpx.create_ssl_context()
    return ssl.create_default_context(cafile=verify)


class AsyncTransport(_TransportBase):
    """HTTP on an ``httpx.AsyncClient`` with the shared retry policy. Never blocks the event loop.

    :param config: client configuration.
    :param dialect: the vendor dialect (supplies auth headers).
    :param policy: retry policy (default: from ``config``).
    :param sleep: how to wait between attempts (tests pass a recorder).
    :param clock: monotonic clock for the total-time bound.
    """

    def __init__(
        self,
        config: ClientConfig,
        dialect: Dialect,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import httpx

        super().__init__(config, dialect, policy)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            verify=shared_ssl_context(config.verify),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )
        self._sleep = sleep
        self._clock = clock

    async def send(self, request: ApiRequest) -> RawResponse:
        """Send ``request`` with retries; returns the final response, error statuses included."""
        url = self._api_url(request)
        response = await self._send(
            request.endpoint,
            request.method,
            url,
            self._api_headers(url, request),
            params=request.params,
            json_body=request.json,
            idempotent=request.idempotent,
            stream=False,
            redirects=False,
            throttle=_Throttle(self.pacer),
        )
        body, text = _decode(response.content)
        return RawResponse(response.status_code, response.headers, body, text)

    @asynccontextmanager
    async def open_download(self, url: str, offset: int = 0) -> AsyncIterator[AsyncDownloadResponse]:
        """Stream ``url`` (no auth header); ``offset > 0`` asks for ``Range: bytes=offset-``."""
        headers = {"Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={int(offset)}-"
        response = await self._send(
            DOWNLOAD_ENDPOINT,
            "GET",
            url,
            headers,
            params=None,
            json_body=None,
            idempotent=True,
            stream=True,
            redirects=True,
        )
        try:
            yield AsyncDownloadResponse(response, self._safe)
        finally:
            await response.aclose()

    async def _send(
        self,
        endpoint: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        params: Mapping[str, Any] | None,
        json_body: Any,
        idempotent: bool,
        stream: bool,
        redirects: bool,
        throttle: _Throttle | None = None,
    ) -> httpx.Response:
        import httpx

        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            if throttle is not None and throttle.pacer is not None:
                held = throttle.hold_to_wait()
                if held > 0:
                    await self._sleep(held)
                await throttle.pacer.aacquire()
            try:
                built = self._client.build_request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    json=json_body,
                    headers=dict(headers),
                )
                response = await self._client.send(built, stream=stream, follow_redirects=redirects)
            except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
                failure = _classify_httpx_error(exc)
                delay = (
                    None
                    if failure is None
                    else self.policy.delay_for_failure(failure, attempt, self._clock() - started, idempotent)
                )
                what = self._safe(f"{type(exc).__name__}: {exc}")
                if delay is None:
                    raise ApiConnectionError(f"{what} (after {attempt} attempt(s))", endpoint) from None
                self._log_retry(endpoint, what, delay, attempt)
                await self._sleep(delay)
                continue
            if throttle is not None:
                throttle.observe(response.headers)
            if response.status_code < 400:
                return response
            body: Any = None
            if not stream:
                body, _ = _decode(response.content)
            delay = self.policy.delay_for_status(
                response.status_code, response.headers, body, attempt, self._clock() - started, idempotent
            )
            if delay is None:
                return response
            await response.aclose()
            if response.status_code == 429 and throttle is not None:
                throttle.rate_limited(delay)
            self._log_retry(endpoint, f"HTTP {response.status_code}", delay, attempt)
            await self._sleep(delay)

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
