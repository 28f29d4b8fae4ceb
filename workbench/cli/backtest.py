"""``workbench backtest`` and ``workbench sweep``: the notebook, executed by papermill, recorded.

Each runs the whole notebook on the ``workbench`` kernel in its mode (``backtest`` or
``sweep``, see :mod:`workbench.cli.notebook_run`); the notebook's last cell, ``wb.run``,
does the work and writes the record's ``results/`` (:mod:`workbench.execution.recorded`),
which this module reads and prints.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

import click

from workbench.cli.grid_args import parse_params
from workbench.cli.notebook_run import (
    data_options,
    execute,
    finish,
    merge,
    notebook_values,
    read_result,
    start_kernel_early,
    when,
)
from workbench.cli.output import echo, echo_json
from workbench.errors import ConfigError

__all__ = ["backtest", "format_value", "sweep"]

_PERCENT = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure")
_MONEY = ("initial_equity", "final_equity", "fees", "pnl", "cash")


def format_value(value: Any, name: str = "") -> str:
    """A stat for people: fractions named like returns as percentages, money to the cent
    with thousands separators, other floats to 4 significant digits."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NaT:
        return "n/a"
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "n/a"
        if name in _PERCENT:
            return f"{value:.2%}"
        return f"{value:,.2f}" if name in _MONEY else f"{value:,.4g}"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "none"


def _data_line(settings: dict[str, Any]) -> str:
    data = settings.get("data") or {}
    symbols = data.get("symbols") or []
    shown = ", ".join(symbols[:10]) + (f", ... ({len(symbols)})" if len(symbols) > 10 else "")
    return (f"data: {data.get('timeframe')} bars of {shown}, {when(data.get('start'))} .. "
            f"{when(data.get('end'))} ({data.get('bars')} timestamps)")


def _settings_lines(settings: dict[str, Any] | None, label: str = "parameters") -> list[str]:
    if not settings:
        return ["(no results/settings.json recorded)"]
    return [(f"strategy: {settings.get('strategy')} ({label}: "
             f"{_pairs(settings.get('params') or {})})"),
            f"options: {_pairs(settings.get('options') or {})}", _data_line(settings)]


def _book(stats) -> dict[str, Any]:
    """The book's row of results/stats.parquet (scope "book") as name -> value."""
    if stats is None or stats.empty:
        return {}
    row = stats.loc[stats["scope"] == "book"].iloc[0]
    return {k: v for k, v in row.items() if k not in ("scope", "symbol")}


@click.command()
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@data_options
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document: the run, its settings and the book's stats.")
def backtest(notebook: Path, symbols, timeframe, start, end, params, timeout,
             as_json: bool) -> None:
    """Execute NOTEBOOK with papermill in mode backtest; the record goes to runs/<run_id>/.

    The whole notebook runs on the `workbench` kernel with `mode` "backtest" and the given
    values injected into its `parameters` cell (checked before the kernel starts: a name
    the notebook lacks is refused with the closest one). Its `wb.run` call backtests the
    strategy it names and records results/settings.json (every value used), stats, trades
    and equity (Parquet); the record also keeps notebook.ipynb, the executed notebook with
    its plots. Prints the book's stats and the parameters used (each cell's progress goes to
    stderr). Exits 0 only when the run succeeded; a failed run prints its error on one line.

    Example: workbench backtest notebooks/strategies/sma_cross.ipynb -p fast 5 -p fees_bps 1
    """
    values, notes = notebook_values(notebook, parse_params(params), {
        "symbols": symbols, "timeframe": timeframe, "start": start, "end": end})
    start_kernel_early(notebook)
    run = execute(notebook, kind="backtest", mode="backtest", params=values, timeout=timeout,
                  notes=notes)
    settings = read_result(run, "settings.json")
    stats = _book(read_result(run, "stats.parquet"))
    if as_json:
        echo_json({"run": run.to_dict(), "notes": notes, "settings": settings, "stats": stats})
    else:
        echo(f"backtest {run.outcome} in {run.seconds:.1f} s: {notebook.name}")
        for line in _settings_lines(settings):
            echo(line)
        for key, value in stats.items():
            echo(f"  {key:<16}{format_value(value, key)}")
        echo(f"record: {run.path}")
    finish(run, "backtest")


def _grid(grids) -> dict[str, list] | None:
    from workbench.cli.grid_args import parse_grid

    if not grids:
        return None
    pairs = [parse_grid(g) for g in grids]
    grid = dict(pairs)
    if len(grid) < len(pairs):
        raise ConfigError("--grid: a parameter is given twice")
    return grid


def _sweep_limits(max_combinations: str | None, max_cells: str | None, grid) -> dict[str, str]:
    """The size limits (checked here, before the kernel starts) as the environment the
    notebook's kernel inherits; the grid's candidates refused at once when over the limit."""
    from workbench.backtesting.sweeps import grid as G
    from workbench.backtesting.sweeps import runner as R

    env = {}
    for option, text, variable, check in (
            ("--max-combinations", max_combinations, G.LIMIT_VARIABLE, G.combination_limit),
            ("--max-cells", max_cells, R.CELLS_VARIABLE, R.cell_limit)):
        if text is None:
            continue
        none = text.strip().lower() == "none"
        try:
            value = None if none else check(text.strip())
        except ConfigError as e:
            raise ConfigError(f"{option} {text!r}: {str(e).split(': ', 1)[1]}") from None
        env[variable] = "none" if value is None else str(value)
    if isinstance(grid, dict) and all(isinstance(v, list) for v in grid.values()):
        with _environment(env):
            limit = G.combination_limit()
        count = math.prod(len(v) for v in grid.values())
        if limit is not None and count > limit:
            sizes = " x ".join(f"{n} {len(v):,}" for n, v in grid.items() if len(v) > 1)
            raise G._too_many(count, sizes, limit)
    return env


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """``values`` set in this process's environment (the kernel's) for the block only."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check_constraint(text: str | None) -> None:
    """The rule's form (names, numbers, comparisons, ...) before the kernel; its names are
    checked against the strategy's parameters inside it."""
    import ast

    from workbench.backtesting.sweeps.grid import Constraint

    if text is None:
        return
    try:
        names = {n.id for n in ast.walk(ast.parse(str(text).strip(), mode="eval"))
                 if isinstance(n, ast.Name)}
    except SyntaxError:
        names = set()
    Constraint(text, names)


def _check_metric(metric: str | None) -> None:
    from workbench.backtesting.metrics import METRICS

    known = (*METRICS, "final_equity")
    if metric is not None and metric not in known:
        raise ConfigError(f"--metric {metric!r}: one of {', '.join(known)}")


def _sweep_lines(best: dict[str, Any] | None) -> list[str]:
    if not best:
        return ["no best.json recorded"]
    info, metrics = best.get("info") or {}, best.get("metrics") or {}
    grid = best.get("grid") or {}
    shown = ", ".join(f"{k} {format_value(metrics[k], k)}" for k in dict.fromkeys(
        (best["metric"], "sharpe", "total_return", "max_drawdown", "trades")) if k in metrics)
    lines = [
        (f"sweep {best.get('strategy')}: {info.get('combos', best.get('n_combos'))} combinations"
         f" (of {info.get('candidates', '?')}) x {info.get('symbols', '?')} symbols x "
         f"{info.get('bars', '?')} bars"),
        f"grid: {'; '.join(f'{k}={v}' for k, v in grid.items())}",
        f"constraint: {best.get('constraint') or 'none'}",
        f"best by {best['metric']}: {_pairs(best.get('params') or {})}",
        f"  {shown}",
        f"  {best.get('dsr_summary') or 'DSR n/a'}",
        f"  {best.get('pbo_summary') or 'PBO n/a'}",
    ]
    return lines + [f"  note: {note}" for note in best.get("notes") or ()]


@click.command()
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--grid", "-g", "grids", multiple=True, metavar="NAME=SPEC",
              help="A swept strategy parameter: NAME=start:stop:step (stop inclusive: "
                   "fast=5:25:5 is 5,10,...,25) or NAME=a,b,c. Repeatable; together they "
                   "replace the notebook's `grid`. Default: the notebook's `grid`.")
@click.option("--constraint", "-c", default=None,
              help='The notebook\'s `constraint`: keep only combinations where this holds, e.g. '
                   '"fast < slow" (parameter names, numbers, comparisons, and/or/not, '
                   "+ - * / // %).")
@click.option("--metric", "-m", default=None,
              help="The notebook's `metric`: what picks the best combination (sharpe, "
                   "sortino, total_return, ...).")
@click.option("--max-combinations", default=None, metavar="N",
              help="Refuse a grid of more combinations (before the constraint) than N, or "
                   "'none' for no limit. Default 1,000,000 (a bigger sweep would not finish).")
@click.option("--max-cells", default=None, metavar="N",
              help="Refuse a sweep of more bar-combinations (symbols x bars x combinations) "
                   "than N, or 'none'. Default 5e10 (about 1.5 hours at ~10 M a second).")
@data_options
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document: the run, its settings and best.json.")
def sweep(notebook: Path, grids, constraint, metric, max_combinations, max_cells, symbols,
          timeframe, start, end, params, timeout, as_json: bool) -> None:
    """Execute NOTEBOOK with papermill in mode sweep; the record goes to runs/<run_id>/.

    The whole notebook runs on the `workbench` kernel with `mode` "sweep" and `grid` (a
    dict of lists), `constraint`, `metric` and the -p values injected into its `parameters`
    cell (checked before the kernel starts). Its `wb.run` call sweeps the strategy it names;
    the command prints, from the record's best.json, the best combination by the metric with its
    deflated Sharpe ratio (DSR: the probability its Sharpe beats the best of that many
    worthless trials) and probability of backtest overfitting (PBO). The record's results/
    hold settings.json, table.parquet (symbol x combination), combos.parquet (per
    combination, the book), best.json and, when exactly two parameters vary, heatmap.html.
    Each cell's progress goes to stderr; exits 0 only when the run succeeded.

    Example: workbench sweep notebooks/strategies/sma_cross.ipynb --grid fast=5:25:5
    --grid slow=20:60:10 --constraint "fast < slow"
    """
    grid = _grid(grids)
    _check_constraint(constraint)
    _check_metric(metric)
    given = parse_params(params)
    _check_metric(given.get("metric") if isinstance(given.get("metric"), str) else None)
    if grid:
        for name in grid:
            if name in given:
                raise ConfigError(f"--grid {name} and -p {name} both given: a swept parameter "
                                  "takes its values from the grid")
    values, notes = notebook_values(notebook, merge(given, {
        "grid": grid, "constraint": constraint, "metric": metric}), {
        "symbols": symbols, "timeframe": timeframe, "start": start, "end": end})
    limits = _sweep_limits(max_combinations, max_cells, values.get("grid"))
    from workbench.execution.strategy_names import check_grid_names

    check_grid_names(notebook, values.get("grid"), values.get("constraint"))  # before a kernel
    start_kernel_early(notebook)
    with _environment(limits):
        run = execute(notebook, kind="sweep", mode="sweep", params=values, timeout=timeout,
                      notes=notes)
    settings = read_result(run, "settings.json")
    best = read_result(run, "best.json")
    if as_json:
        echo_json({"run": run.to_dict(), "notes": notes, "settings": settings, "best": best})
    else:
        echo(f"sweep {run.outcome} in {run.seconds:.1f} s: {notebook.name}")
        if best is not None or settings is not None:
            for line in [*_sweep_lines(best), *_settings_lines(settings, "fixed parameters")]:
                echo(line)
        files = sorted(p.name for p in (run.path / "results").glob("*")) if (
            run.path / "results").is_dir() else []
        echo(f"record: {run.path} (results: {', '.join(files) or 'none'})")
    finish(run, "sweep")
