"""The suite's own pieces: the emulator's mid-download expiry fault, seed selection, schedule drawing."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_msghistory.emulator import Emulator

from .schedules import (
    DEFAULT_SEEDS,
    FATAL_CAUSES,
    MAX_BURST,
    READ_TIMEOUT,
    draw,
    parse_seeds,
    selected_seeds,
)


def test_expire_fault_on_download_breaks_the_body_and_kills_the_link(msghistory_emulator: Emulator) -> None:
    emu = msghistory_emulator
    export_id = emu.create_export()
    url = emu.download_url(export_id)
    size = emu.export_size(export_id)
    emu.faults.script("download", ["expire:1000"])
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=5)
    conn.request("GET", f"{parts.path}?{parts.query}")
    response = conn.getresponse()
    assert response.status == 200 and int(response.getheader("Content-Length")) == size
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert len(caught.value.partial) == 1000
    conn.close()
    resumed = requests.get(url, headers={"Range": "bytes=1000-"}, timeout=5)
    assert resumed.status_code == 403  # the link expired while the body was in flight
    assert emu.export(export_id).status == "EXPIRED"
    assert [(e.status, e.fault) for e in emu.request_log] == [(200, "expire"), (403, None)]


def test_expire_fault_is_refused_where_it_means_nothing(msghistory_emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="link"):
        msghistory_emulator.faults.script("list", ["expire"])


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("1000-1003", [1000, 1001, 1002, 1003]), ("5,17,300-301", [5, 17, 300, 301]), ("7,", [7])],
)
def test_seed_ranges_and_lists(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


def test_a_bare_count_explores_fresh_seeds() -> None:
    first, second = parse_seeds("50"), parse_seeds("50")
    assert len(first) == len(set(first)) == 50
    assert first != second
    assert not set(first) & set(DEFAULT_SEEDS)


def test_bad_seed_text_names_the_variable() -> None:
    with pytest.raises(ValueError, match="MSGHISTORY_RELIABILITY_SEEDS"):
        parse_seeds("1-x")


def test_option_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSGHISTORY_RELIABILITY_SEEDS", "1-3")
    assert selected_seeds([42]) == [42]
    assert selected_seeds([]) == [1, 2, 3]
    monkeypatch.delenv("MSGHISTORY_RELIABILITY_SEEDS")
    assert selected_seeds(None) == list(DEFAULT_SEEDS) and len(DEFAULT_SEEDS) >= 200


def test_schedules_are_deterministic_and_cover_every_fatal_cause() -> None:
    assert [draw(seed) for seed in DEFAULT_SEEDS[:20]] == [draw(seed) for seed in DEFAULT_SEEDS[:20]]
    causes = {draw(seed).fatal for seed in DEFAULT_SEEDS}
    assert causes == {None, *FATAL_CAUSES}


def test_recoverable_scripts_never_outlast_one_call() -> None:
    """The premise of "must succeed": no run of failures an API call's attempts cannot get past."""
    failing = {"500", "503", "429", "reset"}
    for seed in DEFAULT_SEEDS:
        schedule = draw(seed)
        if schedule.fatal is not None:
            continue
        for endpoint, actions in schedule.script.items():
            run = longest = 0
            for action in actions:
                late = action.startswith("slow:") and float(action[5:]) > READ_TIMEOUT
                run = run + 1 if action in failing or late else 0
                longest = max(longest, run)
            assert longest <= MAX_BURST, (endpoint, schedule.describe())
