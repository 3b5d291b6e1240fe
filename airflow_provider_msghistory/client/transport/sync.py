"""The sync transport: the core's decisions around ``requests`` (API calls and downloads)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow_provider_msghistory.client.auth import Login
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.decoding import ACCEPT_ENCODING
from airflow_provider_msghistory.client.dialects.base import Dialect
from airflow_provider_msghistory.client.errors import ApiConnectionError
from airflow_provider_msghistory.client.retry import NetworkFailure, RetryPolicy
from airflow_provider_msghistory.client.transport import (
    DOWNLOAD_ENDPOINT,
    READ_SIZE,
    Attempts,
    Authorizing,
    CallDeadlineExceeded,
    CappedBody,
    Hops,
    Stall,
    TransportCore,
)
from airflow_provider_msghistory.client.transport.pools import new_session, no_auth
from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse

if TYPE_CHECKING:
    import requests


@functools.lru_cache(maxsize=1)
def _network_errors() -> tuple[type[Exception], ...]:
    """What a request or a read raises when the network or the server fails it."""
    import requests
    from urllib3.exceptions import HTTPError as Urllib3Error

    return (requests.exceptions.RequestException, Urllib3Error, CallDeadlineExceeded, OSError)


def _classify_requests_error(exc: requests.RequestException) -> NetworkFailure | None:
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
) -> bytes:
    """The decoded body (see :meth:`CappedBody.content`).

    Raises :class:`CallDeadlineExceeded` once ``deadline`` passes (each read returns as soon as bytes arrive,
    so a dripping reply is caught within one ``read_timeout``).
    """
    raw = response.raw
    body = CappedBody(response.headers.get("Content-Encoding"), endpoint)
    while True:
        if clock() > deadline:
            raise CallDeadlineExceeded
        chunk = raw.read1(READ_SIZE, decode_content=False)
        if not chunk or not body.feed(chunk):
            return body.content(response.status_code)


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
        stall = Stall(self._stall_window)
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


class SyncTransport(TransportCore):
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
        super().__init__(config, dialect, policy, clock)
        self._own_session = session is None
        self._session = session if session is not None else new_session()
        self._sleep = sleep

    def classify(self, exc: Exception) -> NetworkFailure | None:
        import requests

        if isinstance(exc, requests.exceptions.RequestException):
            return _classify_requests_error(exc)
        return NetworkFailure.AFTER_SEND  # a read that broke under urllib3: the reply may have been acted on

    def send(self, request: ApiRequest) -> RawResponse:
        """Send ``request`` with retries, through the auth flow (a login, a renewal after a 401); returns
        the final response, error statuses included."""
        run = self.authorizing(self.api_url(request))
        while (step := run.step) is not None:
            if isinstance(step, Login):
                self._login(run, step)
            else:
                run.take(self._exchange(request, step.headers))
        return run.answer

    def _login(self, run: Authorizing, step: Login) -> None:
        with step.lock, self.authenticating():  # one login at a time; none when another client made it
            run.take(self._exchange(step.request, {}) if step.needed() else None)

    def _exchange(self, request: ApiRequest, credentials: Mapping[str, str]) -> RawResponse:
        headers = {"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING, **request.headers}
        response, content = self._send(
            self.attempts(request.endpoint, request.idempotent),
            request.method,
            self.api_url(request),
            {**headers, **credentials},
            params=request.params,
            json_body=request.json,
        )
        return self.raw(response.status_code, response.headers, content)

    @contextmanager
    def open_download(self, url: str, offset: int = 0) -> Iterator[DownloadResponse]:
        """Stream ``url`` (auth only on the API's own origin); ``offset > 0`` asks for ``Range``."""
        hops = Hops(url)
        while True:
            url = hops.next()
            headers, own = self.download_headers(url, offset)
            if own:
                headers.update(self._credentials())
            response, _ = self._send(
                self.attempts(DOWNLOAD_ENDPOINT, paced=False),
                "GET",
                url,
                headers,
                params=None,
                json_body=None,
                download=True,
                follow=not own,  # with credentials: each hop is checked here
            )
            if not hops.redirected(response.headers.get("Location") if response.is_redirect else None):
                break
            response.close()
        try:
            yield DownloadResponse(response, self.safe, float(self.config.read_timeout))
        finally:
            response.close()

    def _credentials(self) -> Mapping[str, str]:
        """The auth flow's headers for a download on the API's origin (a download is not renewed)."""
        run = Authorizing(self, self.auth.auth_flow())
        while isinstance(step := run.step, Login):
            self._login(run, step)
        return run.credentials()

    def _send(
        self,
        attempts: Attempts,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        params: Mapping[str, Any] | None,
        json_body: Any,
        download: bool = False,
        follow: bool = True,
    ) -> tuple[requests.Response, bytes]:
        """The final response and its body (API calls; a download's body is left to stream)."""
        while True:
            held = attempts.before()
            if held > 0:
                self._sleep(held)
            if attempts.paced:
                self.pacer.acquire()
            deadline = attempts.deadline()
            content = None
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
                    auth=no_auth,
                )
                if not download:
                    try:
                        content = _read_capped(response, attempts.endpoint, deadline, self.clock)
                    finally:
                        response.close()
            except _network_errors() as exc:
                self._sleep(attempts.failed(exc))
                continue
            delay = attempts.answered(response.status_code, response.headers, content)
            if delay is None:
                return response, content or b""
            response.close()
            self._sleep(delay)

    def close(self) -> None:
        """Close the session if this transport created it."""
        if self._own_session:
            self._session.close()
