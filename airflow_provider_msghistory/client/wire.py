"""The wire types both sides of the transport speak: a request the dialect builds, a response it reads.

A leaf module (it imports nothing of the package): the dialects, the auth flows and the transports all
name these types, and none of them may import another just for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request to the API, relative to the base URL.

    :param endpoint: logical name used in errors and logs (e.g. ``"list_exports"``).
    :param method: HTTP method.
    :param path: path under the base URL, starting with ``/``.
    :param params: query parameters.
    :param json: JSON body.
    :param creates_export: True for submissions: retried only when the server certainly did not act.
    :param headers: extra request headers.
    :param ok_statuses: error statuses that answer this request as expected (a connection check's 404).
    """

    endpoint: str
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = field(default=None, repr=False)  # a login's body holds a password
    creates_export: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    ok_statuses: frozenset[int] = frozenset()

    @property
    def idempotent(self) -> bool:
        return not self.creates_export


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
