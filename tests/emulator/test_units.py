"""Pure pieces of the emulator: strict datetime parsing, the rate-limit window, the synthetic CSV."""

from __future__ import annotations

import pytest

from airflow_provider_msghistory.emulator.qlara.content import SyntheticCsv
from airflow_provider_msghistory.emulator.ratelimit import RateLimiter
from airflow_provider_msghistory.emulator.requestlog import LoggedRequest, format_line
from airflow_provider_msghistory.emulator.timeutil import format_ms, parse_offset_datetime

JAN1 = 1_735_689_600_000  # 2025-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01T00:00:00Z", JAN1),
        ("2025-01-01T00:00Z", JAN1),
        ("2025-01-01T01:00:00.000+01:00", JAN1),
        ("2024-12-31T23:59:59.999-00:00", JAN1 - 1),
        ("2025-01-01T00:00:00.123456789Z", JAN1 + 123),
        ("2025-01-01T00:00:00.5Z", JAN1 + 500),
    ],
)
def test_offset_datetimes_parse_to_epoch_ms(text: str, expected: int) -> None:
    assert parse_offset_datetime(text, "from") == expected


@pytest.mark.parametrize("text", ["2025-01-01", "2025-01-01T00:00:00", "2025-01-01T00:00:00+25:00", "", None])
def test_offsetless_and_invalid_datetimes_are_rejected_naming_the_field(text: object) -> None:
    with pytest.raises(ValueError, match="'to'"):
        parse_offset_datetime(text, "to")


def test_format_ms_has_millisecond_precision() -> None:
    assert format_ms(JAN1 + 2 * 86_400_000 + 36_672_345) == "2025-01-03T10:11:12.345Z"


def test_rate_limiter_windows_slide_with_the_clock() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=4, burst=2, clock=lambda: now[0])
    assert [limiter.check("k").allowed for _ in range(3)] == [True, True, False]
    now[0] = 1.0
    assert [limiter.check("k").allowed for _ in range(3)] == [True, True, False]
    verdict = limiter.check("k")
    assert not verdict.allowed and verdict.remaining == 0 and verdict.retry_after == 59
    now[0] = 60.0
    assert limiter.check("k").allowed and limiter.check("other").remaining == 3


@pytest.mark.parametrize("size", [4096, 1_293_645 * 2, 1_293_645 * 3 + 1, 7_000_001])
def test_synthetic_csv_is_exact_valid_and_resumable(size: int) -> None:
    content = SyntheticCsv(size, 3, JAN1, 86_400_000)
    data = b"".join(content.iter_from(0))
    assert len(data) == size and data.endswith(b"\n")
    for offset in (0, 1, 500, size // 2, size - 1):
        assert b"".join(content.iter_from(offset)) == data[offset:]
    lines = data.decode().splitlines()
    assert all(line.count(",") == 9 for line in lines)
    assert SyntheticCsv(size, 3, JAN1, 86_400_000).sha256() == content.sha256()
    assert SyntheticCsv(size, 4, JAN1, 86_400_000).sha256() != content.sha256()


def test_synthetic_csv_rejects_tiny_sizes() -> None:
    with pytest.raises(ValueError, match="size"):
        SyntheticCsv(100, 1, JAN1, 1)


def test_request_lines_hide_download_tokens_and_credential_parameters() -> None:
    entry = LoggedRequest(
        method="GET",
        path="/api/v1/subaccounts/acme/messages/download/s3cr3t-token",
        query={"apiKey": "k1", "page": "2", "X-Amz-Signature": "abc"},
        server="api",
        port=1,
        headers={"Authorization": "***"},
        had_auth=True,
        status=206,
        fault="truncate",
        time=1_735_689_600.25,
    )
    line = format_line(entry)
    assert line == (
        "00:00:00.250Z api GET /api/v1/subaccounts/acme/messages/download/***?apiKey=***&page=2"
        "&X-Amz-Signature=*** -> 206 (injected truncate)"
    )
