"""wb.ta.SMA (each window's tree sum) against TA-Lib's running total, in one process.

    PYTHONPATH=. .venv/bin/python bench/sma.py [--rows 1000000] [--symbols 1000]
                                               [--bars 2500] [--repeat 5]

Prints the best of ``--repeat`` timings, and their ratio to TA-Lib's, of

* one symbol of ``--rows`` cent prices: ``talib.SMA``, ``wb.ta``'s ``sma`` and the oldest-
  first sum it replaced (``n`` additions per value, kept here as the yardstick);
* a frame of ``--symbols`` x ``--bars`` cent prices with 5% holes (the scale sweep's shape):
  ``wb.ta.SMA``'s computation (every symbol in one pass, each on its present values)
  against TA-Lib symbol by symbol on each one's present rows (``wb.ta``'s path for every
  other TA-Lib function, and SMA's before it was summed here), frames aside;
* the live engine's first SMA call (``Stream``) on ``--symbols`` x 780 rows (two sessions
  of minute bars, 5% holes): every row at once (``_Sma.run``) against stepping the rows
  one by one (the carried state's per-bar step, as the first call did before).

docs/performance.md ("SMA") records the results.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np
import pandas as pd
import talib

import workbench as wb
from workbench.ta._engine import _compute, _matrix
from workbench.ta._sma import sma
from workbench.ta._spec import spec
from workbench.ta._stream import _Sma

PERIODS = (10, 30, 200, 250)


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _oldest_first(x: np.ndarray, n: int) -> np.ndarray:
    """The sum this module's tree replaced: one vectorized addition per age."""
    m = x.size - n + 1
    acc = x[:m].copy()
    for k in range(1, n):
        acc += x[k : k + m]
    return acc / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--bars", type=int, default=2500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = np.round(50 + np.cumsum(rng.normal(0, 0.2, args.rows)), 2)
    print(f"load average {os.getloadavg()[0]:.1f}; one symbol, {args.rows:,} rows")
    for n in PERIODS:
        theirs = _best(lambda n=n: talib.SMA(x, n), args.repeat)
        ours = _best(lambda n=n: sma(x, n), args.repeat)
        old = _best(lambda n=n: _oldest_first(x, n), max(1, args.repeat // 2))
        print(f"  SMA({n}): TA-Lib {theirs * 1e3:.2f} ms, wb.ta {ours * 1e3:.2f} ms "
              f"({ours / theirs:.1f}x), oldest first {old * 1e3:.1f} ms ({old / theirs:.1f}x)")

    c = np.round(50 + np.cumsum(rng.normal(0, 0.2, (args.bars, args.symbols)), axis=0), 2)
    c[rng.uniform(size=c.shape) < 0.05] = np.nan
    frame = pd.DataFrame(c, columns=[f"S{i}" for i in range(args.symbols)])
    mat = _matrix(frame)
    tree = spec("SMA")
    per_symbol = dataclasses.replace(tree, fn=talib.SMA, rows=None)
    for n in PERIODS:  # the engine's path gives wb.ta.SMA's values
        assert np.array_equal(_compute(tree, [mat], {"timeperiod": n}, [])[0].T,
                              wb.ta.SMA(frame, n).to_numpy(), equal_nan=True)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.symbols:,} symbols x "
          f"{args.bars:,} bars, 5% holes")
    for n in PERIODS:
        params = {"timeperiod": n}
        theirs = _best(lambda p=params: _compute(per_symbol, [mat], p, []), args.repeat)
        ours = _best(lambda p=params: _compute(tree, [mat], p, []), args.repeat)
        print(f"  SMA({n}): TA-Lib per symbol {theirs * 1e3:.1f} ms, wb.ta.SMA "
              f"{ours * 1e3:.1f} ms ({ours / theirs:.1f}x)")

    live = np.ascontiguousarray(mat[:, :780])
    print(f"load average {os.getloadavg()[0]:.1f}; the engine's first SMA call, "
          f"{args.symbols:,} symbols x {live.shape[1]} rows")
    for n in PERIODS:
        at_once = _best(lambda n=n: _Sma(n, live.shape[0]).run([live]), args.repeat)
        stepped = _best(lambda n=n: _step_all(_Sma(n, live.shape[0]), live), 1)
        print(f"  SMA({n}): every row at once {at_once * 1e3:.1f} ms, row by row "
              f"{stepped * 1e3:.0f} ms ({stepped / at_once:.0f}x)")


def _step_all(state: _Sma, mat: np.ndarray) -> None:
    for t in range(mat.shape[1]):
        state.step([mat[:, t]])


if __name__ == "__main__":
    main()
