"""The 8x8 emulator over real HTTP: start, poll, cancel, multi-part gzip/zip downloads, windows, errors."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import time
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from airflow_provider_msghistory.emulator import Emulator, create_emulator

DAY2 = {"from": "2025-01-02T00:00:00Z", "to": "2025-01-03T00:00:00Z"}
ERROR_KEYS = {"code", "message", "errorId", "timestamp"}


class EightApi:
    """requests against the emulator with the Bearer key."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {emu.api_key}"
        self.exports = emu.exports_url

    def start(self, **body: Any) -> str:
        response = self.session.post(self.exports, json=body, timeout=10)
        assert response.status_code == 202, response.text
        job_id = response.json()["jobId"]
        assert isinstance(job_id, str) and len(job_id) == 64
        return str(job_id)

    def poll(self, job_id: str) -> requests.Response:
        return self.session.get(f"{self.exports}/{job_id}", timeout=10)

    def wait(self, job_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.poll(job_id).json()
            if body["status"] not in ("queued", "running"):
                return dict(body)
            time.sleep(0.03)
        raise AssertionError(f"job {job_id} never finished")


@pytest.fixture
def make(msghistory_emulator_factory: Callable[..., Emulator]) -> Callable[..., tuple[Emulator, EightApi]]:
    def build(**options: Any) -> tuple[Emulator, EightApi]:
        emu = msghistory_emulator_factory(vendor="8x8", **{"messages": 400, "export_delay": 0.1, **options})
        return emu, EightApi(emu)

    return build


def _unpack(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read(archive.namelist()[0])
    return data


def _merge(parts: list[bytes]) -> bytes:
    """Header once, then every part's rows (what a correct provider stores before window filtering)."""
    merged = b""
    for index, part in enumerate(parts):
        header, _, rows = _unpack(part).partition(b"\r\n")
        merged += (header + b"\r\n" if index == 0 else b"") + rows
    return merged


def test_connection_json_and_addresses(make: Callable[..., tuple[Emulator, EightApi]]) -> None:
    emu, _ = make()
    assert emu.vendor == "8x8" and emu.base_url == emu.storage_base_url == f"http://127.0.0.1:{emu.port}"
    assert json.loads(emu.airflow_conn_json()) == {
        "conn_type": "msghistory",
        "host": emu.base_url,
        "password": "demo-key",
        "extra": {"vendor": "8x8", "sub_account_id": "acme-sms_01"},
    }


def test_job_goes_queued_running_succeeded_with_links_on_the_api_host(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    emu, api = make(export_delay=0.4)
    job_id = api.start(**DAY2)
    assert api.poll(job_id).json() == {"status": "queued"}
    time.sleep(0.25)
    assert api.poll(job_id).json() == {"status": "running"}
    body = api.wait(job_id)
    assert body["status"] == "succeeded" and set(body) == {"status", "data", "expires"}
    (url,) = body["data"]
    assert url.startswith(f"{emu.base_url}/api/v1/subaccounts/acme-sms_01/messages/download/")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,2}[1-9])?Z", body["expires"])
    expires = datetime.strptime(body["expires"].replace(".", "Z", 1).split("Z")[0], "%Y-%m-%dT%H:%M:%S")
    expected = emu.job(job_id).expires_at
    assert abs(expires.replace(tzinfo=timezone.utc).timestamp() - expected) < 1
    download = api.session.get(url, timeout=10)
    assert download.status_code == 200 and download.content == emu.job_parts(job_id)[0]
    assert download.headers["ETag"] and download.headers["Accept-Ranges"] == "bytes"
    # `to` covers its whole second by default: 00:00:00.000 and .500 of Jan 3 are in, nothing later.
    rows = list(csv.DictReader(io.StringIO(download.content.decode(), newline="")))
    assert rows[0]["createdat"] == "2025-01-02T00:00:00.000Z"
    assert [r["createdat"] for r in rows[-2:]] == ["2025-01-03T00:00:00.000Z", "2025-01-03T00:00:00.500Z"]
    assert list(rows[0]) == list(emu.expected_rows("2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z")[0])


@pytest.mark.parametrize(("to_inclusive", "last"), [(True, "2025-01-03T00:00:00.500Z"), (False, None)])
def test_to_inclusivity_is_a_knob(
    make: Callable[..., tuple[Emulator, EightApi]], to_inclusive: bool, last: str | None
) -> None:
    emu, api = make(to_inclusive=to_inclusive)
    job_id = api.start(**DAY2)
    api.wait(job_id)
    created = [r.created_ms for r in emu.job(job_id).rows]
    expected = [r["createdat"] for r in emu.expected_rows("2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z")]
    assert expected[-2:] == ["2025-01-02T23:59:59.000Z", "2025-01-02T23:59:59.999Z"]
    served = [row.cells[15] for row in emu.job(job_id).rows]
    assert served[: len(expected)] == expected
    assert served[len(expected) :] == ([] if last is None else ["2025-01-03T00:00:00.000Z", last])
    assert created == sorted(created)


def test_expected_csv_is_the_filtered_merge_of_the_parts(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    emu, api = make(parts=3, gzip_parts=[1], zip_parts=[2])
    job_id = api.start(**DAY2)
    urls = api.wait(job_id)["data"]
    assert len(urls) == 3
    served = [api.session.get(url, timeout=10).content for url in urls]
    assert served == emu.job_parts(job_id)
    assert served[0][:2] != b"\x1f\x8b" and served[1][:2] == b"\x1f\x8b" and served[2][:4] == b"PK\x03\x04"
    merged = _merge(served)
    window = ("2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z")
    expected = emu.expected_csv(*window)
    # What the job holds surely covers the window; keeping rows inside [start, end) gives expected_csv.
    assert merged.startswith(expected) and len(merged) > len(expected)
    rows = list(csv.reader(io.StringIO(expected.decode(), newline="")))
    assert rows[0][-1] == "body" and len(rows) - 1 == len(emu.expected_rows(*window))
    bodies = [r[-1] for r in rows[1:]]
    assert any("\n" in b for b in bodies) and any('"' in b for b in bodies) and any("," in b for b in bodies)


def test_consecutive_windows_split_boundary_rows_exactly(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    emu, _ = make()
    day1 = emu.expected_rows("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
    day2 = emu.expected_rows("2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z")
    both = emu.expected_rows("2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z")
    assert day1 + day2 == both
    assert day1[-1]["createdat"] == "2025-01-01T23:59:59.999Z"
    assert day2[0]["createdat"] == "2025-01-02T00:00:00.000Z"
    header = emu.expected_csv("2025-01-05T00:00:00Z", "2025-01-05T00:00:00Z")
    assert header.decode().rstrip("\r\n").split(",")[-1] == "body" and header.count(b"\r\n") == 1


def test_header_mismatch_part(make: Callable[..., tuple[Emulator, EightApi]]) -> None:
    emu, api = make(parts=2, header_mismatch=1)
    job_id = api.start(**DAY2)
    api.wait(job_id)
    first, second = (p.split(b"\r\n", 1)[0] for p in emu.job_parts(job_id))
    assert first.endswith(b",body") and second.endswith(b",text")


def test_no_rows_gives_empty_and_outcomes_can_be_forced(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    emu, api = make()
    assert api.wait(api.start(**{"from": "2030-01-01", "to": "2030-01-02"})) == {"status": "empty"}
    emu.options.job_outcome = "error"
    assert api.wait(api.start(**DAY2)) == {"status": "error"}
    emu.options.job_outcome = None
    emu.faults.script("submit", ["fail"])
    assert api.wait(api.start(**DAY2)) == {"status": "failed"}
    emu.options.export_delay = 30
    slow = api.start(**DAY2)
    emu.fail_job(slow, "error")
    assert api.poll(slow).json() == {"status": "error"}
    other = api.start(**DAY2)
    emu.complete_job(other)
    assert api.poll(other).json()["status"] == "succeeded"


def test_cancel_gives_204_then_cancelled_and_unknown_jobs_404_4018(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    emu, api = make(export_delay=30)
    job_id = api.start(**DAY2)
    response = api.session.delete(f"{api.exports}/{job_id}", timeout=5)
    assert response.status_code == 204 and response.content == b""
    assert api.poll(job_id).json() == {"status": "cancelled"} and emu.cancelled_jobs == [job_id]
    for method in ("GET", "DELETE"):
        missing = api.session.request(method, f"{api.exports}/{'0' * 64}", timeout=5)
        assert missing.status_code == 404
        body = missing.json()
        assert set(body) == ERROR_KEYS and body["code"] == 4018 and body["message"] == "Invalid jobId"


def test_auth_sub_account_and_input_errors(make: Callable[..., tuple[Emulator, EightApi]]) -> None:
    emu, api = make()
    assert requests.post(api.exports, json=DAY2, timeout=5).status_code == 401
    wrong = requests.post(api.exports, json=DAY2, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["code"] == 1200
    other = api.session.post(api.exports.replace("acme-sms_01", "someone-else"), json=DAY2, timeout=5)
    assert other.status_code == 403 and other.json()["code"] == 1001
    bad_id = api.session.post(api.exports.replace("acme-sms_01", "a!"), json=DAY2, timeout=5)
    assert bad_id.status_code == 400 and "subAccountId" in bad_id.json()["message"]
    for body in (
        {"from": "2025-01-02T00:00:00.000Z", "to": "2025-01-03T00:00:00Z"},  # milliseconds: not accepted
        {"from": "2025-01-02T00:00:00", "to": "2025-01-03T00:00:00Z"},  # no offset
        {"from": "2025-01-03T00:00:00Z", "to": "2025-01-02T00:00:00Z"},  # inverted
        {**DAY2, "countries": "SG"},
        {**DAY2, "limit": -1},
        {**DAY2, "phoneNumber": "not a number"},
    ):
        response = api.session.post(api.exports, json=body, timeout=5)
        assert response.status_code == 400 and response.json()["code"] == 1000, body
    assert all("demo-key" not in str(r.headers) for r in emu.request_log)


def test_filters_and_limit(make: Callable[..., tuple[Emulator, EightApi]]) -> None:
    emu, api = make()
    job = emu.job(api.start(**{"from": "2025-01-01", "to": "2025-01-31"}, countries=["sg"], limit=5))
    assert len(job.rows) == 5 and {r.country for r in job.rows} == {"SG"}
    number = job.rows[0].msisdn
    by_phone = emu.job(api.start(**{"from": "2025-01-01", "to": "2025-01-31"}, phoneNumber=number))
    assert by_phone.rows and {r.msisdn for r in by_phone.rows} == {number}
    assert by_phone.params["phoneNumber"] == number


def test_range_etag_and_if_range(make: Callable[..., tuple[Emulator, EightApi]]) -> None:
    emu, api = make()
    job_id = api.start(**DAY2)
    (url,) = api.wait(job_id)["data"]
    full = emu.job_parts(job_id)[0]
    etag = api.session.get(url, timeout=5).headers["ETag"]
    partial = api.session.get(url, headers={"Range": "bytes=100-", "If-Range": etag}, timeout=5)
    assert partial.status_code == 206 and partial.content == full[100:]
    assert partial.headers["Content-Range"] == f"bytes 100-{len(full) - 1}/{len(full)}"
    changed = api.session.get(url, headers={"Range": "bytes=100-", "If-Range": '"other"'}, timeout=5)
    assert changed.status_code == 200 and changed.content == full
    beyond = api.session.get(url, headers={"Range": f"bytes={len(full)}-"}, timeout=5)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(full)}"
    head = api.session.head(url, timeout=5)
    assert (
        head.status_code == 200 and int(head.headers["Content-Length"]) == len(full) and head.content == b""
    )


def test_links_expire_and_truncated_downloads_resume(make: Callable[..., tuple[Emulator, EightApi]]) -> None:
    emu, api = make()
    job_id = api.start(**DAY2)
    (url,) = api.wait(job_id)["data"]
    full = emu.job_parts(job_id)[0]
    emu.faults.script("download", ["truncate:100"])
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.session.get(url, timeout=5).content  # noqa: B018
    resumed = api.session.get(url, headers={"Range": "bytes=100-"}, timeout=5)
    assert resumed.content == full[100:]
    emu.expire_links(job_id)
    expired = api.session.get(url, timeout=5)
    assert expired.status_code == 410 and expired.json()["code"] == 1300
    assert api.poll(job_id).json()["status"] == "succeeded"


def test_download_auth_is_a_knob(make: Callable[..., tuple[Emulator, EightApi]]) -> None:
    _, api = make(download_requires_auth=True)
    (url,) = api.wait(api.start(**DAY2))["data"]
    assert requests.get(url, timeout=5).status_code == 401
    assert api.session.get(url, timeout=5).status_code == 200
    relaxed, relaxed_api = make()
    (open_url,) = relaxed_api.wait(relaxed_api.start(**DAY2))["data"]
    assert requests.get(open_url, timeout=5).status_code == 200
    assert [r.had_auth for r in relaxed.request_log if "/download/" in r.path] == [False]


def test_429_carries_retry_after_and_faults_work_per_endpoint(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    emu, api = make(rate_limit=(1000, 2))
    job_id = api.start(**DAY2)
    api.poll(job_id)
    limited = api.poll(job_id)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert set(limited.json()) == ERROR_KEYS
    emu.set_rate_limit(None)
    emu.faults.script("status", [503, 429])
    assert api.poll(job_id).status_code == 503
    injected = api.poll(job_id)
    assert injected.status_code == 429 and injected.headers["Retry-After"] == "1"
    with pytest.raises(ValueError, match="endpoint"):
        emu.faults.script("list", [500])


def test_same_seed_same_rows_but_fresh_job_ids(make: Callable[..., tuple[Emulator, EightApi]]) -> None:
    first, first_api = make()
    second, second_api = make()
    assert first.expected_csv("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z") == second.expected_csv(
        "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"
    )
    assert first_api.start(**DAY2) != second_api.start(**DAY2)


def test_bad_options_are_refused() -> None:
    for options in ({"parts": 0}, {"job_outcome": "done"}, {"sub_account_id": "x"}, {"header_mismatch": 3}):
        with pytest.raises(ValueError):
            create_emulator(vendor="8x8", **options)
    with pytest.raises(ValueError, match="vendor"):
        create_emulator(vendor="acme")


def test_synthetic_big_parts_stream_unique_rows_with_one_edge_row_per_block(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    _, api = make(export_size_bytes=3_000_000, parts=3)
    urls = api.wait(api.start(**DAY2))["data"]
    served = [api.session.get(url, timeout=10).content for url in urls]
    assert sum(map(len, served)) >= 3_000_000 and len({len(p) for p in served[:2]}) == 1
    header = served[0].split(b"\r\n", 1)[0]
    assert all(p.startswith(header + b"\r\n") for p in served)
    rows = [r for p in served for r in list(csv.reader(io.StringIO(p.decode(), newline="")))[1:]]
    assert len({r[0] for r in rows}) == len(rows)  # every umid unique
    outside = [r for r in rows if r[15] >= "2025-01-03T00:00:00.000Z"]
    assert outside and {r[15] for r in outside} == {"2025-01-03T00:00:00.000Z"}
    assert len(outside) == len(rows) // 4096
    assert any("\n" in r[-1] for r in rows)
    middle = api.session.get(urls[1], headers={"Range": "bytes=70000-70099"}, timeout=5)
    assert middle.status_code == 206 and middle.content == served[1][70000:70100]


def test_chat_apps_product_serves_a_row_per_status_step_and_filters_by_channel_user_id(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    emu, api = make(product="chatapps")
    job_id = api.start(**DAY2)
    (url,) = api.wait(job_id)["data"]
    rows = list(csv.DictReader(io.StringIO(api.session.get(url, timeout=5).content.decode(), newline="")))
    assert list(rows[0])[14] == "createdAt" and list(rows[0])[-1] == "ReadAt"
    by_umid: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_umid.setdefault(row["umid"], []).append(row)
    repeated = [steps for steps in by_umid.values() if len(steps) > 1]
    assert repeated and all(len({s["createdAt"] for s in steps}) == 1 for steps in repeated)
    assert all([s["step"] for s in steps] == [str(i) for i in range(1, len(steps) + 1)] for steps in repeated)
    window = ("2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z")
    assert emu.expected_csv(*window).split(b"\r\n", 1)[0].endswith(b",content,ReadAt")
    user = rows[0]["user_channelUserId"]
    filtered = emu.job(api.start(**DAY2, channelUserId=user)).rows
    assert filtered and {r.channel_user_id for r in filtered} == {user}
    assert emu.expected_rows(*window, channel_user_id=user)[0]["user_channelUserId"] == user
    sms_emu, sms_api = make()
    refused = sms_api.session.post(sms_api.exports, json={**DAY2, "channelUserId": user}, timeout=5)
    assert refused.status_code == 400 and "Chat Apps" in refused.json()["message"]
    assert sms_emu.jobs == {}


def test_links_can_name_another_origin_of_the_same_server(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    emu, api = make(link_host="localhost")
    (url,) = api.wait(api.start(**DAY2))["data"]
    assert url.startswith(f"http://localhost:{emu.port}/api/v1/subaccounts/acme-sms_01/messages/download/")
    assert requests.get(url, timeout=5).content == emu.job_parts(next(iter(emu.jobs)))[0]
    assert [r.had_auth for r in emu.request_log if "/download/" in r.path] == [False]


def test_timestamp_style_is_a_knob(make: Callable[..., tuple[Emulator, EightApi]]) -> None:
    iso, _ = make()
    spaced, api = make(timestamp_style="space")
    window = ("2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z")
    rows = spaced.expected_rows(*window)
    assert rows[0]["createdat"] == "2025-01-02 00:00:00.000" and " " in rows[0]["status_timestamp"]
    assert [r["umid"] for r in rows] == [r["umid"] for r in iso.expected_rows(*window)]
    job_id = api.start(**DAY2)
    api.wait(job_id)
    assert spaced.job_parts(job_id)[0].startswith(spaced.expected_csv(*window))
    with pytest.raises(ValueError, match="timestamp_style"):
        create_emulator(vendor="8x8", timestamp_style="epoch")


def test_random_faults_draw_on_the_vendors_own_endpoints(
    make: Callable[..., tuple[Emulator, EightApi]],
) -> None:
    emu, api = make()
    emu.faults.random(5, p_500=0.5, endpoints=["status"])
    job_id = api.start(**DAY2)  # submit is not in the draw
    statuses = [api.poll(job_id).status_code for _ in range(40)]
    assert set(statuses) == {200, 500} and emu.faults.injected["500"] == statuses.count(500)
    with pytest.raises(ValueError, match="endpoint"):
        emu.faults.random(5, p_500=0.1, endpoints=["history"])
