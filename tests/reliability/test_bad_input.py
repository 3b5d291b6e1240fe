"""Bad input fails fast: a clear error naming the field, before a single request reaches the emulator.

Each invalid argument is tried as written in the DAG (checked when the DAG is parsed) and, where the field
is templated, as rendered at task start (checked before the first request).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_msghistory.emulator import Emulator
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

from .conftest import connection_json

DAY1, DAY2 = "2025-01-01T00:00:00+00:00", "2025-01-02T00:00:00+00:00"
# Rendered arguments stay wrong on a retry: the export operator fails the task at once (no retries).
RENDERED_BAD_INPUT = (ValueError, AirflowFailException)
WINDOW_TEMPLATES = {"start_datetime": "{{ params.start }}", "end_datetime": "{{ params.end }}"}


def export_op(**kwargs: Any) -> MsgHistoryExportOperator:
    kwargs.setdefault("export_type", "message_history")
    kwargs.setdefault("start_datetime", DAY1)
    kwargs.setdefault("end_datetime", DAY2)
    return MsgHistoryExportOperator(
        task_id="export", deferrable=True, poll_interval=0.05, timeout=5, **kwargs
    )


def store_op(destination: str, export_id: str = "exp_1") -> MsgHistoryExportToStorageOperator:
    return MsgHistoryExportToStorageOperator(
        task_id="store", export_id=export_id, destination=destination, poll_interval=0.05, timeout=5
    )


# (case, field the message must name, the invalid operator arguments as written in the DAG)
STATIC_CASES: list[tuple[str, str, Callable[[], Any]]] = [
    ("naive datetime", "start_datetime", lambda: export_op(start_datetime=datetime(2025, 1, 1))),
    ("naive string", "end_datetime", lambda: export_op(end_datetime="2025-01-02T00:00:00")),
    ("date-only string", "start_datetime", lambda: export_op(start_datetime="2025-01-01")),
    ("end before start", "start_datetime", lambda: export_op(start_datetime=DAY2, end_datetime=DAY1)),
    ("unknown export type", "export_type", lambda: export_op(export_type="sms_logs")),
    ("contacts with a date range", "start_datetime", lambda: export_op(export_type="contacts")),
    ("destination with an unknown scheme", "destination", lambda: store_op("gopher://host/messages.csv")),
    ("destination without a scheme", "destination", lambda: store_op("lake/messages.csv")),
    (
        "destination climbing out with '..'",
        "destination",
        lambda: store_op("file:///tmp/msghistory/../../etc/messages.csv"),
    ),
    (
        "end at datetime's limit",
        "end_datetime",
        lambda: export_op(start_datetime=DAY1, end_datetime="9999-12-31T23:59:59.999999+00:00"),
    ),
    ("export id '..'", "export_id", lambda: store_op("file:///tmp/msghistory/m.csv", export_id="..")),
    (
        "campaign id 'None'",
        "campaign_id",
        lambda: export_op(
            export_type="delivery_reports", campaign_id="None", start_datetime=None, end_datetime=None
        ),
    ),
]

# (case, field, rendered values of the templated fields)
RENDERED_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("naive datetime", "start_datetime", {"start_datetime": "2025-01-01T00:00:00", "end_datetime": DAY2}),
    ("date-only string", "end_datetime", {"start_datetime": DAY1, "end_datetime": "2025-01-02"}),
    ("end before start", "start_datetime", {"start_datetime": DAY2, "end_datetime": DAY1}),
    ("empty window (@daily on Airflow 3)", "start_datetime", {"start_datetime": DAY2, "end_datetime": DAY2}),
]


@pytest.fixture
def emu(msghistory_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", connection_json(msghistory_emulator))
    return msghistory_emulator


def assert_names_field(error: BaseException, field: str, emu: Emulator) -> None:
    message = str(error)
    assert field in message, message
    assert emu.request_log == []  # nothing was sent
    assert emu.api_key not in message


@pytest.mark.parametrize(("field", "build"), [c[1:] for c in STATIC_CASES], ids=[c[0] for c in STATIC_CASES])
def test_static_bad_argument_fails_when_the_dag_is_parsed(
    emu: Emulator, field: str, build: Callable[[], Any]
) -> None:
    with pytest.raises(ValueError) as caught:
        build()
    assert_names_field(caught.value, field, emu)


@pytest.mark.parametrize(
    ("field", "rendered"), [c[1:] for c in RENDERED_CASES], ids=[c[0] for c in RENDERED_CASES]
)
def test_rendered_bad_window_fails_before_any_request(
    emu: Emulator, field: str, rendered: dict[str, Any]
) -> None:
    op = export_op(**WINDOW_TEMPLATES)  # valid as written: only rendering reveals the problem
    for name, value in rendered.items():
        setattr(op, name, value)
    with pytest.raises(RENDERED_BAD_INPUT) as caught:
        op.execute({})
    assert_names_field(caught.value, field, emu)


@pytest.mark.parametrize(
    "rendered",
    ["gopher://host/messages.csv", "file:///tmp/msghistory/{}/../../../etc/messages.csv"],
    ids=["unknown scheme", "'..' from a DAG param"],
)
def test_rendered_bad_destination_fails_before_any_request(
    emu: Emulator, tmp_path: Path, rendered: str
) -> None:
    op = store_op("{{ params.destination }}")
    op.destination = rendered.format(tmp_path)
    with pytest.raises(ValueError) as caught:
        op.execute({})
    assert_names_field(caught.value, "destination", emu)


@pytest.mark.parametrize(
    ("field", "rendered"),
    [
        ("campaign_id", {"campaign_id": "None"}),
        ("list_ids", {"list_ids": "None"}),
        ("list_ids", {"list_ids": ["101", "None"]}),
    ],
    ids=["campaign id from a missing param", "list ids from a missing XCom", "one list id 'None'"],
)
def test_a_template_rendered_to_none_is_never_sent(
    emu: Emulator, field: str, rendered: dict[str, Any]
) -> None:
    kind = "contacts" if field == "list_ids" else "delivery_reports"
    op = export_op(export_type=kind, start_datetime=None, end_datetime=None, **{field: "{{ params.x }}"})
    for name, value in rendered.items():
        setattr(op, name, value)
    with pytest.raises(RENDERED_BAD_INPUT) as caught:
        op.execute({})
    assert_names_field(caught.value, field, emu)


@pytest.mark.parametrize("export_id", [".", ".."])
def test_a_dot_export_id_never_reaches_the_api(emu: Emulator, export_id: str) -> None:
    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.config import ClientConfig

    with ExportClient(ClientConfig(base_url=emu.base_url, api_key=emu.api_key)) as client:
        for call in (client.get_download_link, client.regenerate_download_link):
            with pytest.raises(ValueError) as caught:
                call(export_id)
            assert_names_field(caught.value, "export_id", emu)


def test_unknown_connection_extras_stay_out_of_the_config_repr(emu: Emulator) -> None:
    from airflow_provider_msghistory.hooks.connection import config_from_connection

    config = config_from_connection(
        "c", host=emu.base_url, login=None, password=emu.api_key, extra={"sub_account_token": "tok-8c1d"}
    )
    assert config.options == {"sub_account_token": "tok-8c1d"}
    assert "tok-8c1d" not in repr(config)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("password", {"password": ""}),
        ("password", {"password": "   "}),
        ("host", {"host": "http://127.0.0.1:99999/api"}),
        ("host", {"host": "ftp://files.example.com/api"}),
        ("host", {"host": "http://127.0.0.1:1/api?token={key}"}),
        ("read_timeout", {"extra": {"read_timeout": "inf"}}),
        ("connect_timeout", {"extra": {"connect_timeout": 1e308}}),
        ("max_attempts", {"extra": {"max_attempts": 1e300}}),
    ],
    ids=[
        "empty API key",
        "blank API key",
        "base URL with a bad port",
        "base URL not http(s)",
        "base URL with the key in its query",
        "infinite read timeout",
        "absurd connect timeout",
        "absurd attempts",
    ],
)
def test_bad_connection_fails_before_any_request(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, field: str, change: dict[str, str]
) -> None:
    change = json.loads(json.dumps(change).replace("{key}", emu.api_key))
    conn = {**json.loads(connection_json(emu, **change.pop("extra", {}))), **change}
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(conn))
    with pytest.raises(ValueError) as caught:
        export_op().execute({})
    assert_names_field(caught.value, field, emu)
    with pytest.raises(ValueError) as caught:
        store_op((tmp_path / "messages.csv").as_uri()).execute({})
    assert_names_field(caught.value, field, emu)
    assert not any(tmp_path.iterdir())
