"""A run's backtest done again in the page's kernel, from what its record says.

    strategy = record_strategy(run_dir)               # the notebook's @wb.strategy
    result = backtest_of(run_dir, {"fast": 5, "slow": 20})  # one sweep combination

The strategy comes from the notebook the record names (``manifest.notebook.path``), and
only when that notebook's code still hashes as the run's (``notebook.hash``): an edited
notebook is refused by name, never backtested silently in place of the one that ran.
Only the cells that define a ``@wb.strategy`` are executed (in a fresh namespace), never
the notebook's data or trading cells, and never anything under ``runs/``. The bars are
the record's own (``results/settings.json``: timeframe, symbols, first and last bar),
loaded from the store, and every backtest option is the record's.

A paper session's replay (the drift page's) is not here: it is the recorded drift
report's own, :func:`workbench.monitor.drift_replay.replay_session`, with the strategy
:func:`record_strategy` gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.dashboards.queries import read_json
from workbench.errors import DataError
from workbench.execution.record_strategy import record_strategy

__all__ = ["backtest_of", "record_bars", "record_strategy"]


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


def _options(settings: dict) -> dict:
    from workbench.backtesting.run import OPTIONS

    return {k: v for k, v in (settings.get("options") or {}).items() if k in OPTIONS}


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
