"""The request log tests read: what each request looked like on the wire, secrets redacted."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
AUTH_HEADERS = frozenset({"x-api-key", "authorization"})
REDACTED = "***"


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the emulator saw it.

    :param method: HTTP method.
    :param path: request path (no query string).
    :param query: query parameters (last value of each).
    :param server: ``"api"`` or ``"storage"``.
    :param port: port it arrived on.
    :param headers: request headers, X-Api-Key / Authorization / Cookie values replaced by ``***``.
    :param had_auth: an X-Api-Key or Authorization header was present.
    :param status: status answered (0 when the connection was reset instead).
    :param json: the parsed JSON body, if any.
    :param fault: kind of the injected fault, if one was served.
    :param time: wall-clock epoch seconds of arrival.
    """

    method: str
    path: str
    query: dict[str, str]
    server: str
    port: int
    headers: dict[str, str]
    had_auth: bool
    status: int
    json: Any = None
    fault: str | None = None
    time: float = 0.0


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if name.lower() in SECRET_HEADERS else value for name, value in headers.items()}


def has_auth(headers: Mapping[str, str]) -> bool:
    return any(name.lower() in AUTH_HEADERS for name in headers)


class RequestLog:
    """Append-only list, bounded: beyond ``limit`` entries the oldest half is dropped."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def append(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > self._limit:
                del self._entries[: self._limit // 2]

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
