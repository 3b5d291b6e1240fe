"""`make demo` end to end: it succeeds, and the paths it prints still exist once it has finished."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, airflow_env


@pytest.mark.e2e
def test_the_demo_runs_and_keeps_the_files_it_points_to(tmp_path: Path) -> None:
    # TMPDIR moves the throwaway home and the kept output under tmp_path.
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py")],
        env=airflow_env({"TMPDIR": str(tmp_path)}),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout

    log = Path(re.search(r"full Airflow log: (\S+)\)", out).group(1))
    csv = Path(re.search(r"^  output\s+(\S+)$", out, re.MULTILINE).group(1))
    assert "Throwaway Airflow home deleted" in out
    assert not list(tmp_path.glob("msghistory-demo-*"))  # the home is gone...
    assert log.is_file() and tmp_path in log.parents  # ...the log it printed is not
    assert "airflow dags test example_msghistory_daily_report" in log.read_text()
    assert csv.is_file() and tmp_path in csv.parents
