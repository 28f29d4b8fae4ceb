"""The research modes of ``wb.run`` inside the kernel: backtest, sweep, walk-forward, parity.

Each shows its figure and numbers in the notebook and, given the open record the runner
prepared, writes ``results/``:

* every mode: ``settings.json`` (:func:`settings_doc`: strategy parameters, every backtest
  option, costs, sizing and accounts, data, the mode's settings), first;
* ``backtest``: ``stats`` (the book's row, scope "book", then each symbol's), ``trades``,
  ``equity`` (Parquet): :func:`write_backtest`;
* ``sweep``: ``table``, ``combos`` (Parquet), ``best.json`` (the best combination by the
  metric with its DSR and PBO, the constraint, the sweep's size) and, when two parameters
  vary, ``heatmap.html``: :func:`write_sweep`;
* ``walk_forward``: ``oos_stats.json`` (out-of-sample ``sharpe``, ``max_drawdown``, ...:
  what the promotion gates read), ``folds``, ``oos_equity``, ``oos_trades`` (Parquet);
* ``parity``: ``parity.json`` (``mismatches``, 0 = ok, and the first one; ``lookahead_clean``
  from :func:`~workbench.strategy.lookahead.lookahead_check` on the same bars); a mismatch
  raises :class:`~workbench.engine.parity.ParityError` and a look-ahead
  :class:`~workbench.strategy.lookahead.LookaheadError`, so the run fails.

None of them finishes the record: the runner outside the kernel records the outcome.
"""

from __future__ import annotations

import difflib
import inspect
import json
from typing import Any

from workbench.data.bars import Bars
from workbench.errors import ConfigError, StrategyError
from workbench.runs.records import RunRecord
from workbench.strategy import Strategy

__all__ = ["grid_values", "option_defaults", "run_backtest", "run_parity", "run_sweep",
           "run_walk_forward", "settings_doc", "show", "write_backtest", "write_sweep"]


def show(obj: Any) -> None:
    """Display ``obj`` in the notebook (a no-op outside a kernel)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with the kernel
        return
    if get_ipython() is not None:
        if type(obj).__module__.startswith("plotly."):
            from workbench.backtesting.plots import offline_notebook_html

            offline_notebook_html()  # the figure also carries offline HTML (nbconvert, viewers)
        display(obj)


def option_defaults() -> dict[str, Any]:
    """The backtest options and their defaults, from ``wb.backtest``'s signature."""
    from workbench.backtesting.run import OPTIONS, backtest

    sig = inspect.signature(backtest).parameters
    return {name: sig[name].default for name in OPTIONS}


def all_options(options: dict[str, Any]) -> dict[str, Any]:
    """Every backtest option: the given ones over the defaults, checked now (a bad value is
    a ``ConfigError`` naming it, not a failure mid-run)."""
    from workbench.backtesting.run import build_settings

    merged = {**option_defaults(), **options}
    build_settings(merged)
    return merged


def grid_values(strategy: Strategy, grid: dict[str, list]) -> dict[str, list]:
    """Each swept value checked and converted by the strategy's schema; only strategy
    parameters are swept (an unknown name is refused with the closest one)."""
    from workbench.backtesting.run import OPTIONS

    names = strategy.schema.names
    out = {}
    for pname, values in grid.items():
        if pname in OPTIONS:
            raise ConfigError(f"grid {pname}: only strategy parameters are swept "
                              f"({', '.join(names) or 'none'}); a backtest option takes one value")
        if pname not in names:
            close = difflib.get_close_matches(pname, list(names), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise StrategyError(f"{strategy.name}: unknown parameter {pname!r} in grid "
                                f"(strategy parameters: {', '.join(names) or 'none'}){hint}")
        if not values:
            raise ConfigError(f"grid {pname}: no values")
        param = strategy.schema.params[pname]
        out[pname] = [param.coerce(v, strategy.name) for v in values]
    return out


def write_backtest(record: RunRecord, result) -> list[str]:
    """A backtest's results into ``record``: ``stats`` (the book and each symbol),
    ``trades`` and ``equity`` as Parquet; the file names."""
    return [record.write_parquet("stats", result.stats_table()).name,
            record.write_parquet("trades", result.trades()).name,
            record.write_parquet("equity", result.equity()).name]


def write_sweep(record: RunRecord, result, best, grid: dict[str, list],
                constraint: str | None) -> list[str]:
    """table.parquet, combos.parquet, best.json and (two varying parameters) heatmap.html;
    the file names."""
    from workbench.backtesting.plots import write_html

    doc = {"strategy": result.strategy, **best.to_dict(), "constraint": constraint,
           "grid": grid, "info": result.info}
    paths = [record.write_parquet("table", result.table),
             record.write_parquet("combos", result.combos),
             record.write_json("best", doc)]
    varying = [k for k, v in grid.items() if len(v) > 1]
    if len(varying) == 2:
        fig = result.heatmap(varying[0], varying[1], metric=best.metric)
        paths.append(write_html(fig, record.results_dir / "heatmap.html"))  # offline: no CDN
    return [p.name for p in paths]


def settings_doc(mode: str, strategy: Strategy, params: dict[str, Any],
                 options: dict[str, Any], bars: Bars, settings: dict[str, Any],
                 accounts: str = "per_symbol") -> dict[str, Any]:
    """Everything a run used, for ``results/settings.json``."""
    from workbench.backtesting.run import build_settings

    costs, _ = build_settings(options)
    return {
        "mode": mode, "strategy": strategy.name, "params": params, "options": options,
        "costs": costs.describe(),
        "sizing": {"accounts": accounts, "size": options["size"],
                   "cash": settings.get("cash_per_account", options["cash"]),  # per account
                   "shares": options["shares"]},
        "data": {"timeframe": str(bars.timeframe) if bars.timeframe else None,
                 "symbols": list(bars.symbols), "start": bars.index[0],
                 "end": bars.index[-1], "bars": len(bars)},
        "settings": {k: v for k, v in settings.items()},
    }


def _begin(mode, strategy, bars, params, options, settings, record):
    """(resolved parameters, every option); ``settings.json`` written into ``record``."""
    resolved = strategy.params(**params)
    options = all_options(options)
    if record is not None:
        record.write_json("settings", settings_doc(mode, strategy, resolved, options, bars,
                                                   settings))
    return resolved, options


def run_backtest(strategy: Strategy, bars: Bars, params, options, settings,
                 record: RunRecord | None):
    from workbench.backtesting.run import backtest

    resolved, options = _begin("backtest", strategy, bars, params, options, settings, record)
    strategy.check_history(bars, resolved)
    result = backtest(strategy, bars, **options, **resolved)
    if record is not None:
        write_backtest(record, result)
    show(result.plot(bars.symbols[0]))
    show(result.stats())
    return result


def _sweep_inputs(strategy: Strategy, params, settings) -> tuple[dict, dict, Any]:
    """(fixed parameters, swept values checked by the schema, the constraint or None).

    The grid's names are swept whatever single value the notebook also gives them."""
    from workbench.backtesting.sweeps.grid import Constraint

    grid = settings["grid"]
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"grid: give parameter -> values, e.g. {{'fast': [5, 10]}}, "
                          f"not {grid!r}")
    values = grid_values(strategy, {k: list(v) if isinstance(v, (list, tuple, range)) else [v]
                                    for k, v in grid.items()})
    first = {k: v[0] for k, v in values.items()}  # a swept name's single value gives way
    fixed = {k: v for k, v in strategy.params(**{**params, **first}).items() if k not in values}
    text = settings["constraint"]
    if text is not None and not isinstance(text, str):
        raise ConfigError(f"constraint: give a text rule like 'fast < slow', not {text!r}")
    rule = Constraint(text, strategy.schema.names) if text else None
    return fixed, values, rule


def run_sweep(strategy: Strategy, bars: Bars, params, options, settings,
              record: RunRecord | None):
    from workbench.backtesting.sweeps.runner import sweep

    fixed, values, rule = _sweep_inputs(strategy, params, settings)
    options = all_options(options)
    if record is not None:
        record.write_json("settings", settings_doc("sweep", strategy, fixed, options, bars,
                                                   {**settings, "grid": values}))
    result = sweep(strategy, bars, constraint=rule, metric=settings["metric"], progress=False,
                   **options, **fixed, **values)
    best = result.best(settings["metric"])
    if record is not None:
        write_sweep(record, result, best, values, settings["constraint"])
    varying = [k for k, v in values.items() if len(v) > 1]
    if len(varying) == 2:
        show(result.heatmap(varying[0], varying[1], metric=best.metric))
    show(best)
    return result


def run_walk_forward(strategy: Strategy, bars: Bars, params, options, settings,
                     record: RunRecord | None):
    from workbench.backtesting.walkforward import walk_forward

    fixed, values, rule = _sweep_inputs(strategy, params, settings)
    options = all_options(options)
    if record is not None:
        record.write_json("settings", settings_doc("walk_forward", strategy, fixed, options,
                                                   bars, {**settings, "grid": values}))
    result = walk_forward(strategy, bars, {**fixed, **values}, train=settings["train"],
                          test=settings["test"], metric=settings["metric"], constraint=rule,
                          anchored=bool(settings["anchored"]), progress=False, **options)
    stats = result.stats()
    if record is not None:
        record.write_json("oos_stats", stats.to_dict())
        folds = result.folds.assign(params=result.folds["params"].map(lambda p: json.dumps(p, default=str)))
        record.write_parquet("folds", folds)
        record.write_parquet("oos_equity", result.equity().to_frame())
        record.write_parquet("oos_trades", result.trades)
    show(result.plot())
    show(stats)
    return result


def run_parity(strategy: Strategy, bars: Bars, params, options, settings,
               record: RunRecord | None):
    from workbench.engine.parity import ParityError, check_parity
    from workbench.strategy.lookahead import LookaheadError, lookahead_check

    resolved, _ = _begin("parity", strategy, bars, params, options, settings, record)
    report = check_parity(strategy, bars, resolved, window=settings["window"])
    try:  # the promotion gates read both: engine parity and a clean look-ahead check
        lookahead, peeked = lookahead_check(strategy, bars, **resolved), None
    except LookaheadError as e:
        lookahead, peeked = e.report, e
    if record is not None:
        record.write_json("parity", {**report.to_dict(), "lookahead_clean": lookahead.ok,
                                     "lookahead": str(lookahead.first_mismatch or "")})
    print("\n".join(report.lines()))
    print(f"look-ahead: {'clean' if lookahead.ok else lookahead.first_mismatch}")
    if not report.ok:
        raise ParityError(report)
    if peeked is not None:
        raise peeked
    return report
