"""A Messangi space without HTTP: its credentials and knobs, the login keys it issued (and their expiry on
the emulator's own clock), its logins and the report requests it accepted."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

DAY_SECONDS = 86_400


@dataclass
class Settings:
    """Credentials and knobs (see :class:`~.emulator.MessangiEmulator`); live: change them between calls."""

    api_key: str
    username: str | None
    password: str | None
    key_ttl: float
    report_senders: tuple[str, ...]
    report_max_records: int
    to_inclusive: bool


@dataclass(frozen=True)
class ReportRequest:
    """An accepted CSV report request (the only trace an e-mailed report leaves).

    :param transaction_id: ``meta.transactionId`` of the answer.
    :param query: the query parameters as received.
    :param body: the JSON body as received.
    :param records: how many records the report holds.
    """

    transaction_id: str
    query: dict[str, str]
    body: dict[str, Any]
    records: int


class Space:
    """The space's state, thread-safe: the HTTP handlers and the test helpers both go through it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._keys: dict[str, float] = {}  # login key -> expiry (the emulator's clock, seconds)
        self._clock_offset = 0.0  # how far the emulator's clock runs ahead of the wall clock (tests move it)
        self._logins = 0
        self._reports: list[ReportRequest] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        """The emulator's clock: wall-clock seconds plus the offset :meth:`advance_clock` added."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._clock_offset += float(seconds)

    # -------------------------------------------------------------------------------------- credentials
    def valid_key(self, key: str) -> bool:
        """``key`` is the static API key or a login key not yet expired."""
        if hmac.compare_digest(key.encode(), self.settings.api_key.encode()):
            return True
        with self._lock:
            expires = self._keys.get(key)
        return expires is not None and self.now() < expires

    def issued(self, key: str) -> bool:
        """``key`` was issued by a login (expired or not): its 401 says "expired"."""
        with self._lock:
            return key in self._keys

    def login(self, user: object, password: object) -> str | None:
        """A new login key for the right user and password, else ``None``."""
        known = self.settings
        if not (
            isinstance(user, str)
            and isinstance(password, str)
            and known.username is not None
            and known.password is not None
            and hmac.compare_digest(user.encode(), known.username.encode())
            and hmac.compare_digest(password.encode(), known.password.encode())
        ):
            return None
        key = self.issue_key()
        with self._lock:
            self._logins += 1
        return key

    def issue_key(self) -> str:
        """A new login key, valid ``key_ttl`` seconds from now."""
        key = secrets.token_urlsafe(32)
        with self._lock:
            self._keys[key] = self.now() + self.settings.key_ttl
        return key

    def login_keys(self) -> list[str]:
        """Every login key issued so far, expired or not, oldest first."""
        with self._lock:
            return list(self._keys)

    def expire_keys(self) -> None:
        with self._lock:
            self._keys = dict.fromkeys(self._keys, 0.0)

    @property
    def logins(self) -> int:
        with self._lock:
            return self._logins

    # ------------------------------------------------------------------------------------------ reports
    def accept_report(self, report: ReportRequest) -> None:
        with self._lock:
            self._reports.append(report)

    def reports(self) -> list[ReportRequest]:
        with self._lock:
            return list(self._reports)
