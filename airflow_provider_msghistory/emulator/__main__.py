"""CLI: ``msghistory-emulator`` / ``python -m airflow_provider_msghistory.emulator``.

Prints the base URL and the ``AIRFLOW_CONN_MSGHISTORY_DEFAULT`` value, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .server import Emulator
from .shapes import parse_shape_option

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


def parse_fail(text: str) -> bool | float:
    if text.lower() in ("true", "yes", "all"):
        return True
    if text.lower() in ("false", "no", "none"):
        return False
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad --fail-exports {text!r}; e.g. 0.1, true or false") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="msghistory-emulator", description="Qlara Partner Gateway emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="API port (0 = free port)")
    p.add_argument("--storage-port", type=int, default=8766, help="download port (0 = free port)")
    p.add_argument("--api-key", default="demo-key")
    p.add_argument("--username", default="demo", help="Basic-auth user")
    p.add_argument("--password", default="demo-password", help="Basic-auth password")
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default="2025-01-01T00:00:00Z", help="first day of the dataset")
    p.add_argument("--days", type=int, default=31)
    p.add_argument("--export-delay", type=float, default=3.0, help="seconds PENDING -> COMPLETED")
    p.add_argument("--link-ttl", type=float, default=300.0, help="seconds a download link stays valid")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to each API response")
    p.add_argument("--rate-limit", type=parse_rate_limit, default=(1000, 50), help="PER_MIN/BURST or off")
    p.add_argument("--fail-exports", type=parse_fail, default=False, help="true, false or a probability")
    p.add_argument(
        "--export-size", type=parse_size, default=None, help="synthetic history CSV size, e.g. 1GiB"
    )
    p.add_argument(
        "--shape", action="append", default=[], metavar="NAME=VALUE", help="response-shape variant"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        shape: dict[str, Any] = dict(parse_shape_option(s) for s in args.shape)
        emulator = Emulator(
            host=args.host,
            port=args.port,
            storage_port=args.storage_port,
            api_key=args.api_key,
            username=args.username,
            password=args.password,
            messages=args.messages,
            seed=args.seed,
            start=args.start,
            days=args.days,
            export_delay=args.export_delay,
            link_ttl=args.link_ttl,
            latency=args.latency,
            rate_limit=args.rate_limit,
            shape=shape,
            fail_exports=args.fail_exports,
            export_size_bytes=args.export_size,
        )
    except ValueError as exc:
        print(f"msghistory-emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with emulator:
        limit = "off" if args.rate_limit is None else "{}/min, burst {}/s".format(*args.rate_limit)
        print(f"Qlara emulator base URL: {emulator.base_url}")
        print(f"Storage (downloads):     {emulator.storage_base_url}")
        print(
            f"Messages: {args.messages} (seed {args.seed}); export delay {args.export_delay}s; "
            f"link TTL {args.link_ttl}s; rate limit {limit}"
        )
        print(
            f"export AIRFLOW_CONN_MSGHISTORY_DEFAULT={shlex.quote(emulator.airflow_conn_json())}", flush=True
        )
        while not stop.wait(0.5):
            pass
    print("Qlara emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
