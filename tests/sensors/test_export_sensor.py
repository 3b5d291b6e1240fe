"""MsgHistoryExportSensor: poking and deferrable, sharing the operator's status logic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from triggers.helpers import run_trigger
from vendor_groups import WAITED

from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.sensors.export import MsgHistoryExportSensor

DAY1, DAY2 = "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"


@pytest.fixture
def emu(msghistory_emulator: Any, use_emulator: Callable[..., None]) -> Any:
    use_emulator(msghistory_emulator)
    return msghistory_emulator


def sensor(export_id: str, **kwargs: Any) -> MsgHistoryExportSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("timeout", 10)
    return MsgHistoryExportSensor(export_id=export_id, **kwargs)


@pytest.fixture(params=WAITED)
def vendor_emu(
    request: pytest.FixtureRequest,
    msghistory_emulator_factory: Callable[..., Any],
    use_emulator: Callable[..., None],
) -> Any:
    emulator = msghistory_emulator_factory(request.param)
    use_emulator(emulator)
    return emulator


def submit_day() -> str:
    return MsgHistoryHook().get_client().submit_message_history_export(DAY1, DAY2)


def test_poking_until_the_export_is_ready(vendor_emu: Any) -> None:
    export_id = submit_day()
    result = sensor(export_id).execute({})
    assert result == {"export_id": export_id, "status": "COMPLETED"}
    assert all(e.had_auth for e in vendor_emu.request_log)


def test_poke_regenerates_an_expired_link(emu: Any) -> None:
    export_id = MsgHistoryHook().get_client().submit_contacts_export()
    emu.complete_export(export_id)
    emu.expire_link(export_id)
    waiting = sensor(export_id)
    assert waiting.poke({}) is False
    assert emu.exports[export_id].regenerations == 1
    assert sensor(export_id).execute({})["status"] == "COMPLETED"


def test_poke_fails_the_task_on_a_failed_export(emu: Any) -> None:
    export_id = MsgHistoryHook().get_client().submit_contacts_export()
    emu.fail_export(export_id)
    with pytest.raises(AirflowException, match="failed on the server"):
        sensor(export_id).poke({})


def test_poke_treats_transient_errors_as_not_yet(emu: Any, use_emulator: Callable[..., None]) -> None:
    use_emulator(emu, max_attempts=1)
    export_id = MsgHistoryHook().get_client().submit_contacts_export()
    emu.faults.script("list", [503])
    assert sensor(export_id).poke({}) is False


def test_deferrable_sensor_uses_the_same_trigger(vendor_emu: Any) -> None:
    export_id = submit_day()
    waiting = sensor(export_id, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute({})
    assert deferred.value.trigger.export_id == export_id
    event, _ = run_trigger(deferred.value.trigger)
    assert waiting.execute_complete({}, event) == {"export_id": export_id, "status": "COMPLETED"}


def test_deferrable_sensor_timeout_and_error_events() -> None:
    waiting = sensor("exp_1", deferrable=True)
    with pytest.raises(AirflowSensorTimeout):
        waiting.execute_complete({}, {"status": "timeout", "export_id": "exp_1", "message": "deadline"})
    with pytest.raises(AirflowException, match="unknown id"):
        waiting.execute_complete({}, {"status": "error", "export_id": "exp_1", "message": "unknown id"})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"export_id": ""}, "export_id"),
        ({"export_id": "  "}, "export_id"),
        ({"export_id": "."}, "export_id"),
        ({"poke_interval": 0}, "poke"),
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs: dict[str, Any], field: str) -> None:
    arguments = {"export_id": "exp_1", "task_id": "wait", **kwargs}
    with pytest.raises((ValueError, AirflowException), match=field):
        MsgHistoryExportSensor(**arguments)
