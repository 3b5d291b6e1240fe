"""Authentication flows: how a request to the API's own origin proves who it is.

A dialect owns its flow (:meth:`Dialect.auth`). Both transports ask the flow for headers per request and
attach them only to the API base URL's origin. A flow that logs in (a key renewed every 24 h) overrides
:meth:`AuthFlow.refresh` and :meth:`AuthFlow.arefresh`; the clients call them once after a 401 and send
the request again with the new headers.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse

#: sends one request without credentials (a login); the transport binds it
Send = Callable[["ApiRequest"], "RawResponse"]
ASend = Callable[["ApiRequest"], Awaitable["RawResponse"]]


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

    def bind(self, send: Send | None = None, asend: ASend | None = None) -> None:
        """The transport hands over how to send a request without credentials (a login flow needs it)."""

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    async def aheaders(self) -> dict[str, str]:
        return self.headers()

    def refresh(self) -> bool:
        """Renew the credentials after a 401; ``True`` when a retry may now succeed."""
        return False

    async def arefresh(self) -> bool:
        return self.refresh()


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
