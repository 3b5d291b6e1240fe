"""The run's tally of fault schedules, printed as one line at the end of the session."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .schedules import KINDS


@dataclass
class Tally:
    """Schedules run, faults injected by kind, outcomes and invariant violations (failing seeds)."""

    schedules: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    failing_seeds: list[int] = field(default_factory=list)

    def line(self) -> str:
        kinds = ", ".join(f"{kind}={self.faults[kind]}" for kind in KINDS)
        outcomes = ", ".join(f"{name}={count}" for name, count in sorted(self.outcomes.items()))
        line = (
            f"reliability: {self.schedules} schedules, faults: {kinds}; outcomes: {outcomes}; "
            f"violations={len(self.failing_seeds)}"
        )
        if self.failing_seeds:
            line += f" (seeds {', '.join(map(str, self.failing_seeds))})"
        return line


TALLY = Tally()
