"""Backtests: signals filled bar by bar with one cost model, metrics, sweeps.

    result = wb.backtest(sma_cross, bars, fast=10, slow=30)   # -> BacktestResult
    sim = simulate(open, high, low, close, entries, exits)     # arrays in, arrays out

``backtest`` (run.py) runs a strategy and wraps the fills in a :class:`BacktestResult`;
``simulate`` (simulate.py) is the array-level core a sweep calls per chunk of columns;
:class:`CostModel` (costs.py) is the one cost and fill model, shared with the simulated
broker; metrics.py scores arrays. ``sweep`` and ``walk_forward`` come from ``sweep.py``
and ``walkforward.py`` when those modules exist.

vectorbt is imported on the first simulation (its compiled core runs every simulation,
see simulate.py), not when this package is imported, so ``import workbench`` stays quick.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from workbench.backtest.costs import CostModel
from workbench.backtest.result import BacktestResult
from workbench.backtest.run import OPTIONS, backtest
from workbench.backtest.simulate import SimOptions, Simulation, simulate

__all__ = ["OPTIONS", "BacktestResult", "CostModel", "SimOptions", "Simulation", "backtest",
           "simulate"]

# Functions of modules written separately, bound when the module exists. They are bound
# here, eagerly: a function named like its module (``sweep`` in ``sweep.py``) would
# otherwise be shadowed by the submodule as soon as anything imported that module.
_OPTIONAL = {"sweep": "sweep", "walkforward": "walk_forward"}
for _module, _name in _OPTIONAL.items():
    try:
        globals()[_name] = getattr(importlib.import_module(f"{__name__}.{_module}"), _name)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{_module}":
            raise
    else:
        __all__.append(_name)


def __getattr__(name: str) -> Any:
    if name in _OPTIONAL.values():
        raise AttributeError(f"{name} is not available yet (no module for it in {__name__})")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """Once ``workbench.backtest`` is imported, Python binds ``workbench.backtest`` to this
    module, shadowing the lazily resolved function ``wb.backtest``; calling the module
    therefore calls :func:`backtest`, so ``wb.backtest(...)`` works in either order."""

    def __call__(self, *args: Any, **kwargs: Any):
        return backtest(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
