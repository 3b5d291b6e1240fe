"""Destination and argument validation: bad input fails before any request, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_msghistory.transfers.destination import parse_destination
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

EXPORT_ID = "{{ ti.xcom_pull(task_ids='export')['export_id'] }}"


@pytest.mark.parametrize(
    ("value", "url", "bucket", "path"),
    [
        ("file:///data/x/messages.csv", "file:///data/x/messages.csv", "", "/data/x/messages.csv"),
        ("/data/x/messages.csv", "file:///data/x/messages.csv", "", "/data/x/messages.csv"),
        ("s3://lake/msg/d=1/m.csv", "s3://lake/msg/d=1/m.csv", "lake", "lake/msg/d=1/m.csv"),
    ],
)
def test_accepted_destinations(value: str, url: str, bucket: str, path: str) -> None:
    dest = parse_destination(value)
    assert (dest.url, dest.bucket, dest.path) == (url, bucket, path)


def test_object_storage_path_keeps_its_connection() -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    dest = parse_destination(ObjectStoragePath("s3://lake/a/b.csv", conn_id="aws_lake"))
    assert (dest.url, dest.conn_id) == ("s3://lake/a/b.csv", "aws_lake")
    overridden = parse_destination(ObjectStoragePath("s3://lake/a/b.csv", conn_id="x"), "aws_other")
    assert overridden.conn_id == "aws_other"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ftpx://host/a.csv", "unknown scheme 'ftpx'"),
        ("s3:///key.csv", "has no bucket"),
        ("s3://bucket", "names a bucket but no file"),
        ("s3://bucket/dir/", "must name a file"),
        ("file:///tmp/dir/", "must name a file"),
        ("relative/path.csv", "'relative/path.csv' is a relative path; pass an absolute path such as"),
        ("", "empty"),
        ("file://otherhost/a.csv", "names host"),
    ],
)
def test_rejected_destinations(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match="destination") as info:
        parse_destination(value)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"destination": "nope://b/a.csv"}, "destination"),
        ({"destination": "s3:///a.csv"}, "destination"),
        ({"if_exists": "overwrite"}, "if_exists"),
        ({"compression": "zip"}, "compression"),
        ({"export_id": ""}, "export_id"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"poll_interval": -1}, "poll_interval"),
    ],
)
def test_static_arguments_are_checked_at_parse_time(kwargs: dict, field: str) -> None:
    args = {"task_id": "store", "export_id": EXPORT_ID, "destination": "file:///tmp/x/m.csv", **kwargs}
    with pytest.raises(ValueError, match=f"^{field}: "):
        MsgHistoryExportToStorageOperator(**args)


def test_templated_destination_is_not_checked_until_rendered() -> None:
    op = MsgHistoryExportToStorageOperator(
        task_id="store", export_id=EXPORT_ID, destination="{{ var.value.root }}/{{ ds }}/m.csv"
    )
    assert op.outlets == []


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        (  # the google provider is not installed in the test environments: a real missing filesystem
            "gs://lake/{{ ds }}/m.csv",
            "destination: 'gs://lake/{{ ds }}/m.csv' is on gs://, whose filesystem is not installed; install "
            "it with pip install 'airflow-provider-msghistory[google]'",
        ),
        ("gopher://h/{{ ds }}.csv", "destination: unknown scheme 'gopher' in 'gopher://h/{{ ds }}.csv'"),
        (
            "data/{{ ds }}/m.csv",
            "destination: 'data/{{ ds }}/m.csv' is a relative path; pass an absolute path such as "
            "'/data/msghistory/messages.csv' or a URL such as 's3://my-bucket/msghistory/2025-01-01/messages.csv'",
        ),
    ],
)
def test_a_templated_destinations_prefix_is_checked_at_parse_time(destination: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        MsgHistoryExportToStorageOperator(task_id="store", export_id=EXPORT_ID, destination=destination)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "destination", ["s3://lake/{{ ds }}/m.csv", "/data/{{ ds }}/m.csv", "{{ var.value.root }}/m.csv"]
)
def test_a_templated_destination_with_a_sound_prefix_parses(destination: str) -> None:
    MsgHistoryExportToStorageOperator(task_id="store", export_id=EXPORT_ID, destination=destination)


def test_static_destination_is_an_outlet_asset(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/m.csv"
    op = MsgHistoryExportToStorageOperator(task_id="store", export_id="exp_1", destination=url)
    assert [outlet.uri for outlet in op.outlets] == [url]


def test_templated_object_storage_path_is_not_an_outlet() -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    op = MsgHistoryExportToStorageOperator(
        task_id="store", export_id=EXPORT_ID, destination=ObjectStoragePath("s3://lake/{{ ds }}/m.csv")
    )
    assert op.outlets == []
