"""Pytest fixtures for the emulator (registered through the ``pytest11`` entry point, as moto does)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .server import Emulator

FAST_DEFAULTS: dict[str, Any] = {"export_delay": 0.2, "rate_limit": None}


@pytest.fixture
def msghistory_emulator() -> Iterator[Emulator]:
    """A fresh emulator per test: free ports, exports complete after 0.2 s, no rate limit."""
    with Emulator(**FAST_DEFAULTS) as emulator:
        yield emulator


@pytest.fixture
def msghistory_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """``factory(**options)`` starts an emulator with :class:`Emulator` options (fast defaults underneath);
    all are stopped at teardown."""
    started: list[Emulator] = []

    def factory(**options: Any) -> Emulator:
        emulator = Emulator(**{**FAST_DEFAULTS, **options}).start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in reversed(started):
        emulator.stop()
