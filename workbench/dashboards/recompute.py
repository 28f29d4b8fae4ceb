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
from workbench.strategy import Strategy

__all__ = ["backtest_of", "record_bars", "record_strategy"]


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
