"""``Emulator``: a vendor's servers on an asyncio loop in a background thread, plus the state tests inspect.

:func:`~.factory.create_emulator` (``vendor="qlara" | "8x8" | "messangi"``) builds a vendor's subclass; what
every vendor shares (lifecycle, request log, faults, rate limiter) lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .base import VendorApp
from .faults import Faults
from .httpserver import Handler, HttpServer
from .ratelimit import RateLimiter
from .requestlog import LoggedRequest

if TYPE_CHECKING:
    from .settling import DataClock


class Emulator(ABC):
    """A stateful vendor API on loopback. Use as a context manager (or ``start()`` / ``stop()``).

    Built by :func:`~.factory.create_emulator`: ``create_emulator(**options)`` is Qlara,
    ``create_emulator(vendor="8x8", ...)`` and ``create_emulator(vendor="messangi", ...)`` the others.
    """

    vendor: str = ""
    #: the instant the vendor's data is read at (each vendor's constructor sets it)
    data_clock: DataClock

    def __init__(self, app: VendorApp, *, host: str, ports: tuple[int, ...]) -> None:
        self.host = host
        self._ports = ports
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: tuple[HttpServer, ...] | None = None

    @abstractmethod
    def _handlers(self) -> tuple[Handler, ...]:
        """One request handler per server (the API first), matching ``ports``."""

    @abstractmethod
    def _started(self) -> None:
        """Called once the servers listen (ports known): links and URLs can be built from now on."""

    def set_clock(self, at: datetime | str | None) -> None:
        """Read the vendor's data as of ``at`` (aware datetime or OffsetDateTime string; ``None``: the wall
        clock again): exports and lists taken from now on show each message's status at that instant, and
        no message sent after it. Exports already made keep the view of when they were made."""
        self.data_clock.set(at)

    # --------------------------------------------------------------------------------------- lifecycle
    def start(self) -> Emulator:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=f"{self.vendor}-emulator", daemon=True)
        self._thread.start()
        servers = tuple(
            HttpServer(handler, self.host, port, f"{self.vendor}-emulator")
            for handler, port in zip(self._handlers(), self._ports, strict=True)
        )

        async def _start() -> None:
            for server in servers:
                await server.start()

        self._servers = servers
        try:
            asyncio.run_coroutine_threadsafe(_start(), loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise
        self._started()
        return self

    def stop(self) -> None:
        loop, thread, servers = self._loop, self._thread, self._servers
        if loop is None or thread is None:
            return

        async def _shutdown() -> None:
            for server in servers or ():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.close(), 5)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._servers = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.base_url if self._servers is not None else "stopped"
        return f"{type(self).__name__}({state})"

    # ------------------------------------------------------------------------------------------ address
    @property
    def port(self) -> int:
        """The API port."""
        return self._require_servers()[0].port

    @property
    def origin(self) -> str:
        """``http://host:port`` of the API server."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What goes into the Airflow connection's host."""
        return self.origin

    @property
    def storage_base_url(self) -> str:
        """Where downloads are served (the API's own origin unless the vendor has a storage host)."""
        return self.origin

    @abstractmethod
    def airflow_conn_json(self, **kwargs: Any) -> str:
        """Value for ``AIRFLOW_CONN_MSGHISTORY_DEFAULT`` (with the right ``vendor`` extra)."""

    def _require_servers(self) -> tuple[HttpServer, ...]:
        if self._servers is None:
            raise RuntimeError(
                "the emulator is not running; use `with create_emulator(...) as emu:` or start()"
            )
        return self._servers

    # ------------------------------------------------------------------------------------------- state
    @property
    def faults(self) -> Faults:
        return self._app.faults

    @property
    def request_log(self) -> list[LoggedRequest]:
        """Every request so far (a copy), oldest first."""
        return self._app.log.entries()

    def clear_request_log(self) -> None:
        self._app.log.clear()

    def on_request(self, listener: Callable[[LoggedRequest], None] | None) -> None:
        """Call ``listener`` with every request as it is logged (``None`` stops it); runs on the server's
        loop, so keep it quick (the CLI's ``--log-requests`` prints :func:`~.requestlog.format_line`)."""
        self._app.log.listener = listener

    @property
    def rate_limit(self) -> tuple[int, int] | None:
        """``(per_minute, burst_per_second)`` of the limiter, ``None`` when off."""
        limiter = self._app.limiter
        return None if limiter is None else (limiter.per_minute, limiter.burst)

    def set_rate_limit(self, rate_limit: tuple[int, int] | None) -> None:
        """Turn the per-key limiter on (``(per_minute, burst_per_second)``) or off (``None``); resets it."""
        self._app.limiter = RateLimiter(*rate_limit) if rate_limit is not None else None
