"""The new-vendor checklist holds: a vendor is its own files. A throwaway vendor, added to a copy of the
package as a dialect module and an emulator package and nothing else, is in the registry, the connection
form, the emulator factory and CLI, and its connection test passes against its emulator over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_provider_msghistory"

# The new vendor speaks Qlara's wire (the test is about where a vendor lives, not about a new API).
FILES = {
    "client/dialects/acme.py": '''
        from airflow_provider_msghistory.client.dialects.qlara import QlaraDialect
        from airflow_provider_msghistory.client.options import ConnectionOption


        class AcmeDialect(QlaraDialect):
            name = "acme"
            connection_options = (ConnectionOption("acme_region", "Acme region", description="eu or us."),)


        DIALECT = AcmeDialect
    ''',
    "emulator/acme/__init__.py": '''
        from ..spec import VendorSpec

        VENDOR = VendorSpec(
            name="acme", title="Acme", package=__name__, emulator="emulator:AcmeEmulator",
            port=8799, conn_id="msghistory_acme",
        )
    ''',
    "emulator/acme/emulator.py": '''
        from ..qlara.emulator import QlaraEmulator


        class AcmeEmulator(QlaraEmulator):
            vendor = "acme"
    ''',
    "emulator/acme/cli.py": '''
        def add_arguments(group):
            group.add_argument("--acme-storage-port", type=int, default=0, help="the acme download port")


        def options(args):
            return {"storage_port": args.acme_storage_port}
    ''',
}

CHECKS = '''
import json, os
import airflow_provider_msghistory
from airflow_provider_msghistory.client.dialects import DIALECTS, connection_options
from airflow_provider_msghistory.emulator import VENDORS, create_emulator
from airflow_provider_msghistory.emulator.__main__ import build_parser, vendor_options
from airflow_provider_msghistory.hooks.connection import provider_connection_metadata
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

def show(*what):
    print("CHECK", *what, flush=True)


where = airflow_provider_msghistory.__file__
assert where.startswith(os.environ["COPY"]), where
show("dialects", list(DIALECTS))
options = {option.name: option for option in connection_options()}
show("vendor choices", list(options["vendor"].choices))
show("form has acme_region", "acme_region" in provider_connection_metadata()["conn-fields"])
show("emulators", list(VENDORS))
parser = build_parser()
show("cli help has acme", "--acme-storage-port" in parser.format_help(), "port 8799" in parser.format_help())
with create_emulator(**vendor_options(parser.parse_args(["--vendor", "acme", "--port", "0"]))) as emu:
    conn = json.loads(emu.airflow_conn_json())
    conn["extra"] = {"vendor": "acme", "acme_region": "eu"}
    os.environ["AIRFLOW_CONN_ACME"] = json.dumps(conn)
    show("test_connection", MsgHistoryHook(msghistory_conn_id="acme").test_connection()[0])
'''


def test_a_vendor_added_as_its_own_files_is_everywhere(tmp_path: Path) -> None:
    copy = tmp_path / "airflow_provider_msghistory"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in FILES.items():
        (copy / name).parent.mkdir(exist_ok=True)
        (copy / name).write_text(textwrap.dedent(text).lstrip())
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COPY": str(copy)}
    proc = subprocess.run(
        [sys.executable, "-c", CHECKS], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = [line.removeprefix("CHECK ") for line in proc.stdout.splitlines() if line.startswith("CHECK ")]
    assert shown == [
        "dialects ['qlara', '8x8', 'acme', 'messangi']",  # the default vendor first, then by name
        "vendor choices ['qlara', '8x8', 'acme', 'messangi']",
        "form has acme_region True",
        "emulators ['qlara', '8x8', 'acme', 'messangi']",
        "cli help has acme True True",
        "test_connection True",
    ]


def test_the_package_as_shipped_has_the_three_vendors_in_their_order() -> None:
    from airflow_provider_msghistory.client.dialects import DIALECTS
    from airflow_provider_msghistory.emulator import VENDORS

    assert list(DIALECTS) == list(VENDORS) == ["qlara", "8x8", "messangi"]


def test_a_module_that_declares_no_vendor_is_named_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_msghistory.client.dialects import discover_dialects
    from airflow_provider_msghistory.emulator.factory import discover_vendors

    for package, module in (("stray_dialects", "helpers.py"), ("stray_emulators", "helpers/__init__.py")):
        (tmp_path / package / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / module).write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match=r"stray_dialects\.helpers declares no DIALECT.*leading underscore"):
        discover_dialects("stray_dialects")
    with pytest.raises(TypeError, match=r"stray_emulators\.helpers declares no VENDOR"):
        discover_vendors("stray_emulators")
