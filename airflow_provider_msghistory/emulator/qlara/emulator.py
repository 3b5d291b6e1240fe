"""``QlaraEmulator``: the Qlara Partner Gateway's knobs and test helpers (the requests: ``app``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..content import Content
from ..faults import Faults
from ..httpserver import Handler
from ..ratelimit import RateLimiter
from ..requestlog import RequestLog
from ..server import Emulator
from ..settling import DataClock
from ..timeutil import parse_offset_datetime, to_epoch_ms
from . import exports as ex
from .app import ENDPOINTS, MAX_LIMIT, QlaraApp, Settings
from .content import HISTORY_COLUMNS, RowsContent, SyntheticCsv, history_row
from .dataset import CHANNELS, Dataset
from .links import LinkSigner
from .shapes import Shape


class QlaraEmulator(Emulator):
    """A stateful Qlara Partner Gateway on loopback: API on one port, pre-signed downloads on another.

    ``create_emulator(**options)`` or ``create_emulator(vendor="qlara", **options)`` builds one.

    :param host: interface of both servers.
    :param port: API port (0 = a free one).
    :param storage_port: storage (download) port (0 = a free one).
    :param api_key: the valid ``X-Api-Key``.
    :param username: Basic-auth user accepted besides the key (``None`` disables Basic).
    :param password: Basic-auth password.
    :param messages: number of messages in the dataset.
    :param seed: seed of the dataset and of random failures (export ids are unique across restarts).
    :param start: first day of the dataset, an OffsetDateTime string or aware datetime (UTC midnight).
    :param days: days the dataset covers.
    :param export_delay: seconds from submission (or regeneration) to COMPLETED.
    :param link_ttl: seconds a download link stays valid; after it the export reads EXPIRED.
    :param latency: seconds added to every API response.
    :param rate_limit: ``None`` (off) or ``(per_minute, burst_per_second)``, e.g. ``(1000, 50)``.
    :param shape: a :class:`Shape` or a dict of shape options (see :meth:`set_shape`).
    :param fail_exports: ``True`` = every export FAILS, float = probability per export.
    :param export_size_bytes: when set, message-history exports are synthetic CSVs of this exact size.
    :param history_max_limit: the largest ``limit`` the history list (B) serves (not published by Qlara;
        above it: 400, or the maximum with ``set_shape(history_over_limit="clamp")``).
    :param request_log_limit: entries kept in the request log.
    :param clock: the instant the data is read at, an OffsetDateTime string or aware datetime (default:
        the wall clock): statuses settle against it (:mod:`~airflow_provider_msghistory.emulator.settling`);
        move it with :meth:`set_clock`.
    """

    vendor = "qlara"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        api_key: str = "demo-key",
        username: str | None = "demo",
        password: str | None = "demo-password",
        messages: int = 2000,
        seed: int = 1,
        start: str | datetime = "2025-01-01T00:00:00Z",
        days: int = 31,
        export_delay: float = 3.0,
        link_ttl: float = 300.0,
        latency: float = 0.0,
        rate_limit: tuple[int, int] | None = None,
        shape: Shape | dict[str, Any] | None = None,
        fail_exports: bool | float = False,
        export_size_bytes: int | None = None,
        history_max_limit: int = MAX_LIMIT,
        request_log_limit: int = 100_000,
        clock: str | datetime | None = None,
    ) -> None:
        if history_max_limit < 1:
            raise ValueError("history_max_limit must be >= 1, e.g. history_max_limit=1000")
        if not api_key:
            raise ValueError("api_key must be a non-empty string, e.g. api_key='demo-key'")
        if export_size_bytes is not None:
            SyntheticCsv(export_size_bytes, seed, 0, 1)  # validates the size early
        self.api_key = api_key
        self.username = username
        self.password = password
        self.data_clock = DataClock(clock)
        self.dataset = Dataset(messages, seed, to_epoch_ms(start), days, self.data_clock)
        self._store = ex.ExportStore(export_delay, link_ttl, fail_exports, seed)
        settings = Settings(api_key, username, password, seed, export_size_bytes, history_max_limit)
        faults, log = Faults(endpoints=ENDPOINTS), RequestLog(request_log_limit)
        self._app: QlaraApp = QlaraApp(
            settings, self.dataset, self._store, LinkSigner(""), faults, log, latency
        )
        super().__init__(self._app, host=host, ports=(port, storage_port))
        if rate_limit is not None:
            self._app.limiter = RateLimiter(*rate_limit)
        if shape is not None:
            self._app.shape = shape if isinstance(shape, Shape) else Shape().with_changes(**shape)

    def _handlers(self) -> tuple[Handler, ...]:
        return self._app.handle_api, self._app.handle_storage

    def _started(self) -> None:
        self._app.signer.storage_base_url = self.storage_base_url

    # ------------------------------------------------------------------------------------------ address
    @property
    def storage_port(self) -> int:
        return self._require_servers()[1].port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api``: paths of the reference are relative to it."""
        return self.origin + "/api"

    @property
    def storage_base_url(self) -> str:
        return f"http://{self.host}:{self.storage_port}"

    def airflow_conn_json(self, basic: bool = False) -> str:
        """Value for ``AIRFLOW_CONN_MSGHISTORY_DEFAULT``: the API key, or login + password with ``basic``."""
        conn: dict[str, Any] = {"conn_type": "msghistory", "host": self.base_url}
        if basic:
            conn.update(login=self.username, password=self.password)
        else:
            conn["password"] = self.api_key
        return json.dumps(conn)

    # ------------------------------------------------------------------------------------------- state
    @property
    def exports(self) -> dict[str, ex.Export]:
        """Export jobs by id (a snapshot of the mapping; the Export objects are live)."""
        return self._store.snapshot()

    def export(self, export_id: str | int) -> ex.Export:
        """The export with this id (``KeyError`` if unknown)."""
        return self._store.require(export_id)

    @property
    def shape(self) -> Shape:
        return self._app.shape

    def set_shape(self, **changes: Any) -> Shape:
        """Switch response shapes, e.g. ``set_shape(id_field="id", export_list_wrap=None)``.

        Options: id_field, id_type, url_field, expiry_field, export_list_wrap, history_wrap, history_record,
        history_over_limit, status_case, pending_status, completed_status, failed_status, expired_status,
        error_body, retry_after_header.
        ``set_shape()`` with no argument restores the defaults.
        """
        self._app.shape = self._app.shape.with_changes(**changes) if changes else Shape()
        return self._app.shape

    def export_csv(self, export_id: str | int) -> bytes:
        """The exact bytes a download of this export serves (in memory: for small exports)."""
        return b"".join(self._store.require(export_id).content.iter_from(0))

    def export_sha256(self, export_id: str | int) -> str:
        """SHA-256 hex of the export's file, computed by streaming and cached."""
        return self._store.require(export_id).sha256()

    def export_size(self, export_id: str | int) -> int:
        return self._store.require(export_id).content.size

    def complete_export(self, export_id: str | int) -> None:
        """Make the export COMPLETED now (its link TTL starts now)."""
        self._store.complete(self._store.require(export_id))

    def fail_export(self, export_id: str | int) -> None:
        """Make the export FAILED now."""
        self._store.fail(self._store.require(export_id))

    def expire_link(self, export_id: str | int) -> None:
        """Expire the export's download link now: it reads EXPIRED, F answers 400, the old link 403."""
        self._store.expire(self._store.require(export_id))

    def create_export(self, size_bytes: int | None = None, *, ready: bool = True, **body: Any) -> str:
        """Add a message-history export directly (no HTTP); returns its id.

        :param size_bytes: make it a synthetic CSV of exactly this size (e.g. ``1 << 30``), else the
            dataset's rows for ``body``'s ``startDateTime``/``endDateTime`` (default: the whole range).
        :param ready: complete it at once.
        """
        start = parse_offset_datetime(body.get("startDateTime", "1970-01-01T00:00:00Z"), "startDateTime")
        end_text = body.get("endDateTime")
        end = parse_offset_datetime(end_text, "endDateTime") if end_text else self.dataset.end_ms
        content: Content
        if size_bytes is not None:
            first = max(start, self.dataset.start_ms)
            content = SyntheticCsv(size_bytes, self._app.settings.seed, first, max(1, end - first + 1))
        else:
            rows = self.dataset.history_export(start, end, body.get("sender"), body.get("recipient"))
            content = RowsContent(HISTORY_COLUMNS, rows, history_row)
        export = self._store.create(ex.MESSAGE_HISTORY, dict(body), content, self.shape.id_type == "int")
        if ready:
            self._store.complete(export)
        return export.export_id

    def download_url(self, export_id: str | int) -> str:
        """The signed URL F would hand out for this export now."""
        return self._app.signer.url(self._store.require(export_id))

    def expected_history(
        self,
        start: str | datetime,
        end: str | datetime,
        sender: str | None = None,
        recipient: str | None = None,
    ) -> list[dict[str, str]]:
        """Rows (column -> text) a message-history export over ``[start, end]`` (inclusive) contains."""
        rows = self.dataset.history_export(to_epoch_ms(start), to_epoch_ms(end), sender, recipient)
        return [dict(zip(HISTORY_COLUMNS, map(str, history_row(m)), strict=True)) for m in rows]

    def expected_messages(
        self,
        start: str | datetime,
        end: str | datetime,
        channel: str | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """History-list records (as B serves them now, in the current ``history_record`` shape) of the
        messages sent in the half-open ``[start, end)``, oldest first: what a correct message-list load of
        that window stores. ``channel`` ``None`` = every channel, in channel order (SMS, RCS, WHATSAPP)."""
        first, last = to_epoch_ms(start), to_epoch_ms(end) - 1
        records = []
        for name in CHANNELS if channel is None else (channel,):
            for message in self.dataset.as_of_now(self.dataset.channel_range(name, first, last)):
                if status is None or message.status == status:
                    records.append(self._app.history_record(message))
        return records
