"""What a bar's path leaves until its orders are sent: Python's cyclic garbage collector
and the simulated broker's checkpoint.

A bar's latency runs from the row's arrival to its orders sent (``_Session.on_row``). Two
costs landed inside it at times of their own choosing: a collection of the cyclic garbage
collector (a full one took 80-120 ms in a bar of the 500-symbol bench, a young one up to
2.5 ms) and a checkpoint of the simulated broker's WAL run by whichever commit filled it
(two fsyncs and up to 1,000 pages copied: 15-30 ms on a busy disk, in 1 bar of 6). Both
still run, about as often as before, right after a bar's orders are sent: nothing is left
uncollected or unwritten, only the moment changes (in a live session, the rest of the
minute is idle).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["CHECKPOINT_COMMITS", "after_bar", "collector_paused"]

# the simulated broker's WAL written into its file after this many commits (a bar with
# orders commits twice: fills, then the group; 500 symbols x 17 orders a bar: ~70 pages a
# bar, so ~550 pages a checkpoint, where SQLite's own waits for 1,000; one after every bar
# cost two fsyncs a bar, 0.5-1 s a day of wall time)
CHECKPOINT_COMMITS = 16


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
    """The broker's deferred checkpoint, once it committed :data:`CHECKPOINT_COMMITS`
    transactions (a broker without one, Alpaca's, has nothing to do)."""
    checkpoint = getattr(broker, "checkpoint", None)
    if callable(checkpoint):
        checkpoint(CHECKPOINT_COMMITS)
