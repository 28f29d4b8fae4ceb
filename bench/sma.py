"""wb.ta.SMA (each window summed afresh) against TA-Lib's running total, in one process.

    PYTHONPATH=. .venv/bin/python bench/sma.py [--rows 1000000] [--repeat 5]

Prints the best of ``--repeat`` timings of each on one symbol of ``--rows`` cent prices,
and their ratio, for a few periods; docs/performance.md ("SMA") records the results.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import talib

from workbench.ta._sma import sma


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = np.round(50 + np.cumsum(rng.normal(0, 0.2, args.rows)), 2)
    print(f"load average {os.getloadavg()[0]:.1f}, {args.rows:,} rows")
    for n in (10, 30, 200):
        theirs = _best(lambda n=n: talib.SMA(x, n), args.repeat)
        ours = _best(lambda n=n: sma(x, n), args.repeat)
        print(f"SMA({n}): TA-Lib {theirs * 1e3:.2f} ms, wb.ta {ours * 1e3:.2f} ms, "
              f"{ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
