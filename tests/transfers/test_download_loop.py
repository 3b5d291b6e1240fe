"""ResumableDownload against a storage host that does not honour Range (a real HTTP server on loopback)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_msghistory.client.api import ExportClient
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.transfers.download import DownloadError, Link, ResumableDownload

BODY = b"id,text\n" + b"".join(b"%d,row %d\n" % (i, i) for i in range(20000))


class NoRangeStorage(BaseHTTPRequestHandler):
    """Serves BODY; the first ``truncate`` answers stop early. Ignores Range (always 200, whole body),
    unless ``ranges`` is set: then it answers 206, but with a new ETag each time (the file "changed")."""

    truncate = 0
    ranges = False
    seen: list[str | None] = []

    def do_GET(self) -> None:
        wanted = self.headers.get("Range")
        type(self).seen.append(wanted)
        if type(self).ranges and wanted:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
            self.send_header("Content-Length", str(len(BODY) - start))
            self.send_header("ETag", f'"v{len(type(self).seen)}"')
            self.end_headers()
            self.wfile.write(BODY[start:])
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("ETag", f'"v{len(type(self).seen)}"')
        self.end_headers()
        if type(self).truncate > 0:
            type(self).truncate -= 1
            self.wfile.write(BODY[:5000])
            self.close_connection = True
            return
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def storage() -> Iterator[str]:
    NoRangeStorage.seen, NoRangeStorage.ranges = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), NoRangeStorage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/exports/e1/file.csv?signature=abc"
    finally:
        server.shutdown()
        server.server_close()


class Links:
    def __init__(self, url: str) -> None:
        self.url, self.issued = url, 0

    def fresh(self) -> Link:
        self.issued += 1
        return Link(self.url)


class Buffer:
    """The sink: what the operator would stream to storage."""

    def __init__(self) -> None:
        self.data, self.restarts = bytearray(), 0

    def write(self, chunk: bytes) -> None:
        self.data += chunk

    def restart(self) -> None:
        self.data.clear()
        self.restarts += 1


def download(url: str, sink: Buffer, **kwargs: object) -> ResumableDownload:
    client = ExportClient(ClientConfig(base_url="http://127.0.0.1:9/api", api_key="k"))
    sleeps: list[float] = []
    return ResumableDownload(client, Links(url), sink, label="export e1", sleep=sleeps.append, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("read_ahead", [4, 0], ids=["reader-thread", "same-thread"])
def test_restarts_from_zero_when_the_server_ignores_range(storage: str, read_ahead: int) -> None:
    NoRangeStorage.truncate = 1
    sink = Buffer()

    stats = download(storage, sink, read_ahead=read_ahead).run()

    assert bytes(sink.data) == BODY
    assert stats.digest.sha256 == hashlib.sha256(BODY).hexdigest()
    assert stats.digest.rows == 20000
    assert (stats.failures, stats.resumes, stats.restarts) == (1, 0, 1)
    assert NoRangeStorage.seen == [None, "bytes=5000-"]


def test_restarts_when_the_file_changed_between_attempts(storage: str) -> None:
    NoRangeStorage.truncate, NoRangeStorage.ranges = 1, True
    sink = Buffer()

    stats = download(storage, sink).run()

    assert bytes(sink.data) == BODY
    assert stats.digest.sha256 == hashlib.sha256(BODY).hexdigest()
    assert (stats.resumes, stats.restarts) == (0, 1)
    assert NoRangeStorage.seen == [None, "bytes=5000-", None]  # the 206 of another ETag is not appended


def test_gives_up_after_max_attempts(storage: str) -> None:
    NoRangeStorage.truncate = 10
    sink = Buffer()

    with pytest.raises(DownloadError, match=r"gave up after 3 failed attempt\(s\); last: .*interrupted"):
        download(storage, sink, max_attempts=3).run()
    assert len(NoRangeStorage.seen) == 3
