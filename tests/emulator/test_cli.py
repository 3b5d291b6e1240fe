"""The CLI starts a real server, prints the URL and the Airflow connection, and stops on SIGTERM."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys

import requests

from airflow_provider_msghistory.emulator.__main__ import parse_rate_limit, parse_size


def test_cli_prints_base_url_and_connection_then_serves_until_sigterm() -> None:
    cmd = [sys.executable, "-m", "airflow_provider_msghistory.emulator", "--port", "0", "--storage-port", "0",
           "--messages", "200", "--api-key", "cli-key", "--export-delay", "0",
           "--rate-limit", "100/10"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        base_url = lines[0].split()[-1]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api")
        conn_line = lines[3].strip()
        assert conn_line.startswith("export AIRFLOW_CONN_MSGHISTORY_DEFAULT=")
        conn = json.loads(shlex.split(conn_line.split("=", 1)[1])[0])
        assert conn == {"conn_type": "msghistory", "host": base_url, "password": "cli-key"}
        response = requests.get(
            base_url + "/partner-gateway/v1/exports", headers={"X-Api-Key": "cli-key"}, timeout=5
        )
        assert response.status_code == 200 and response.headers["X-RateLimit-Limit"] == "100"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_cli_rejects_bad_options() -> None:
    cmd = [sys.executable, "-m", "airflow_provider_msghistory.emulator", "--port", "0", "--storage-port", "0",
           "--shape", "id_field=identifier"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "id_field" in proc.stderr


def test_size_and_rate_limit_parsing() -> None:
    assert parse_size("1GiB") == 1 << 30 and parse_size("500MB") == 500_000_000 and parse_size("4096") == 4096
    assert parse_rate_limit("off") is None and parse_rate_limit("1000/50") == (1000, 50)


def test_cli_serves_8x8_with_its_connection_extras() -> None:
    cmd = [sys.executable, "-m", "airflow_provider_msghistory.emulator", "--vendor", "8x8", "--port", "0",
           "--messages", "50", "--api-key", "cli-key", "--parts", "2", "--gzip-parts", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("8x8 emulator base URL: http://127.0.0.1:")
        assert "1800/s" in lines[2]  # the documented per-sub-account ceiling is on by default
        conn = json.loads(shlex.split(lines[3].strip().split("=", 1)[1])[0])
        assert conn["extra"] == {"vendor": "8x8", "sub_account_id": "acme-sms_01"}
        exports = conn["host"] + "/api/v1/subaccounts/acme-sms_01/messages/exports"
        response = requests.post(exports, json={}, headers={"Authorization": "Bearer cli-key"}, timeout=5)
        assert response.status_code == 202 and len(response.json()["jobId"]) == 64
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "8x8 emulator stopped" in out
