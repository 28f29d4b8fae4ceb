"""``wb.run``: a strategy notebook's last call, the work of its mode inside the kernel.

    wb.run(sma_cross, mode=mode, run_dir=run_dir, bars=bars,
           fast=fast, slow=slow, fees_bps=fees_bps, slippage_bps=slippage_bps,
           **settings.get(mode, {}))

papermill injects ``mode`` and ``run_dir`` (the open run record that
``workbench.execution.run`` prepared) into the notebook's ``parameters`` cell; ``mode`` is
``"research"`` by default, so in JupyterLab the call does nothing. The values are the
strategy's parameters, the backtest options (:data:`~workbench.backtesting.run.OPTIONS`:
fees, slippage, cash, size, stops, ...) and the settings of the mode (:data:`SETTINGS`;
e.g. ``grid`` and ``constraint`` for a sweep, ``replay_date`` and ``speed`` for a paper
session). Any other name is a ``StrategyError`` naming the closest one (a setting of
another mode says which mode it belongs to); an unknown mode or ``"live"`` is a one-line
``ConfigError``.

Each mode (see :mod:`workbench.execution.recorded` and :mod:`workbench.execution.paper`)
shows its figures in the notebook and, with ``run_dir``, writes its results into the open
record, ``results/settings.json`` first: every setting it ran with (strategy parameters,
every backtest option with its default, costs, sizing and accounts, timeframe, symbols,
data range, the mode's settings), so a session can be compared with its backtest. A mode
never finishes the record (the runner outside the kernel records the outcome: a kernel
cannot record its own death), except ``"paper"``, whose session finishes its own.
"""

from __future__ import annotations

import difflib
from typing import Any

from workbench.backtesting.run import OPTIONS
from workbench.clock import LiveClock
from workbench.data.bars import Bars
from workbench.errors import ConfigError, DataError, StrategyError
from workbench.execution.mode_settings import (
    MODES,
    REQUIRED,
    SETTINGS,
    foreign_settings,
    owners,
)
from workbench.runs.records import RunRecord
from workbench.strategy import Strategy, as_strategy

__all__ = ["MODES", "REQUIRED", "SETTINGS", "check_values", "foreign_settings", "run"]

def check_values(strategy: Strategy, mode: str, values: dict[str, Any]):
    """``values`` split into (strategy parameters, backtest options, the mode's settings
    with defaults filled in); a name that is none of them is a ``StrategyError`` naming the
    closest, a required setting missing a ``ConfigError``. In ``"research"`` the settings of
    every mode are accepted (nothing runs), so a typo is still caught."""
    names = strategy.schema.names
    clash = sorted(set(names) & {k for s in SETTINGS.values() for k in s})
    if clash:
        raise StrategyError(f"{strategy.name}: parameter(s) {', '.join(clash)} have the name of "
                            "a wb.run setting; rename them in the strategy")
    own = ({k for s in SETTINGS.values() for k in s} if mode == "research"
           else set(SETTINGS[mode]))
    for name in values:
        if name in names or name in OPTIONS or name in own:
            continue
        elsewhere = owners(name)
        if elsewhere:
            raise StrategyError(
                f"{strategy.name}: {name!r} is a setting of mode {' and '.join(elsewhere)}, "
                f"not of mode {mode!r} ({mode} settings: {', '.join(sorted(own)) or 'none'})")
        close = difflib.get_close_matches(name, [*names, *OPTIONS, *sorted(own)], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise StrategyError(
            f"{strategy.name}: unknown value {name!r} for mode {mode!r} (strategy parameters: "
            f"{', '.join(names) or 'none'}; backtest options: {', '.join(OPTIONS)}; "
            f"{mode} settings: {', '.join(sorted(own)) or 'none'}){hint}")
    params = {k: v for k, v in values.items() if k in names}
    options = {k: v for k, v in values.items() if k in OPTIONS}
    settings = {} if mode == "research" else {
        k: values.get(k, default) for k, default in SETTINGS[mode].items()}
    missing = [k for k, v in settings.items()
               if v is REQUIRED or (v is None and SETTINGS[mode][k] is REQUIRED)]
    if missing:
        raise ConfigError(f"mode {mode!r} needs {', '.join(f'{k}=' for k in missing)} "
                          f"(its settings: {', '.join(SETTINGS[mode])})")
    return params, options, settings


def _check_mode(mode: Any) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
    if mode == "live":
        raise ConfigError("mode 'live' is refused: live trading needs the Alpaca broker in a "
                          "session: mode='paper' with broker='alpaca', feed='alpaca' and "
                          "live=True (workbench session NOTEBOOK --broker alpaca --live)")
    return mode


def _open(run_dir, mode: str) -> RunRecord | None:
    """The open record the runner prepared for this mode, or None (nothing recorded)."""
    if run_dir is None:
        return None
    record = RunRecord.open(str(run_dir), LiveClock())
    manifest = record.manifest
    prepared = {str(manifest.get("mode")), str(manifest.get("kind"))}
    if mode not in prepared:
        raise ConfigError(f"run_dir {run_dir} was prepared for mode {manifest.get('mode')!r} "
                          f"(kind {manifest.get('kind')!r}), not for mode {mode!r}")
    return record


def run(strategy, *, mode: str, run_dir=None, bars: Bars | None = None, **values: Any):
    """Do ``mode``'s work with ``strategy`` on ``bars`` (see the module doc).

    Returns None in ``"research"``; the ``BacktestResult``, ``SweepResult``,
    ``WalkForwardResult``, ``ParityReport`` or ``SessionResult`` of the other modes."""
    mode = _check_mode(mode)
    strategy = as_strategy(strategy, "wb.run")
    params, options, settings = check_values(strategy, mode, values)
    if mode == "research":
        if run_dir is not None:
            raise ConfigError(f"mode 'research' records nothing: run_dir={str(run_dir)!r} is "
                              "for the other modes")
        return None
    if not isinstance(bars, Bars):
        raise DataError(f"mode {mode!r} needs bars=wb.Bars (the notebook's bars), "
                        f"got {type(bars).__name__}")
    record = _open(run_dir, mode)
    if mode == "paper":
        from workbench.execution.paper import run_paper

        return run_paper(strategy, bars, params, options, settings, record)
    from workbench.execution import recorded

    work = {"backtest": recorded.run_backtest, "sweep": recorded.run_sweep,
            "walk_forward": recorded.run_walk_forward, "parity": recorded.run_parity}[mode]
    return work(strategy, bars, params, options, settings, record)
