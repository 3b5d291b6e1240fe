"""Fixtures of the Messangi tests: the Messangi emulator as ``msghistory_default``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_msghistory.client.login import forget_login_keys

RECIPIENTS = ["ops@acme.example", "audit@acme.example"]
SENDER = "reports@acme.example"


@pytest.fixture(autouse=True)
def fresh_login_keys() -> Iterator[None]:
    """Every test logs in from scratch (the key cache is process-wide by design)."""
    forget_login_keys()
    yield
    forget_login_keys()


@pytest.fixture
def make_emu(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """``make_emu(login=False, extras={...}, **options)``: a Messangi emulator wired as
    ``msghistory_default`` (API key, or login + password), with the report extras unless overridden."""

    def _make(login: bool = False, extras: dict[str, Any] | None = None, **options: Any) -> Any:
        emulator = msghistory_emulator_factory(vendor="messangi", **options)
        conn_extras = {"report_emails": RECIPIENTS, "report_sender": SENDER, "max_retry_time": 10}
        conn_extras.update(extras or {})
        conn_extras = {k: v for k, v in conn_extras.items() if v is not None}
        monkeypatch.setenv(
            "AIRFLOW_CONN_MSGHISTORY_DEFAULT", emulator.airflow_conn_json(login, **conn_extras)
        )
        return emulator

    return _make
