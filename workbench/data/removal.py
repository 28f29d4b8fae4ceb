"""Removing bars from the store: a symbol, a timeframe of it, or a range, moved aside.

Nothing is deleted in place. Each affected file is renamed (atomic, same file system)
under ``trash/<UTC time>-<pid>/``, keeping its path below the data directory, so it can
be put back by hand; delete the trash folder when sure. For a range, the bars kept are
first written to a new file the way every store write is done (temp file, fsync, rename),
then the old file is moved aside: a reader sees the old bars or the new ones, never half,
and a load that listed a file just moved aside lists again (``Store.load``). Removal
takes the store's writer lock.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench.data.store import Store, _file_first, _file_last, _stem, check_symbol
from workbench.data.timeframe import Timeframe
from workbench.errors import DataError
from workbench.fsutil import fsync_dir
from workbench.times import bounds

__all__ = ["RemoveReport", "remove"]


@dataclass
class RemoveReport:
    """What :meth:`Store.remove` did: files moved to the trash, bars removed, files written."""

    symbol: str
    trash: str
    moved: list[str] = field(default_factory=list)  # where each file went (under ``trash``)
    written: list[str] = field(default_factory=list)  # the kept part of a file cut by a range
    removed: dict[str, int] = field(default_factory=dict)  # "1Min bars" -> count

    def summary(self) -> str:
        what = ", ".join(f"{n:,} {k}" for k, n in sorted(self.removed.items())) or "nothing"
        return (f"{self.symbol}: removed {what}; {len(self.moved)} file(s) moved to {self.trash}"
                + (f", {len(self.written)} file(s) written with the bars kept" if self.written else ""))

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def remove(store: Store, symbol: str, timeframe: str | Timeframe | None = None, start=None,
           end=None, *, locked: bool = False) -> RemoveReport:
    """Remove ``symbol``'s bars (and quarantined bars) of ``timeframe`` (None: every
    timeframe), all of them or those with ``start <= ts <= end`` (the one date rule).

    Nothing is deleted in place: each affected file is moved (an atomic rename) under
    ``trash/<UTC time>-<pid>/`` keeping its path; for a range, the bars outside it are first
    written to a new file beside it, the same way every write is done, so a reader
    sees the old file or the new one. Raises :class:`DataError` if nothing matches."""
    check_symbol(symbol)
    tfs = [Timeframe.parse(timeframe)] if timeframe is not None else [
        Timeframe.parse(t) for t in sorted(set(store.timeframes()) | set(_quarantine_timeframes(store)))]
    lo, hi = bounds(start, end, error=DataError)
    ranged = lo is not None or hi is not None
    stamp = pd.Timestamp.now("UTC").strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
    report = RemoveReport(symbol=symbol, trash=str(store.root / "trash" / stamp))
    lock = nullcontext() if locked else store._writer_lock()
    with lock:
        for tf in tfs:
            for kind in ("bars", "quarantine"):
                for path in store.files(tf, [symbol], kind=kind):
                    _remove_from(store, path, kind, tf, lo, hi, ranged, Path(report.trash), report)
    if not report.moved:
        what = f" {tfs[0]}" if timeframe is not None else ""
        span = f" between {start or 'the start'} and {end or 'the end'}" if ranged else ""
        raise DataError(f"nothing to remove: no{what} bars of {symbol}{span} in {store.root}")
    return report


def _quarantine_timeframes(store: Store) -> list[str]:
    return [p.name.split("=", 1)[1] for p in (store.root / "quarantine").glob("timeframe=*")]


def _remove_from(store: Store, path: Path, kind: str, tf: Timeframe, lo, hi, ranged: bool,
                 trash: Path, report: RemoveReport) -> None:
    if ranged:
        if (hi is not None and _file_first(path) > hi) or (lo is not None and _file_last(path) < lo.floor("s")):
            return  # the file's bars all lie outside the range
        table = pq.read_table(path)
        ts = table.column("ts").to_pandas()
        inside = ((ts >= lo) if lo is not None else True) & ((ts <= hi) if hi is not None else True)
        inside = np.asarray(inside, dtype=bool)
        if not inside.any():
            return
        if not inside.all():
            keep = table.filter(pa.array(~inside))
            stem = _stem(keep.column("ts").to_pandas())
            report.written.append(str(store._write_file(keep, path.parent, stem)))
        n = int(inside.sum())
    else:
        n = pq.read_metadata(path).num_rows
    target = trash / path.relative_to(store.root)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    fsync_dir(path.parent)
    report.moved.append(str(target))
    key = f"{tf} {'bars' if kind == 'bars' else 'quarantined'}"
    report.removed[key] = report.removed.get(key, 0) + n

