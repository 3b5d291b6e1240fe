"""Seeded fault schedules: one seed -> one deterministic plan of faults for one pipeline run.

A schedule scripts fault queues per emulator endpoint (consumed by successive requests to it), may make an
endpoint dead (every request after the script fails), expire the download link between the two tasks and
restart the waiting trigger. Schedules are either *recoverable* (every burst fits inside the configured
retry budgets, so the pipeline must deliver the exact CSV) or *fatal* by design (``fatal`` names the cause
the task's error must name).
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field

# The budgets the pipeline is configured with (connection extras and operator arguments).
CLIENT_MAX_ATTEMPTS = 4  # attempts per API call, the first included
CLIENT_MAX_RETRY_TIME = 5.0
READ_TIMEOUT = 2.0
POLL_INTERVAL = 0.05
EXPORT_TIMEOUT = 10.0
TRANSFER_TIMEOUT = 10.0
DOWNLOAD_ATTEMPTS = 5  # failed download attempts the transfer allows
MAX_REGENERATIONS = 3

# Longest run of failures a recoverable script puts in a row: one API call always outlasts it.
MAX_BURST = CLIENT_MAX_ATTEMPTS - 1
SLOW_BEYOND_TIMEOUT = READ_TIMEOUT + 0.3

DEFAULT_SEEDS = tuple(range(1, 201))
SEEDS_ENV = "MSGHISTORY_RELIABILITY_SEEDS"

# Fault kinds of the summary line, in its order.
KINDS = (
    "500", "503", "429", "reset", "slow", "truncate",
    "expire_before", "expire_during", "export_failed", "restart",
)  # fmt: skip

# Designed causes of failure -> what the task's error must say.
FATAL_CAUSES: dict[str, str] = {
    "export_failed": r"failed on the server",
    "submit_500": r"HTTP 500",
    "submit_reset": r"(?i)connection|reset|aborted",
    "submit_timeout": r"(?i)timed? ?out",
    "submit_dead": r"HTTP 503|HTTP 429",
    "wait_dead": r"before the deadline",
    "link_dead": r"(?i)HTTP 50[03]|connection|reset|aborted",
    "storage_dead": r"gave up after \d+ failed attempt",
    "expired_too_often": r"(?i)expired",
}
# Where each designed failure must surface.
FATAL_PHASE = {
    "export_failed": "export", "submit_500": "export", "submit_reset": "export", "submit_timeout": "export",
    "submit_dead": "export", "wait_dead": "export",
    "link_dead": "transfer", "storage_dead": "transfer", "expired_too_often": "transfer",
}  # fmt: skip
_FATAL_WEIGHTS = {
    "export_failed": 3, "submit_500": 1, "submit_reset": 1, "submit_timeout": 1, "submit_dead": 2,
    "wait_dead": 2, "link_dead": 2, "storage_dead": 2, "expired_too_often": 2,
}  # fmt: skip
P_FATAL = 0.25
_TRANSIENT = ("500", "503", "429", "reset")
_DEAD_ACTIONS = {
    "submit": ("503", "429"),
    "list": ("500", "503", "reset"),
    "link": ("500", "503", "reset"),
    "download": ("500", "503", "reset"),
    "expire": ("expire",),
}


@dataclass(frozen=True)
class Schedule:
    """The faults of one run.

    :param seed: the seed it was drawn from (replay it with ``--reliability-seed``).
    :param day: day of January 2025 the exported window covers.
    :param script: endpoint -> actions queued in the emulator (``Faults.script``).
    :param dead: ``(endpoint, action)`` served to every request of ``endpoint`` once its script is used up.
    :param expire_before_transfer: the link expires between the export task and the transfer task.
    :param restart_export_after: seconds into the export trigger's run to kill it and rebuild it.
    :param restart_transfer_after: the same for the transfer's trigger (when it defers).
    :param export_timeout: the export operator's ``timeout``.
    :param fatal: designed cause of failure (a key of ``FATAL_CAUSES``), ``None``: it must succeed.
    """

    seed: int
    day: int
    script: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dead: tuple[str, str] | None = None
    expire_before_transfer: bool = False
    restart_export_after: float | None = None
    restart_transfer_after: float | None = None
    export_timeout: float = EXPORT_TIMEOUT
    fatal: str | None = None

    def describe(self) -> str:
        """One line that says everything (printed with a failing seed)."""
        parts = [f"seed={self.seed}", f"day={self.day}", f"fatal={self.fatal}"]
        parts += [f"{endpoint}={list(actions)}" for endpoint, actions in sorted(self.script.items())]
        if self.dead:
            parts.append(f"dead={self.dead[0]}:{self.dead[1]}")
        if self.expire_before_transfer:
            parts.append("expire_before_transfer")
        if self.restart_export_after is not None:
            parts.append(f"restart_export_after={self.restart_export_after:.3f}s")
        if self.restart_transfer_after is not None:
            parts.append(f"restart_transfer_after={self.restart_transfer_after:.3f}s")
        if self.export_timeout != EXPORT_TIMEOUT:
            parts.append(f"export_timeout={self.export_timeout:.2f}s")
        return " ".join(parts)

    @property
    def longest_slow(self) -> float:
        """The longest scripted delay (its request may still be in flight when the run ends)."""
        actions = [action for actions in self.script.values() for action in actions]
        delays = [float(action.split(":")[1]) for action in actions if action.startswith("slow:")]
        return max(delays, default=0.0)


def _slow(rng: random.Random) -> str:
    return f"slow:{rng.uniform(0.05, 0.25):.2f}"


def _api_script(rng: random.Random, max_bursts: int, statuses: tuple[str, ...] = _TRANSIENT) -> list[str]:
    """Bursts of 1..MAX_BURST failures of one kind, or a slow answer, separated by at least one "ok"."""
    script: list[str] = []
    for _ in range(rng.randint(0, max_bursts)):
        if script:
            script += ["ok"] * rng.randint(1, 2)
        if rng.random() < 0.25:
            script.append(_slow(rng))
        else:
            script += [rng.choice(statuses)] * rng.randint(1, MAX_BURST)
    return script


def _download_script(rng: random.Random, expire_during: bool, link_expires: bool) -> list[str]:
    """Download faults whose failed attempts stay below DOWNLOAD_ATTEMPTS.

    A truncation costs one attempt, an expiry mid-body two (the break, then the 403 of the resume), an
    expired link one (its 403); 5xx/reset bursts are absorbed by the client's own retries.
    """
    budget = DOWNLOAD_ATTEMPTS - 1 - (2 if expire_during else 0) - (1 if link_expires else 0)
    items: list[list[str]] = []
    for _ in range(rng.randint(0, 2)):
        roll = rng.random()
        if roll < 0.5 and budget > 0:
            items.append([f"truncate:{rng.randint(1, 20_000)}"])
            budget -= 1
        elif roll < 0.75:
            items.append([_slow(rng)])
        else:
            items.append([rng.choice(_TRANSIENT)] * rng.randint(1, MAX_BURST))
    if expire_during:
        items.insert(rng.randint(0, len(items)), [f"expire:{rng.randint(1, 20_000)}"])
    script: list[str] = []
    for item in items:
        if script:
            script.append("ok")
        script += item
    return script


def draw(seed: int) -> Schedule:
    """The schedule of ``seed`` (deterministic)."""
    rng = random.Random(seed)
    day = rng.randint(1, 28)
    fatal = rng.choices(list(_FATAL_WEIGHTS), weights=list(_FATAL_WEIGHTS.values()))[0]
    if rng.random() >= P_FATAL:
        fatal = None

    submit: list[str] = []
    if rng.random() < 0.4:
        submit += [rng.choice(("503", "429"))] * rng.randint(1, MAX_BURST)  # refused: safe to resend
    if rng.random() < 0.2:
        submit.append(_slow(rng))
    link_expires = rng.random() < 0.15
    expire_during = rng.random() < 0.2
    script = {
        "submit": submit,
        "list": _api_script(rng, 3),
        "link": _api_script(rng, 2) + (["expire"] if link_expires else []),
        "regenerate": _api_script(rng, 1),
        "download": _download_script(rng, expire_during, link_expires),
    }
    if rng.random() < 0.02:  # a list answer slower than the read timeout: the client gives up and retries
        script["list"] = [f"slow:{SLOW_BEYOND_TIMEOUT:.2f}", "ok", *script["list"]]
    expire_before = rng.random() < 0.2
    restart_export = rng.uniform(0.005, 0.09) if rng.random() < 0.4 else None
    restart_transfer = rng.uniform(0.005, 0.09) if expire_before and rng.random() < 0.5 else None

    dead: tuple[str, str] | None = None
    export_timeout = EXPORT_TIMEOUT
    if fatal == "export_failed":
        script["submit"] = [a for a in submit if not a.startswith("slow")] + ["fail"]
    elif fatal in ("submit_500", "submit_reset", "submit_timeout"):
        last = {"submit_500": "500", "submit_reset": "reset", "submit_timeout": f"slow:{SLOW_BEYOND_TIMEOUT}"}
        script["submit"] = [a for a in submit if not a.startswith("slow")] + [last[fatal]]
    elif fatal is not None:
        endpoint = {"submit_dead": "submit", "wait_dead": "list", "link_dead": "link",
                    "storage_dead": "download", "expired_too_often": "expire"}[fatal]  # fmt: skip
        dead = ("link" if endpoint == "expire" else endpoint, rng.choice(_DEAD_ACTIONS[endpoint]))
        script.pop(dead[0])  # dead from its first request
        if fatal == "wait_dead":
            export_timeout = round(rng.uniform(1.5, 2.5), 2)  # long enough for the back-off to show
    return Schedule(
        seed=seed,
        day=day,
        script={endpoint: tuple(actions) for endpoint, actions in script.items() if actions},
        dead=dead,
        expire_before_transfer=expire_before,
        restart_export_after=restart_export,
        restart_transfer_after=restart_transfer,
        export_timeout=export_timeout,
        fatal=fatal,
    )


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``MSGHISTORY_RELIABILITY_SEEDS``.

    ``"1000-1999"`` (a range, inclusive), ``"5,17,300-310"`` (a list), or a bare count ``"500"``: that many
    fresh random seeds, different every run, to explore (a failing one prints its seed for replay).
    """
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        explorer = random.Random()  # unseeded on purpose: every run explores new schedules
        return explorer.sample(range(1_000_000, 1_000_000_000), int(text))
    seeds: list[int] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if match is None:
            raise ValueError(
                f"{SEEDS_ENV}: {item!r} is neither a seed nor a range; e.g. '1000-1999', "
                "'5,17,300-310' or a count like '500'"
            )
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        seeds += range(first, last + 1)
    return seeds


def selected_seeds(option: list[int] | None) -> list[int]:
    """``--reliability-seed`` values, else ``MSGHISTORY_RELIABILITY_SEEDS``, else the fixed CI list."""
    if option:
        return list(option)
    env = os.environ.get(SEEDS_ENV, "").strip()
    return parse_seeds(env) if env else list(DEFAULT_SEEDS)
