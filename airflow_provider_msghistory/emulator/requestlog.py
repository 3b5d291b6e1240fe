"""The request log tests read: what each request looked like on the wire, secrets redacted."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
AUTH_HEADERS = frozenset({"x-api-key", "authorization"})
REDACTED = "***"
# Query parameters and path parts that carry a credential (a pre-signed signature, a download token).
_SECRET_PARAM = re.compile(r"sig|signature|token|key|secret|pass", re.IGNORECASE)
_SECRET_PATH = re.compile(r"(/download/)[^/]+")


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


def format_line(entry: LoggedRequest) -> str:
    """One line for ``--log-requests``: time, server, method, path and query, status, fault. Never a
    header or a body; credentials in the query or a download path are replaced by ``***``."""
    query = "&".join(
        f"{name}={REDACTED if _SECRET_PARAM.search(name) else value}" for name, value in entry.query.items()
    )
    path = _SECRET_PATH.sub(r"\1" + REDACTED, entry.path) + ("?" + query if query else "")
    stamp = time.strftime("%H:%M:%S", time.gmtime(entry.time)) + f".{int(entry.time * 1000) % 1000:03d}Z"
    status = "reset" if entry.status == 0 else str(entry.status)
    fault = f" (injected {entry.fault})" if entry.fault else ""
    auth = "" if entry.had_auth else " (no auth)"
    return f"{stamp} {entry.server} {entry.method} {path} -> {status}{fault}{auth}"


class RequestLog:
    """Append-only list, bounded: beyond ``limit`` entries the oldest half is dropped."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self.listener: Callable[[LoggedRequest], None] | None = None

    def append(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > self._limit:
                del self._entries[: self._limit // 2]
        if self.listener is not None:
            self.listener(entry)

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
