"""The garbage collector while export waits are registered in the process: full collections walk only what
is new since the previous one.

A triggerer holds Airflow's and the providers' modules (hundreds of thousands of objects that live as long
as the process) and, with ten thousand waits, several hundred thousand objects of the waits themselves
(tasks, coroutines, triggers, their bookkeeping), which live as long as the waits. CPython's full
collection walks every tracked object, reachable or not: with 10,000 waits each one blocked the loop for
0.1-0.3 s, several times in the waits' first seconds and again as their looks promote new objects, while
young collections stay at a few ms.

So, while at least one wait is registered (:func:`enter` .. :func:`leave`, process-wide):

- the objects alive when the first wait starts are frozen (:func:`gc.freeze`: moved to the permanent
  generation, which no collection walks; what CPython's documentation suggests for long-lived objects).
  Garbage cycles alive at that instant stay until the unfreeze;
- after every full collection, what survived it is frozen too. Right after a full collection every
  tracked object is reachable, so freezing then pins no garbage; the next full collection walks only what
  was allocated (and promoted) since. Frozen objects are still freed by reference counting, which is how
  nearly all of a wait's objects go (10,000 waits in ``benchmarks/triggerer_scale.py`` left a few
  hundred objects in cycles in all);
- an object that becomes part of a garbage cycle while frozen (a wait's, another trigger's) is not
  collected while it is frozen. Bounded: at most once per :data:`CHECK_EVERY` seconds a full collection
  also counts the frozen objects (~20 ms per 500,000), and once they are more than :data:`GROWTH` times
  as many as after the last full walk, everything is unfrozen: the next full collection walks (and
  cleans) the whole heap once, as it would without this module, and its survivors are the new base;
- when the last wait leaves, everything is unfrozen (:func:`gc.unfreeze`) and the callback removed: what
  this module changes lasts while waits are registered, and no longer.

Thresholds are not touched: young collections keep their rhythm, and the collector decides when a full
collection is due, as it always does. One thread's event loop runs the waits of a triggerer; the counter is
not meant for waits in several threads at once.
"""

from __future__ import annotations

import gc
import time
from typing import Any

#: Seconds between two counts of the frozen objects (a count walks them all).
CHECK_EVERY = 60.0
#: Frozen objects may grow to this many times the count after the last full walk before the next walks all.
GROWTH = 2.0

_waits = 0
_base: int | None = None  # frozen objects after the last full walk; None: the next full collection walks all
_checked_at = 0.0


def enter() -> None:
    """A wait registers: the first freezes the objects alive and starts freezing after full collections."""
    global _waits, _base, _checked_at
    _waits += 1
    if _waits == 1:
        gc.freeze()
        _base, _checked_at = gc.get_freeze_count(), time.monotonic()
        gc.callbacks.append(_after_collection)


def leave() -> None:
    """A wait leaves: the last one unfreezes everything and stops freezing."""
    global _waits
    _waits -= 1
    if _waits == 0:
        gc.callbacks.remove(_after_collection)
        gc.unfreeze()


def _after_collection(phase: str, info: dict[str, Any]) -> None:
    global _base, _checked_at
    if phase != "stop" or info["generation"] != 2:
        return
    gc.freeze()
    now = time.monotonic()
    if _base is None:  # this collection walked the whole heap
        _base, _checked_at = gc.get_freeze_count(), now
    elif now - _checked_at >= CHECK_EVERY:
        _checked_at = now
        if gc.get_freeze_count() > GROWTH * _base:
            gc.unfreeze()
            _base = None
