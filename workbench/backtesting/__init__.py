"""Backtests: signals filled bar by bar with one cost model, metrics, sweeps, walk-forward.

    result = wb.backtest(sma_cross, bars, fast=10, slow=30)   # -> BacktestResult
    sim = simulate(open, high, low, close, entries, exits)     # arrays in, arrays out

``backtest`` (run.py) runs a strategy and wraps the fills in a :class:`BacktestResult`
(result.py); ``simulate`` (simulation.py) is the array-level core a sweep calls per chunk of
columns, around vectorbt's compiled loop (vbt_core.py, passes.py); metrics.py scores arrays;
``sweep`` lives in the ``sweeps`` subpackage, ``walk_forward`` in walkforward.py, the
overfitting statistics in overfit.py. :class:`~workbench.model.costs.CostModel` is the one
cost and fill model, shared with the simulated broker, so it lives in ``workbench.model``.

Nothing heavy is imported with this package: each name below is imported on first access,
and numba and vectorbt only on the first simulation, so ``import workbench`` stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy import defer_iri_grammar, lazy_names

# vectorbt and plotly's renderers import nbformat, hence jsonschema and the IRI grammar it
# checks with (seconds): stood in for until used (see workbench.lazy)
defer_iri_grammar()

if TYPE_CHECKING:
    from workbench.backtesting.result import BacktestResult  # noqa: F401
    from workbench.backtesting.run import OPTIONS, backtest  # noqa: F401
    from workbench.backtesting.simulation import SimOptions, Simulation, simulate  # noqa: F401
    from workbench.backtesting.sweeps.runner import sweep  # noqa: F401
    from workbench.backtesting.walkforward import walk_forward  # noqa: F401
    from workbench.model.costs import CostModel  # noqa: F401

# name -> the module that defines it, imported on first access
_HOMES = {
    "OPTIONS": "workbench.backtesting.run",
    "backtest": "workbench.backtesting.run",
    "BacktestResult": "workbench.backtesting.result",
    "SimOptions": "workbench.backtesting.simulation",
    "Simulation": "workbench.backtesting.simulation",
    "simulate": "workbench.backtesting.simulation",
    "sweep": "workbench.backtesting.sweeps.runner",
    "walk_forward": "workbench.backtesting.walkforward",
    "CostModel": "workbench.model.costs",
}

__all__ = sorted(_HOMES)


__getattr__, __dir__ = lazy_names(__name__, _HOMES)
