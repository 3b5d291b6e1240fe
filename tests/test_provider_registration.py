"""The installed package registers itself with Airflow: provider, hook, connection form (both lines)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

AIRFLOW = str(Path(sys.executable).parent / "airflow")
PACKAGE = "airflow-provider-msghistory"


def airflow_json(*args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [AIRFLOW, "providers", *args, "--output", "json"],
        env=os.environ,  # tests/conftest.py points AIRFLOW_HOME at this suite's throwaway home
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)


def test_airflow_providers_list_shows_the_package() -> None:
    rows = [row for row in airflow_json("list") if row["package_name"] == PACKAGE]
    assert len(rows) == 1
    from airflow_provider_msghistory import __version__

    assert rows[0]["version"] == __version__


def test_connection_type_msghistory_is_served_by_the_hook() -> None:
    rows = [row for row in airflow_json("hooks") if row["connection_type"] == "msghistory"]
    assert rows == [
        {
            "connection_type": "msghistory",
            "class": "airflow_provider_msghistory.hooks.msghistory.MsgHistoryHook",
            "conn_id_attribute_name": "msghistory_conn_id",
            "package_name": PACKAGE,
            "hook_name": "Message History",
        }
    ]


def test_connection_form_has_labelled_fields() -> None:
    rows = airflow_json("widgets")
    widgets = {row["connection_parameter_name"] for row in rows if row["package_name"] == PACKAGE}
    assert {f"extra__msghistory__{name}" for name in ("vendor", "connect_timeout", "read_timeout")} <= widgets

    from airflow.providers_manager import ProvidersManager

    behaviour = ProvidersManager().field_behaviours["msghistory"]
    assert behaviour["relabeling"]["host"] == "API base URL"
    assert "API key" in behaviour["relabeling"]["password"]
    assert {"schema", "port"} <= set(behaviour["hidden_fields"])
