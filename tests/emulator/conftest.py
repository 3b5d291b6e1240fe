"""Helpers for the emulator's own tests: plain ``requests`` against the real server on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_msghistory.emulator import Emulator

V1 = "/partner-gateway/v1"


class Api:
    """A thin requests wrapper that knows the emulator's base URL and key."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.session = requests.Session()
        self.session.headers["X-Api-Key"] = emu.api_key

    def url(self, path: str) -> str:
        return self.emu.base_url + V1 + path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url(path), timeout=10, **kwargs)

    def submit_history(self, start: str, end: str, **extra: Any) -> str:
        response = self.post(
            "/messages/history/export", json={"startDateTime": start, "endDateTime": end, **extra}
        )
        assert response.status_code == 202, response.text
        return str(response.json()["exportId"])

    def entry(self, export_id: str) -> dict[str, Any]:
        entries = self.get("/exports", params={"limit": 1000}).json()["content"]
        return next(e for e in entries if str(e["exportId"]) == export_id)

    def wait_available(self, export_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.entry(export_id)
            if entry["isAvailableForDownload"]:
                return entry
            time.sleep(0.05)
        raise AssertionError(f"export {export_id} never became available")


@pytest.fixture
def emu(msghistory_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return msghistory_emulator_factory(messages=600, export_delay=0.1, link_ttl=30)


@pytest.fixture
def api(emu: Emulator) -> Api:
    return Api(emu)
