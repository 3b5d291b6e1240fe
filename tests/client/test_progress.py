"""WaitProgress: a line per status change and a heartbeat whose spacing doubles, on a fake clock."""

from __future__ import annotations

import pytest

from airflow_provider_msghistory.client.progress import (
    FIRST_HEARTBEAT,
    MAX_HEARTBEAT_GAP,
    WaitProgress,
    duration,
)

PENDING = "still being generated (status 'PENDING')"


def lines_over(progress: WaitProgress, seconds: int, every: int, status: str = PENDING) -> dict[int, str]:
    """Poll every ``every`` fake seconds for ``seconds``; the lines logged, by the second they came."""
    logged = {}
    for now in range(0, seconds + 1, every):
        line = progress.poll(status, float(now), float(every))
        if line:
            logged[now] = line
    return logged


def test_first_look_logs_the_status_then_heartbeats_come_ever_more_sparsely() -> None:
    logged = lines_over(WaitProgress("exp_1", started=0.0), seconds=7200, every=10)

    # A line at the first look, then heartbeats after 1, 3, 7 and 15 minutes, then every 15 minutes.
    assert list(logged) == [0, 60, 180, 420, 900, 1800, 2700, 3600, 4500, 5400, 6300, 7200]
    assert logged[0] == f"Export exp_1: {PENDING} (after 0s, 1 poll)"
    assert logged[420] == f"Export exp_1 still waiting after 7m00s (43 polls, next check in 10s): {PENDING}"
    assert logged[3600].startswith("Export exp_1 still waiting after 1h00m (361 polls,")


def test_an_hour_of_fast_polls_logs_a_handful_of_lines_not_one_per_poll() -> None:
    # 1-second polls for an hour: 3,601 looks; a thousand such waits in one triggerer log 8 lines each.
    logged = lines_over(WaitProgress("exp_1", started=0.0), seconds=3600, every=1)
    assert len(logged) == 8
    gaps = [b - a for a, b in zip(list(logged)[1:], list(logged)[2:], strict=False)]
    assert max(gaps) == MAX_HEARTBEAT_GAP


def test_a_status_change_is_logged_at_once_and_restarts_the_spacing() -> None:
    progress = WaitProgress("exp_1", started=100.0)
    assert progress.poll(PENDING, 100.0, 10) is not None
    assert progress.poll(PENDING, 1000.0, 10) is not None  # heartbeat (first one due at 160)
    assert progress.poll(PENDING, 1010.0, 10) is None
    line = progress.poll("completed but not yet available for download", 1020.0, 10)
    assert line == "Export exp_1: completed but not yet available for download (after 15m20s, 4 polls)"
    assert progress.poll("completed but not yet available for download", 1020.0 + FIRST_HEARTBEAT, 10)


def test_the_last_look_names_no_next_check() -> None:
    progress = WaitProgress("exp_1", started=0.0, first_heartbeat=5)
    progress.poll(PENDING, 0.0, 10)
    assert progress.poll(PENDING, 5.0, None) == f"Export exp_1 still waiting after 5s (2 polls): {PENDING}"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.6, "1m00s"), (245, "4m05s"), (3720, "1h02m"), (-3, "0s")]
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text
