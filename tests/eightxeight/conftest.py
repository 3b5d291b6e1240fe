"""Fixtures of the 8x8 tests: the 8x8 emulator as ``msghistory_default``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from triggers.helpers import conn_json

DAY1, DAY2, DAY3 = "2025-01-02T00:00:00+00:00", "2025-01-03T00:00:00+00:00", "2025-01-04T00:00:00+00:00"


@pytest.fixture
def make_emu(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """``make_emu(**options)``: an 8x8 emulator (fast jobs) wired as ``msghistory_default``."""

    def _make(**options: Any) -> Any:
        options.setdefault("export_delay", 0.2)
        emulator = msghistory_emulator_factory(vendor="8x8", **options)
        monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator, max_retry_time=10))
        return emulator

    return _make


@pytest.fixture
def emu(make_emu: Callable[..., Any]) -> Any:
    return make_emu()
