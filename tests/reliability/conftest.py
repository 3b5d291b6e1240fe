"""Fixtures of the reliability suite: one emulator per module, fast waits, seeds, the summary line.

Seeds: ``--reliability-seed N`` (repeatable; registered in ``tests/conftest.py``, since pytest reads
options only from the root conftest), else ``MSGHISTORY_RELIABILITY_SEEDS`` (``"1000-1999"``,
``"5,17,300-310"`` or a count of fresh random seeds), else the fixed CI list (seeds 1-200).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_msghistory.emulator import Emulator, create_emulator

from .schedules import (
    CLIENT_MAX_ATTEMPTS,
    CLIENT_MAX_RETRY_TIME,
    READ_TIMEOUT,
    selected_seeds,
)
from .summary import TALLY

# Waits shortened so hundreds of schedules fit in a CI minute (a compressed clock, not fewer retries).
CLIENT_MAX_WAIT = 0.02  # cap on one client back-off, server-requested ones included
DOWNLOAD_RETRY_DELAY = 0.01  # first wait after a broken download (doubles)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        seeds = selected_seeds(metafunc.config.getoption("reliability_seed", default=None))
        metafunc.parametrize("seed", seeds, ids=[f"seed{seed}" for seed in seeds])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.schedules:
        terminalreporter.write_line(TALLY.line())


@pytest.fixture(scope="module")
def reliability_emulator() -> Iterator[Emulator]:
    """One emulator for a module's schedules (faults and request log are reset per schedule).

    A distinctive API key, so a leak cannot hide behind a common word; ~85 KB per one-day export.
    """
    with create_emulator(
        api_key=f"rel-key-{secrets.token_hex(12)}",
        messages=20_000,
        export_delay=0.1,
        link_ttl=600,
        rate_limit=None,
    ) as emulator:
        yield emulator


def connection_json(emulator: Emulator, **extra: Any) -> str:
    """``AIRFLOW_CONN_MSGHISTORY_DEFAULT`` for ``emulator`` with the suite's retry budget in its extras."""
    conn = json.loads(emulator.airflow_conn_json())
    conn["extra"] = {
        **(conn.get("extra") or {}),  # the vendor's own extras (8x8: vendor, sub_account_id)
        "max_attempts": CLIENT_MAX_ATTEMPTS,
        "max_retry_time": CLIENT_MAX_RETRY_TIME,
        "read_timeout": READ_TIMEOUT,
        "connect_timeout": READ_TIMEOUT,
        # The emulator has no rate limit here and hundreds of schedules share its key: no client pacing.
        "requests_per_minute": 1_000_000,
        "requests_per_second": 100_000,
        **extra,
    }
    return json.dumps(conn)


@pytest.fixture(autouse=True)
def compressed_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorten every back-off: the client's retry waits and the transfer's wait after a broken stream.

    The budgets that bound retries (attempts, ``max_retry_time``, deadlines) stay as configured; only
    the clock runs faster. (``backoff_base`` is not a connection extra, so it cannot be set there.)
    """
    from airflow_provider_msghistory.client import transport
    from airflow_provider_msghistory.transfers import download, export_to_storage, parts

    configured = transport.policy_from_config
    monkeypatch.setattr(
        transport,
        "policy_from_config",
        lambda config: dataclasses.replace(configured(config), max_wait=CLIENT_MAX_WAIT),
    )
    fast_download = functools.partial(download.ResumableDownload, retry_delay=DOWNLOAD_RETRY_DELAY)
    monkeypatch.setattr(export_to_storage, "ResumableDownload", fast_download)
    monkeypatch.setattr(parts, "ResumableDownload", fast_download)
