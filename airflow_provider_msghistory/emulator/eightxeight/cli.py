"""8x8's flags of ``msghistory-emulator`` and the :class:`~.emulator.EightByEightEmulator` options they
give."""

from __future__ import annotations

import argparse
from typing import Any


def parse_indexes(text: str) -> bool | list[int]:
    """``all``, ``none`` or comma-separated 0-based part indexes (``1,2``)."""
    if text.lower() in ("all", "true"):
        return True
    if text.lower() in ("none", "false", ""):
        return False
    try:
        return [int(i) for i in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad part list {text!r}; e.g. all, none or 0,2") from None


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--sub-account-id", default="acme-sms_01")
    group.add_argument("--product", choices=("sms", "chatapps"), default="sms", help="SMS or Chat Apps logs")
    group.add_argument("--parts", type=int, default=1, help="files per job")
    group.add_argument("--gzip-parts", type=parse_indexes, default=False, help="all, none or 0,2")
    group.add_argument("--zip-parts", type=parse_indexes, default=False, help="all, none or 0,2")
    group.add_argument("--job-outcome", choices=("succeeded", "empty", "failed", "error"), default=None)


def options(args: argparse.Namespace) -> dict[str, Any]:
    link_ttl = {} if args.link_ttl is None else {"link_ttl": args.link_ttl}
    return {
        **link_ttl,
        "sub_account_id": args.sub_account_id, "product": args.product,
        "export_delay": args.export_delay, "parts": args.parts,
        "gzip_parts": args.gzip_parts, "zip_parts": args.zip_parts, "job_outcome": args.job_outcome,
        "to_inclusive": not args.to_exclusive, "export_size_bytes": args.export_size,
    }  # fmt: skip
