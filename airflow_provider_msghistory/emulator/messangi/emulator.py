"""``MessangiEmulator``: Messangi's Reporting API v3 (provisional wire), its knobs and the helpers tests use.

Requests are served by ``app``, records come from ``data``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..faults import Faults
from ..httpserver import Handler
from ..requestlog import RequestLog
from ..server import Emulator
from ..settling import DataClock
from ..timeutil import to_epoch_ms
from .app import ENDPOINTS, MessangiApp
from .data import MlogDataset
from .space import DAY_SECONDS, ReportRequest, Settings, Space


class MessangiEmulator(Emulator):
    """Messangi's Reporting API v3 on loopback (``vendor="messangi"``), provisional wire.

    :param host: interface to bind.
    :param port: API port (0 = a free one).
    :param api_key: a long-lived key from the platform settings (always valid).
    :param username: login user (``None`` disables the login).
    :param password: login password.
    :param key_ttl: seconds a login key lives (the vendor: 24 h).
    :param messages: records in the message log.
    :param seed: seed of the dataset (keys and transaction ids are random).
    :param start: first day of the dataset (UTC midnight), OffsetDateTime string or aware datetime.
    :param days: days the dataset covers (default 200, more than two 92-day windows).
    :param latency: seconds added to every response.
    :param rate_limit: ``None`` (off) or ``(per_minute, burst_per_second)``; 429 carries ``Retry-After``.
    :param report_senders: the space's valid report senders; another gets the bad-sender error.
    :param report_max_records: a report holding more records gets the too-big error.
    :param to_inclusive: ``to`` includes its millisecond (``False``: exclusive); unknown at the vendor.
    :param request_log_limit: entries kept in the request log.
    :param clock: the instant the data is read at, an OffsetDateTime string or aware datetime (default:
        the wall clock): statuses settle against it (:mod:`~airflow_provider_msghistory.emulator.settling`);
        move it with :meth:`set_clock`.

    ``.settings`` holds the knobs after construction (``key_ttl``, ``report_max_records``, ...), live;
    ``.space`` the state (:class:`~.space.Space`: login keys, logins, report requests).
    """

    vendor = "messangi"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "demo-key",
        username: str | None = "demo",
        password: str | None = "demo-password",
        key_ttl: float = DAY_SECONDS,
        messages: int = 4000,
        seed: int = 1,
        start: str | datetime = "2025-01-01T00:00:00Z",
        days: int = 200,
        latency: float = 0.0,
        rate_limit: tuple[int, int] | None = None,
        report_senders: Sequence[str] = ("reports@acme.example",),
        report_max_records: int = 1_000_000,
        to_inclusive: bool = True,
        request_log_limit: int = 100_000,
        clock: str | datetime | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must be a non-empty string, e.g. api_key='demo-key'")
        if key_ttl <= 0:
            raise ValueError("key_ttl must be > 0 seconds, e.g. key_ttl=86400")
        if report_max_records < 0:
            raise ValueError("report_max_records must be >= 0, e.g. report_max_records=1000")
        self.settings = Settings(
            api_key, username, password, key_ttl, tuple(report_senders), report_max_records, to_inclusive
        )
        self.space = Space(self.settings)
        self.data_clock = DataClock(clock)
        self.dataset = MlogDataset(messages, seed, to_epoch_ms(start), days, self.data_clock)
        faults, log = Faults(endpoints=ENDPOINTS), RequestLog(request_log_limit)
        self._app: MessangiApp = MessangiApp(self.space, self.dataset, faults, log, latency)
        super().__init__(self._app, host=host, ports=(port,))
        self.set_rate_limit(rate_limit)

    @property
    def api_key(self) -> str:
        return self.settings.api_key

    @property
    def username(self) -> str | None:
        return self.settings.username

    @property
    def password(self) -> str | None:
        return self.settings.password

    def _handlers(self) -> tuple[Handler, ...]:
        return (self._app.handle_api,)

    def _started(self) -> None:
        """Nothing to wire: Messangi hands out no links."""

    def airflow_conn_json(self, login: bool = False, **extra: Any) -> str:
        """The API key alone (Bearer), or ``login`` + password (``login=True``); ``extra`` adds extras such
        as ``report_emails`` and ``report_sender``."""
        conn: dict[str, Any] = {"conn_type": "msghistory", "host": self.base_url}
        if login:
            conn.update(login=self.username, password=self.password)
        else:
            conn["password"] = self.api_key
        conn["extra"] = {"vendor": "messangi", **extra}
        return json.dumps(conn)

    # ------------------------------------------------------------------------------------------- state
    @property
    def report_requests(self) -> list[ReportRequest]:
        """Accepted report requests, oldest first."""
        return self.space.reports()

    @property
    def logins(self) -> int:
        """Successful logins so far."""
        return self.space.logins

    def login_keys(self) -> list[str]:
        """Every login key issued so far (expired or not), oldest first: the secrets a test checks no log
        or error shows."""
        return self.space.login_keys()

    def expire_keys(self) -> None:
        """Every login key issued so far expires now (the static ``api_key`` stays valid)."""
        self.space.expire_keys()

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock ``seconds`` ahead: login keys age without a test sleeping (and however
        slow the machine, a key expires exactly when the test says)."""
        self.space.advance_clock(seconds)

    def login_key(self) -> str:
        """Issue a login key without HTTP (as ``POST /kingslanding/login`` would)."""
        return self.space.issue_key()

    def expected_records(
        self,
        start: str | datetime,
        end: str | datetime,
        channel: str | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """``/v3/mlog`` records created in the half-open ``[start, end)``, oldest first (every channel
        when ``channel`` is ``None``; ``status`` may list several, comma-separated)."""
        statuses = tuple(status.split(",")) if status else None
        records = self.dataset.select(to_epoch_ms(start), to_epoch_ms(end), channel, statuses)
        return [r.to_json() for r in records]
