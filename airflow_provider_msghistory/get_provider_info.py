"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_msghistory import PROJECT_URLS, __version__
from airflow_provider_msghistory.hooks.connection import provider_connection_metadata

_PKG = "airflow_provider_msghistory"
_INTEGRATION = "Message History"


def _integration(module: str) -> dict[str, Any]:
    return {"integration-name": _INTEGRATION, "python-modules": [f"{_PKG}.{module}"]}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-msghistory",
        "name": "Message History (CPaaS exports)",
        "description": "Export sent-message history, delivery reports and contacts from CPaaS platforms "
        "(Agile Telecom Qlara, 8x8, Messangi) into your own storage.",
        "versions": [__version__],
        # Airflow 3 fills documentation-url from the package metadata's Project-URL; the same value here
        # serves Airflow 2 and readers of this dict.
        "documentation-url": PROJECT_URLS["Documentation"],
        "project-urls": PROJECT_URLS,
        "connection-types": [
            {
                "connection-type": "msghistory",
                "hook-class-name": f"{_PKG}.hooks.msghistory.MsgHistoryHook",
                "hook-name": _INTEGRATION,
                # Airflow >= 3.2 reads the form from here instead of importing the hook.
                **provider_connection_metadata(),
            }
        ],
        "hooks": [_integration("hooks.msghistory")],
        "operators": [_integration("operators.export")],
        "triggers": [_integration("triggers.export")],
        "sensors": [_integration("sensors.export")],
        "transfers": [
            {
                "source-integration-name": _INTEGRATION,
                "target-integration-name": "Object Storage",
                "python-module": f"{_PKG}.transfers.export_to_storage",
            },
            {
                "source-integration-name": _INTEGRATION,
                "target-integration-name": "Object Storage",
                "python-module": f"{_PKG}.transfers.messages_to_storage",
            },
        ],
    }
