"""The HTTP transports, sharing one retry policy and one set of limits: sync on ``requests`` (API calls and
downloads), async on ``httpx`` (API calls, for triggers).

Auth headers come from the dialect's :class:`AuthFlow`, per request, and only when the URL's origin (scheme,
host, port) is the API base URL's: never in session defaults, never on redirects (API calls do not follow
them), never from ``~/.netrc``. Pre-signed download links get none (Qlara); a dialect whose links need them
(``Capabilities.link_auth``, 8x8) gets them on the API's own origin only, and its redirects are then
followed by hand, keeping the credentials only while the origin stays the API's.

Hostile or broken servers are bounded: an API reply is read up to :data:`MAX_REPLY_BYTES` (decoded), and
each API request must finish within ``call_timeout`` (a reply that drips one byte at a time never trips the
per-read ``read_timeout``); a download must deliver :data:`DOWNLOAD_MIN_BYTES` every ``read_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import re
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin, urlsplit

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.decoding import ACCEPT_ENCODING, BoundedDecoder
from airflow_provider_msghistory.client.dialects.base import Dialect
from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    MsgHistoryError,
    UnexpectedResponseError,
)
from airflow_provider_msghistory.client.models import redact_url
from airflow_provider_msghistory.client.pacing import Pacer, RateLimit, pacer_for
from airflow_provider_msghistory.client.retry import NetworkFailure, RetryPolicy
from airflow_provider_msghistory.client.scrub import Scrubber
from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse

if TYPE_CHECKING:
    import httpx
    import requests

log = logging.getLogger(__name__)
T = TypeVar("T")
E = TypeVar("E", bound=Exception)

DOWNLOAD_ENDPOINT = "download"
MAX_REDIRECTS = 5
# Connections of one async client. A triggerer shares one client per connection among all its waits; a
# vendor polled per job (8x8) then has up to a poll's worth of requests in flight at once (1,000 waits,
# 5 s polls, 200 ms latency: about 40; 10,000 waits: up to 400, fewer while their jobs are young).
# httpcore's pool bookkeeping scans its connections once per idle connection on every request (quadratic
# in the pool's size: ~8 ms of CPU per request at 64), so the connections are spread over small pools,
# taken in turn.
ASYNC_POOL = 256
POOL_SHARD = 8
#: Largest API reply read into memory (after content decoding). The export API's replies are pages of
#: export metadata, a few KB each; a larger one is a broken or hostile server.
MAX_REPLY_BYTES = 8 << 20
#: A download must deliver at least this many bytes every ``read_timeout`` seconds, else it counts as broken
#: (and is resumed): a storage host dripping bytes must not hold a worker forever.
DOWNLOAD_MIN_BYTES = 64 << 10
_READ_SIZE = 64 << 10
_QUERY = re.compile(r"\?[^\s'\")]*")
_MAX_TEXT = 2000


class CallDeadlineExceeded(Exception):
    """An API request outlived ``call_timeout`` (internal: becomes a retryable network failure)."""


def policy_from_config(config: ClientConfig) -> RetryPolicy:
    """The retry policy a config asks for."""
    return RetryPolicy(
        max_attempts=int(config.max_attempts),
        max_retry_time=float(config.max_retry_time),
        backoff_base=float(config.backoff_base),
        backoff_max=float(config.backoff_max),
    )


def pacer_from_config(config: ClientConfig, dialect: Dialect) -> Pacer:
    """The pacer of the config's API key (process-wide, or the fleet's with ``rate_limit_store``): the
    dialect's published limits, or the config's overrides (``requests_per_second`` /
    ``requests_per_minute``); with no limit known, it carries only the server's holds (a 429's wait), so
    every vendor's waits on the server's word go through one place."""
    overrides = {1.0: config.requests_per_second, 60.0: config.requests_per_minute}
    limits = [
        RateLimit(overrides.get(float(limit.seconds)) or limit.requests, limit.seconds)
        for limit in dialect.rate_limits
    ]
    for seconds, requests in overrides.items():
        if requests and all(float(limit.seconds) != seconds for limit in limits):
            limits.append(RateLimit(requests, seconds))
    identity = config.api_key or f"{config.username}:{config.password}"
    if config.rate_limit_store:  # the fleet's bucket in Redis (an optional dependency: imported only then)
        from airflow_provider_msghistory.client.shared_pacing import shared_pacer_for

        return shared_pacer_for(config.base_url, identity, limits, config.rate_limit_store)
    return pacer_for(config.base_url, identity, limits)


class _Throttle:
    """One call's view of the key's pacer: wait out holds (except the one this call set and already slept
    through), take a permit, and report what the server said about the limit."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self._own_hold: float | None = None

    def hold_to_wait(self) -> float:
        if self.pacer.hold_until == self._own_hold:
            return 0.0
        return self.pacer.held_for()

    def rate_limited(self, delay: float) -> None:
        self._own_hold = self.pacer.hold(delay)

    def observe(self, headers: Mapping[str, str]) -> None:
        self.pacer.observe(headers)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def _decode(content: bytes) -> Any:
    """The JSON body, or ``None`` when empty or not JSON."""
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser's stack
        return None


def _too_large(endpoint: str) -> UnexpectedResponseError:
    return UnexpectedResponseError(
        None, f"the reply exceeds the {MAX_REPLY_BYTES >> 20} MiB limit of API replies; not read", endpoint
    )


def _deadline_message(config: ClientConfig) -> str:
    return f"no complete reply within call_timeout={config.call_timeout:g} s"


class _Stall:
    """Tells a download that keeps moving from one dripping bytes (see :data:`DOWNLOAD_MIN_BYTES`)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._start = time.monotonic()
        self._bytes = 0

    def check(self, received: int) -> None:
        self._bytes += received
        now = time.monotonic()
        if now - self._start >= self.window:
            if self._bytes < DOWNLOAD_MIN_BYTES:
                raise ApiConnectionError(
                    f"download stalled: {self._bytes} bytes in {now - self._start:.0f} s (less than "
                    f"{DOWNLOAD_MIN_BYTES} per read_timeout)",
                    DOWNLOAD_ENDPOINT,
                )
            self._start, self._bytes = now, 0


class _TransportBase:
    def __init__(self, config: ClientConfig, dialect: Dialect, policy: RetryPolicy | None) -> None:
        self.config = config
        self.dialect = dialect
        self.policy = policy or policy_from_config(config)
        self._origin = _origin(config.base_url)
        self.auth = dialect.auth()
        self.pacer = pacer_from_config(config, dialect)
        self._scrub: tuple[tuple[str, ...], Scrubber] | None = None

    @property
    def scrub(self) -> Scrubber:
        """Removes every credential form the dialect sends: the key or password and the header values built
        from them (``auth.secrets``), read live: a login flow's key changes over the transport's life."""
        secrets = (*self.config.secrets, *self.auth.secrets)
        if self._scrub is None or self._scrub[0] != secrets:
            self._scrub = (secrets, Scrubber(secrets))
        return self._scrub[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.config.base_url!r}, vendor={self.dialect.name!r})"

    def scrubbed(self, error: E) -> E:
        """``error`` with every credential removed from its message (then cut, in that order)."""
        scrub = self.scrub
        if isinstance(getattr(error, "message", None), str):
            error.message = scrub.clipped(error.message)  # type: ignore[attr-defined]
        error.args = tuple(scrub.clipped(str(arg)) for arg in error.args)
        return error

    @contextmanager
    def authenticating(self) -> Iterator[None]:
        """Errors raised while authenticating (a login's answer may echo the password) are scrubbed as any
        API error is."""
        try:
            yield
        except MsgHistoryError as error:
            raise self.scrubbed(error) from None

    def _raw(self, status: int, headers: Mapping[str, str], content: bytes) -> RawResponse:
        """The response as the client reads it; its text scrubbed before it is cut."""
        text = content[: _MAX_TEXT + self.scrub.longest].decode("utf-8", errors="replace")
        return RawResponse(status, headers, _decode(content), self.scrub.clipped(text, _MAX_TEXT))

    def _api_url(self, request: ApiRequest) -> str:
        return self.config.base_url + request.path

    def _own(self, url: str) -> bool:
        """Whether ``url`` is on the API base URL's origin (the only place credentials go)."""
        if _origin(url) == self._origin:
            return True
        log.warning("Not sending credentials to %s: not the API base URL's host", redact_url(url))
        return False

    def _safe(self, text: str) -> str:
        """``text`` with query strings and secrets removed (exception texts quote URLs)."""
        return self.scrub(_QUERY.sub("?<redacted>", text))

    def _download_headers(self, url: str, offset: int) -> tuple[dict[str, str], bool]:
        """Headers of a download request, and whether credentials go with it (the API's own origin)."""
        headers = {"Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={int(offset)}-"
        return headers, self.dialect.caps.link_auth and _origin(url) == self._origin

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


def _new_session() -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter

    class NoNetrcSession(requests.Session):
        """On each redirect ``requests`` reads ``~/.netrc`` again for the new host; never here (a download's
        redirect may lead anywhere). Credentials the session set itself are dropped too."""

        def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
            prepared_request.headers.pop("Authorization", None)

    session = NoNetrcSession()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


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


def _read_capped(
    response: requests.Response, endpoint: str, deadline: float, clock: Callable[[], float]
) -> bytes | None:
    """The decoded body, or ``None`` past :data:`MAX_REPLY_BYTES` (read and inflate no further).

    Raises :class:`CallDeadlineExceeded` once ``deadline`` passes (each read returns as soon as bytes arrive,
    so a dripping reply is caught within one ``read_timeout``).
    """
    raw = response.raw
    decoder = BoundedDecoder(response.headers.get("Content-Encoding"), endpoint)
    chunks: list[bytes] = []
    size = 0
    while True:
        if clock() > deadline:
            raise CallDeadlineExceeded
        chunk = raw.read1(_READ_SIZE, decode_content=False)
        if not chunk:
            return b"".join(chunks)
        for piece in decoder.feed(chunk):
            size += len(piece)
            if size > MAX_REPLY_BYTES:
                return None
            chunks.append(piece)


class DownloadResponse:
    """A streaming download (sync). Bytes are yielded exactly as stored (no content decoding).

    :param response: the open ``requests`` response.
    :param safe: redacts text for error messages.
    :param stall_window: seconds in which :data:`DOWNLOAD_MIN_BYTES` must arrive.
    """

    def __init__(self, response: requests.Response, safe: Callable[[str], str], stall_window: float) -> None:
        self._response = response
        self._safe = safe
        self._stall_window = stall_window
        self.status_code: int = response.status_code
        self.headers: Mapping[str, str] = response.headers

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes, each as soon as it arrived; a broken or
        stalled stream raises ApiConnectionError."""
        raw = self._response.raw
        stall = _Stall(self._stall_window)
        received = 0
        try:
            # One read per chunk into a new bytes object (no re-buffering): what arrived, when it arrived.
            while chunk := raw.read1(chunk_size, decode_content=False):
                received += len(chunk)
                stall.check(len(chunk))
                yield chunk
        except ApiConnectionError:
            raise
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
        self._session = session if session is not None else _new_session()
        self._sleep = sleep
        self._clock = clock
        self.auth.bind(send=lambda request: self.send(request, authenticate=False))

    def send(self, request: ApiRequest, authenticate: bool = True) -> RawResponse:
        """Send ``request`` with retries; returns the final response, error statuses included.

        ``authenticate=False`` sends no credentials (a login request)."""
        url = self._api_url(request)
        headers = {"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING, **request.headers}
        if authenticate and self._own(url):
            with self.authenticating():
                headers.update(self.auth.headers())
        response, content = self._send(
            request.endpoint,
            request.method,
            url,
            headers,
            params=request.params,
            json_body=request.json,
            idempotent=request.idempotent,
            download=False,
            throttle=_Throttle(self.pacer),
        )
        return self._raw(response.status_code, response.headers, content)

    @contextmanager
    def open_download(self, url: str, offset: int = 0) -> Iterator[DownloadResponse]:
        """Stream ``url`` (auth only on the API's own origin); ``offset > 0`` asks for ``Range``."""
        for _ in range(MAX_REDIRECTS):
            headers, own = self._download_headers(url, offset)
            if own:
                with self.authenticating():
                    headers.update(self.auth.headers())
            response, _ = self._send(
                DOWNLOAD_ENDPOINT,
                "GET",
                url,
                headers,
                params=None,
                json_body=None,
                idempotent=True,
                download=True,
                follow=not own,  # with credentials: each hop is checked here
            )
            location = response.headers.get("Location") if response.is_redirect else None
            if not location:
                break
            response.close()
            url = urljoin(url, location)
        else:
            raise ApiConnectionError(f"more than {MAX_REDIRECTS} redirects", DOWNLOAD_ENDPOINT)
        try:
            yield DownloadResponse(response, self._safe, float(self.config.read_timeout))
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
        download: bool,
        throttle: _Throttle | None = None,
        follow: bool = True,
    ) -> tuple[requests.Response, bytes]:
        """The final response and its body (API calls; a download's body is left to stream)."""
        import requests
        from urllib3.exceptions import HTTPError as Urllib3Error

        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            if throttle is not None:
                held = throttle.hold_to_wait()
                if held > 0:
                    self._sleep(held)
                throttle.pacer.acquire()
            deadline = self._clock() + float(self.config.call_timeout)
            content = b""
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=dict(headers),
                    timeout=(self.config.connect_timeout, self.config.read_timeout),
                    verify=self.config.verify,
                    allow_redirects=download and follow,
                    stream=True,
                    auth=_no_auth,
                )
                if download and response.status_code < 400:
                    return response, content
                if not download:
                    try:
                        capped = _read_capped(response, endpoint, deadline, self._clock)
                    finally:
                        response.close()
                    if capped is None and response.status_code < 400:
                        raise _too_large(endpoint)
                    content = capped or b""  # an oversized error body: its status still speaks
            except (requests.exceptions.RequestException, Urllib3Error, CallDeadlineExceeded, OSError) as exc:
                if isinstance(exc, requests.exceptions.RequestException):
                    failure = _classify_requests_error(exc)
                    what = self._safe(f"{type(exc).__name__}: {exc}")
                else:  # a deadline, or a read that broke under urllib3 (the reply may have been acted on)
                    failure = NetworkFailure.AFTER_SEND
                    what = (
                        _deadline_message(self.config)
                        if isinstance(exc, CallDeadlineExceeded)
                        else self._safe(f"{type(exc).__name__}: {exc}")
                    )
                delay = (
                    None
                    if failure is None
                    else self.policy.delay_for_failure(failure, attempt, self._clock() - started, idempotent)
                )
                if delay is None:
                    raise ApiConnectionError(f"{what} (after {attempt} attempt(s))", endpoint) from None
                self._log_retry(endpoint, what, delay, attempt)
                self._sleep(delay)
                continue
            if throttle is not None:
                throttle.observe(response.headers)
            if response.status_code < 400:
                return response, content
            body = None if download else _decode(content)
            delay = self.policy.delay_for_status(
                response.status_code, response.headers, body, attempt, self._clock() - started, idempotent
            )
            if delay is None:
                return response, content
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
        self._clients = [
            httpx.AsyncClient(
                timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
                verify=shared_ssl_context(config.verify),
                follow_redirects=False,
                limits=httpx.Limits(max_connections=POOL_SHARD, max_keepalive_connections=POOL_SHARD),
            )
            for _ in range(ASYNC_POOL // POOL_SHARD)
        ]
        self._next = itertools.cycle(self._clients)
        self._sleep = sleep
        self._clock = clock
        self.auth.bind(asend=lambda request: self.send(request, authenticate=False))

    async def send(self, request: ApiRequest, authenticate: bool = True) -> RawResponse:
        """Send ``request`` with retries; returns the final response, error statuses included.

        ``authenticate=False`` sends no credentials (a login request)."""
        url = self._api_url(request)
        headers = {"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING, **request.headers}
        if authenticate and self._own(url):
            with self.authenticating():
                headers.update(await self.auth.aheaders())
        response, content = await self._send(
            request.endpoint,
            request.method,
            url,
            headers,
            params=request.params,
            json_body=request.json,
            idempotent=request.idempotent,
            throttle=_Throttle(self.pacer),
        )
        return self._raw(response.status_code, response.headers, content)

    async def _attempt(
        self, client: httpx.AsyncClient, built: httpx.Request, endpoint: str
    ) -> tuple[httpx.Response, bytes]:
        """One request: the response and its capped body."""
        response = await client.send(built, stream=True)
        decoder = BoundedDecoder(response.headers.get("Content-Encoding"), endpoint)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_raw():
                for piece in decoder.feed(chunk):
                    size += len(piece)
                    if size > MAX_REPLY_BYTES:
                        break
                    chunks.append(piece)
                if size > MAX_REPLY_BYTES:
                    if response.status_code < 400:
                        raise _too_large(endpoint)
                    break  # an oversized error body: its status still speaks
        finally:
            await response.aclose()
        return response, b"".join(chunks)

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
        throttle: _Throttle,
    ) -> tuple[httpx.Response, bytes]:
        """The final response and its body."""
        import httpx

        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            held = throttle.hold_to_wait()
            if held > 0:
                await self._sleep(held)
            await throttle.pacer.aacquire()
            try:
                client = next(self._next)
                built = client.build_request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    json=json_body,
                    headers=dict(headers),
                )
                # The whole exchange, headers and body, within call_timeout.
                response, content = await within(
                    self._attempt(client, built, endpoint), float(self.config.call_timeout)
                )
            except (httpx.HTTPError, httpx.InvalidURL, OSError, asyncio.TimeoutError) as exc:
                if isinstance(exc, asyncio.TimeoutError):
                    failure: NetworkFailure | None = NetworkFailure.AFTER_SEND
                    what = _deadline_message(self.config)
                else:
                    failure = _classify_httpx_error(exc)
                    what = self._safe(f"{type(exc).__name__}: {exc}")
                delay = (
                    None
                    if failure is None
                    else self.policy.delay_for_failure(failure, attempt, self._clock() - started, idempotent)
                )
                if delay is None:
                    raise ApiConnectionError(f"{what} (after {attempt} attempt(s))", endpoint) from None
                self._log_retry(endpoint, what, delay, attempt)
                await self._sleep(delay)
                continue
            throttle.observe(response.headers)
            if response.status_code < 400:
                return response, content
            body = _decode(content)
            delay = self.policy.delay_for_status(
                response.status_code, response.headers, body, attempt, self._clock() - started, idempotent
            )
            if delay is None:
                return response, content
            await response.aclose()
            if response.status_code == 429:
                throttle.rate_limited(delay)
            self._log_retry(endpoint, f"HTTP {response.status_code}", delay, attempt)
            await self._sleep(delay)

    @property
    def closed(self) -> bool:
        return all(client.is_closed for client in self._clients)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        for client in self._clients:
            await client.aclose()


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
