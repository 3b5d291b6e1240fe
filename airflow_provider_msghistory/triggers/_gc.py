"""The garbage collector while export waits are registered in the process: full collections walk only what
is new since the previous one.

A triggerer holds Airflow's and the providers' modules (hundreds of thousands of objects that live as long
as the process) and, with ten thousand waits, several hundred thousand objects of the waits themselves
(tasks, coroutines, triggers, their bookkeeping), which live as long as the waits. CPython's full
collection walks every tracked object, reachable or not: with 10,000 waits each one blocked the loop for
0.1-0.3 s, several times in a wait's first seconds and then every minute or so, while young collections
stay at a few ms.

So, while at least one wait is registered (:func:`enter` .. :func:`leave`, process-wide):

- the objects alive when the first wait starts are frozen (:func:`gc.freeze`: moved to the permanent
  generation, which no collection walks);
- after every full collection, what survived it is frozen too. Right after a full collection every
  tracked object is reachable, so freezing then pins no garbage; the next full collection walks only what
  was allocated (and promoted) since. Frozen objects are still freed by reference counting, which is how
  the waits' objects go (a wait leaves no cycles behind);
- when the last wait leaves, everything is unfrozen (:func:`gc.unfreeze`): an object that became part of
  a garbage cycle while frozen (a wait's or another trigger's) is collected by the next full collection.
  What this module changes lasts while waits are registered, and no longer.

Thresholds are not touched: young collections keep their rhythm, and the collector decides when a full
collection is due, as it always does. One thread's event loop runs the waits of a triggerer; the counter is
not meant for waits in several threads at once.
"""

from __future__ import annotations

import gc
from typing import Any

_waits = 0


def enter() -> None:
    """A wait registers: the first freezes the objects alive and starts freezing after full collections."""
    global _waits
    _waits += 1
    if _waits == 1:
        gc.freeze()
        gc.callbacks.append(_after_collection)


def leave() -> None:
    """A wait leaves: the last one unfreezes everything and stops freezing."""
    global _waits
    _waits -= 1
    if _waits == 0:
        gc.callbacks.remove(_after_collection)
        gc.unfreeze()


def _after_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()
