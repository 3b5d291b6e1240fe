"""Pytest fixtures for the emulator (registered through the ``pytest11`` entry point, as moto does)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .factory import DEFAULT_VENDOR, create_emulator, vendor_spec
from .server import Emulator


@pytest.fixture
def msghistory_emulator() -> Iterator[Emulator]:
    """A fresh Qlara emulator per test: free ports, exports complete after 0.2 s, no rate limit."""
    with create_emulator(DEFAULT_VENDOR, **vendor_spec(DEFAULT_VENDOR).test_defaults) as emulator:
        yield emulator


@pytest.fixture
def msghistory_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """``factory(vendor="qlara", **options)`` starts an emulator of that vendor with its options (fast
    defaults underneath); all are stopped at teardown."""
    started: list[Emulator] = []

    def factory(vendor: str = DEFAULT_VENDOR, **options: Any) -> Emulator:
        defaults = vendor_spec(vendor).test_defaults  # each vendor's VENDOR declares them
        emulator = create_emulator(vendor, **{**defaults, **options}).start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in reversed(started):
        emulator.stop()
