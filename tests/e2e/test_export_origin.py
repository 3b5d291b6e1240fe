"""A transfer on another connection than its export's fails at its start, naming both (a real DAG run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_msghistory.emulator import Emulator

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.mark.e2e
def test_a_transfer_on_another_connection_is_told_where_the_export_was_made(
    run_dag, msghistory_emulator: Emulator, tmp_path: Path
) -> None:
    dest = tmp_path / "messages.csv"
    result = run_dag(
        "msghistory_test_other_connection",
        conn_json=msghistory_emulator.airflow_conn_json(),
        conf={"dest": str(dest)},
        env={
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW_CONN_MSGHISTORY_OTHER": msghistory_emulator.airflow_conn_json(),
        },
        check=False,
    )

    assert not result.succeeded
    xcom = result.xcom("export")
    made = (xcom["msghistory_conn_id"], xcom["vendor"], xcom["status"])
    assert made == ("msghistory_default", "qlara", "COMPLETED")
    assert (
        "export_id: this export id was made on connection 'msghistory_default' (qlara) by task 'export', but "
        "this task reads connection 'msghistory_other' (qlara), where it means nothing; pass "
        "msghistory_conn_id='msghistory_default'"
    ) in result.output
    assert not dest.exists() and not list(tmp_path.iterdir())
    downloads = [r for r in msghistory_emulator.request_log if r.server == "storage"]
    assert downloads == []  # refused before any request of its own
