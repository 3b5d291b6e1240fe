"""Qlara's flags of ``msghistory-emulator`` and the :class:`~.emulator.QlaraEmulator` options they give."""

from __future__ import annotations

import argparse
from typing import Any

from .shapes import parse_shape_option


def parse_fail(text: str) -> bool | float:
    """``true``, ``false`` or a probability."""
    if text.lower() in ("true", "yes", "all"):
        return True
    if text.lower() in ("false", "no", "none"):
        return False
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad --fail-exports {text!r}; e.g. 0.1, true or false") from None


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--storage-port", type=int, default=8766, help="download port (0 = free port)")
    group.add_argument("--fail-exports", type=parse_fail, default=False, help="true, false or a probability")
    group.add_argument(
        "--shape", action="append", default=[], metavar="NAME=VALUE", help="response-shape variant"
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "storage_port": args.storage_port,
        "username": args.username,
        "password": args.password,
        "export_delay": args.export_delay,
        "link_ttl": 300.0 if args.link_ttl is None else args.link_ttl,
        "shape": dict(parse_shape_option(s) for s in args.shape),
        "fail_exports": args.fail_exports,
        "export_size_bytes": args.export_size,
    }
