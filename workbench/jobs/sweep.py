"""Sweeps of a notebook's strategy, recorded in ``runs/<run_id>/`` (kind ``sweep``).

    run = run_sweep("notebooks/strategies/sma_cross.ipynb",
                    {"fast": [5, 10, 15], "slow": [20, 40]}, constraint="fast < slow")
    run.best.params, run.best.dsr, run.best.pbo
    run.path / "results"      # table.parquet, combos.parquet, best.json, heatmap.html

Inputs are prepared as for a backtest (:func:`workbench.jobs.backtest.prepare`); the grid
names must be strategy parameters and every value passes the strategy's schema; the
constraint is a :class:`~workbench.backtesting.sweeps.grid.Constraint` and must admit at least one
combination; the bars must cover every combination's warmup. All of that is checked
before the record is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.clock import Clock, LiveClock
from workbench.data.store import Store
from workbench.errors import ConfigError
from workbench.jobs.backtest import DataChoice, format_value, prepare, recorded, split_params
from workbench.runs.records import RunRecord
from workbench.strategy import Strategy

__all__ = ["SweepRun", "grid_values", "run_sweep", "write_sweep"]


@dataclass
class SweepRun:
    """A recorded sweep: the record, the ``SweepResult`` and its best combination (``Best``)."""

    record: RunRecord
    result: Any
    best: Any
    params: dict[str, Any]
    files: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.record.path

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.record.run_id, "path": str(self.path),
                "best": self.best.to_dict(), "info": self.result.info, "files": self.files}

    def lines(self) -> list[str]:
        """What a person reads: the sweep, the best parameters with DSR and PBO, the record."""
        best, info = self.best, self.result.info
        shown = ", ".join(f"{k}={v}" for k, v in best.params.items())
        stats = ", ".join(f"{k} {format_value(best.metrics[k], k)}"
                          for k in dict.fromkeys((best.metric, *_SHOWN)) if k in best.metrics)
        return [
            (f"sweep {self.result.strategy}: {info['combos']:,} combinations "
             f"(of {info['candidates']:,}) x {info['symbols']} symbols x {info['bars']:,} bars "
             f"in {info['seconds']:.1f} s"),
            f"best by {best.metric}: {shown}",
            f"  {stats}",
            f"  {best.deflated.summary() if best.deflated else 'DSR n/a'}",
            f"  {best.overfitting.summary() if best.overfitting else 'PBO n/a'}",
            *(f"  note: {note}" for note in best.notes),
            f"record: {self.path} (results: {', '.join(self.files)})",
        ]


_SHOWN = ("sharpe", "total_return", "max_drawdown", "trades")


def grid_values(strategy: Strategy, grid: dict[str, list]) -> dict[str, list]:
    """Each swept value checked and converted by the strategy's schema."""
    out = {}
    for pname, values in grid.items():
        if pname not in strategy.schema.names:
            split_params(strategy, {pname: None})  # the unknown-name error, with a hint
            raise ConfigError(f"--grid {pname}: only strategy parameters can be swept "
                              f"({', '.join(strategy.schema.names)}); give options with -p")
        if not values:
            raise ConfigError(f"--grid {pname}: no values")
        param = strategy.schema.params[pname]
        out[pname] = [param.coerce(v, strategy.name) for v in values]
    return out


def _check_metric(metric: str) -> None:
    from workbench.backtesting.sweeps.worker import COLUMN_METRICS

    if metric not in COLUMN_METRICS:
        raise ConfigError(f"--metric {metric!r}: one of {', '.join(COLUMN_METRICS)}")


def run_sweep(notebook, grid: dict[str, list], params: dict[str, Any] | None = None, *,
              constraint: str | None = None, metric: str = "sharpe",
              data: DataChoice | None = None, name: str | None = None,
              store: Store | None = None, clock: Clock | None = None, root=None,
              progress: bool = True) -> SweepRun:
    """Sweep the notebook's strategy over ``grid`` (name -> values) and record it:
    ``results/`` holds ``table`` and ``combos`` (Parquet), ``best.json`` and, when exactly
    two parameters vary, ``heatmap.html``."""
    from workbench.backtesting.sweeps.grid import Constraint, Grid

    _check_metric(metric)
    inp = prepare(notebook, params, data, name, store, swept=tuple(grid))
    values = grid_values(inp.strategy, grid)
    fixed = {k: v for k, v in inp.strategy.params(**inp.strategy_params,
                                                  **{k: v[0] for k, v in values.items()}).items()
             if k not in values}
    rule = Constraint(constraint, inp.strategy.schema.names) if constraint else None
    try:
        combos = Grid.build(inp.strategy, {**fixed, **values}, rule).combos
    except ConfigError as e:
        raise ConfigError(f"--constraint {constraint!r} rules out every combination"
                          if rule and "rejects all" in str(e) else str(e)) from None
    for combo in combos:
        inp.strategy.check_history(inp.bars, combo)
    all_params = {**fixed, **inp.options, **values}
    record = RunRecord.create("sweep", inp.strategy, all_params, "backtest", inp.bars,
                              clock or LiveClock(), root)

    def body() -> SweepRun:
        from workbench.backtesting.sweeps.runner import sweep

        result = sweep(inp.strategy, inp.bars, constraint=rule, metric=metric,
                       progress=progress, **inp.options, **fixed, **values)
        best = result.best(metric)
        files = write_sweep(record, result, best, values, constraint)
        record.finish("succeeded", extra={"notebook": str(inp.notebook.resolve()),
                                   "constraint": constraint, "best": best.to_dict()})
        return SweepRun(record, result, best, all_params, files)

    return recorded(record, body)


def write_sweep(record: RunRecord, result, best, grid: dict[str, list],
                 constraint: str | None) -> list[str]:
    """table.parquet, combos.parquet, best.json and (two varying parameters) heatmap.html."""
    from workbench.fsutil import atomic_write

    doc = {"strategy": result.strategy, **best.to_dict(), "constraint": constraint,
           "info": result.info}
    paths = [record.write_parquet("table", result.table),
             record.write_parquet("combos", result.combos),
             record.write_json("best", doc)]
    varying = [k for k, v in grid.items() if len(v) > 1]
    if len(varying) == 2:
        fig = result.heatmap(varying[0], varying[1], metric=best.metric)
        html = record.results_dir / "heatmap.html"
        atomic_write(html, lambda p: fig.write_html(p, include_plotlyjs="cdn"))
        paths.append(html)
    return [p.name for p in paths]
