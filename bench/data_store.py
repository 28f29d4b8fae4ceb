"""Load throughput of ``wb.data.load`` against reading the same Parquet files with pyarrow.

    .venv/bin/python bench/data_store.py [--symbols 500] [--days 20] [--repeat 7]

Synthesizes SYMBOLS x DAYS of 1Min bars into a temporary store, then alternates the two
readers REPEAT times in this one process and prints bars/s for each and the ratio of
the best times (wb.data.load time / pyarrow time; target <= 1.5; the best of several runs
is the least disturbed by other work on a shared machine; the medians are printed too). The pyarrow baseline
reads the files into one long Arrow table and stops there; wb.data.load also filters
through DuckDB and pivots into the wide time x symbol frames a strategy needs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as ds

from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.data.timeframe import Timeframe


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "data")
        bars = synthesize(args.symbols, args.days, "1Min", seed=1)
        store.write(bars, "1Min", source="bench", progress=True)
        files = [str(f) for f in store.files(Timeframe.parse("1Min"))]
        n = len(bars)
        del bars
        ours, base = [], []
        for _ in range(args.repeat):
            base.append(timed(lambda: ds.dataset(files, format="parquet").to_table()))
            ours.append(timed(lambda: store.load(None, "1Min")))
        print(f"{args.symbols} symbols x {args.days} days of 1Min bars = {n:,} bars in {len(files)} files, "
              f"{args.repeat} alternating runs")
        for label, pick in (("best", min), ("median", statistics.median)):
            b, o = pick(base), pick(ours)
            print(f"{label:6s} pyarrow {b:6.3f} s ({n / b / 1e6:5.1f} M bars/s)   "
                  f"wb.data.load {o:6.3f} s ({n / o / 1e6:5.1f} M bars/s)   ratio {o / b:.2f}")
        print(f"ratio (best of each) wb.data.load / pyarrow = {min(ours) / min(base):.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
