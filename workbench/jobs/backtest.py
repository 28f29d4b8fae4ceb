"""Backtests of a notebook's strategy, recorded in ``runs/<run_id>/``; the shared inputs.

    run = run_backtest("notebooks/strategies/sma_cross.ipynb", {"fast": 5})
    run.path, run.stats                    # the record folder and the book's stats

What ``workbench backtest``, ``workbench sweep`` (see :mod:`workbench.jobs.sweep`)
and ``make demo`` share. The strategy is loaded with
:func:`~workbench.strategy.notebook.load_notebook_strategy`. Values (strategy
parameters and backtest options alike) come from the notebook's parameters cell,
overridden by ``params``; a name that is neither a strategy parameter nor a backtest
option is a ``StrategyError`` with the closest name. Bars come from the store: ``data``
fields, else the parameters cell's ``symbols``/``timeframe``/``start``/``end``, else
every stored symbol of ``1Day``.

Bad input (notebook, names, values, options, data, too little history for the warmup)
fails before any record is made. Once the
record exists, a failure finishes it ``failed`` with the error and raises
:class:`RunFailed` (one line, with the record's path and the cause's exit code).
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtesting.run import OPTIONS
from workbench.clock import Clock, LiveClock
from workbench.data.bars import Bars
from workbench.data.store import Store
from workbench.errors import ConfigError, StrategyError, WorkbenchError
from workbench.runs.records import RunRecord
from workbench.strategy import Strategy
from workbench.strategy.notebook import load_notebook_strategy

__all__ = [
    "BacktestRun",
    "DataChoice",
    "Inputs",
    "RunFailed",
    "check_options",
    "format_value",
    "option_defaults",
    "prepare",
    "recorded",
    "run_backtest",
    "select_bars",
    "split_params",
    "write_backtest",
]

DEFAULT_TIMEFRAME = "1Day"
_DATA_NAMES = ("symbols", "timeframe", "start", "end")


class RunFailed(WorkbenchError):
    """A recorded run failed; the record is finished ``failed`` with the error."""

    def __init__(self, record: RunRecord, cause: BaseException) -> None:
        text = " ".join(str(cause).split())
        if not isinstance(cause, WorkbenchError):
            text = f"{type(cause).__name__}: {text}"
        super().__init__(f"{text} (failed run recorded in {record.path})")
        self.record = record
        self.exit_code = getattr(cause, "exit_code", 1)


@dataclass(frozen=True)
class DataChoice:
    """Which bars to run on; None fields fall back to the notebook, then to defaults.

    ``symbols``: a list, ``"A,B"``, a count (the first N stored symbols) or None (all)."""

    symbols: Any = None
    timeframe: str | None = None
    start: Any = None
    end: Any = None


@dataclass
class BacktestRun:
    """A recorded backtest: the record, the result and the parameters it ran with."""

    record: RunRecord
    result: Any
    params: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.record.path

    @property
    def stats(self):
        return self.result.stats()

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.record.run_id, "path": str(self.path),
                "strategy": self.result.strategy, "params": self.params,
                "stats": self.stats.to_dict()}

    def headline(self) -> str:
        """Strategy, data and the key book stats on one line."""
        s, bars = self.stats, self.result.bars
        tf = bars.timeframe
        head = (f"{self.result.strategy} on {len(bars.symbols)} symbols, {tf}, "
                f"{_day(s['start'])} .. {_day(s['end'])} ({s['bars']} bars): ")
        return head + ", ".join(f"{k} {format_value(s[k], k)}" for k in _HEADLINE if k in s)


_HEADLINE = ("total_return", "cagr", "sharpe", "max_drawdown", "trades", "win_rate")
_PERCENT = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure")


def _day(ts) -> str:
    return "?" if ts is None or ts is pd.NaT else f"{pd.Timestamp(ts):%Y-%m-%d}"


def format_value(value: Any, name: str = "") -> str:
    """A stat for people: fractions named like returns as percentages, floats to 4 digits."""
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "n/a"
        return f"{value:.2%}" if name in _PERCENT else f"{value:,.4g}"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def option_defaults() -> dict[str, Any]:
    """The backtest options and their defaults, from ``wb.backtest``'s signature."""
    from workbench.backtesting.run import backtest

    sig = inspect.signature(backtest).parameters
    return {name: sig[name].default for name in OPTIONS}


def split_params(strategy: Strategy, values: dict[str, Any]) -> tuple[dict, dict]:
    """``values`` split into (strategy parameters, backtest options); unknown names raise."""
    names = strategy.schema.names
    for name in values:
        if name not in names and name not in OPTIONS:
            close = difflib.get_close_matches(name, [*names, *OPTIONS], n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise StrategyError(
                f"{strategy.name}: unknown parameter {name!r} (strategy parameters: "
                f"{', '.join(names) or 'none'}; backtest options: {', '.join(OPTIONS)}){hint}")
    return ({k: v for k, v in values.items() if k in names},
            {k: v for k, v in values.items() if k in OPTIONS})


def _symbols(value: Any, timeframe: str, store: Store) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isdigit() else [s.strip() for s in text.split(",") if s.strip()]
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)) or not value:
        raise ConfigError(f"symbols: give names (A,B), a count or nothing, not {value!r}")
    if isinstance(value, int):
        listing = store.ls()
        stored = sorted(listing.loc[listing["timeframe"] == timeframe, "symbol"])
        return stored[:value] or None
    return [str(s).upper() for s in value]


def select_bars(data: DataChoice, defaults: dict[str, Any] | None = None,
                store: Store | None = None) -> Bars:
    """The bars ``data`` names, filling its gaps from ``defaults`` (a parameters cell)."""
    from workbench.data.timeframe import Timeframe

    defaults, store = defaults or {}, store or Store()
    chosen = {n: getattr(data, n) if getattr(data, n) is not None else defaults.get(n)
              for n in _DATA_NAMES}
    timeframe = str(Timeframe.parse(chosen["timeframe"] or DEFAULT_TIMEFRAME))
    symbols = _symbols(chosen["symbols"], timeframe, store)
    return store.load(symbols, timeframe, chosen["start"], chosen["end"])


def check_options(options: dict[str, Any]) -> None:
    """Refuse a bad backtest option value now (``ConfigError`` naming it), not mid-run."""
    from workbench.backtesting.run import build_settings

    build_settings(options)


@dataclass
class Inputs:
    """A run's checked inputs: strategy, its given parameters, backtest options, bars."""

    notebook: Path
    strategy: Strategy
    strategy_params: dict[str, Any]
    options: dict[str, Any]
    bars: Bars


def prepare(notebook, params: dict[str, Any] | None, data: DataChoice | None,
            name: str | None, store: Store | None, swept: tuple[str, ...] = ()) -> Inputs:
    """Load the strategy, merge the parameters cell with ``params`` (``swept`` names left
    out), split them into strategy parameters and options, and load the bars."""
    strategy, cell = load_notebook_strategy(notebook, name)
    known = {*strategy.schema.names, *OPTIONS}
    given = {**{k: v for k, v in cell.items() if k in known}, **(params or {})}
    chosen, options = split_params(strategy, {k: v for k, v in given.items() if k not in swept})
    options = {**option_defaults(), **options}
    check_options(options)
    bars = select_bars(data or DataChoice(), cell, store)
    return Inputs(Path(notebook), strategy, chosen, options, bars)


def recorded(record: RunRecord, body):
    """Run ``body()``; on failure finish the record failed and raise :class:`RunFailed`."""
    try:
        return body()
    except KeyboardInterrupt as e:
        if not record.closed:
            record.finish("interrupted", error=e)
        raise
    except Exception as e:  # every failure is recorded, then reported
        if not record.closed:
            record.finish("failed", error=e)
        raise RunFailed(record, e) from e


def write_backtest(record: RunRecord, result) -> list[str]:
    """A backtest's results into ``record``: ``stats`` (the book and each symbol),
    ``trades`` and ``equity`` as Parquet; the file names."""
    return [record.write_parquet("stats", result.stats_table()).name,
            record.write_parquet("trades", result.trades()).name,
            record.write_parquet("equity", result.equity()).name]


def run_backtest(notebook, params: dict[str, Any] | None = None, *,
                 data: DataChoice | None = None, name: str | None = None,
                 store: Store | None = None, clock: Clock | None = None,
                 root=None) -> BacktestRun:
    """Backtest the notebook's strategy and record it: ``results/`` holds ``stats``,
    ``trades`` and ``equity`` as Parquet; the manifest's ``extra`` the book's stats."""
    from workbench.backtesting.run import backtest

    inp = prepare(notebook, params, data, name, store)
    resolved = inp.strategy.params(**inp.strategy_params)
    inp.strategy.check_history(inp.bars, resolved)
    all_params = {**resolved, **inp.options}
    record = RunRecord.create("backtest", inp.strategy, all_params, "backtest", inp.bars,
                              clock or LiveClock(), root)

    def body() -> BacktestRun:
        result = backtest(inp.strategy, inp.bars, **inp.options, **resolved)
        write_backtest(record, result)
        record.finish("succeeded", extra={"notebook": str(inp.notebook.resolve()),
                                   "stats": result.stats()})
        return BacktestRun(record, result, all_params)

    return recorded(record, body)


