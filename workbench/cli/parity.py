"""``workbench parity``: the live engine against the vectorized backtest, signal by signal.

The strategy comes from a notebook (its cells tagged ``parameters`` and ``strategy``, see
:mod:`workbench.strategy.notebook`) or from ``module:function`` (a ``@wb.strategy``
importable from the current directory). The work is :func:`workbench.engine.check_parity`.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from workbench.cli.output import echo, echo_json
from workbench.errors import ConfigError

__all__ = ["parity"]


def load_target(target: str, name: str | None):
    """``(strategy, parameters cell values)`` from a notebook path or ``module:function``."""
    from workbench.strategy import as_strategy
    from workbench.strategy.notebook import load_notebook_strategy

    path = Path(target).expanduser()
    if target.endswith(".ipynb") or path.is_file():
        return load_notebook_strategy(path, name)
    module_name, _, attr = target.partition(":")
    if not module_name or not attr.isidentifier():
        raise ConfigError(f"{target!r}: give a notebook (.ipynb) or module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"cannot import {module_name!r}: {e}") from e
    found = getattr(module, attr, None)
    if not callable(found) or isinstance(found, type):
        raise ConfigError(f"{target}: {module_name} has no strategy function named {attr!r}")
    return as_strategy(found), {}


def _symbols(option: str | None, cell: dict[str, Any], timeframe: str):
    """Names (A,B), a count N (the first N stored), or the notebook's ``symbols`` (None: all)."""
    if option is None:
        value = cell.get("symbols")
        named = isinstance(value, (list, tuple)) and value
        return [str(s).upper() for s in value] if named else None
    text = option.strip()
    if text.isdigit():
        from workbench.data.store import Store

        listing = Store().ls()
        stored = sorted(listing.loc[listing["timeframe"] == timeframe, "symbol"])
        if not stored or int(text) < 1:
            raise ConfigError(f"--symbols {text}: the store holds no {timeframe} bars or N < 1")
        return stored[: int(text)]
    names = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not names:
        raise ConfigError("--symbols: give names (A,B) or a count")
    return names


def _params(strategy, cell: dict[str, Any], pairs) -> dict[str, Any]:
    from workbench.cli.grid_args import parse_value

    given = {k: v for k, v in cell.items() if k in strategy.schema.names}
    given.update({n: parse_value(v) for n, v in pairs})
    return strategy.params(**given)


@click.command()
@click.argument("target", metavar="NOTEBOOK_OR_STRATEGY")
@click.option("--days", "-d", type=click.IntRange(min=1), default=5, show_default=True,
              help="Replay the last N stored sessions.")
@click.option("--symbols", "-s", default=None,
              help="Comma-separated symbols, or a count N (the first N stored). Default: the "
                   "notebook's `symbols`, else every stored symbol.")
@click.option("--timeframe", "-t", default="1Min", show_default=True,
              help="Bar timeframe (the engine's bar; not taken from the notebook, whose "
                   "research often runs on daily bars).")
@click.option("--end", default=None, help="Last session (YYYY-MM-DD). Default: the last stored.")
@click.option("--window", type=click.IntRange(min=1), default=None,
              help="Engine window in rows. Default: the whole replay (anchored at its first "
                   "bar, as in a session); a shorter window slides.")
@click.option("--strategy", "name", default=None,
              help="The strategy's name, when the notebook defines several.")
@click.option("-p", "--param", "pairs", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A strategy parameter (overrides the notebook's); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def parity(target: str, days: int, symbols, timeframe: str, end, window, name, pairs,
           as_json: bool) -> None:
    """Replay stored bars through the live engine and compare every signal with the backtest.

    Takes the last N sessions of stored bars, computes the strategy's signals over them
    at once (as `wb.backtest` does) and again bar by bar through the engine (a rolling
    window, the same function, the last row), then compares every field for every symbol
    at every bar. Exits 1 naming the first mismatch (symbol, time, field, both values).

    Example: workbench parity notebooks/strategies/sma_cross.ipynb --days 5 --symbols 50
    """
    from workbench.data.timeframe import Timeframe
    from workbench.engine import ParityError, check_parity, load_sessions

    strategy, cell = load_target(target, name)
    params = _params(strategy, cell, pairs)
    tf = str(Timeframe.parse(timeframe))
    bars = load_sessions(days, _symbols(symbols, cell, tf), tf, end=end)
    report = check_parity(strategy, bars, params, window=window, progress=not as_json)
    if as_json:
        echo_json(report.to_dict())
    else:
        for line in report.lines():
            echo(line)
    if not report.ok:
        raise ParityError(report)
