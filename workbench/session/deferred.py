"""What a bar's path leaves until its orders are sent: Python's cyclic garbage collector
and the simulated broker's checkpoint.

A bar's latency runs from the row's arrival to its orders sent (``_Session.on_row``). Two
costs landed inside it at times of their own choosing: a collection of the cyclic garbage
collector (a full one took 80-120 ms in a bar of the 500-symbol bench, a young one up to
2.5 ms) and a checkpoint of the simulated broker's WAL run by whichever commit filled it
(two fsyncs and up to 1,000 pages copied: 15-30 ms on a busy disk, in 1 bar of 6). Both
still run, as often as before, right after the bar's orders are sent: nothing is left
uncollected or unwritten, only the moment changes (in a live session, the rest of the
minute is idle).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["after_bar", "collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off for the block, then as it was: the collections the block's
    allocations call for run at the first allocation after it (the counts carry over)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def after_bar(broker) -> None:
    """The broker's deferred checkpoint (a broker without one, Alpaca's, has nothing to do)."""
    checkpoint = getattr(broker, "checkpoint", None)
    if callable(checkpoint):
        checkpoint()
