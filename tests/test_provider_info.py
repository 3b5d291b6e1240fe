"""get_provider_info() and the connection form against the JSON schemas the installed Airflow ships.

Airflow validates provider info with ``airflow/provider_info.schema.json`` when it loads a provider, and
the hook's ``get_ui_field_behaviour()`` with ``airflow/customized_form_field_behaviours.schema.json``.
The declarative ``conn-fields``/``ui-field-behaviour`` that Airflow >= 3.2 reads are specified in
``airflow/provider.yaml.schema.json`` (``provider_info.schema.json`` leaves them open); Airflow 2.11's
copy of that file does not specify them, so that check runs on 3.3 only (2.11 reads the form from the
hook's ``get_connection_form_widgets``/``get_ui_field_behaviour``, the latter checked here on both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

from airflow_provider_msghistory import PROJECT_URLS, __version__
from airflow_provider_msghistory.get_provider_info import get_provider_info
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

AIRFLOW_DIR = Path(airflow.__file__).parent
REPO = Path(__file__).resolve().parents[1]


def airflow_schema(name: str) -> dict[str, Any]:
    path = AIRFLOW_DIR / name
    if not path.is_file():
        pytest.skip(f"Airflow {airflow.__version__} ships no {name}")
    return json.loads(path.read_text())


def test_provider_info_matches_the_schema_airflow_validates_it_with() -> None:
    # Shipped by 2.11 and 3.x alike: never skipped on a supported line.
    assert (AIRFLOW_DIR / "provider_info.schema.json").is_file()
    jsonschema.validate(get_provider_info(), airflow_schema("provider_info.schema.json"))


def test_connection_form_metadata_matches_the_provider_yaml_schema() -> None:
    items = airflow_schema("provider.yaml.schema.json")["properties"]["connection-types"]["items"]
    if "conn-fields" not in items["properties"]:
        pytest.skip(f"Airflow {airflow.__version__} specifies no conn-fields (they came with 3.2)")
    connection_type = get_provider_info()["connection-types"][0]
    jsonschema.validate(connection_type, items)
    # The schema leaves an unknown key free: insist on the two Airflow's form reads.
    assert set(connection_type) >= {"conn-fields", "ui-field-behaviour"}


def test_hook_field_behaviour_matches_the_schema_airflow_validates_it_with() -> None:
    schema = airflow_schema("customized_form_field_behaviours.schema.json")
    jsonschema.validate(MsgHistoryHook.get_ui_field_behaviour(), schema)


def test_a_schema_violation_is_caught() -> None:
    # The checks above can fail: a provider info without its required description does.
    info = get_provider_info()
    del info["description"]
    with pytest.raises(jsonschema.ValidationError, match="description"):
        jsonschema.validate(info, airflow_schema("provider_info.schema.json"))


def test_version_and_project_urls_are_written_once() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"] and "version" not in project
    info = get_provider_info()
    assert info["versions"] == [__version__]
    assert project["urls"] == PROJECT_URLS == info["project-urls"]
    assert info["documentation-url"] == PROJECT_URLS["Documentation"]
    assert "first" not in project["description"] and "first" not in info["description"]
