"""``VendorSpec``: what each vendor package of the emulator declares in its ``__init__.py`` as ``VENDOR``.

Plain data, so :mod:`~.factory`, the CLI and the pytest fixtures list every vendor without importing any
vendor's servers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VendorSpec:
    """A vendor of the emulator.

    :param name: the connection's ``vendor`` extra, e.g. ``"8x8"``.
    :param title: the name people read, e.g. ``"Messangi"``.
    :param package: the vendor's package (``__name__`` in its ``__init__.py``).
    :param emulator: ``"<module>:<class>"`` of its :class:`~.server.Emulator` subclass in the package,
        imported on first use.
    :param port: the CLI's default API port (distinct per vendor, so all run side by side).
    :param conn_id: the connection id its example DAGs use (the CLI's ``AIRFLOW_CONN_<ID>`` line).
    :param rate_limit: the vendor's documented ``(per_minute, burst_per_second)``, or ``None``; the CLI's
        default.
    :param storage_note: printed instead of the download URL by a vendor that serves no downloads.
    :param test_defaults: the options the pytest fixtures start it with (fast jobs, no rate limit) unless
        a test asks otherwise.

    The package also holds ``cli.py`` with ``add_arguments(group)`` (its own CLI flags) and
    ``options(args)`` (its :func:`~.factory.create_emulator` options beyond the common ones).
    """

    name: str
    title: str
    package: str
    emulator: str
    port: int
    conn_id: str
    rate_limit: tuple[int, int] | None = None
    storage_note: str | None = None
    test_defaults: Mapping[str, Any] = field(default_factory=lambda: {"rate_limit": None})
