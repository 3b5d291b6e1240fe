"""OpenLineage: the transfer reports the export it read and the file it wrote, with no lineage backend.

The facets are taken the way the OpenLineage listener takes them (the provider's DefaultExtractor calling
``get_openlineage_facets_on_complete``) after a real transfer from the emulator to local disk or moto S3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.openlineage.facet import Dataset
from airflow.providers.openlineage.extractors.base import DefaultExtractor
from triggers.helpers import conn_json

from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

from .conftest import AWS_CONN_ID, S3Server


@pytest.fixture
def emu(msghistory_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(msghistory_emulator))
    return msghistory_emulator


def store(export_id: str, destination: str, **kwargs: Any) -> MsgHistoryExportToStorageOperator:
    return MsgHistoryExportToStorageOperator(
        task_id="store", export_id=export_id, destination=destination, deferrable=False, **kwargs
    )


def lineage_on_complete(operator: MsgHistoryExportToStorageOperator) -> Any:
    return DefaultExtractor(operator).extract_on_complete(task_instance=None)


def export_input(emulator: Any, export_id: str) -> Dataset:
    port = emulator.base_url.split("//", 1)[1].split("/", 1)[0]
    return Dataset(namespace=f"qlara://{port}", name=f"exports/{export_id}")


def test_local_file_transfer_reports_the_export_as_input_and_the_file_as_output(
    emu: Any, tmp_path: Path
) -> None:
    export_id = emu.create_export()
    dest = tmp_path / "day" / "messages.csv"
    operator = store(export_id, dest.as_uri())
    operator.execute({})

    lineage = lineage_on_complete(operator)

    assert lineage.inputs == [export_input(emu, export_id)]
    assert lineage.outputs == [Dataset(namespace="file", name=str(dest))]
    query = lineage.run_facets["externalQuery"]
    assert (query.externalQueryId, query.source) == (export_id, lineage.inputs[0].namespace)
    assert emu.api_key not in repr(lineage)


def test_s3_transfer_reports_the_bucket_and_key(emu: Any, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    export_id = emu.create_export()
    operator = store(export_id, f"s3://{bucket}/msghistory/day/messages.csv", storage_conn_id=AWS_CONN_ID)
    operator.execute({})

    lineage = lineage_on_complete(operator)

    assert lineage.inputs == [export_input(emu, export_id)]
    assert lineage.outputs == [Dataset(namespace=f"s3://{bucket}", name="msghistory/day/messages.csv")]


def test_a_skipped_transfer_reports_nothing_read_or_written(emu: Any, tmp_path: Path) -> None:
    dest = tmp_path / "messages.csv"
    dest.write_text("kept\n")
    operator = store(emu.create_export(), dest.as_uri(), if_exists="skip")
    assert operator.execute({})["skipped"]

    lineage = lineage_on_complete(operator)

    assert (lineage.inputs, lineage.outputs) == ([], [])
