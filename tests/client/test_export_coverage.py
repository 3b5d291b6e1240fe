"""The message-history export holds only messages sent through the API; the message list holds them all.

Checked over the wire against the emulator with the demo's dataset, and against the figure the README
quotes, so the documented numbers stay the ones a user sees.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_msghistory.client.api import ExportClient
from airflow_provider_msghistory.client.config import ClientConfig

README = Path(__file__).resolve().parents[2] / "README.md"
HALF_OPEN_DAY = ("2025-01-01T00:00:00.000+00:00", "2025-01-02T00:00:00.000+00:00")  # what exports take
CHANNELS = ("SMS", "RCS", "WHATSAPP")


def test_the_export_holds_only_api_messages_as_the_readme_says(
    msghistory_emulator_factory: Callable[..., Any],
) -> None:
    emulator = msghistory_emulator_factory(messages=50_000, seed=1)  # the demo's dataset
    with ExportClient(ClientConfig(base_url=emulator.base_url, api_key=emulator.api_key)) as client:
        export_id = client.submit_message_history_export(*HALF_OPEN_DAY)
        emulator.complete_export(export_id)
        with client.open_download(client.get_download_link(export_id).url) as response:
            body = b"".join(response.iter_bytes(1 << 16))
        pages = [p for ch in CHANNELS for p in client.iter_history_pages(ch, *HALF_OPEN_DAY, page_size=100)]
        listed = [m for page in pages for m in page.messages]

    exported = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert 0 < len(exported) < len(listed)
    # The export is exactly the listed messages that were sent through the API (they carry the customer's
    # own message id); what the list adds came from elsewhere (the console, campaigns).
    api_sent = {m["customerMessageId"] for m in listed if m.get("customerMessageId")}
    assert {row["customerMessageId"] for row in exported} == api_sent
    assert len(api_sent) == len(exported)

    figure = re.search(
        r"the export holds ([\d,]+) of the ([\d,]+) messages the message list", README.read_text()
    )
    assert figure is not None
    assert (figure.group(1), figure.group(2)) == (f"{len(exported):,}", f"{len(listed):,}")
