"""`make demo [VENDOR=...]` end to end: it succeeds, the paths it prints still exist once it has finished,
and only the chosen vendor's DAG is parsed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, airflow_env

DAGS = {
    "qlara": "example_msghistory_daily_report",
    "8x8": "example_msghistory_8x8_sms_logs",
    "messangi": "example_msghistory_messangi_daily_message_log",
}


@pytest.mark.e2e
@pytest.mark.parametrize("vendor", sorted(DAGS))
def test_the_demo_runs_and_keeps_the_files_it_points_to(tmp_path: Path, vendor: str) -> None:
    # TMPDIR moves the throwaway home and the kept output under tmp_path.
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--vendor", vendor],
        env=airflow_env({"TMPDIR": str(tmp_path)}),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout

    log = Path(re.search(r"full Airflow log: (\S+)\)", out).group(1))
    output = Path(re.search(r"^  output\s+(\S+)$", out, re.MULTILINE).group(1))
    assert "Throwaway Airflow home deleted" in out
    assert not list(tmp_path.glob("msghistory-demo-*"))  # the home is gone...
    assert log.is_file() and tmp_path in log.parents  # ...the log it printed is not
    text = log.read_text()
    assert f"airflow dags test {DAGS[vendor]} " in text
    # Only the chosen vendor's DAG was parsed: no other example DAG (nor its import error) in the log.
    assert not [dag for dag in DAGS.values() if dag != DAGS[vendor] and dag in text]
    assert output.is_file() and tmp_path in output.parents
    # The day's folder is named after the day it holds (the run's data interval start), not the run date.
    assert "date=2025-01-01" in output.parts[-2]
    assert "(matches the file on disk and the emulator's" in out
