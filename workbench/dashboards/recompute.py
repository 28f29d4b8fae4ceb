"""A run's backtest done again in the page's kernel, from what its record says.

    strategy = record_strategy(run_dir)               # the notebook's @wb.strategy
    result = backtest_of(run_dir, {"fast": 5, "slow": 20})  # one sweep combination
    replay = session_replay(run_dir)                  # a paper session's day, backtested

The strategy comes from the notebook the record names (``manifest.notebook.path``), and
only when that notebook's code still hashes as the run's (``notebook.hash``): an edited
notebook is refused by name, never backtested silently in place of the one that ran.
Only the cells that define a ``@wb.strategy`` are executed (in a fresh namespace), never
the notebook's data or trading cells, and never anything under ``runs/``. The bars are
the record's own (``results/settings.json``: timeframe, symbols, first and last bar),
loaded from the store, and every backtest option is the record's.

A paper session's replay is the backtest of the bars the session loaded (the history
before the day and the day), with the strategy's signals before the replayed day cleared,
each symbol its own account of the session's cash per account: the research backtest of
what the session traded (the same rule as ``tests/test_session_parity.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from workbench.dashboards.queries import read_json
from workbench.errors import DataError
from workbench.strategy import Strategy, TradingFrom

__all__ = ["SessionReplay", "backtest_of", "record_bars", "record_strategy", "session_replay"]


def record_strategy(run_dir: Path):
    """The strategy of the record's notebook, if its code is the run's (see the module doc)."""
    from workbench.execution.hashing import hash_of, read_notebook

    manifest = read_json(Path(run_dir), "manifest") or {}
    book = manifest.get("notebook") or {}
    path, wanted = book.get("path"), book.get("hash")
    name = manifest.get("strategy")
    if not path or not wanted:
        raise DataError(f"run {manifest.get('run_id')}: its record names no notebook and hash; "
                        "it cannot be backtested again")
    notebook = read_notebook(path)
    if hash_of(notebook) != wanted:
        raise DataError(f"{path} has changed since run {manifest.get('run_id')} (its code no "
                        "longer hashes as the run's): not recomputed; run it again instead")
    namespace: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "code" and "@wb.strategy" in text:
            exec(compile(text, f"{Path(path).name}:strategy", "exec"), namespace)  # noqa: S102
    found = [v for v in namespace.values() if isinstance(v, Strategy)
             and (name is None or v.name == name)]
    if len(found) != 1:
        raise DataError(f"{path}: {len(found)} strategies named {name!r} in its @wb.strategy "
                        "cells; cannot tell which one the run used")
    return found[0]


def record_bars(run_dir: Path, start=None):
    """The bars the record's run used, from the store (``settings.json``'s ``data``)."""
    from workbench.data.store import Store

    settings = _settings(run_dir)
    data = settings.get("data") or {}
    if not data.get("timeframe") or not data.get("symbols"):
        raise DataError(f"{run_dir.name}: settings.json names no timeframe or symbols")
    bars = Store().load(data["symbols"], data["timeframe"], start=start or data["start"],
                        end=data["end"])
    if len(bars) == 0:
        raise DataError(f"{run_dir.name}: the store holds none of its bars any more")
    return bars


def _settings(run_dir: Path) -> dict:
    settings = read_json(Path(run_dir), "settings")
    if settings is None:
        raise DataError(f"{Path(run_dir).name}: no results/settings.json")
    return settings


def _options(settings: dict, cash: float | None = None) -> dict:
    from workbench.backtesting.run import OPTIONS

    options = {k: v for k, v in (settings.get("options") or {}).items() if k in OPTIONS}
    if cash is not None:
        options["cash"] = cash
    return options


def backtest_of(run_dir: Path, params: dict[str, Any]):
    """The backtest of the record's strategy on its bars with its options and ``params``
    (over the parameters it ran with): a sweep combination's equity, computed again."""
    from workbench.backtesting.run import backtest

    run_dir = Path(run_dir)
    settings = _settings(run_dir)
    strategy = record_strategy(run_dir)
    merged = {**(settings.get("params") or {}), **params}
    return backtest(strategy, record_bars(run_dir), **_options(settings),
                    **strategy.params(**merged))


def _session_bars(settings: dict, day_start: pd.Timestamp):
    """The bars the session loaded: ``history_days`` sessions before its day, and the day."""
    from workbench.engine import load_sessions

    data, used = settings.get("data") or {}, settings.get("settings") or {}
    if not used.get("history_days"):  # never guessed: another window is another replay
        raise DataError("the record does not say how many days of history its session "
                        "loaded (settings.history_days): the replay cannot load its bars")
    days = int(used["history_days"]) + 1
    return load_sessions(days, data.get("symbols"), data["timeframe"],
                         end=day_start.tz_convert("America/New_York").strftime("%Y-%m-%d"))


class SessionReplay:
    """A paper session's day backtested: ``result`` (a BacktestResult), ``day_start`` (UTC),
    ``params``, ``cash`` per account and the strategy's ``signals`` on the bars."""

    def __init__(self, result, day_start: pd.Timestamp, params: dict, cash: float,
                 signals) -> None:
        self.result, self.day_start, self.params = result, day_start, params
        self.cash, self.signals = cash, signals


def session_replay(run_dir: Path) -> SessionReplay:
    """The backtest of a replayed or live paper session's day (see the module doc)."""
    from workbench.backtesting.run import backtest
    from workbench.times import NEW_YORK

    run_dir = Path(run_dir)
    settings = _settings(run_dir)
    if settings.get("mode") != "paper":
        raise DataError(f"{run_dir.name}: not a paper session (mode {settings.get('mode')!r})")
    used = settings.get("settings") or {}
    if used.get("accounts", "per_symbol") != "per_symbol":
        print(f"NOTE: {run_dir.name} shared one account between its symbols; the replay "
              "backtests each symbol on its own account, so sizes differ by design")
    day = used.get("replay_date") or (read_json(run_dir, "manifest") or {}).get("started_at")
    if day is None:
        raise DataError(f"{run_dir.name}: no replay_date and no start: which day is it?")
    day_start = pd.Timestamp(str(day)[:10]).tz_localize(NEW_YORK).tz_convert("UTC")
    strategy = record_strategy(run_dir)
    params = strategy.params(**(settings.get("params") or {}))
    cash = float((settings.get("sizing") or {}).get("cash") or settings["options"]["cash"])
    bars = _session_bars(settings, day_start)
    trading = TradingFrom(strategy, day_start)
    result = backtest(trading, bars, **_options(settings, cash), **params)
    return SessionReplay(result, day_start, params, cash, trading(bars, **params))
