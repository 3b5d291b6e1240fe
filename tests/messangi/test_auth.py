"""Messangi credentials over HTTP: a platform key as Bearer, or a login whose 24 h key is reused by the
process, renewed before it expires and once after a 401, and never shown."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_msghistory.client import login as login_module
from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.errors import AuthenticationError
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def config(emu: Any, login: bool, **changes: Any) -> ClientConfig:
    credentials: dict[str, Any] = (
        {"username": emu.username, "password": emu.password} if login else {"api_key": emu.api_key}
    )
    return ClientConfig(
        base_url=emu.base_url, vendor="messangi", max_retry_time=5, **{**credentials, **changes}
    )


def statuses(emu: Any, endpoint_path: str) -> list[int]:
    return [r.status for r in emu.request_log if r.path == endpoint_path]


def keys_die_on_arrival(emu: Any) -> None:
    """Every key the vendor issues is expired when the client first uses it: the emulator's clock jumps two
    days on each login, before its answer leaves (by the clock knob, not by a short TTL racing the test)."""
    login = "/kingslanding/login"
    emu.on_request(lambda entry: emu.advance_clock(2 * 86400) if entry.path == login else None)


def test_an_api_key_alone_is_a_bearer_key_and_no_login_happens(make_emu: Callable[..., Any]) -> None:
    emu = make_emu()
    with ExportClient(config(emu, login=False)) as client:
        client.check_connection()
        pages = client.iter_history_pages("S", START, START + timedelta(days=2))
        assert sum(len(page.messages) for page in pages) > 0
    assert emu.logins == 0
    assert all(r.had_auth for r in emu.request_log)


def test_one_login_serves_every_client_of_the_process(make_emu: Callable[..., Any]) -> None:
    emu = make_emu(login=True)
    for _ in range(3):
        with ExportClient(config(emu, login=True)) as client:
            client.check_connection()
    assert emu.logins == 1
    login_calls = [r for r in emu.request_log if r.path == "/kingslanding/login"]
    assert len(login_calls) == 1 and not login_calls[0].had_auth  # the login itself carries no key


def test_a_key_that_expires_mid_load_is_renewed_and_the_load_completes(
    make_emu: Callable[..., Any],
) -> None:
    emu = make_emu(login=True)
    end = START + timedelta(days=10)
    with ExportClient(config(emu, login=True)) as client:
        pages = client.iter_history_pages("E", START, end, page_size=5)
        first = next(pages).messages  # one page read with the first key
        emu.expire_keys()  # the vendor's 24 h pass now
        rest = [m for page in pages for m in page.messages]
    got = [r["id"] for r in first + rest]
    assert got == [r["id"] for r in emu.expected_records(START, end, "E")]
    assert emu.logins == 2
    assert 401 in statuses(emu, "/v3/mlog")  # renewed after the vendor said so, once


def test_a_key_near_its_24_hours_is_renewed_before_use(
    make_emu: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emu(login=True)
    now = [1_000_000.0]
    monkeypatch.setattr(login_module, "_now", lambda: now[0])
    with ExportClient(config(emu, login=True)) as client:
        client.check_connection()
        now[0] += 23 * 3600  # still well inside the day: reused
        client.check_connection()
        assert emu.logins == 1
        now[0] += 3600 - login_module.RENEW_MARGIN + 1  # about to expire: renewed first
        client.check_connection()
    assert emu.logins == 2
    assert 401 not in statuses(emu, "/v3/mlog")


def test_a_rejected_fresh_key_fails_after_one_renewal(make_emu: Callable[..., Any]) -> None:
    emu = make_emu(login=True)
    keys_die_on_arrival(emu)
    with ExportClient(config(emu, login=True)) as client, pytest.raises(AuthenticationError) as caught:
        client.check_connection()
    assert emu.logins == 2  # the first key, then one renewal: no loop
    assert caught.value.status_code == 401 and "expired" in caught.value.message


def test_the_async_client_logs_in_and_renews_too(make_emu: Callable[..., Any]) -> None:
    emu = make_emu(login=True)

    async def run() -> int:
        async with AsyncExportClient(config(emu, login=True)) as client:
            await asyncio.gather(*(client.check_connection() for _ in range(5)))
            emu.expire_keys()
            await client.check_connection()
            pages = client.iter_history_pages("W", START, START + timedelta(days=3))
            return sum([len(page.messages) async for page in pages])

    assert asyncio.run(run()) > 0
    assert emu.logins == 2  # five concurrent first calls shared one login


def test_threads_of_the_process_share_one_login(make_emu: Callable[..., Any]) -> None:
    """Sync clients on four threads at once (each login answered after 0.3 s): one logs in, the others wait
    for its key instead of logging in too."""
    emu = make_emu(login=True, latency=0.3)
    clients = [ExportClient(config(emu, login=True)) for _ in range(4)]
    together = threading.Barrier(len(clients))

    def check(client: ExportClient) -> None:
        together.wait()
        client.check_connection()

    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(check, clients))
    for client in clients:
        client.close()
    assert emu.logins == 1


def test_wrong_password_says_what_to_fix(make_emu: Callable[..., Any]) -> None:
    emu = make_emu(login=True)
    with (
        ExportClient(config(emu, login=True, password="not-the-password")) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.check_connection()
    message = str(caught.value)
    assert "login rejected" in message and "login and password" in message
    assert "not-the-password" not in message


@pytest.mark.parametrize("login", [False, True])
def test_test_connection_works_for_both_forms(make_emu: Callable[..., Any], login: bool) -> None:
    make_emu(login=login)
    ok, message = MsgHistoryHook().test_connection()
    assert ok, message


def test_test_connection_reports_a_rejected_login(
    make_emu: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emu(login=True)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MSGHISTORY_DEFAULT",
        emu.airflow_conn_json(True).replace(emu.password, "wrong-password"),
    )
    ok, message = MsgHistoryHook().test_connection()
    assert not ok and "login rejected" in message and "wrong-password" not in message


def test_the_login_key_is_never_shown(make_emu: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    emu = make_emu(login=True)
    keys_die_on_arrival(emu)
    caplog.set_level(logging.DEBUG)
    client = ExportClient(config(emu, login=True))
    with pytest.raises(AuthenticationError) as caught:
        client.check_connection()
    keys = emu.login_keys()
    assert len(keys) == 2
    shown = [repr(client), repr(client.auth), repr(client.config), str(caught.value), caplog.text]
    for key in keys:
        assert all(key not in text for text in shown)
        assert key in client.auth.secrets or key == keys[0]  # the current key is scrubbed from errors
    assert emu.password not in repr(client.dialect.auth()) + caplog.text
    client.close()
