"""``wb.sweep``: a strategy over a parameter grid and all symbols, in memory-budgeted chunks.

    grid = wb.sweep(sma_cross, bars, fast=range(5, 30, 5), slow=range(10, 70, 5),
                    constraint=lambda p: p["fast"] < p["slow"], fees_bps=10)
    grid.table        # one row per combination x symbol: parameters and metrics
    grid.combos       # one row per combination: the metrics of its book (all symbols)
    grid.best()       # the best combination, with the deflated Sharpe ratio and PBO
    grid.heatmap("fast", "slow", metric="sharpe")
    wb.sweep(..., cluster="tcp://host:8786")          # or a dask.distributed.Client

Every keyword named in :data:`workbench.backtesting.run.OPTIONS` is a backtest option, with
``wb.backtest``'s defaults and checks, fixed for the whole sweep; every other keyword is a
strategy parameter: an iterable of values to sweep or a single fixed value. The numbers
are those ``wb.backtest`` gives for each combination (per symbol: ``stats(per_symbol=True)``,
per combination: ``stats()``), because each chunk runs the same :func:`simulate` and the
same metrics on the same signals (or, without stops, the single compiled pass of
:mod:`~workbench.backtesting.sweeps.fused`, which executes the same orders with vectorbt's
arithmetic and computes the same metrics; ``info["kernel"]`` says which); only how the
work is cut and spread differs:

* the grid x symbols is cut into chunks that fit ``memory_budget`` (default: 4 GB or half
  the available memory, whichever is less; see :mod:`workbench.backtesting.sweeps.chunks`);
* each worker calls the strategy once per combination of its chunk inside an
  ``indicator_cache``, so each distinct indicator is computed once per worker;
* chunks run on threads of this process (simulation and numpy release the GIL), on a pool
  of ``processes`` spawned processes (by default only with 4+ CPUs and a job large enough
  to repay their start-up), or on a Dask cluster;
* only metrics come back: per column, and per combination the book's summed equity, which
  also gives the per-bar returns the deflated Sharpe ratio and PBO need (T x M floats).
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtesting.metrics import periods_per_year
from workbench.backtesting.run import OPTIONS, backtest, build_settings, checked_inputs
from workbench.backtesting.simulation import SimOptions
from workbench.backtesting.sweeps import chunks as C
from workbench.backtesting.sweeps.book import BookAccumulator, book_metrics, book_returns
from workbench.backtesting.sweeps.grid import Grid, combination_limit
from workbench.backtesting.sweeps.result import SweepResult
from workbench.backtesting.sweeps.worker import COLUMN_METRICS, SweepJob
from workbench.data.bars import FIELDS, Bars
from workbench.errors import ConfigError, StrategyError
from workbench.model.costs import CostModel
from workbench.strategy import Strategy

__all__ = ["MAX_CELLS", "POOL_MIN_CELLS", "POOL_MIN_CPUS", "PROCESS_BYTES", "cell_limit", "sweep"]

# The size a sweep may have, in bar-combinations (symbols x bars x combinations): at the
# ~10 M a second measured on a loaded 2-core machine (docs/performance.md) this is about
# 1.5 hours; more is refused before anything runs, saying how to go past it.
MAX_CELLS = 50_000_000_000
CELLS_PER_SECOND = 10_000_000  # for the estimate said with a refusal
CELLS_VARIABLE = "WORKBENCH_SWEEP_MAX_CELLS"  # the workbench sweep command sets it

# A pool is the default only with 4+ CPUs and this many bars x symbols x combinations: each
# spawned process spends seconds importing and loading compiled code, and on 2 CPUs threads
# measured faster than processes even at 5e8 (see docs/performance.md).
POOL_MIN_CPUS = 4
POOL_MIN_CELLS = 200_000_000
PROCESS_BYTES = 350 * 2**20  # a worker process's own footprint (Python, numpy, pandas, numba)
CACHE_SHARE = 0.25  # of a worker's share of the budget, for its indicator cache
OPTION_DEFAULTS = {name: p.default for name, p in inspect.signature(backtest).parameters.items()
                   if name in OPTIONS}


def _settings(bars: Bars, given: dict[str, Any]) -> tuple[CostModel, SimOptions]:
    """The cost model and options ``wb.backtest`` builds from the same keywords."""
    for name in ("sl_stop", "tp_stop"):
        value = given.get(name)
        if value is not None and not isinstance(value, (int, float, np.number)):
            raise ConfigError(f"sweep: {name} per bar ({type(value).__name__}) is not a sweep "
                              f"option: return it from the strategy (Signals({name}=...))")
    for name, value in given.items():
        if isinstance(value, Iterable) and not isinstance(value, str):
            raise ConfigError(f"sweep: the backtest option {name} takes one value for the whole "
                              f"sweep, got {type(value).__name__}")
    return build_settings({**OPTION_DEFAULTS, **given},
                          periods_per_year(bars.timeframe, bars.index))


def _probe(strategy: Strategy, bars: Bars, params: dict, direction: str) -> bool:
    """Run the first combination once here: its errors surface before any worker starts.
    True if the strategy returns its own stops (then the general kernel runs)."""
    signals = strategy(bars, **params)
    if signals.kind == "weights":
        raise StrategyError(f"{strategy.name} returned target weights; sweeps do not "
                            "take them yet (wb.backtest does): return entries/exits (and short ones)")
    shorts = signals.short_entries
    if direction == "long" and shorts is not None and shorts.to_numpy().any():
        warnings.warn("the strategy returned short signals; they are ignored with "
                      "direction='long' (use direction='longshort' to trade them)",
                      UserWarning, stacklevel=3)
    return bool(signals.stops())


def _kernel(options: SimOptions) -> str:
    """"fused" (simulation, books and metrics in one compiled pass per column) where it
    covers the options, else "general" (:func:`simulate` then ``metrics.summary``)."""
    from workbench.backtesting.sweeps.fused import supports

    return "fused" if supports(options) else "general"


def _bars_bytes(bars: Bars) -> int:
    return sum(getattr(bars, f).memory_usage(deep=False, index=False).sum() for f in FIELDS)


def _workers(processes, threads, cluster, cells: int) -> tuple[str, int]:
    """``(mode, workers)``: "dask", "processes" or "threads"."""
    for name, value in (("processes", processes), ("threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ConfigError(f"sweep: {name} must be an integer >= 1, got {value!r}")
    cpus = os.cpu_count() or 1
    if cluster is not None:
        return "dask", 0
    if processes is None:
        processes = cpus if cpus >= POOL_MIN_CPUS and cells >= POOL_MIN_CELLS else 1
    if processes > 1:
        return "processes", processes
    return "threads", threads or cpus


def _dask_layout(client, budget: int | None) -> tuple[int, int, int]:
    """``(budget per worker process, threads per process, processes)`` of a cluster."""
    info = list(client.scheduler_info()["workers"].values())
    if not info:
        raise ConfigError("sweep: the Dask cluster has no workers")
    if budget is None:
        limits = [w.get("memory_limit") or 0 for w in info]
        budget = min(limits) if min(limits) > 0 else C.default_budget()
    return budget, max(w["nthreads"] for w in info), len(info)


def _plan(mode: str, workers: int, budget: int | None, bars: Bars, n_combos: int,
          client=None) -> tuple[C.ChunkPlan, int, int]:
    """The chunk plan, the indicator cache size (entries) per worker and the budget."""
    n_t, n_s = len(bars), len(bars.symbols)
    fixed, spread, own = BookAccumulator.nbytes(n_s, n_combos, n_t), 1, 0
    if mode == "dask":  # per worker process, whose threads share its copy of the bars
        budget, workers, spread = _dask_layout(client, budget)
        fixed = _bars_bytes(bars)
    elif budget is None:
        budget = C.default_budget()
    if mode == "processes":
        own = PROCESS_BYTES + _bars_bytes(bars)
    cache = int(max(0, budget - fixed) // workers * CACHE_SHARE)
    plan = C.plan_chunks(n_s, n_combos, n_t, budget=budget, workers=workers, fixed=fixed,
                         per_worker=own + cache,
                         chunks_per_worker=C.CHUNKS_PER_WORKER * spread)
    entries = max(2, cache // max(1, n_t * plan.symbols_per_chunk * 8))
    return plan, entries, budget


def _runner(mode: str, workers: int, job: SweepJob, plan: C.ChunkPlan, client):
    from workbench.backtesting.sweeps import pools

    if mode == "dask":
        return pools.run_dask(job, plan.chunks, client)
    if mode == "processes":
        return pools.run_processes(job, plan.chunks, workers)
    return pools.run_threads(job, plan.chunks, workers)


def _collect(runner, acc: BookAccumulator, total: int, label: str, progress: bool) -> None:
    from workbench.progress import progress_bar

    with progress_bar(total=total, desc=label, unit="chunk", disable=not progress) as bar:
        for part in runner:
            acc.add(part)
            bar.update(1)


def _table(grid: Grid, symbols: list[str], metrics: np.ndarray) -> pd.DataFrame:
    """One row per combination x symbol (combination major)."""
    m, n = len(grid), len(symbols)
    params = grid.frame()
    data: dict[str, Any] = {"combo": np.repeat(np.arange(m), n)}
    for name in grid.names:
        data[name] = np.repeat(params[name].to_numpy(), n)
    data["symbol"] = pd.array(np.tile(np.asarray(symbols, dtype=object), m), dtype="str")
    for i, name in enumerate(COLUMN_METRICS):
        data[name] = metrics[i].reshape(-1)
    return pd.DataFrame(data).astype({"trades": "int64"})


def cell_limit(given: int | None | str = "default") -> int | None:
    """The largest sweep in bar-combinations: ``given`` (None: no limit), by default
    ``WORKBENCH_SWEEP_MAX_CELLS`` when set, else :data:`MAX_CELLS`."""
    if given == "default":
        text = os.environ.get(CELLS_VARIABLE, "").strip()
        given = MAX_CELLS if not text else (None if text.lower() == "none" else text)
    if given is None:
        return None
    try:
        value = int(float(given)) if not isinstance(given, bool) else 0
    except (TypeError, ValueError, OverflowError):
        value = 0
    if value < 1:
        raise ConfigError(f"max_cells {given!r}: a number of bar-combinations >= 1, or None "
                          f"for no limit ({CELLS_VARIABLE} likewise)")
    return value


def _check_size(cells: int, n_symbols: int, n_bars: int, n_combos: int, limit: int | None) -> None:
    if limit is None or cells <= limit:
        return
    hours = cells / CELLS_PER_SECOND / 3600
    raise ConfigError(
        f"sweep: {cells:,} bar-combinations ({n_symbols:,} symbols x {n_bars:,} bars x "
        f"{n_combos:,} combinations) is more than the limit of {limit:,} (about {hours:,.1f} "
        f"hours at ~{CELLS_PER_SECOND / 1e6:.0f} M a second); a sweep that size would not "
        f"finish. Narrow the grid, the symbols or the dates, or go past the limit with "
        f"max_cells=N (workbench sweep --max-cells N; None / 'none': no limit)")


def sweep(strategy, bars: Bars, *, constraint=None, metric: str = "sharpe",
          memory_budget=None, processes: int | None = None, threads: int | None = None,
          cluster=None, progress: bool = True, max_combinations: int | None | str = "default",
          max_cells: int | None | str = "default", **kwargs: Any) -> SweepResult:
    """Backtest ``strategy`` on ``bars`` for every combination of the parameter ranges.

    kwargs: backtest options (:data:`OPTIONS`: fill, fees_bps, fee_per_share, slippage_bps,
    shares, cash, size, direction, sl_stop, tp_stop; as in ``wb.backtest``) and strategy
    parameters (an iterable of values to sweep, or one value).
    constraint: ``f(params) -> bool`` keeps a combination (e.g. ``p["fast"] < p["slow"]``).
    metric: the default metric of ``best()`` and ``heatmap()``.
    memory_budget: ``"4GB"``, ``"512MB"`` or bytes (default: min(4 GB, half the available
    memory)); what the sweep allocates (chunks, indicator caches, worker processes with
    their copy of the bars, results) is sized to stay within it; the bars already loaded
    and this interpreter are not counted. On Dask it is per worker process (default: the
    workers' memory limit).
    processes: worker processes (default: one per CPU for large jobs on 4+ CPUs, else none);
    threads: threads when running in this process (default: one per CPU).
    cluster: a Dask scheduler address (``"tcp://host:8786"``) or a ``Client``.
    progress: a progress bar over chunks.
    max_combinations / max_cells: the size refused before anything runs (combinations
    before the constraint, :data:`~workbench.backtesting.sweeps.grid.MAX_COMBINATIONS`;
    symbols x bars x combinations, :data:`MAX_CELLS`); None: no limit. Defaults from
    ``WORKBENCH_SWEEP_MAX_COMBINATIONS`` / ``WORKBENCH_SWEEP_MAX_CELLS`` when set.
    """
    started = time.perf_counter()
    strat = checked_inputs(strategy, bars, "sweep")
    if metric not in COLUMN_METRICS:
        raise ConfigError(f"sweep: unknown metric {metric!r}; one of {', '.join(COLUMN_METRICS)}")
    budget = None if memory_budget is None else C.parse_bytes(memory_budget)
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in OPTIONS}
    costs, sim_options = _settings(bars, options)
    cap = cell_limit(max_cells)
    grid = Grid.build(strat, kwargs, constraint, combination_limit(max_combinations))
    _check_size(len(bars.symbols) * len(bars) * len(grid), len(bars.symbols), len(bars),
                len(grid), cap)
    own_stops = _probe(strat, bars, grid.combos[0], sim_options.direction)
    if own_stops:  # recorded: the strategy's stops (numbers or per bar)
        sim_options = sim_options.model_copy(update={"stops_per_bar": "from Signals"})
    cells = len(bars.symbols) * len(bars) * len(grid)
    mode, workers = _workers(processes, threads, cluster, cells)
    job = SweepJob(strat, bars, grid.combos, costs, sim_options, sim_options.periods_per_year,
                   kernel="general" if own_stops else _kernel(sim_options))
    acc, info = _execute(job, mode, workers, budget, cluster, progress)
    seconds = time.perf_counter() - started
    info.update({"symbols": len(bars.symbols), "bars": len(bars), "combos": len(grid),
                 "candidates": grid.n_candidates, "cells": cells, "seconds": seconds,
                 "cells_per_second": cells / seconds, "costs": costs.describe(),
                 "options": sim_options.describe(), "kernel": job.kernel})
    return _result(job, grid, acc, metric, info)


def _execute(job: SweepJob, mode: str, workers: int, budget: int | None, cluster,
             progress: bool) -> tuple[BookAccumulator, dict[str, Any]]:
    """Plan the chunks, run them where ``mode`` says, collect them."""
    bars, n_combos = job.bars, len(job.combos)
    client, owned = (None, False)
    if mode == "dask":
        from workbench.backtesting.sweeps.pools import connect

        client, owned = connect(cluster)
    try:
        plan, entries, budget = _plan(mode, workers, budget, bars, n_combos, client)
        job = replace(job, cache_entries=entries)
        acc = BookAccumulator(len(bars.symbols), n_combos, len(bars))
        _collect(_runner(mode, workers, job, plan, client), acc, len(plan),
                 f"sweep {job.strategy.name}", progress)
        if mode == "dask":
            workers = sum(client.nthreads().values())
    finally:
        if owned:
            client.close()
    return acc, {"mode": mode, "workers": workers, "chunks": len(plan),
                 "symbols_per_chunk": plan.symbols_per_chunk,
                 "combos_per_chunk": plan.combos_per_chunk, "memory_budget": budget,
                 "indicator_computations": acc.cache_misses,
                 "seconds_strategy": float(acc.seconds[0]),
                 "seconds_simulation": float(acc.seconds[1])}


def _result(job: SweepJob, grid: Grid, acc: BookAccumulator, metric: str,
            info: dict[str, Any]) -> SweepResult:
    n_s, cash, ppy = len(job.bars.symbols), job.options.cash, job.periods_per_year
    combos = grid.frame()
    for name, values in book_metrics(acc, cash, n_s, ppy).items():
        combos[name] = values
    return SweepResult(job.strategy.name, grid.names, grid.combos,
                       _table(grid, job.bars.symbols, acc.metrics), combos,
                       book_returns(acc, cash, n_s), ppy, metric, info)
