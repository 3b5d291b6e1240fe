"""Authentication flows: how a request to the API's own origin proves who it is.

A dialect owns its flow (:meth:`Dialect.auth`). As httpx's ``Auth.auth_flow``, a flow is a generator that
one driver per transport runs for each request: it yields :class:`Signed` (send the request with these
credential headers) or :class:`Login` (send this login request, without credentials), and takes each
answer back. A flow that logs in (a key renewed every 24 h) renews its key after a 401 inside the flow and
signs the request once more; the last answer is the request's. The transports attach the headers only to
the API base URL's origin.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass

from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse


@dataclass(frozen=True)
class Signed:
    """A flow's step: send the request with these credential headers and hand back its answer."""

    headers: Mapping[str, str]


@dataclass(frozen=True)
class Login:
    """A flow's step: send ``request`` without credentials and hand back its answer.

    Concurrent clients of one login share it: a driver takes ``lock`` (``alock()`` on an event loop), sends
    the login only while ``needed()`` (else hands back ``None``: another client logged in meanwhile), and
    keeps the lock until the flow took the answer.
    """

    request: ApiRequest
    needed: Callable[[], bool]
    lock: threading.Lock
    alock: Callable[[], asyncio.Lock]


Step = Signed | Login
#: yields the steps of one request, takes back each answer (``None`` for a login another client made)
Flow = Generator[Step, RawResponse | None, None]


class AuthFlow:
    """Static credentials: the same headers on every request.

    :param headers: the headers to attach.
    :param secrets: every value that must never appear in a log line or message (derived tokens too).
    """

    #: called with each secret the flow derives later (a login key), so a caller can mask it in logs
    on_secret: Callable[[str], None] | None = None

    def __init__(self, headers: Mapping[str, str], secrets: tuple[str, ...]) -> None:
        self._headers = dict(headers)
        self._secrets = tuple(s for s in secrets if s)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value to scrub from messages and mask in logs, as of now: the credentials and the header
        values built from them."""
        return self._secrets + tuple(self._headers.values())

    def auth_flow(self) -> Flow:
        """The steps of one request (static credentials: sign it; a 401 is the request's answer)."""
        yield Signed(self._headers)


def api_key_header(name: str, key: str) -> AuthFlow:
    """A static key in a header of its own (Qlara's ``X-Api-Key``)."""
    return AuthFlow({name: key}, (key,))


def basic(username: str, password: str) -> AuthFlow:
    """HTTP Basic; the token derived from the password is a secret too."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return AuthFlow({"Authorization": f"Basic {token}"}, (password, token))


def bearer(key: str) -> AuthFlow:
    """``Authorization: Bearer <key>`` (8x8)."""
    return AuthFlow({"Authorization": f"Bearer {key}"}, (key,))
