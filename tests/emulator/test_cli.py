"""The CLI starts a real server, prints the URL and the Airflow connection, and stops on SIGTERM."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import requests

from airflow_provider_msghistory.emulator import create_emulator
from airflow_provider_msghistory.emulator.__main__ import (
    build_parser,
    parse_rate_limit,
    parse_size,
    vendor_options,
)
from airflow_provider_msghistory.emulator.factory import SPECS, VENDORS


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


def test_each_vendor_has_its_own_default_port_and_connection_id() -> None:
    parser = build_parser()
    ports = {vendor: vendor_options(parser.parse_args(["--vendor", vendor]))["port"] for vendor in VENDORS}
    assert len(set(ports.values())) == len(VENDORS) and 8766 not in ports.values()  # Qlara's download port
    assert len({spec.conn_id for spec in SPECS.values()}) == len(VENDORS)
    assert vendor_options(parser.parse_args(["--vendor", "8x8", "--port", "0"]))["port"] == 0


def test_help_gives_each_vendors_defaults_data_range_and_where_the_command_lives() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_provider_msghistory.emulator", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "port 8767, connection msghistory_8x8, data 2025-01-01 .. 2025-01-31 UTC (31 days)" in proc.stdout
    assert "connection msghistory_messangi, data 2025-01-01 .. 2025-07-19 UTC (200 days)" in proc.stdout
    assert ".venv-<airflow version>/bin/msghistory-emulator" in proc.stdout


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
        assert "2025-01-01 .. 2025-01-31 UTC (31 days)" in lines[2]
        # Its own connection id (the 8x8 example DAG's), so it never clashes with a Qlara emulator's.
        assert lines[3].startswith("export AIRFLOW_CONN_MSGHISTORY_8X8=")
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


def test_log_requests_prints_one_line_per_request_without_secrets() -> None:
    cmd = [sys.executable, "-m", "airflow_provider_msghistory.emulator", "--port", "0", "--storage-port", "0",
           "--messages", "50", "--api-key", "cli-secret-key", "--export-delay", "0",
           "--log-requests"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(4)]
        base_url = banner[0].split()[-1]
        api = base_url + "/partner-gateway/v1"
        key = {"X-Api-Key": "cli-secret-key"}
        body = {"startDateTime": "2025-01-02T00:00:00Z", "endDateTime": "2025-01-02T23:59:59.999Z"}
        export_id = requests.post(api + "/messages/history/export", json=body, headers=key, timeout=5).json()
        url = requests.get(f"{api}/exports/{export_id['exportId']}", headers=key, timeout=5).json()[
            "downloadUrl"
        ]
        assert requests.get(url, timeout=5).status_code == 200
        requests.get(api + "/exports", headers={"X-Api-Key": "wrong"}, params={"page": "0"}, timeout=5)
        lines = [proc.stdout.readline().strip() for _ in range(4)]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert " api POST /api/partner-gateway/v1/messages/history/export -> 202" in lines[0]
    assert " api GET /api/partner-gateway/v1/exports/exp_" in lines[1] and lines[1].endswith("-> 200")
    assert " storage GET /exports/" in lines[2] and "signature=***" in lines[2] and "(no auth)" in lines[2]
    assert lines[3].endswith("/exports?page=0 -> 401")
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    printed = "\n".join(lines) + out
    assert "cli-secret-key" not in printed and "wrong" not in printed and signature not in printed


def test_export_ids_do_not_repeat_after_a_restart_with_the_same_seed() -> None:
    ids, files = [], []
    for _ in range(2):
        with create_emulator(seed=7, messages=100, export_delay=0) as emu:
            export_id = emu.create_export(startDateTime="2025-01-02T00:00:00Z")
            ids.append(export_id)
            files.append(emu.export_csv(export_id))
        with create_emulator(seed=7, messages=100, export_delay=0, shape={"id_type": "int"}) as emu:
            ids.append(emu.create_export())
    assert len(set(ids)) == 4  # unique ids across processes and restarts ...
    assert files[0] == files[1]  # ... while the data stays seeded


def test_cli_serves_messangi_with_a_login() -> None:
    cmd = [sys.executable, "-m", "airflow_provider_msghistory.emulator", "--vendor", "messangi",
           "--port", "0", "--messages", "100", "--key-ttl", "60"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("Messangi emulator base URL: http://127.0.0.1:") and "e-mailed" in lines[1]
        conn = json.loads(shlex.split(lines[3].strip().split("=", 1)[1])[0])
        assert conn["extra"] == {"vendor": "messangi"}
        login = requests.post(
            conn["host"] + "/kingslanding/login",
            json={"username": "demo", "password": "demo-password"},
            timeout=5,
        )
        params = {"from": "2025-01-01T00:00:00.000Z", "to": "2025-02-01T00:00:00.000Z"}
        headers = {"Authorization": login.headers["authorization"]}
        assert requests.get(conn["host"] + "/v3/mlog", params=params, headers=headers, timeout=5).ok
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Messangi emulator stopped" in out


def test_each_vendor_answers_under_its_own_server_name() -> None:
    for vendor in VENDORS:
        with create_emulator(vendor, rate_limit=None) as emu:
            response = requests.get(emu.origin + "/no-such-path", timeout=10)
        assert response.headers["Server"] == f"{vendor}-emulator"
