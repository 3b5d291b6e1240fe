"""The merger on its own: records split on unquoted newlines, rows cut to [start, end) by their time column,
parts unpacked by magic bytes, hostile input refused clearly."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_msghistory.client.datetimes import parse_vendor_time
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.emulator.eightxeight.data import synthetic_parts
from airflow_provider_msghistory.transfers import merge
from airflow_provider_msghistory.transfers.merge import CsvMerger, MergeError, part_streams

HEADER = b"umid,status_errormessage,createdat,body\r\n"
ROWS = [
    b'1,,2025-01-01T23:59:59.999Z,"plain"\r\n',
    b'2,"Invalid destination, ""blocked"" range",2025-01-02T00:00:00.000Z,'
    b'"Line one\r\nLine ""two"", three"\r\n',
    b'3,"x",2025-01-02T12:00:00.000+00:00,"a\nb"\r\n',
    b"4,,2025-01-02T23:59:59.999Z,\r\n",
    b'5,"y",2025-01-03T00:00:00.000Z,"late\r\n"\r\n',
]
DAY = Window(datetime(2025, 1, 2, tzinfo=timezone.utc), datetime(2025, 1, 3, tzinfo=timezone.utc))


def merged(parts: list[bytes], window: Window | None = DAY, chunk: int = 7) -> tuple[bytes, CsvMerger]:
    out = io.BytesIO()
    merger = CsvMerger(out.write, window, "CreatedAt")
    for number, data in enumerate(parts, 1):
        for label, stream in part_streams(io.BytesIO(data), f"part {number}"):
            whole = b"".join(stream)
            merger.add(
                iter([whole[i : i + chunk] for i in range(0, len(whole), chunk)]), label
            )  # tiny chunks
    merger.finish()
    return out.getvalue(), merger


def test_rows_are_cut_to_the_window_byte_for_byte_whatever_the_quoting() -> None:
    data, merger = merged([HEADER + b"".join(ROWS)])
    assert data == HEADER + ROWS[1] + ROWS[2] + ROWS[3]  # .999 of the day before and .000 after: out
    assert (merger.stats.rows, merger.stats.dropped_rows, merger.stats.unreadable_times) == (3, 2, 0)


def test_parts_gzip_multi_member_and_zip_merge_with_one_header() -> None:
    gz = gzip.compress(HEADER + ROWS[0] + ROWS[1]) + gzip.compress(ROWS[2])  # two gzip members
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("logs.csv", HEADER + ROWS[3])
    plain = HEADER + ROWS[4].rstrip(b"\r\n")  # a last record without its newline
    data, merger = merged([gz, buffer.getvalue(), plain], window=None)
    assert data == HEADER + b"".join(ROWS[:4]) + ROWS[4].rstrip(b"\r\n") + b"\r\n"
    assert merger.stats.parts == 3 and merger.stats.rows == 5


def test_a_different_header_is_refused() -> None:
    other = b"umid,status_errormessage,createdat,text\r\n"
    with pytest.raises(MergeError, match="part 2 has a different header"):
        merged([HEADER + ROWS[1], other + ROWS[2]])


def test_no_time_column_and_runaway_quotes_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MergeError, match="no 'CreatedAt' column"):
        merged([b"a,b\r\n1,2\r\n"])
    monkeypatch.setattr(merge, "MAX_RECORD", 64)
    with pytest.raises(MergeError, match="unbalanced quote"):
        merged([HEADER + b'9,"never closed,2025-01-02T00:00:00.000Z,x\r\n' + b"y\r\n" * 40])
    with pytest.raises(MergeError, match="broken gzip"):
        merged([b"\x1f\x8b" + b"not gzip at all"])


# --- the block fast path: a whole chunk decided at once, only doubtful records one by one ----------------
def oracle(data: bytes, window: Window, column: str) -> tuple[bytes, int, int]:
    """What the merger must write for one CSV, decided record by record with the csv module: the bytes,
    rows kept and rows with an unreadable time (kept). Dropped rows: the newlines outside quotes missing."""
    lines = data.split(b"\n")
    records, open_lines = [], []
    for line in lines[:-1]:
        open_lines.append(line)
        if b"\n".join(open_lines).count(b'"') % 2 == 0:
            records.append(b"\n".join(open_lines) + b"\n")
            open_lines = []
    header, rows = records[0], records[1:]
    index = [name.lower() for name in next(csv.reader([header.decode()]))].index(column)
    kept, unreadable = [header], 0
    for record in rows:
        row = next(csv.reader(io.StringIO(record.decode("utf-8", "replace"), newline="")))
        value = row[index] if len(row) > index else ""
        when = parse_vendor_time(value)
        if when is None:
            unreadable += 1
        if when is None or window.start <= when < window.end:
            kept.append(record)
    return b"".join(kept), len(kept) - 1, unreadable


def merged_whole(data: bytes, chunk: int = 1 << 20) -> tuple[bytes, CsvMerger]:
    return merged([data], chunk=chunk)


def assert_like_oracle(data: bytes, dropped: int, unreadable: int = 0) -> None:
    expected, rows, expected_unreadable = oracle(data, DAY, "createdat")
    assert expected_unreadable == unreadable
    for chunk in (1 << 20, 1000, 7):  # one block, a few blocks, a record at a time
        out, merger = merged_whole(data, chunk)
        assert out == expected
        assert (merger.stats.rows, merger.stats.dropped_rows) == (rows, dropped)
        assert merger.stats.unreadable_times == unreadable


def day_rows(count: int, day: int = 2) -> list[bytes]:
    return [
        b'%d,"a, ""b""",2025-01-%02dT%02d:%02d:00.000Z,"line\r\nbreak"\r\n' % (i, day, i // 60 % 24, i % 60)
        for i in range(count)
    ]


def test_a_block_straddling_the_window_edges_keeps_exactly_the_rows_inside() -> None:
    rows = day_rows(50)
    edge = [
        b"90,,2025-01-01T23:59:59.999Z,first\r\n",  # a millisecond before the start
        b"91,,2025-01-03T00:00:00.000Z,after\r\n",  # the end itself: out
        b"92,,2025-01-02T23:59:59.999Z,last\r\n",  # in
    ]
    data = HEADER + edge[0] + b"".join(rows[:20]) + edge[1] + b"".join(rows[20:]) + edge[2] + edge[1]
    assert_like_oracle(data, dropped=3)


def test_duplicate_doubtful_rows_are_each_found_where_they_are() -> None:
    late = b"7,,2025-01-03T00:00:00.000Z,same\r\n"
    rows = day_rows(10)
    data = HEADER + late + rows[0] + late + late + b"".join(rows[1:5]) + late + b"".join(rows[5:])
    assert_like_oracle(data, dropped=4)


def test_a_time_not_written_canonically_is_parsed_even_inside_a_canonical_block() -> None:
    rows = day_rows(30)
    other = [
        b"80,,2025-01-03T00:00:00+00:00,offset: after the end\r\n",  # same instant as the end: out
        b"81,,2025-01-02 10:00:00.000,space for the T: in\r\n",
        b"82,,2025-01-01t23:00:00.000z,lower case: before the start\r\n",
    ]
    data = HEADER + b"".join(rows[:10]) + b"".join(other) + b"".join(rows[10:])
    assert_like_oracle(data, dropped=2)


def test_an_unreadable_time_in_a_canonical_block_is_kept_and_counted() -> None:
    rows = day_rows(30)
    data = HEADER + b"".join(rows[:15]) + b"83,,not a time,x\r\n" + b"84,,\r\n" + b"".join(rows[15:])
    assert_like_oracle(data, dropped=0, unreadable=2)


def test_a_short_record_or_a_quoted_time_makes_the_block_decided_record_by_record() -> None:
    rows = day_rows(20)
    odd = [
        b"85\r\n",  # no time column at all: unreadable, kept
        b'86,,"2025-01-03T00:00:00.000Z",quoted time: out\r\n',
        b"87,,2025-01-02T00:00:00.000Z5,a digit after the time: unreadable\r\n",
    ]
    data = HEADER + b"".join(rows[:10]) + b"".join(odd) + b"".join(rows[10:])
    assert_like_oracle(data, dropped=1, unreadable=2)


def test_an_irregular_quote_before_the_time_is_read_as_csv_reads_it() -> None:
    # Quote parity blanks the comma in a"b,c" (the shadow sees a time in the time column); CSV reads a"b
    # and c" as two fields, so the time column holds c": an unreadable time (kept and counted) where the
    # shadow sees one inside the window.
    rows = day_rows(20)
    irregular = [b'88,a"b,c",2025-01-02T05:00:00.000Z\r\n', b'89,"x"y,z"",2025-01-02T05:00:00.000Z\r\n']
    regular = b'90,"x, ""y""",2025-01-03T00:00:00.000Z,regular: out\r\n'
    data = HEADER + b"".join(rows[:10]) + irregular[0] + regular + b"".join(rows[10:]) + irregular[1]
    assert_like_oracle(data, dropped=1, unreadable=2)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def test_the_synthetic_8x8_export_is_cut_as_record_by_record() -> None:
    # The emulator's benchmark file: quoted multi-line bodies, quoted status messages with commas before
    # the time column, one row at the window's end in every block.
    (part,) = synthetic_parts(3 << 20, 1, _ms(DAY.start), _ms(DAY.end), "\r\n")
    data = b"".join(part.iter_from(0))
    data = data[: data.rfind(b"\r\n") + 2]
    expected, rows, unreadable = oracle(data, DAY, "createdat")
    out, merger = merged_whole(data)
    assert out == expected and (merger.stats.rows, unreadable) == (rows, 0)
    assert merger.stats.dropped_rows == len(data) // part.block_size > 0  # one a block


# --- the edge search: a part that showed its shape is cut only where a slack minute appears -------------
ASKED = Window(DAY.start, DAY.end + timedelta(seconds=2))  # 8x8's covering window for DAY


def edge_merged(data: bytes, chunk: int, asked: Window | None = ASKED) -> tuple[bytes, CsvMerger, int]:
    """Merged with the covering window given; also how many blocks the edge search decided."""
    out = io.BytesIO()
    merger = CsvMerger(out.write, DAY, "createdat", asked)
    searched = 0
    real = merge._RowWindow.cut_edges

    def spy(self: merge._RowWindow, block: merge._Block) -> tuple[list[merge.Buffer], int]:
        nonlocal searched
        searched += 1
        return real(self, block)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(merge._RowWindow, "cut_edges", spy)
        merger.add(iter([data[i : i + chunk] for i in range(0, len(data), chunk)]), "part 1")
    merger.finish()
    return out.getvalue(), merger, searched


def many_rows(count: int) -> list[bytes]:
    return [
        b'%d,"a, ""b""",2025-01-02T%02d:%02d:%02d.%03dZ,"line\r\nbreak"\r\n'
        % (i, i % 24, i % 60, i % 59, i % 1000)
        for i in range(count)
    ]


def test_after_the_shown_shape_slack_rows_in_any_spelling_are_found_and_cut() -> None:
    rows = many_rows(merge.VOUCH_RECORDS + 3000)
    slack = [
        b"70,,2025-01-03T00:00:00.000Z,the end itself: out\r\n",
        b'71,"x, ""y""",2025-01-03 00:00:01.5,"space, no zone, \r\n a quoted newline: out"\r\n',
        b"72,,2025-01-03t00:00:01.999z,lower case: out\r\n",
        b"73,,2025-01-02T00:00:00.250Z,the start's minute: in\r\n",
        b"74,,2025-01-02T23:59:59.999Z,the last millisecond: in\r\n",
    ]
    tail = rows[merge.VOUCH_RECORDS + 1000 :]
    data = (
        HEADER + b"".join(rows[: merge.VOUCH_RECORDS + 1000]) + b"".join(slack[:3]) + b"".join(tail[:700])
        + b"".join(slack[3:]) + b"".join(tail[700:]) + slack[0]
    )  # fmt: skip
    expected, rows_kept, _ = oracle(data, DAY, "createdat")
    for chunk in (1 << 20, 4099, 997):
        out, merger, searched = edge_merged(data, chunk)
        assert out == expected
        assert (merger.stats.rows, merger.stats.dropped_rows) == (rows_kept, 4)
        assert (searched > 0) is (chunk < len(data))  # the edge search decided the later blocks


def test_a_part_that_shows_another_time_shape_is_cut_row_by_row_to_its_end() -> None:
    # The first rows write times with a space: the edge search never starts for this part, so a later
    # row far past the window (no slack minute in it) is still found.
    spaced = [row.replace(b"Z,", b",").replace(b"T", b" ", 1) for row in many_rows(merge.VOUCH_RECORDS)]
    far = b"75,,2025-01-04 12:34:56.000,a day late: out\r\n"
    data = HEADER + b"".join(spaced) + far + b"".join(many_rows(2000))
    expected, rows_kept, _ = oracle(data, DAY, "createdat")
    out, merger, searched = edge_merged(data, 4099)
    assert (out, merger.stats.dropped_rows, searched) == (expected, 1, 0)
    assert merger.stats.rows == rows_kept


def test_a_row_outside_the_asked_window_keeps_the_part_row_by_row() -> None:
    rows = many_rows(merge.VOUCH_RECORDS + 2000)
    early = b"76,,2025-01-01T12:00:00.000Z,not what the vendor was asked for\r\n"
    far = b"77,,2025-01-05T12:00:00.000Z,nor this\r\n"
    data = HEADER + early + b"".join(rows) + far
    out, merger, searched = edge_merged(data, 4099)
    assert (out, merger.stats.dropped_rows, searched) == (oracle(data, DAY, "createdat")[0], 2, 0)


def test_without_a_covering_window_every_row_is_read() -> None:
    rows = many_rows(merge.VOUCH_RECORDS + 2000)
    far = b"78,,2025-01-05T12:00:00.000Z,far past the window\r\n"
    data = HEADER + b"".join(rows) + far
    out, merger, searched = edge_merged(data, 1 << 20, asked=None)
    assert (out, merger.stats.dropped_rows, searched) == (oracle(data, DAY, "createdat")[0], 1, 0)


@pytest.mark.parametrize(
    ("window", "asked", "edges"),
    [
        # midnight to midnight: the slack's date, then its minute after one separator
        (DAY, ASKED, merge._Edges((b"2025-01-03",), frozenset({b"00:00:"}))),
        (
            DAY,
            Window(DAY.start - timedelta(seconds=1), DAY.end + timedelta(seconds=2)),
            merge._Edges((b"2025-01-01", b"2025-01-03"), frozenset({b"00:00:", b"23:59:"})),
        ),
        (  # bounds inside a minute: the start's second and the end's two seconds after, on the window's dates
            Window(DAY.start + timedelta(seconds=90.5), DAY.end - timedelta(seconds=30.25)),
            Window(DAY.start + timedelta(seconds=90), DAY.end - timedelta(seconds=28)),
            merge._Edges((b"00:01:", b"23:59:")),
        ),
        (  # an end a microsecond past midnight: the slack's date is one the window covers
            Window(DAY.start, DAY.end + timedelta(microseconds=1)),
            Window(DAY.start, DAY.end + timedelta(seconds=2)),
            merge._Edges((b"00:00:",)),
        ),
        (DAY, Window(DAY.start - timedelta(minutes=10), DAY.end), None),  # too wide a slack
        (Window(DAY.start, DAY.start + timedelta(minutes=30)), ASKED, None),  # too short a window
        (DAY, Window(DAY.start + timedelta(seconds=1), DAY.end), None),  # not a covering window
        (DAY, DAY, None),  # exact bounds (Qlara): every row is checked, as a safety net
    ],
)
def test_what_the_edge_search_looks_for(window: Window, asked: Window, edges: merge._Edges | None) -> None:
    assert merge._edges(window, asked) == edges


def test_a_slack_date_counts_only_with_a_slack_minute_after_it() -> None:
    edges = merge._Edges((b"2025-01-03",), frozenset({b"00:00:"}))
    data = b"a,2025-01-03T00:00:01Z,2025-01-03 05:00:00,2025-01-03t00:00:59.1,2025-01-0300:00:00\n"
    assert edges.hits(data, 0, len(data)) == [2, 43]  # not 05:00, nor a minute without a separator
