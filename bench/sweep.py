"""``wb.sweep`` against idiomatic vectorbt on an SMA crossover grid, and at scale.

    .venv/bin/python bench/sweep.py                   # both parts (about a minute)
    .venv/bin/python bench/sweep.py --part compare    # 200 symbols x 2,000 bars x 50 pairs
    .venv/bin/python bench/sweep.py --part scale      # 1,000 symbols x 2,500 bars x 200 pairs

compare: fast 5..25 step 5 x slow 10..65 step 5 (fast < slow: 50 pairs) on 200 symbols x
2,000 daily bars, fill at the close, 0.1% fees, all cash in on each entry (fractional
shares, no slippage). ``wb.sweep`` (``wb.ta.SMA``, ``wb.crossed_above/below``) against
idiomatic vectorbt (``vbt.MA.run`` with parameter lists, ``ma_crossed_above/below``,
``Portfolio.from_signals``). Both are warmed first on a small grid (numba compilation and
imports are not timed), then run alternately REPEAT times in this process; the ratio is
vectorbt's time over wb.sweep's, best against best (target >= 5). Every column's total
return must agree to 1e-9 or the script fails.

The yardstick, run alternately with them: a fused single-pass kernel written for this one
strategy (``_fused_kernel``: both SMAs as running sums, the crossings, the simulation and
the metrics in one compiled loop per column, no intermediate arrays, columns spread over
numba's threads). Its total returns, trade counts and exposures must equal wb.sweep's to
1e-9. The distance is wb.sweep's time over the kernel's, best against best, at the same
thread count on each side (target <= 2): wb.sweep with ``threads=1`` against the kernel on
one thread, and wb.sweep as a user runs it (one thread per CPU) against the kernel on as
many threads. The script also prints how wb.sweep's time splits between the strategy
calls and the simulation with metrics.

scale: fast 5..50 step 5 x slow 60..250 step 10 (200 pairs) on 1,000 symbols x 2,500
bars with ``memory_budget="4GB"``, in a child process: wall time, bar-combinations per
second (bars x symbols x pairs / time; target >= 10 M/s) and peak RSS (sampled every 20 ms
over the process and its children, and ``getrusage`` high-water marks; target < 4 GB).
Idiomatic vectorbt at that size runs in another child limited to the budget
(``RLIMIT_AS``): it is expected to fail with MemoryError, as it holds every pair x symbol
column at once (one float64 array of them is 500 M x 8 bytes = 4 GB).

Prices: synthetic daily bars (``wb.data.synth``) with the cent rounding jittered away
(each bar's prices times ``1 + 1e-7 * u``). With cent prices the two averages are often
exactly equal; at such ties TA-Lib's SMA and vectorbt's running-sum mean differ in the
last bits and the two crossing rules differ (vectorbt needs a strict "below" before an
"above"), so the signals, not the simulations, would differ.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Self

import numpy as np

import workbench as wb
from workbench.data.synth import synthesize

COMPARE = {"fast": range(5, 30, 5), "slow": range(10, 70, 5)}
SCALE = {"fast": range(5, 55, 5), "slow": range(60, 260, 10)}
BUDGET = "4GB"
OPTIONS = {"fill": "close", "fees_bps": 10.0, "slippage_bps": 0.0, "size": 1.0,
           "shares": "fractional", "cash": 100_000.0}


@wb.strategy
def sma_cross(bars, fast: int = 10, slow: int = 30):
    fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                      exits=wb.crossed_below(fast_ma, slow_ma))


def make_bars(n_symbols: int, n_bars: int, seed: int = 1) -> wb.Bars:
    """Synthetic daily bars, prices jittered off the cent grid (see the module doc)."""
    bars = wb.Bars.from_long(synthesize(n_symbols, n_bars, "1Day", seed=seed), timeframe="1Day")
    rng = np.random.default_rng(seed)
    factor = 1.0 + 1e-7 * rng.random(bars.close.shape)
    prices = {f: getattr(bars, f) * factor for f in ("open", "high", "low", "close")}
    return wb.Bars.from_wide(**prices, volume=bars.volume, timeframe="1Day")


def pairs(grid: dict) -> list[tuple[int, int]]:
    return [(f, s) for f in grid["fast"] for s in grid["slow"] if f < s]


def run_sweep(bars: wb.Bars, grid: dict, **kw):
    return wb.sweep(sma_cross, bars, **grid, constraint=lambda p: p["fast"] < p["slow"],
                    progress=False, **OPTIONS, **kw)


def run_vectorbt(close, grid: dict, stage: list | None = None):
    """Idiomatic vectorbt: total return per (fast, slow, symbol) column."""
    import vectorbt as vbt

    stage = [] if stage is None else stage
    fast_w, slow_w = zip(*pairs(grid))
    stage.append("MA.run")
    fast = vbt.MA.run(close, list(fast_w), short_name="fast")
    slow = vbt.MA.run(close, list(slow_w), short_name="slow")
    stage.append("ma_crossed_above/below")
    entries, exits = fast.ma_crossed_above(slow), fast.ma_crossed_below(slow)
    stage.append("Portfolio.from_signals")
    pf = vbt.Portfolio.from_signals(close, entries, exits, fees=OPTIONS["fees_bps"] / 1e4,
                                    init_cash=OPTIONS["cash"], freq="1D")
    stage.append("total_return")
    return pf.total_return()


# -- the yardstick: one compiled pass per column --------------------------------------------


def _fused_kernel():
    """The fused single-pass kernel (compiled on first use): for each (pair, symbol) column,
    both SMAs (running sums), the crossings, the simulation (fill at the close, fees, all
    cash in, fractional shares) and the metrics (total return, Sharpe, max drawdown, trades,
    exposure, fees), in one loop over the column's bars. No strategy code, no pandas, no
    intermediate arrays: what the sweep's work costs when written for this one strategy."""
    import math

    from numba import njit, prange

    @njit(nogil=True, cache=True)
    def column(close, fast, slow, fee, cash0, ppy, out):
        n_t = close.shape[0]
        s_fast = s_slow = 0.0
        cash, pos, was_above, was_below, started = cash0, 0.0, False, False, False
        prev, peak, worst, n_r, mean, m2 = cash0, cash0, 0.0, 0, 0.0, 0.0
        trades, held, fees = 0, 0, 0.0
        for i in range(n_t):
            c = close[i]
            s_fast += c
            s_slow += c
            if i >= fast:
                s_fast -= close[i - fast]
            if i >= slow:
                s_slow -= close[i - slow]
            if i >= slow - 1:
                a, b = s_fast / fast, s_slow / slow
                above, below = a > b, a < b
                if started and above and not was_above and pos == 0.0:
                    qty = cash / (c * (1.0 + fee))
                    cost = qty * c
                    cash -= cost + cost * fee
                    fees += cost * fee
                    pos = qty
                    trades += 1
                elif started and below and not was_below and pos > 0.0:
                    value = pos * c
                    cash += value - value * fee
                    fees += value * fee
                    pos = 0.0
                was_above, was_below, started = above, below, True
            e = cash + pos * c
            held += pos != 0.0
            r = e / prev - 1.0
            prev = e
            n_r += 1
            d = r - mean
            mean += d / n_r
            m2 += d * (r - mean)
            peak = max(peak, e)
            worst = min(worst, e / peak - 1.0)
        std = math.sqrt(m2 / (n_r - 1))
        out[0] = prev / cash0 - 1.0
        out[1] = mean / std * math.sqrt(ppy) if std > 0 else np.nan
        out[2], out[3], out[4], out[5] = worst, trades, held / n_t, fees

    @njit(nogil=True, cache=True, parallel=True)
    def run(close, fast_w, slow_w, fee, cash0, ppy, out):  # close (symbols, T)
        n_s = close.shape[0]
        for col in prange(len(fast_w) * n_s):
            k, s = col // n_s, col % n_s
            column(close[s], fast_w[k], slow_w[k], fee, cash0, ppy, out[k, s])

    return run


def run_fused(close, grid: dict, kernel, threads: int = 1) -> np.ndarray:
    """The fused kernel on ``threads`` of numba's threads: (pairs, symbols, 6) metrics;
    [..., 0] the total return."""
    import numba

    closes = np.ascontiguousarray(close.to_numpy(dtype=float).T)
    assert np.isfinite(closes).all(), "the fused kernel assumes bars without gaps"
    fast_w, slow_w = (np.array(w, dtype=np.int64) for w in zip(*pairs(grid)))
    out = np.empty((len(fast_w), closes.shape[0], 6))
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        kernel(closes, fast_w, slow_w, OPTIONS["fees_bps"] / 1e4, OPTIONS["cash"], 252.0, out)
    finally:
        numba.set_num_threads(before)
    return out


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


# -- part 1: the same grid both ways --------------------------------------------------------


def check_identical(result, vbt_returns) -> float:
    """Largest |difference| of total returns, column by column; fails above 1e-9."""
    ours = result.table.set_index(["fast", "slow", "symbol"])["total_return"]
    theirs = vbt_returns.copy()
    theirs.index = theirs.index.set_names(["fast", "slow", "symbol"])
    theirs = theirs.reindex(ours.index)
    assert theirs.notna().all(), "vectorbt's columns do not match the sweep's"
    worst = float(np.max(np.abs(ours.to_numpy() - theirs.to_numpy())))
    assert worst <= 1e-9, f"total returns differ by up to {worst:.3g}"
    return worst


def compare(args) -> None:
    bars = make_bars(args.symbols, args.bars)
    small = make_bars(5, 300, seed=2)
    kernel = _fused_kernel()
    run_sweep(small, COMPARE), run_vectorbt(small.close, COMPARE)  # warm: compile, import
    workers = run_sweep(small, COMPARE).info["workers"]  # wb.sweep's default threads
    run_fused(small.close, COMPARE, kernel), run_fused(small.close, COMPARE, kernel, workers)
    n_pairs = len(pairs(COMPARE))
    cells = len(bars) * len(bars.symbols) * n_pairs
    times: dict[str, list[float]] = {k: [] for k in ("vbt", "sweep", "sweep1", "fused1", "fusedN")}
    for _ in range(args.repeat):
        t, vbt_returns = timed(lambda: run_vectorbt(bars.close, COMPARE))
        times["vbt"].append(t)
        t, result = timed(lambda: run_sweep(bars, COMPARE))
        times["sweep"].append(t)
        t, one = timed(lambda: run_sweep(bars, COMPARE, threads=1))
        times["sweep1"].append(t)
        t, fused_out = timed(lambda: run_fused(bars.close, COMPARE, kernel))
        times["fused1"].append(t)
        t, fused_n = timed(lambda: run_fused(bars.close, COMPARE, kernel, workers))
        times["fusedN"].append(t)
    worst = check_identical(result, vbt_returns)
    fused_worst = max(check_fused(r, f) for r in (result, one) for f in (fused_out, fused_n))
    info = result.info
    assert info["workers"] == workers and one.info["workers"] == 1
    print(f"compare: {len(bars.symbols)} symbols x {len(bars):,} daily bars x {n_pairs} pairs "
          f"= {cells / 1e6:.0f} M bar-combinations; {args.repeat} alternating runs, warmed "
          f"(compilation not timed); wb.sweep ran {info['mode']} x {info['workers']} (its "
          f"default) and threads=1, kernel {info['kernel']}; vectorbt on one thread; the fused "
          f"kernel on 1 and on {workers} numba threads")
    for label, pick in (("best", min), ("median", statistics.median)):
        p = {k: pick(v) for k, v in times.items()}
        rate = {k: cells / v / 1e6 for k, v in p.items()}
        print(f"  {label:6s} vectorbt {p['vbt']:6.2f} s ({rate['vbt']:5.1f} M/s)   "
              f"wb.sweep x{workers} {p['sweep']:5.2f} s ({rate['sweep']:5.1f} M/s)   "
              f"wb.sweep x1 {p['sweep1']:5.2f} s ({rate['sweep1']:5.1f} M/s)   "
              f"fused x1 {p['fused1']:5.2f} s ({rate['fused1']:5.1f} M/s)   "
              f"fused x{workers} {p['fusedN']:5.2f} s ({rate['fusedN']:5.1f} M/s)")
        print(f"         vectorbt/wb.sweep x{workers} {p['vbt'] / p['sweep']:.2f}   "
              f"wb.sweep/fused x1 {p['sweep1'] / p['fused1']:.2f}   "
              f"x{workers} {p['sweep'] / p['fusedN']:.2f}")
    for name, r in ((f"x{workers}", result), ("x1", one)):
        print(f"  wb.sweep {name}'s last run, summed over chunks: strategy calls (indicators "
              f"from the cache, crossings, Signals) {r.info['seconds_strategy']:.2f} s, "
              f"simulation + metrics (fused pass) {r.info['seconds_simulation']:.2f} s")
    print(f"  total returns identical: {len(result.table):,} columns, max |diff| {worst:.1e} "
          f"(vectorbt), {fused_worst:.1e} (fused kernel)")
    best = {k: min(v) for k, v in times.items()}
    print(f"  ratio (best of each) vectorbt / wb.sweep x{workers} = "
          f"{best['vbt'] / best['sweep']:.2f}  (target >= 5)")
    print(f"  distance (best of each, same threads) wb.sweep / fused kernel = "
          f"{best['sweep1'] / best['fused1']:.2f} on 1 thread, "
          f"{best['sweep'] / best['fusedN']:.2f} on {workers}  (target <= 2)")


def check_fused(result, out: np.ndarray) -> float:
    """Largest |difference| between the sweep's and the fused kernel's total returns,
    trades and exposure; fails above 1e-9."""
    t = result.table
    worst = 0.0
    for j, name in ((0, "total_return"), (3, "trades"), (4, "exposure")):
        worst = max(worst, float(np.max(np.abs(t[name].to_numpy(float) - out[..., j].ravel()))))
    assert worst <= 1e-9, f"the fused kernel differs from wb.sweep by up to {worst:.3g}"
    return worst


# -- part 2: at scale, each in its own process ----------------------------------------------


class PeakRSS:
    """The largest RSS of this process plus its children, sampled in a thread."""

    def __init__(self, every: float = 0.02) -> None:
        import psutil

        self.me, self.every, self.peak, self._stop = psutil.Process(), every, 0, False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop:
            try:
                procs = [self.me, *self.me.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(self.every)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join()


def child_sweep(args) -> dict:
    bars = make_bars(args.big_symbols, args.big_bars, seed=3)
    run_sweep(make_bars(5, 300, seed=2), SCALE)  # warm
    kw = {"memory_budget": BUDGET}
    if args.processes:
        kw["processes"] = args.processes
    with PeakRSS() as rss:
        seconds, result = timed(lambda: run_sweep(bars, SCALE, **kw))
    usage = {who: resource.getrusage(getattr(resource, f"RUSAGE_{who.upper()}")).ru_maxrss * 1024
             for who in ("self", "children")}
    return {"seconds": seconds, "cells": result.info["cells"], "peak_rss": rss.peak,
            "maxrss_self": usage["self"], "maxrss_children": usage["children"],
            "info": {k: result.info[k] for k in ("mode", "workers", "kernel", "chunks",
                                                 "symbols_per_chunk", "combos_per_chunk",
                                                 "indicator_computations")},
            "split": [result.info["seconds_strategy"], result.info["seconds_simulation"]],
            "best": repr(result.best())}


def child_vectorbt(args) -> dict:
    from workbench.backtesting.sweeps.chunks import parse_bytes

    limit = parse_bytes(BUDGET)
    bars = make_bars(args.big_symbols, args.big_bars, seed=3)
    run_vectorbt(make_bars(5, 300, seed=2).close, SCALE)  # warm
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stage: list = []
    start = time.perf_counter()
    try:
        run_vectorbt(bars.close, SCALE, stage)
    except MemoryError as e:
        return {"outcome": "MemoryError", "stage": stage[-1], "seconds": time.perf_counter() - start,
                "error": str(e)[:200]}
    return {"outcome": "ok", "seconds": time.perf_counter() - start}


def in_child(part: str, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", part,
           "--big-symbols", str(args.big_symbols), "--big-bars", str(args.big_bars),
           "--processes", str(args.processes)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"outcome": f"exit code {out.returncode}", "stderr": out.stderr[-500:]}
    return json.loads(lines[-1])


def scale(args) -> None:
    gb = 2**30
    ours = in_child("sweep", args)
    if "seconds" not in ours or "cells" not in ours:
        raise SystemExit(f"wb.sweep failed: {ours}")
    rate = ours["cells"] / ours["seconds"]
    print(f"scale: {args.big_symbols} symbols x {args.big_bars:,} bars x {len(pairs(SCALE))} pairs "
          f"= {ours['cells'] / 1e6:.0f} M bar-combinations, memory_budget={BUDGET}")
    print(f"  wb.sweep {ours['seconds']:.1f} s, {rate / 1e6:.1f} M bar-combinations/s "
          f"(target >= 10), {ours['info']}")
    print(f"  summed over chunks (both threads): strategy calls {ours['split'][0]:.1f} s, "
          f"simulation + metrics {ours['split'][1]:.1f} s")
    print(f"  peak RSS {ours['peak_rss'] / gb:.2f} GB (process + children, sampled; target < 4); "
          f"getrusage maxrss self {ours['maxrss_self'] / gb:.2f} GB, "
          f"children {ours['maxrss_children'] / gb:.2f} GB")
    print(f"  best: {ours['best']}")
    theirs = in_child("vectorbt", args)
    took = f" after {theirs['seconds']:.1f} s" if "seconds" in theirs else ""
    where = f" in {theirs['stage']}" if "stage" in theirs else ""
    print(f"  idiomatic vectorbt (RLIMIT_AS {BUDGET}): {theirs['outcome']}{where}{took}"
          + (f" ({theirs['error']})" if "error" in theirs else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("compare", "scale", "all"), default="all")
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--bars", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-symbols", type=int, default=1000)
    ap.add_argument("--big-bars", type=int, default=2500)
    ap.add_argument("--processes", type=int, default=0,
                    help="force a pool of this many processes at scale (0: wb.sweep's default)")
    ap.add_argument("--child", choices=("sweep", "vectorbt"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps((child_sweep if args.child == "sweep" else child_vectorbt)(args)))
        return
    # scale first: its children are forked from this process while it is still small
    # (Linux carries a process's RSS high-water mark across fork and exec into getrusage)
    if args.part in ("scale", "all"):
        scale(args)
    if args.part in ("compare", "all"):
        compare(args)


if __name__ == "__main__":
    main()
