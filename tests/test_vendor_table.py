"""The README's vendor table says what the dialects declare (their ``caps``), row for row."""

from __future__ import annotations

import re
from pathlib import Path

from airflow_provider_msghistory.client.dialects import DIALECTS
from airflow_provider_msghistory.client.dialects.base import Capabilities, Dialect
from airflow_provider_msghistory.client.models import ExportKind

README = Path(__file__).resolve().parents[1] / "README.md"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _delivery(caps: Capabilities) -> str:
    if caps.delivery == "email":
        return "e-mail"
    return "download links" if caps.links_in_job else "download link"


def declared(dialect: type[Dialect]) -> list[str]:
    """The cells a row must hold, from the dialect's declarations (delivery: the README's text starts
    with it)."""
    caps = dialect.caps
    return [
        ", ".join(kind.value for kind in ExportKind if kind in caps.kinds),
        _delivery(caps),
        _yes(caps.cancel),
        _yes(caps.regenerate),
        _yes(dialect.message_list is not None),
        "; ".join(caps.auth_forms),
    ]


def readme_rows() -> dict[str, list[str]]:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- vendor-table:start -->", 1)[1].split("<!-- vendor-table:end -->", 1)[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[re.sub(r"`", "", cells[0])] = cells[1:]
    return rows


def test_every_vendor_has_a_row_and_only_they_do() -> None:
    assert set(readme_rows()) == set(DIALECTS)


def test_each_row_says_what_the_dialect_declares() -> None:
    rows = readme_rows()
    for name, dialect in DIALECTS.items():
        kinds, delivery, cancel, regenerate, message_list, auth = declared(dialect)
        cells = rows[name]
        assert cells[0] == kinds, name
        # "download link" must not pass for "download links": compare the leading words exactly.
        assert re.match(re.escape(delivery) + r"(\s|$)", cells[1]), (name, cells[1])
        assert cells[2:] == [cancel, regenerate, message_list, auth], name


def test_the_messangi_row_states_its_92_day_cap() -> None:
    caps = DIALECTS["messangi"].caps
    assert caps.max_window is not None
    assert f"{caps.max_window.days} days" in readme_rows()["messangi"][1]
