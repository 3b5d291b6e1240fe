"""Seeded fault schedules for 8x8 log export jobs: the Qlara suite's budgets and invariants, 8x8's wire.

8x8 has no export list, no separate link call and no regenerate: its endpoints are ``submit``, ``status``
(one job polled by id), ``cancel`` and ``download`` (several files per job, on the API's own host). Links
that expire cannot be renewed, so an expiry (between the tasks or mid-body) is a designed failure that
must say a new export is needed. Parts vary per schedule (1-4 files, gzip or zip ones), and a part with a
different header is a designed failure that must write nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .schedules import (
    DOWNLOAD_ATTEMPTS,
    EXPORT_TIMEOUT,
    MAX_BURST,
    SLOW_BEYOND_TIMEOUT,
    Schedule,
)

FATAL_CAUSES: dict[str, str] = {
    "export_failed": r"failed on the server",
    "submit_500": r"HTTP 500",
    "submit_reset": r"(?i)connection|reset|aborted",
    "submit_dead": r"HTTP 503|HTTP 429",
    "wait_dead": r"before the deadline",
    "download_dead": r"gave up after \d+ failed attempt",
    "links_expired": r"a new export is needed",
    "header_mismatch": r"different header.*nothing was written",
}
FATAL_PHASE = {
    "export_failed": "export", "submit_500": "export", "submit_reset": "export", "submit_dead": "export",
    "wait_dead": "export", "download_dead": "transfer", "links_expired": "transfer",
    "header_mismatch": "transfer",
}  # fmt: skip
_FATAL_WEIGHTS = {
    "export_failed": 2, "submit_500": 1, "submit_reset": 1, "submit_dead": 2, "wait_dead": 2,
    "download_dead": 2, "links_expired": 2, "header_mismatch": 2,
}  # fmt: skip
P_FATAL = 0.25
_TRANSIENT = ("500", "503", "429", "reset")
_DEAD_ACTIONS = {
    "submit": ("503", "429"),
    "status": ("500", "503", "reset"),
    "download": ("500", "503", "reset"),
}


@dataclass(frozen=True)
class Schedule8x8(Schedule):
    """A :class:`Schedule` plus the shape of the job's files.

    :param parts: files per job.
    :param gzip_parts: indexes of gzip parts.
    :param zip_parts: indexes of zip parts.
    :param header_mismatch: index of a part with a different header, if any.
    :param expire_during: the links expire while a part's body is in flight.
    """

    parts: int = 1
    gzip_parts: tuple[int, ...] = ()
    zip_parts: tuple[int, ...] = ()
    header_mismatch: int | None = None
    expire_during: bool = False

    def describe(self) -> str:
        shape = f"parts={self.parts} gzip={list(self.gzip_parts)} zip={list(self.zip_parts)}"
        if self.header_mismatch is not None:
            shape += f" header_mismatch={self.header_mismatch}"
        return f"8x8 {super().describe()} {shape}" + (" expire_during" if self.expire_during else "")


def _slow(rng: random.Random) -> str:
    return f"slow:{rng.uniform(0.05, 0.25):.2f}"


def _bursts(rng: random.Random, max_bursts: int) -> list[str]:
    """Bursts of 1..MAX_BURST transient failures of one kind, or a slow answer, separated by "ok"."""
    script: list[str] = []
    for _ in range(rng.randint(0, max_bursts)):
        if script:
            script += ["ok"] * rng.randint(1, 2)
        if rng.random() < 0.25:
            script.append(_slow(rng))
        else:
            script += [rng.choice(_TRANSIENT)] * rng.randint(1, MAX_BURST)
    return script


def _download_script(rng: random.Random, expire_during: bool) -> list[str]:
    """Download faults that cost fewer failed attempts than DOWNLOAD_ATTEMPTS (a truncation costs one;
    5xx/reset bursts are absorbed by the client's own retries)."""
    budget = DOWNLOAD_ATTEMPTS - 1
    script: list[str] = []
    for _ in range(rng.randint(0, 3)):
        if script:
            script.append("ok")
        roll = rng.random()
        if roll < 0.5 and budget > 0:
            script.append(f"truncate:{rng.randint(1, 20_000)}")
            budget -= 1
        elif roll < 0.7:
            script.append(_slow(rng))
        else:
            script += [rng.choice(_TRANSIENT)] * rng.randint(1, MAX_BURST)
    if expire_during:
        # First, and within the first KB: every part is larger, so the expiry surely bites.
        script.insert(0, f"expire:{rng.randint(1, 1_000)}")
    return script


def draw(seed: int) -> Schedule8x8:
    """The 8x8 schedule of ``seed`` (deterministic; its own stream, not the Qlara suite's)."""
    rng = random.Random(f"8x8:{seed}")
    day = rng.randint(1, 28)
    fatal = rng.choices(list(_FATAL_WEIGHTS), weights=list(_FATAL_WEIGHTS.values()))[0]
    if rng.random() >= P_FATAL:
        fatal = None
    parts = rng.randint(1, 4)
    compressed = [i for i in range(parts) if rng.random() < 0.4]
    zip_parts = tuple(i for i in compressed if rng.random() < 0.4)
    gzip_parts = tuple(i for i in compressed if i not in zip_parts)

    submit: list[str] = []
    if rng.random() < 0.4:
        submit += [rng.choice(("503", "429"))] * rng.randint(1, MAX_BURST)  # refused: safe to resend
    if rng.random() < 0.2:
        submit.append(_slow(rng))
    expire_during = fatal == "links_expired" and rng.random() < 0.5
    script = {
        "submit": submit,
        "status": _bursts(rng, 3),
        "download": _download_script(rng, expire_during),
    }
    if rng.random() < 0.02:  # a status answer slower than the read timeout: the client gives up and retries
        script["status"] = [f"slow:{SLOW_BEYOND_TIMEOUT:.2f}", "ok", *script["status"]]
    restart_export = rng.uniform(0.005, 0.09) if rng.random() < 0.4 else None

    dead: tuple[str, str] | None = None
    export_timeout = EXPORT_TIMEOUT
    header_mismatch = None
    expire_before = fatal == "links_expired" and not expire_during
    if fatal == "export_failed":
        script["submit"] = [a for a in submit if not a.startswith("slow")] + ["fail"]
    elif fatal in ("submit_500", "submit_reset"):
        script["submit"] = [a for a in submit if not a.startswith("slow")] + [fatal.split("_")[1]]
    elif fatal == "header_mismatch":
        parts = max(parts, 2)
        header_mismatch = rng.randint(1, parts - 1)
    elif fatal in ("submit_dead", "wait_dead", "download_dead"):
        endpoint = {"submit_dead": "submit", "wait_dead": "status", "download_dead": "download"}[fatal]
        dead = (endpoint, rng.choice(_DEAD_ACTIONS[endpoint]))
        script.pop(endpoint)  # dead from its first request
        if fatal == "wait_dead":
            export_timeout = round(rng.uniform(1.5, 2.5), 2)  # long enough for the back-off to show
    return Schedule8x8(
        seed=seed,
        day=day,
        script={endpoint: tuple(actions) for endpoint, actions in script.items() if actions},
        dead=dead,
        expire_before_transfer=expire_before,
        restart_export_after=restart_export,
        export_timeout=export_timeout,
        fatal=fatal,
        parts=parts,
        gzip_parts=gzip_parts,
        zip_parts=zip_parts,
        header_mismatch=header_mismatch,
        expire_during=expire_during,
    )
