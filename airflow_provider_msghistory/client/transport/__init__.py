"""The HTTP transports: one core that takes every decision, two thin I/O loops around it.

As httpx's ``BaseClient`` / ``Client`` / ``AsyncClient``: this module holds every decision, with no I/O (how
a failure is classified, when a call's time is up, whether a request that creates an export may be sent
again, how a 429 holds the key's pacer, what is logged, the next redirect hop, the steps of the auth flow);
``sync.py`` (``requests``: API calls and downloads) and ``aio.py`` (``httpx``: API calls, for triggers)
only send, read and sleep; ``pools.py`` builds their connection pools and TLS contexts.

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

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from airflow_provider_msghistory.client.auth import Flow, Signed, Step
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.decoding import BoundedDecoder
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

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Exception)

DOWNLOAD_ENDPOINT = "download"
MAX_REDIRECTS = 5
#: Largest API reply read into memory (after content decoding). The export API's replies are pages of
#: export metadata, a few KB each; a larger one is a broken or hostile server.
MAX_REPLY_BYTES = 8 << 20
#: A download must deliver at least this many bytes every ``read_timeout`` seconds, else it counts as broken
#: (and is resumed): a storage host dripping bytes must not hold a worker forever.
DOWNLOAD_MIN_BYTES = 64 << 10
READ_SIZE = 64 << 10
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


class CappedBody:
    """An API reply's body as it arrives: decoded (gzip/deflate) and read no further than
    :data:`MAX_REPLY_BYTES`."""

    def __init__(self, content_encoding: str | None, endpoint: str) -> None:
        self._decoder = BoundedDecoder(content_encoding, endpoint)
        self._chunks: list[bytes] = []
        self._size = 0
        self.endpoint = endpoint

    def feed(self, chunk: bytes) -> bool:
        """Take in one raw chunk; ``False`` once the reply is past the cap (read and inflate no further)."""
        for piece in self._decoder.feed(chunk):
            self._size += len(piece)
            if self._size > MAX_REPLY_BYTES:
                return False
            self._chunks.append(piece)
        return True

    def content(self, status: int) -> bytes:
        """The body; past the cap an error status still speaks (with no body), a success is refused."""
        if self._size <= MAX_REPLY_BYTES:
            return b"".join(self._chunks)
        if status < 400:
            raise UnexpectedResponseError(
                None,
                f"the reply exceeds the {MAX_REPLY_BYTES >> 20} MiB limit of API replies; not read",
                self.endpoint,
            )
        return b""


class Stall:
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


class Hops:
    """A download's redirects, followed by hand (credentials go only to the API's origin): at most
    :data:`MAX_REDIRECTS` requests."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sent = 0

    def next(self) -> str:
        """The URL of the next request; ``ApiConnectionError`` past the limit."""
        if self._sent >= MAX_REDIRECTS:
            raise ApiConnectionError(f"more than {MAX_REDIRECTS} redirects", DOWNLOAD_ENDPOINT)
        self._sent += 1
        return self.url

    def redirected(self, location: str | None) -> bool:
        """Whether the answer redirects (then :meth:`next` leads there)."""
        if not location:
            return False
        self.url = urljoin(self.url, location)
        return True


class Attempts:
    """One call's attempts and every decision between them; the transports' loops only do the I/O:

    ``before()`` (sleep that long, take a permit), send, then ``failed(exc)`` (sleep the delay it returns;
    it raises when the call is over) or ``answered(...)`` (``None``: this answer is the call's).
    """

    def __init__(self, core: TransportCore, endpoint: str, idempotent: bool, paced: bool) -> None:
        self._core = core
        self.endpoint = endpoint
        self.idempotent = idempotent
        self._own_hold: float | None = None  # the hold this call set after a 429, already slept through
        self.paced = paced
        self.attempt = 0
        self.started = core.clock()

    def before(self) -> float:
        """Starts the next attempt: the seconds to wait first, for a hold another client of the key set."""
        self.attempt += 1
        pacer = self._core.pacer
        if not self.paced or pacer.hold_until == self._own_hold:
            return 0.0
        return pacer.held_for()

    def deadline(self) -> float:
        """When this attempt's reply must be complete."""
        return self._core.clock() + float(self._core.config.call_timeout)

    def failed(self, exc: Exception) -> float:
        """The delay before the next attempt after ``exc``; raises ``ApiConnectionError`` when retrying is
        futile, not allowed (the request may have created an export) or out of budget."""
        core = self._core
        if isinstance(exc, core.deadline_errors):
            failure: NetworkFailure | None = NetworkFailure.AFTER_SEND
            what = f"no complete reply within call_timeout={core.config.call_timeout:g} s"
        else:
            failure, what = core.classify(exc), core.safe(f"{type(exc).__name__}: {exc}")
        delay = None if failure is None else core.policy.delay_for_failure(failure, *self._so_far())
        if delay is None:
            raise ApiConnectionError(f"{what} (after {self.attempt} attempt(s))", self.endpoint) from None
        self._log_retry(what, delay)
        return delay

    def answered(self, status: int, headers: Mapping[str, str], content: bytes | None) -> float | None:
        """``None`` when this answer is the call's (success, or an error status that is final); else the
        delay before the next attempt. A 429 holds every client of the key that long."""
        if self.paced:
            self._core.pacer.observe(headers)
        if status < 400:
            return None
        body = None if content is None else _decode(content)
        delay = self._core.policy.delay_for_status(status, headers, body, *self._so_far())
        if delay is None:
            return None
        if status == 429 and self.paced:
            self._own_hold = self._core.pacer.hold(delay)
        self._log_retry(f"HTTP {status}", delay)
        return delay

    def _so_far(self) -> tuple[int, float, bool]:
        return self.attempt, self._core.clock() - self.started, self.idempotent

    def _log_retry(self, what: str, delay: float) -> None:
        log.warning(
            "%s: %s; retrying in %.1f s (attempt %d of %d)",
            self.endpoint,
            what,
            delay,
            self.attempt + 1,
            self._core.policy.max_attempts,
        )


class Authorizing:
    """One request's pass through the auth flow (see :mod:`~airflow_provider_msghistory.client.auth`):
    ``step`` is what to send next (``None``: done), ``take(answer)`` hands its answer to the flow (errors
    scrubbed), ``answer`` is the request's. The transports' loops only send."""

    def __init__(self, core: TransportCore, flow: Flow) -> None:
        self._core = core
        self._flow = flow
        self._answer: RawResponse | None = None
        self.step: Step | None = None
        self.take(None)

    def take(self, answer: RawResponse | None) -> None:
        """The answer to ``step`` (``None`` for a login another client made, or to start)."""
        if isinstance(self.step, Signed):
            self._answer = answer
        with self._core.authenticating():
            try:
                self.step = self._flow.send(answer)
            except StopIteration:
                self.step = None

    def credentials(self) -> Mapping[str, str]:
        """The headers of the flow's first signature, its logins taken (a download is not renewed)."""
        self._flow.close()
        return self.step.headers if isinstance(self.step, Signed) else {}

    @property
    def answer(self) -> RawResponse:
        if self._answer is None:
            raise RuntimeError(f"{type(self._core.auth).__name__} ended without signing the request")
        return self._answer


class TransportCore:
    """What both transports share: configuration, credentials and their scrubbing, and the decisions.

    :param config: client configuration.
    :param dialect: the vendor dialect (supplies the auth flow and rate limits).
    :param policy: retry policy (default: from ``config``).
    :param clock: monotonic clock for the total-time bound.
    """

    #: errors that mean the call's time is up (each I/O loop names its own)
    deadline_errors: tuple[type[Exception], ...] = (CallDeadlineExceeded,)

    def __init__(
        self,
        config: ClientConfig,
        dialect: Dialect,
        policy: RetryPolicy | None,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.dialect = dialect
        self.policy = policy or policy_from_config(config)
        self.clock = clock
        self._origin = _origin(config.base_url)
        self.auth = dialect.auth()
        self.pacer = pacer_from_config(config, dialect)
        self._scrub: tuple[tuple[str, ...], Scrubber] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.config.base_url!r}, vendor={self.dialect.name!r})"

    # --- secrets --------------------------------------------------------------------------------------
    @property
    def scrub(self) -> Scrubber:
        """Removes every credential form the dialect sends: the key or password and the header values built
        from them (``auth.secrets``), read live: a login flow's key changes over the transport's life."""
        secrets = (*self.config.secrets, *self.auth.secrets)
        if self._scrub is None or self._scrub[0] != secrets:
            self._scrub = (secrets, Scrubber(secrets))
        return self._scrub[1]

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

    def safe(self, text: str) -> str:
        """``text`` with query strings and secrets removed (exception texts quote URLs)."""
        return self.scrub(_QUERY.sub("?<redacted>", text))

    # --- requests and answers -------------------------------------------------------------------------
    def attempts(self, endpoint: str, idempotent: bool = True, paced: bool = True) -> Attempts:
        """A new call's attempts (downloads are not paced: the key's limits are the API's)."""
        return Attempts(self, endpoint, idempotent, paced)

    def classify(self, exc: Exception) -> NetworkFailure | None:
        """CONNECT when nothing reached the server, AFTER_SEND when it may have, None when retrying is
        futile (each I/O loop knows its library's errors)."""
        raise NotImplementedError

    def api_url(self, request: ApiRequest) -> str:
        return self.config.base_url + request.path

    def authorizing(self, url: str) -> Authorizing:
        """A request's pass through the auth flow: the dialect's on the API's origin, else none."""
        if _origin(url) == self._origin:
            return Authorizing(self, self.auth.auth_flow())
        log.warning("Not sending credentials to %s: not the API base URL's host", redact_url(url))
        return Authorizing(self, _anonymous())

    def raw(self, status: int, headers: Mapping[str, str], content: bytes) -> RawResponse:
        """The response as the client reads it; its text scrubbed before it is cut."""
        text = content[: _MAX_TEXT + self.scrub.longest].decode("utf-8", errors="replace")
        return RawResponse(status, headers, _decode(content), self.scrub.clipped(text, _MAX_TEXT))

    def download_headers(self, url: str, offset: int) -> tuple[dict[str, str], bool]:
        """Headers of a download request, and whether credentials go with it (the API's own origin)."""
        headers = {"Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={int(offset)}-"
        return headers, self.dialect.caps.link_auth and _origin(url) == self._origin


def _anonymous() -> Flow:
    yield Signed({})
