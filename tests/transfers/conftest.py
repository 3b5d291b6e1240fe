"""Fixtures of the transfer tests: an S3 (moto) server on loopback and an Airflow connection to it."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

AWS_CONN_ID = "aws_test"


@dataclass
class S3Server:
    """A moto S3 server on 127.0.0.1 and the Airflow connection JSON that reaches it."""

    endpoint_url: str
    conn_json: str
    client: Any

    def new_bucket(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        return [o["Key"] for o in self.client.list_objects_v2(Bucket=bucket).get("Contents", [])]

    def pending_uploads(self, bucket: str) -> list[str]:
        return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    def read(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server._server.server_port}"
        conn = {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        yield S3Server(endpoint, json.dumps(conn), client)
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server, with ``AIRFLOW_CONN_AWS_TEST`` set for in-process hooks."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}", s3_server.conn_json)
    return s3_server
