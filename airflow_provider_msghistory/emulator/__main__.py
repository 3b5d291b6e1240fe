"""CLI: ``msghistory-emulator [--vendor qlara|8x8|messangi]`` (or ``python -m ...emulator``).

Prints the base URL, the seeded data's date range and the ``AIRFLOW_CONN_<ID>`` line (each vendor its own
default port and connection id, so all run side by side), then serves until SIGINT/SIGTERM. The common
flags are here; each vendor's defaults come from its ``VENDOR`` declaration and its own flags and options
from its ``cli`` module (:class:`~.spec.VendorSpec`).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

from .factory import DEFAULT_VENDOR, SPECS, VENDORS, create_emulator, emulator_class, vendor_spec
from .requestlog import format_line

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 10**6, "mb": 10**6, "mib": 1024**2,
          "g": 10**9, "gb": 10**9, "gib": 1024**3}  # fmt: skip


def parse_size(text: str) -> int:
    """``1GiB``, ``500MB``, ``4096`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"bad size {text!r}; e.g. 1GiB, 500MB or 1073741824")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_rate_limit(text: str) -> tuple[int, int] | None:
    """``off`` or ``PER_MINUTE/BURST`` (e.g. ``1000/50``)."""
    if text.lower() in ("off", "none", "0"):
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"bad rate limit {text!r}; e.g. 1000/50 or off")
    return int(match.group(1)), int(match.group(2))


VENDOR_DEFAULT: Any = object()  # --rate-limit not given: the vendor's documented limit
DEFAULT_START = "2025-01-01T00:00:00Z"


def data_range(vendor: str, start: str, days: int | None) -> str:
    """``2025-01-01 .. 2025-01-31 UTC (31 days)``: the days the seeded dataset covers."""
    if days is None:
        days = int(inspect.signature(emulator_class(vendor)).parameters["days"].default)
    first = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(timezone.utc)
    last = first + timedelta(days=days) - timedelta(microseconds=1)
    return f"{first:%Y-%m-%d} .. {last:%Y-%m-%d} UTC ({days} days)"


def _vendor_epilog() -> str:
    rows = [
        f"  {name:<9} port {spec.port}, connection {spec.conn_id}, "
        f"data {data_range(name, DEFAULT_START, None)}"
        for name, spec in SPECS.items()
    ]
    return (
        "defaults per vendor (windows outside the data export nothing):\n" + "\n".join(rows) + "\n\n"
        "The command is installed in the bin/ of the venv holding the package (in a clone: "
        ".venv-<airflow version>/bin/msghistory-emulator)."
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="msghistory-emulator",
        description="CPaaS vendor API emulator",
        epilog=_vendor_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--vendor", choices=VENDORS, default=DEFAULT_VENDOR)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="API port (0 = free port; default: per vendor)")
    p.add_argument(
        "--conn-id", default=None, help="id in the printed AIRFLOW_CONN_ line (default: per vendor)"
    )
    p.add_argument("--api-key", default="demo-key")
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default=DEFAULT_START, help="first day of the dataset")
    p.add_argument("--days", type=int, default=None, help="days of data (default: per vendor)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to each API response")
    p.add_argument(
        "--clock",
        default=None,
        help="read the data as of this instant, e.g. 2025-01-05T00:05:00Z (default: the wall clock)",
    )
    p.add_argument(
        "--rate-limit",
        type=parse_rate_limit,
        default=VENDOR_DEFAULT,
        help="PER_MIN/BURST or off (default: the vendor's documented limit)",
    )
    p.add_argument(
        "--log-requests", action="store_true", help="print one line per request (no headers, no secrets)"
    )
    p.add_argument("--export-delay", type=float, default=3.0, help="seconds until an export job is done")
    p.add_argument("--link-ttl", type=float, default=None, help="seconds a download link stays valid")
    p.add_argument("--to-exclusive", action="store_true", help="8x8, Messangi: `to` is exclusive")
    p.add_argument("--username", default="demo", help="Basic-auth user (Qlara), login user (Messangi)")
    p.add_argument("--password", default="demo-password", help="its password")
    p.add_argument(
        "--export-size", type=parse_size, default=None, help="synthetic bytes per export job, e.g. 1GiB"
    )
    for vendor in VENDORS:
        vendor_cli(vendor).add_arguments(p.add_argument_group(vendor))
    return p


def vendor_cli(vendor: str) -> ModuleType:
    """The vendor's ``cli`` module (its flags and options)."""
    return importlib.import_module(f"{vendor_spec(vendor).package}.cli")


def vendor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~.factory.create_emulator` options of ``args.vendor``: the common ones, then its own."""
    spec = vendor_spec(args.vendor)
    common = {
        "host": args.host, "port": spec.port if args.port is None else args.port,
        "api_key": args.api_key, "messages": args.messages,
        "seed": args.seed, "start": args.start, "latency": args.latency, "clock": args.clock,
        **({} if args.days is None else {"days": args.days}),
        "rate_limit": spec.rate_limit if args.rate_limit is VENDOR_DEFAULT else args.rate_limit,
    }  # fmt: skip
    return {**common, **vendor_cli(args.vendor).options(args)}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        emulator = create_emulator(args.vendor, **vendor_options(args))
    except ValueError as exc:
        print(f"msghistory-emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    spec = vendor_spec(args.vendor)
    name = spec.title
    if args.log_requests:
        emulator.on_request(lambda entry: print(format_line(entry), flush=True))
    with emulator:
        limit = "off" if emulator.rate_limit is None else "{}/min, burst {}/s".format(*emulator.rate_limit)
        print(f"{name} emulator base URL: {emulator.base_url}")
        storage = spec.storage_note or emulator.storage_base_url
        print(f"Storage (downloads):     {storage}")
        span = data_range(args.vendor, args.start, args.days)
        print(f"Messages: {args.messages} (seed {args.seed}) over {span}; rate limit {limit}")
        conn_id = args.conn_id or spec.conn_id
        variable = "AIRFLOW_CONN_" + re.sub(r"[^A-Za-z0-9]", "_", conn_id).upper()
        print(f"export {variable}={shlex.quote(emulator.airflow_conn_json())}", flush=True)
        while not stop.wait(0.5):
            pass
    print(f"{name} emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
