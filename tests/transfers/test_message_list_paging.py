"""The message list against servers that page badly: overlapping, alternating or shifting pages, a page size
cap answered with 400, a page size shrunk mid-series, a list that never ends. Real operator over HTTP (the
emulator, or a scripted server from ``tests/hostile``): every record once, or a clear failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hostile.server import API_PREFIX, Handler, HostileServer, send
from triggers.helpers import conn_json

from airflow_provider_msghistory.client import history
from airflow_provider_msghistory.client.errors import UnexpectedResponseError
from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator

DAY2, DAY3, DAY4 = (f"2025-01-0{d}T00:00:00+00:00" for d in (2, 3, 4))
HISTORY = API_PREFIX + "/messages/history"


@pytest.fixture(autouse=True)
def forget_page_size_caps() -> Any:
    yield
    history._PAGE_SIZE_CAPS.clear()


def load(path: Path, **kwargs: Any) -> MsgHistoryMessagesToStorageOperator:
    kwargs.setdefault("start_datetime", DAY2)
    kwargs.setdefault("end_datetime", DAY3)
    return MsgHistoryMessagesToStorageOperator(task_id="load", destination=f"file://{path}", **kwargs)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- 6. a server refusing the page size with 400 -------------------------------------------------------
def test_a_400_on_the_page_size_steps_down_and_is_remembered_for_the_connection(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    emulator = msghistory_emulator_factory(messages=3000, history_max_limit=25)  # above: 400
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    result = load(tmp_path / "a.jsonl", end_datetime=DAY4).execute({})
    assert records(tmp_path / "a.jsonl") == emulator.expected_messages(DAY2, DAY4)
    limits = [r.query["limit"] for r in emulator.request_log if r.path.endswith("/messages/history")]
    assert limits[0] == "1000" and set(limits[1:]) == {"25"}  # the size the 400 named, from then on
    assert result["records"] > 0

    emulator.clear_request_log()
    load(tmp_path / "b.jsonl", end_datetime=DAY4).execute({})
    again = {r.query["limit"] for r in emulator.request_log if r.path.endswith("/messages/history")}
    assert again == {"25"}  # remembered for the connection: no refused request first


# --- 5. pages that overlap, alternate or shift; a page size shrunk mid-series --------------------------
def message(number: int) -> dict[str, Any]:
    return {"messageId": f"m-{number}", "sendDate": f"2025-01-02T10:00:{number % 60:02d}.000Z"}


def paged(pages: Callable[[int, int], list[dict[str, Any]]]) -> Callable[[Handler], None]:
    """A history route answering ``pages(page, limit)`` for the SMS channel, nothing for the others."""

    def respond(handler: Handler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        page, limit = int(query["page"][0]), int(query["limit"][0])
        body = pages(page, limit) if query["channel"][0] == "SMS" else []
        send(handler, 200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    return respond


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    with HostileServer() as hostile:
        extra = {"vendor": "qlara", "max_attempts": 1}
        conn = {"conn_type": "msghistory", "host": hostile.api_url, "password": "hostile-key", "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(conn))
        yield hostile


@pytest.mark.parametrize(
    ("served", "duplicates"),
    [
        # page 1 starts 5 records back (rows inserted ahead of it on a live list)
        pytest.param([range(0, 10), range(5, 15), range(15, 18), range(0)], 5, id="overlap"),
        # page 2 repeats page 0 (a list shifting back and forth)
        pytest.param(
            [range(0, 10), range(10, 20), range(0, 10), range(20, 23), range(0)], 10, id="alternate"
        ),
    ],
)
def test_records_served_twice_are_stored_once_and_counted(
    server: HostileServer, tmp_path: Path, served: list[range], duplicates: int
) -> None:
    server.route(HISTORY, paged(lambda page, limit: [message(n) for n in served[min(page, len(served) - 1)]]))
    result = load(tmp_path / "m.jsonl", page_size=10).execute({})
    ids = [r["messageId"] for r in records(tmp_path / "m.jsonl")]
    assert ids == [f"m-{n}" for n in sorted({n for r in served for n in r})]
    assert (result["records"], result["duplicates"]) == (len(ids), duplicates)


def test_the_servers_total_counts_distinct_records_not_repeats(server: HostileServer, tmp_path: Path) -> None:
    """18 records in the list; page 1 overlaps page 0 and is short: 18 served, but only 13 distinct."""
    served = [range(0, 10), range(5, 13), range(13, 18), range(0)]

    def pages(page: int, limit: int) -> Any:
        return {"content": [message(n) for n in served[min(page, 3)]], "totalElements": 18}

    server.route(HISTORY, paged(pages))
    result = load(tmp_path / "m.jsonl", page_size=10).execute({})
    assert [r["messageId"] for r in records(tmp_path / "m.jsonl")] == [f"m-{n}" for n in range(18)]
    assert result["duplicates"] == 5
    sms_pages = [s for s in server.seen if "channel=SMS" in s.path]
    assert len(sms_pages) == 3  # the third page brought the distinct count to the total: no fourth


def test_a_page_size_shrunk_mid_series_is_read_again_by_the_new_size(
    server: HostileServer, tmp_path: Path
) -> None:
    """Full pages of 10, then the server serves 4 per page, paging by its own size: the short page is not
    the end, and what the old pages covered is read again by the new size (repeats dropped)."""
    total = 37

    def pages(page: int, limit: int) -> list[dict[str, Any]]:
        size = 10 if page < 2 and not shrunk else 4
        if page >= 2:
            shrunk.append(page)
        return [message(n) for n in range(page * size, min((page + 1) * size, total))]

    shrunk: list[int] = []
    server.route(HISTORY, paged(pages))
    result = load(tmp_path / "m.jsonl", page_size=10).execute({})
    ids = [r["messageId"] for r in records(tmp_path / "m.jsonl")]
    assert sorted(ids, key=lambda i: int(i[2:])) == [f"m-{n}" for n in range(total)]
    assert len(ids) == len(set(ids)) == result["records"]


# --- 14. a list that never ends ------------------------------------------------------------------------
def test_a_list_that_never_ends_stops_early_on_the_servers_own_total(
    server: HostileServer, tmp_path: Path
) -> None:
    def pages(page: int, limit: int) -> Any:
        return {"content": [message(page * limit + i) for i in range(limit)], "totalElements": 30}

    server.route(HISTORY, paged(pages))
    with pytest.raises(UnexpectedResponseError, match="holds 30 records, but served"):
        load(tmp_path / "m.jsonl", page_size=10).execute({})
    assert len(server.seen) <= 10
    assert list(tmp_path.iterdir()) == []


# --- 15. odd values a JSON body may carry --------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_lone_surrogate_and_nan_are_written_escaped_never_failing_the_window(
    server: HostileServer, tmp_path: Path, fmt: str
) -> None:
    body = (
        b'[{"messageId": "m-1", "sendDate": "2025-01-02T10:00:00.000Z", "body": "half \\ud83d pair",'
        b' "price": NaN, "cost": -Infinity, "nested": {"rate": Infinity}}]'
    )

    def respond(handler: Handler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        first = query["channel"][0] == "SMS" and query["page"][0] == "0"
        send(handler, 200, body if first else b"[]", {"Content-Type": "application/json"})

    server.route(HISTORY, respond)
    target = tmp_path / f"m.{fmt}"
    result = load(target, format=fmt).execute({})
    assert result["records"] == 1
    raw = target.read_bytes()
    raw.decode("utf-8")  # valid UTF-8 throughout
    if fmt == "jsonl":
        assert not any(token in raw for token in (b":NaN", b":Infinity", b":-Infinity"))  # no bare tokens
        (record,) = records(target)
        assert record["body"] == "half \ud83d pair"  # the same string, escaped as JSON allows
        odd = (record["price"], record["cost"], record["nested"])
        assert odd == ("NaN", "-Infinity", {"rate": "Infinity"})
    else:
        assert b"half \\ud83d pair" in raw
