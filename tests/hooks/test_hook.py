"""MsgHistoryHook, connection from ``AIRFLOW_CONN_MSGHISTORY_DEFAULT`` (JSON), against the emulator."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_msghistory.client.api import ExportClient
from airflow_provider_msghistory.client.config import DEFAULT_BASE_URL
from airflow_provider_msghistory.client.dialects import parse_time_dialect
from airflow_provider_msghistory.client.errors import AuthenticationError
from airflow_provider_msghistory.client.models import ExportStatus
from airflow_provider_msghistory.emulator import VENDORS
from airflow_provider_msghistory.hooks.connection import (
    base_url_from_fields,
    config_from_connection,
    provider_connection_metadata,
)
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

ENV = "AIRFLOW_CONN_MSGHISTORY_DEFAULT"


def use_connection(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> None:
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "msghistory", **fields}))


@pytest.fixture
def emu(msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    emulator = msghistory_emulator_factory(export_delay=3600, api_key="hook-key-0123456789")
    monkeypatch.setenv(ENV, emulator.airflow_conn_json())
    return emulator


# --- connection -> config ---
def test_hook_identity() -> None:
    assert MsgHistoryHook.conn_name_attr == "msghistory_conn_id"
    assert MsgHistoryHook.default_conn_name == "msghistory_default"
    assert MsgHistoryHook.conn_type == "msghistory"
    assert MsgHistoryHook.hook_name == "Message History"
    assert MsgHistoryHook().msghistory_conn_id == "msghistory_default"


def test_config_from_the_env_var_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(
        monkeypatch,
        host="api.example.com/api/",
        password="key-abcdef",
        extra={"connect_timeout": "3", "read_timeout": 7.5, "max_attempts": "2", "verify": "false"},
    )
    config = MsgHistoryHook().client_config()
    assert config.base_url == "https://api.example.com/api"
    assert config.api_key == "key-abcdef" and config.username is None
    assert (config.connect_timeout, config.read_timeout, config.max_attempts, config.verify) == (
        3.0,
        7.5,
        2,
        False,
    )
    assert config.vendor == "qlara"
    assert "key-abcdef" not in repr(config)


def test_password_alone_is_an_api_key_login_and_password_are_basic() -> None:
    key = config_from_connection("c", host=None, login=None, password=" k1 ", extra=None)
    assert key.api_key == "k1" and key.base_url == DEFAULT_BASE_URL
    basic = config_from_connection("c", host=None, login="user", password="pw", extra={})
    assert (basic.username, basic.password, basic.api_key) == ("user", "pw", None)


@pytest.mark.parametrize(
    ("login", "password", "fragment"),
    [
        (None, None, "API key is empty"),
        (None, "   ", "API key is empty"),
        ("user", None, "password is empty"),
    ],
)
def test_missing_secret_is_a_clear_error(login: str | None, password: str | None, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        config_from_connection("my_conn", host=None, login=login, password=password, extra={})
    assert "'my_conn'" in str(info.value)


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        (None, None, None, DEFAULT_BASE_URL),
        ("https://lora-api.agiletelecom.com/api", None, None, DEFAULT_BASE_URL),
        ("lora-api.agiletelecom.com/api", None, None, DEFAULT_BASE_URL),
        ("http://127.0.0.1:8080/api/", None, None, "http://127.0.0.1:8080/api"),
        ("127.0.0.1", 8080, "api", "https://127.0.0.1:8080/api"),  # from a URI-form connection
    ],
)
def test_base_url_forms(host: str | None, port: int | None, schema: str | None, expected: str) -> None:
    assert base_url_from_fields(host, port, schema) == expected


@pytest.mark.parametrize(
    "host",
    [
        "ftp://files.example.com",
        "http://exa mple.com/api",
        "http://host:99999/api",
        "https://",
        "http://u:p@h/api",
    ],
)
def test_malformed_base_url_names_the_field(host: str) -> None:
    with pytest.raises(
        ValueError, match=r"host \(API base URL\).*https://lora-api.agiletelecom.com/api"
    ) as info:
        config_from_connection("c", host=host, login=None, password="k", extra={})
    assert ":p@" not in str(info.value)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"vendor": "twilio"}, "supported: 8x8, messangi, qlara"),
        ({"connect_timeout": "soon"}, "'connect_timeout'"),
        ({"read_timeout": -1}, "must be positive"),
        ({"max_attempts": "2.5"}, "'max_attempts'"),
        ({"verify": "maybe"}, "'verify'"),
    ],
)
def test_bad_extras_are_named(extra: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        config_from_connection("c", host=None, login=None, password="k", extra=extra)


def test_every_declared_extra_reaches_the_client() -> None:
    config = config_from_connection(
        "c", host=None, login=None, password="k",
        extra={
            "vendor": "8x8", "extra__msghistory__sub_account_id": "acme_sms_01", "call_timeout": "90",
            "max_retry_time": 30, "requests_per_minute": "100", "requests_per_second": 10, "team": "ops",
        },
    )  # fmt: skip
    assert (config.call_timeout, config.max_retry_time) == (90.0, 30.0)
    assert (config.requests_per_minute, config.requests_per_second) == (100, 10)
    # a vendor's own option under its plain name, anything undeclared passed on as it is
    assert config.options["sub_account_id"] == "acme_sms_01" and config.options["team"] == "ops"
    assert "vendor" not in config.options and "call_timeout" not in config.options


def test_an_unknown_vendor_names_the_connection_it_came_from() -> None:
    with pytest.raises(ValueError) as info:
        config_from_connection("crm_api", host=None, login=None, password="k", extra={"vendor": "twilio"})
    assert str(info.value) == (
        "Connection 'crm_api' extra vendor: unknown vendor 'twilio'; supported: 8x8, messangi, qlara"
    )


def test_prefixed_and_empty_extras_from_older_forms() -> None:
    config = config_from_connection(
        "c", host=None, login=None, password="k",
        extra={"extra__msghistory__read_timeout": "9", "connect_timeout": "", "verify": "/etc/ssl/ca.pem"},
    )  # fmt: skip
    assert (
        config.read_timeout == 9.0 and config.connect_timeout == 10.0 and config.verify == "/etc/ssl/ca.pem"
    )


# --- UI metadata ---
def test_ui_field_behaviour() -> None:
    behaviour = MsgHistoryHook.get_ui_field_behaviour()
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}
    assert behaviour["relabeling"] == {
        "host": "API base URL",
        "password": "API key (or login password)",
        "login": "Username (login + password forms only)",
    }
    placeholders = behaviour["placeholders"]
    assert placeholders["host"] == DEFAULT_BASE_URL
    # each vendor's credential form, not one vendor's header on all
    assert placeholders["password"] == (
        "qlara: API key (X-Api-Key) or login + password (Basic); 8x8: API key (Bearer); "
        "messangi: API key (Bearer) or login + password (24 h key)"
    )
    assert placeholders["call_timeout"] == "300" and placeholders["max_retry_time"] == "120"
    assert json.loads(placeholders["extra"]) == {"vendor": "qlara", "max_attempts": 5}


ALL_EXTRAS = {
    "vendor",
    "sub_account_id",
    "report_emails",
    "report_sender",
    "connect_timeout",
    "read_timeout",
    "call_timeout",
    "max_attempts",
    "max_retry_time",
    "requests_per_minute",
    "requests_per_second",
    "verify",
    "rate_limit_conn_id",
}


def test_connection_form_widgets() -> None:
    pytest.importorskip("flask_appbuilder", reason="the FAB UI is not installed on this Airflow line")
    pytest.importorskip("wtforms")
    from wtforms import BooleanField, IntegerField, StringField

    widgets = MsgHistoryHook.get_connection_form_widgets()
    assert set(widgets) == ALL_EXTRAS
    kinds = {name: field.field_class for name, field in widgets.items()}
    # Airflow 2 registers a hook only with these field classes ("Error when importing hook!" otherwise)
    assert set(kinds.values()) <= {StringField, IntegerField, BooleanField}
    vendor = widgets["vendor"].kwargs
    assert [v.values for v in vendor["validators"] if hasattr(v, "values")] == [["qlara", "8x8", "messangi"]]
    assert kinds["requests_per_minute"] is IntegerField and kinds["max_attempts"] is IntegerField
    assert kinds["call_timeout"] is StringField and kinds["verify"] is BooleanField


def test_declarative_connection_metadata_for_airflow_3() -> None:
    metadata = provider_connection_metadata()
    fields = metadata["conn-fields"]
    assert set(fields) == ALL_EXTRAS
    assert fields["max_attempts"]["schema"] == {"type": ["integer", "null"], "default": 5, "minimum": 1}
    assert fields["vendor"]["schema"]["enum"] == ["qlara", "8x8", "messangi"]
    assert fields["requests_per_second"]["schema"]["type"] == ["integer", "null"]
    assert fields["max_retry_time"]["schema"]["default"] == 120.0
    assert metadata["ui-field-behaviour"]["hidden-fields"] == ["schema", "port"]


# --- against the emulator ---
@pytest.fixture(params=VENDORS)
def vendor_emu(
    request: pytest.FixtureRequest,
    msghistory_emulator_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """Each vendor's emulator as ``msghistory_default`` (its API key, its own extras)."""
    emulator = msghistory_emulator_factory(request.param, api_key="hook-key-0123456789")
    monkeypatch.setenv(ENV, emulator.airflow_conn_json())
    return emulator


def test_test_connection_ok(vendor_emu: Any) -> None:
    ok, message = MsgHistoryHook().test_connection()
    assert ok, message
    assert "successful" in message
    # One cheap authenticated call, answered as the dialect's check expects (8x8: the 404 of a job that
    # cannot exist).
    (entry,) = log_api(vendor_emu)
    expected = {200, *parse_time_dialect(vendor_emu.vendor).check_connection().ok_statuses}
    assert entry.had_auth and entry.status in expected


def test_test_connection_401_in_plain_words(vendor_emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(vendor_emu.airflow_conn_json())
    monkeypatch.setenv(ENV, json.dumps({**conn, "password": "wrong-key-55555"}))
    ok, message = MsgHistoryHook().test_connection()
    assert not ok
    assert message.startswith(parse_time_dialect(vendor_emu.vendor).unauthorized_help)
    assert message.startswith("API key rejected (401)")
    assert "wrong-key-55555" not in message


def test_test_connection_403_in_plain_words(emu: Any) -> None:
    emu.faults.script("list", [403])
    ok, message = MsgHistoryHook().test_connection()
    assert not ok and message.startswith("IP not whitelisted (403)")


def test_test_connection_reports_bad_settings_and_unreachable_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(
        monkeypatch, host="http://127.0.0.1:1/api", password="k-unreachable", extra={"max_attempts": 1}
    )
    ok, message = MsgHistoryHook().test_connection()
    assert not ok and "k-unreachable" not in message
    assert message.startswith(
        "Could not reach the API at http://127.0.0.1:1/api (connection 'msghistory_default'): "
    )
    use_connection(monkeypatch, host="not a url", password="k")
    ok, message = MsgHistoryHook().test_connection()
    assert not ok and "host (API base URL)" in message


def test_basic_auth_connection(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = msghistory_emulator_factory(username="partner", password="pw-basic-777")
    monkeypatch.setenv(ENV, emulator.airflow_conn_json(basic=True))
    ok, message = MsgHistoryHook().test_connection()
    assert ok, message
    assert log_api(emulator)[-1].headers.get("Authorization") == "***"


def test_get_client_is_cached_and_speaks_to_the_api(emu: Any) -> None:
    hook = MsgHistoryHook()
    client = hook.get_client()
    assert isinstance(client, ExportClient) and hook.get_client() is client and hook.get_conn() is client
    export_id = client.submit_message_history_export("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
    assert client.submit_contacts_export(list_ids=[1]) != export_id
    client.submit_delivery_reports_export(campaign_id="1001")
    assert [j.export_id for j in client.iter_exports(page_size=2)][-1] == export_id
    assert len(client.list_exports(limit=2)) == 2
    assert client.find_export(export_id, page_size=2)[1] == 1
    emu.complete_export(export_id)
    assert client.get_export(export_id).ready
    link = client.get_download_link(export_id)
    with client.open_download(link.url) as response:
        assert b"".join(response.iter_bytes()) == emu.export_csv(export_id)
    client.regenerate_download_link(export_id)
    assert emu.exports[export_id].regenerations == 1
    assert next(client.iter_history_pages("SMS", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")).messages
    client.check_connection()
    hook.close()


def test_secrets_stay_out_of_reprs_errors_and_logs(
    emu: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-secret-key-42"
    use_connection(monkeypatch, host=emu.base_url, password=secret)
    hook = MsgHistoryHook()
    with pytest.raises(AuthenticationError) as info:
        hook.get_client().list_exports()
    texts = [
        str(info.value),
        repr(info.value),
        repr(hook),
        repr(hook.get_client()),
        repr(hook.client_config()),
    ]
    texts.append(caplog.text)
    assert not [t for t in texts if secret in t]


def test_secrets_are_registered_with_airflows_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.common.compat.sdk import redact

    use_connection(monkeypatch, login="user-x", password="basic-pw-to-mask")
    MsgHistoryHook().client_config()
    # the Basic token derived from the password would reveal it too: only the hook knows to mask it
    token = base64.b64encode(b"user-x:basic-pw-to-mask").decode()
    assert token not in str(redact(f"Authorization: Basic {token}"))
    assert "basic-pw-to-mask" not in str(redact("token=basic-pw-to-mask"))


# --- async ---
def test_async_client_in_an_event_loop(emu: Any) -> None:
    export_id = emu.create_export(ready=False)

    async def scenario() -> None:
        hook = MsgHistoryHook()
        client = await hook.aget_client()
        assert await hook.aget_client() is client
        job, page = await client.find_export(export_id)
        assert job is not None and job.status is ExportStatus.PENDING and page == 0
        emu.complete_export(export_id)
        assert (await client.get_export(export_id)).ready
        await client.regenerate_download_link(export_id)
        pages = client.iter_history_pages("SMS", "2025-01-01T00:00:00Z", "2025-01-01T12:00:00Z")
        assert [m async for page in pages for m in page.messages]
        await hook.aclose()
        assert client.closed

    asyncio.run(scenario())


def test_a_closed_async_client_is_replaced(emu: Any) -> None:
    async def scenario() -> None:
        hook = MsgHistoryHook()
        async with await hook.aget_client():
            pass
        await (await hook.aget_client()).check_connection()
        await hook.aclose()

    asyncio.run(scenario())


def test_async_connection_lookup_does_not_block_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow secrets backend must not stall other coroutines while the async client is built."""
    import airflow.secrets.environment_variables as env_backend

    use_connection(monkeypatch, host="http://127.0.0.1:1/api", password="k")
    original = env_backend.EnvironmentVariablesBackend.get_conn_value

    def slow_lookup(self: Any, conn_id: str, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)  # a remote secrets backend, say
        return original(self, conn_id, *args, **kwargs)

    monkeypatch.setattr(env_backend.EnvironmentVariablesBackend, "get_conn_value", slow_lookup)

    async def scenario() -> tuple[float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        hook = MsgHistoryHook()
        await hook.aget_client()
        elapsed = time.monotonic() - started
        task.cancel()
        await hook.aclose()
        return elapsed, ticks

    elapsed, ticks = asyncio.run(scenario())
    assert elapsed >= 0.3, "the slow lookup should have run"
    assert ticks >= elapsed / 0.01 * 0.4, f"the loop stalled: {ticks} ticks in {elapsed:.2f} s"


def log_api(emulator: Any) -> list[Any]:
    return [e for e in emulator.request_log if e.server == "api"]


# --- the shared rate limit's Redis connection ---


def test_rate_limit_conn_id_names_the_redis_connection_the_fleet_shares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_msghistory.client.shared_pacing import SharedPacer

    use_connection(
        monkeypatch, host="http://127.0.0.1:1/api", password="k", extra={"rate_limit_conn_id": "pace_redis"}
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_PACE_REDIS",
        json.dumps({"conn_type": "redis", "host": "redis.example", "port": 6380, "password": "r3dis/pw",
                    "extra": {"db": 2}}),
    )  # fmt: skip
    expected = "redis://:r3dis%2Fpw@redis.example:6380/2"
    config = MsgHistoryHook().client_config()
    assert config.rate_limit_store == expected
    assert "r3dis" not in repr(config)
    assert "r3dis/pw" in config.secrets  # masked in task logs, scrubbed from error texts
    assert asyncio.run(MsgHistoryHook().aclient_config()).rate_limit_store == expected
    client = ExportClient(config)  # connects to Redis lazily, at the first request
    assert isinstance(client._transport.pacer, SharedPacer)
    client.close()


@pytest.mark.parametrize(
    ("redis_conn", "fragment"),
    [
        ({"conn_type": "postgres", "host": "db"}, "is of type 'postgres'; name a Redis connection"),
        ({"conn_type": "redis"}, "has no host"),
        ({"conn_type": "redis", "host": "r", "extra": {"db": "first"}}, "'db' is not a database number"),
    ],
)
def test_a_wrong_rate_limit_connection_is_named(
    monkeypatch: pytest.MonkeyPatch, redis_conn: dict[str, Any], fragment: str
) -> None:
    use_connection(monkeypatch, password="k", extra={"rate_limit_conn_id": "pace"})
    monkeypatch.setenv("AIRFLOW_CONN_PACE", json.dumps(redis_conn))
    with pytest.raises(ValueError, match="extra 'rate_limit_conn_id': connection 'pace'") as error:
        MsgHistoryHook().client_config()
    assert fragment in str(error.value)


def test_a_tls_redis_connection_gives_a_rediss_url() -> None:
    from airflow_provider_msghistory.hooks.connection import redis_url

    url = redis_url("c", "r", conn_type="redis", host="r.example", port=None, login="pacer", password="pw",
                    extra={"ssl": True})  # fmt: skip
    assert url == "rediss://pacer:pw@r.example:6379/0"
