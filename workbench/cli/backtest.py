"""``workbench backtest`` and ``workbench sweep``: a notebook's strategy, recorded in runs/.

Both load the strategy from the notebook's cells tagged ``parameters`` and ``strategy``
(see :mod:`workbench.strategy.notebook`) without running the rest of it, and write
``runs/<run_id>/`` (manifest and results). The logic lives in
:mod:`workbench.jobs.backtest` and :mod:`workbench.jobs.sweep`; this module parses
and prints.
"""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.grid_args import parse_params
from workbench.cli.output import echo, echo_json
from workbench.errors import ConfigError

__all__ = ["backtest", "sweep"]


def _data_options(fn):
    """--symbols, --timeframe, --start, --end, --strategy: shared by both commands."""
    options = [
        click.option("--symbols", "-s", default=None,
                     help="Comma-separated symbols, or a count N (the first N stored). "
                          "Default: the notebook's `symbols`, else every stored symbol."),
        click.option("--timeframe", "-t", default=None,
                     help="Bar timeframe. Default: the notebook's `timeframe`, else 1Day."),
        click.option("--start", default=None,
                     help="First day (YYYY-MM-DD, New York) or time. Default: the notebook's."),
        click.option("--end", default=None,
                     help="Last day, inclusive, or time. Default: the notebook's."),
        click.option("--strategy", "name", default=None,
                     help="The strategy's name, when the notebook defines several."),
        click.option("-p", "--param", "params", nargs=2, multiple=True, metavar="NAME VALUE",
                     help="A strategy parameter or backtest option (fees_bps, slippage_bps, "
                          "sl_stop, ...); repeatable. VALUE is JSON if it parses, else text."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn




def _choice(symbols, timeframe, start, end):
    from workbench.jobs.backtest import DataChoice

    return DataChoice(symbols=symbols, timeframe=timeframe, start=start, end=end)


def _notebook(path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(f"no such notebook: {path}")
    return path


@click.command()
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@_data_options
@click.option("--json", "as_json", is_flag=True, help="Print the run (id, path, params, stats) as JSON.")
def backtest(notebook: Path, symbols, timeframe, start, end, name, params, as_json: bool) -> None:
    """Backtest the strategy NOTEBOOK defines; the record goes to runs/<run_id>/.

    Runs only the notebook's cells tagged `parameters` and `strategy`. Values come from
    the parameters cell, overridden by -p. The record holds manifest.json and results/
    (stats, trades, equity as Parquet). A failed run is recorded as failed, with its error.

    Example: workbench backtest notebooks/strategies/sma_cross.ipynb -p fast 5 -p fees_bps 1
    """
    from workbench.jobs.backtest import format_value, run_backtest

    run = run_backtest(_notebook(notebook), parse_params(params), name=name,
                       data=_choice(symbols, timeframe, start, end))
    if as_json:
        echo_json(run.to_dict())
        return
    echo(f"backtest {run.headline()}")
    echo("params: " + ", ".join(f"{k}={v}" for k, v in run.params.items()))
    for key, value in run.stats.items():
        echo(f"  {key:<16}{format_value(value, key)}")
    echo(f"record: {run.path}")


@click.command()
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--grid", "-g", "grids", multiple=True, required=True, metavar="NAME=SPEC",
              help="A swept parameter: NAME=start:stop:step (stop inclusive: fast=5:25:5 is "
                   "5,10,...,25) or NAME=a,b,c. Repeatable.")
@click.option("--constraint", "-c", default=None,
              help='Keep only combinations where this holds, e.g. "fast < slow": parameter '
                   "names, numbers, comparisons, and/or/not, + - * / // %.")
@click.option("--metric", "-m", default="sharpe", show_default=True,
              help="Metric that picks the best combination (sharpe, sortino, total_return, ...).")
@_data_options
@click.option("--json", "as_json", is_flag=True, help="Print the run (id, path, best) as JSON.")
def sweep(notebook: Path, grids, constraint, metric, symbols, timeframe, start, end, name,
          params, as_json: bool) -> None:
    """Sweep the strategy NOTEBOOK defines over a parameter grid; record in runs/<run_id>/.

    Prints the best combination by --metric with its deflated Sharpe ratio (DSR: the
    probability its Sharpe beats the best of that many worthless trials) and probability
    of backtest overfitting (PBO). The record's results/ hold table.parquet (symbol x
    combination), combos.parquet (per combination, the book), best.json and, when exactly
    two parameters vary, heatmap.html.

    Example: workbench sweep notebooks/strategies/sma_cross.ipynb --grid fast=5:25:5
    --grid slow=20:60:10 --constraint "fast < slow"
    """
    from workbench.cli.grid_args import parse_grid
    from workbench.jobs.sweep import run_sweep

    grid = dict(parse_grid(g) for g in grids)
    if len(grid) < len(grids):
        raise ConfigError("--grid: a parameter is given twice")
    run = run_sweep(_notebook(notebook), grid, parse_params(params), constraint=constraint,
                    metric=metric, name=name, data=_choice(symbols, timeframe, start, end),
                    progress=not as_json)
    if as_json:
        echo_json(run.to_dict())
        return
    for line in run.lines():
        echo(line)
