"""Export lifecycle, links on the storage host, expiry, regeneration, Range and big synthetic exports."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests

from airflow_provider_msghistory.emulator import Emulator

from .conftest import Api

DAY2 = ("2025-01-02T00:00:00.000Z", "2025-01-02T23:59:59.999Z")


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_export_goes_pending_then_completed_and_f_refuses_until_available(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = msghistory_emulator_factory(messages=300, export_delay=0.4)
    api = Api(emu)
    export_id = api.submit_history(*DAY2)
    assert api.entry(export_id)["status"] == "PENDING"
    assert emu.exports[export_id].status == "PENDING"
    early = api.get(f"/exports/{export_id}")
    assert early.status_code == 400 and "not available" in early.json()["message"]
    entry = api.wait_available(export_id)
    assert entry["status"] == "COMPLETED" and entry["completedAt"] is not None
    assert api.get(f"/exports/{export_id}").status_code == 200


def test_complete_and_fail_helpers(msghistory_emulator_factory: Callable[..., Emulator]) -> None:
    emu = msghistory_emulator_factory(messages=100, export_delay=60)  # PENDING unless told otherwise
    api = Api(emu)
    done, failed = api.submit_history(*DAY2), api.submit_history(*DAY2)
    emu.complete_export(done)
    emu.fail_export(failed)
    assert api.entry(done)["isAvailableForDownload"] is True
    failed_entry = api.entry(failed)
    assert failed_entry["status"] == "FAILED" and failed_entry["isAvailableForDownload"] is False
    assert api.get(f"/exports/{failed}").status_code == 400
    assert api.post(f"/exports/{failed}").status_code == 400


def test_fail_exports_option_fails_every_export(msghistory_emulator_factory: Callable[..., Emulator]) -> None:
    emu = msghistory_emulator_factory(messages=100, export_delay=0.05, fail_exports=True)
    api = Api(emu)
    export_id = api.submit_history(*DAY2)
    time.sleep(0.1)
    assert api.entry(export_id)["status"] == "FAILED"


def test_link_expires_then_regeneration_gives_a_new_working_link(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = msghistory_emulator_factory(messages=300, export_delay=0.05)
    api = Api(emu)
    export_id = api.submit_history(*DAY2)
    api.wait_available(export_id)
    old_url = api.get(f"/exports/{export_id}").json()["downloadUrl"]
    assert requests.get(old_url, timeout=5).status_code == 200
    emu.expire_link(export_id)  # by the knob: a short TTL would race a loaded machine's first download
    entry = api.entry(export_id)
    assert entry["status"] == "EXPIRED" and entry["isAvailableForDownload"] is False
    expired = api.get(f"/exports/{export_id}")
    assert expired.status_code == 400 and "expired" in expired.json()["message"]
    assert requests.get(old_url, timeout=5).status_code == 403
    regenerated = api.post(f"/exports/{export_id}")
    assert regenerated.status_code == 202
    assert regenerated.json() == {"exportId": export_id, "status": "PENDING"}
    api.wait_available(export_id)
    new_url = api.get(f"/exports/{export_id}").json()["downloadUrl"]
    assert new_url != old_url
    assert requests.get(new_url, timeout=5).content == emu.export_csv(export_id)
    assert requests.get(old_url, timeout=5).status_code == 403
    assert emu.exports[export_id].regenerations == 1


def test_expire_link_helper(api: Api, emu: Emulator) -> None:
    export_id = api.submit_history(*DAY2)
    api.wait_available(export_id)
    url = api.get(f"/exports/{export_id}").json()["downloadUrl"]
    emu.expire_link(export_id)
    assert api.entry(export_id)["status"] == "EXPIRED"
    assert api.get(f"/exports/{export_id}").status_code == 400
    assert requests.get(url, timeout=5).status_code == 403


def test_tampered_signature_or_expiry_is_403_and_unknown_object_404(api: Api, emu: Emulator) -> None:
    export_id = api.submit_history(*DAY2)
    api.wait_available(export_id)
    url = api.get(f"/exports/{export_id}").json()["downloadUrl"]
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    forged = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert requests.get(_with_query(url, signature=forged), timeout=5).status_code == 403
    later = str(int(parse_qs(urlsplit(url).query)["expires"][0]) + 3600)
    assert requests.get(_with_query(url, expires=later), timeout=5).status_code == 403
    assert requests.get(url.split("?")[0], timeout=5).status_code == 403
    assert requests.get(emu.storage_base_url + "/exports/exp_nope/x.csv", timeout=5).status_code == 404


def test_download_with_an_auth_header_is_refused_like_a_presigned_object_store(
    api: Api, emu: Emulator
) -> None:
    export_id = api.submit_history(*DAY2)
    api.wait_available(export_id)
    url = api.get(f"/exports/{export_id}").json()["downloadUrl"]
    assert requests.get(url, auth=("demo", "demo-password"), timeout=5).status_code == 400
    assert requests.get(url, timeout=5).status_code == 200
    storage = [r for r in emu.request_log if r.server == "storage"]
    assert [r.had_auth for r in storage] == [True, False]
    assert storage[0].headers["Authorization"] == "***" and storage[0].port == emu.storage_port


def test_range_requests_resume_from_an_offset(api: Api, emu: Emulator) -> None:
    export_id = api.submit_history("2025-01-01T00:00:00Z", "2025-01-31T23:59:59.999Z")
    api.wait_available(export_id)
    url = api.get(f"/exports/{export_id}").json()["downloadUrl"]
    full = emu.export_csv(export_id)
    partial = requests.get(url, headers={"Range": "bytes=1000-"}, timeout=5)
    assert partial.status_code == 206
    assert partial.headers["Content-Range"] == f"bytes 1000-{len(full) - 1}/{len(full)}"
    assert partial.content == full[1000:]
    middle = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=5)
    assert middle.status_code == 206 and middle.content == full[10:20]
    beyond = requests.get(url, headers={"Range": f"bytes={len(full)}-"}, timeout=5)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(full)}"
    head = requests.head(url, timeout=5)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(full)


def test_big_synthetic_export_streams_exact_size_and_known_sha256(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    size = 5 * 1024 * 1024 + 123
    emu = msghistory_emulator_factory(export_size_bytes=size, messages=50, export_delay=0)
    api = Api(emu)
    export_id = api.submit_history(*DAY2)
    url = api.get(f"/exports/{export_id}").json()["downloadUrl"]
    digest, received = hashlib.sha256(), 0
    with requests.get(url, stream=True, timeout=10) as response:
        assert int(response.headers["Content-Length"]) == size
        for chunk in response.iter_content(1 << 20):
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert digest.hexdigest() == emu.export_sha256(export_id)
    tail = requests.get(url, headers={"Range": f"bytes={size - 5000}-"}, timeout=10)
    assert tail.status_code == 206 and tail.content == emu.export_csv(export_id)[-5000:]
    lines = emu.export_csv(export_id).decode().splitlines()
    assert len({line.split(",")[0] for line in lines[1:]}) == len(lines) - 1  # every message id unique
    assert all(line.count(",") == 9 for line in lines)


def test_create_export_helper_makes_a_ready_big_export(msghistory_emulator: Emulator) -> None:
    export_id = msghistory_emulator.create_export(size_bytes=1 << 20)
    export = msghistory_emulator.exports[export_id]
    assert export.status == "COMPLETED" and export.content.size == 1 << 20
    response = requests.get(msghistory_emulator.download_url(export_id), timeout=5)
    assert hashlib.sha256(response.content).hexdigest() == msghistory_emulator.export_sha256(export_id)
