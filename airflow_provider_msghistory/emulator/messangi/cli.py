"""Messangi's flags of ``msghistory-emulator`` and the :class:`~.emulator.MessangiEmulator` options they
give."""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--key-ttl", type=float, default=86_400.0, help="seconds a login key lives")
    group.add_argument(
        "--report-max-records", type=int, default=1_000_000, help="larger reports get the too-big error"
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "username": args.username, "password": args.password, "key_ttl": args.key_ttl,
        "report_max_records": args.report_max_records, "to_inclusive": not args.to_exclusive,
    }  # fmt: skip
