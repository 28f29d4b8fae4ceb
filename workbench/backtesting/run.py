"""``wb.backtest``: run a strategy over bars and fill its signals (see ``simulation.py``).

    result = wb.backtest(sma_cross, bars, fast=10, slow=30,            # strategy params
                         fill="next_open", fees_bps=1.0, slippage_bps=2.0, sl_stop=0.02)

Keyword arguments named in :data:`OPTIONS` configure the backtest; every other keyword is a
strategy parameter. A strategy with a parameter named like an option cannot be backtested
(``StrategyError``: rename it); a bad option value is a ``ConfigError`` naming the option.

Each symbol is its own account starting with ``cash`` (a research default: symbols do not
compete for capital, so adding one never changes another's trades); the book is the sum
of the accounts. Signals come as entries/exits (and short entries/exits with
``direction="longshort"``), or as target weights (``Signals(weights=...)``: each symbol's
account rebalanced to the weight at the next bar, sized by
:func:`workbench.model.weights.rebalance_quantity` as a session sizes it; negative
weights need ``direction="longshort"``, stops are refused with weights).

Stops (``sl_stop``/``tp_stop``) are a number, or per bar and symbol a DataFrame with the
bars' index and columns (or a (T, N) array), e.g. an ATR stop ``2 * atr / bars.close``;
NaN: no stop for an entry on that bar. The strategy may return them instead
(``Signals(sl_stop=...)``: what a session can trade, it computes them bar by bar); given
both ways, the backtest refuses. ``sl_trail=True`` trails the stop loss (vectorbt's rule,
see :mod:`workbench.backtesting.simulation`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtesting.metrics import periods_per_year
from workbench.backtesting.result import BacktestResult
from workbench.backtesting.simulation import Direction, Fill, SimOptions, simulate
from workbench.data.bars import Bars
from workbench.errors import ConfigError, DataError, StrategyError
from workbench.model.costs import CostModel, Shares
from workbench.strategy import Signals, Strategy, as_strategy
from workbench.strategy.signals import checked_stop

__all__ = ["OPTIONS", "backtest"]

OPTIONS = ("fill", "fees_bps", "fee_per_share", "slippage_bps", "shares", "cash", "size",
           "direction", "sl_stop", "tp_stop", "sl_trail")


def build_settings(options: dict[str, Any], ppy: float | None = None) -> tuple[CostModel, SimOptions]:
    """The cost model and simulation options from backtest keywords (a subset of OPTIONS);
    each bad value is a ``ConfigError`` naming it. The one place keywords become settings.
    Stops per bar are not settings (see :func:`split_stops`): here they are refused."""
    for name in ("sl_stop", "tp_stop"):
        if options.get(name) is not None and not _is_number(options[name]):
            raise ConfigError(f"{name} per bar ({type(options[name]).__name__}) is not taken "
                              "here: give a number, or return it from the strategy "
                              f"(Signals({name}=...))")
    cost_names = set(CostModel.model_fields)
    costs = CostModel(**{k: v for k, v in options.items() if k in cost_names})
    sim = SimOptions(**{k: v for k, v in options.items() if k not in cost_names},
                     periods_per_year=ppy)
    return costs, sim


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def split_stops(options: dict[str, Any], bars: Bars) -> dict[str, np.ndarray]:
    """Take per-bar stops (a DataFrame like the bars', or a (T, N) array) out of
    ``options`` (left None there); return them as float (T, N) arrays, checked: the
    mismatch named in one line, never the frame printed."""
    out = {}
    for name in ("sl_stop", "tp_stop"):
        value = options.get(name)
        if value is None or _is_number(value):
            continue
        if isinstance(value, (pd.DataFrame, pd.Series)):
            try:
                frame = checked_stop(value, name, bars, "backtest", f"backtest: {name}")
            except StrategyError as e:
                raise ConfigError(str(e)) from None
            out[name] = frame.to_numpy(dtype=float)
        else:
            try:
                a = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise ConfigError(f"backtest: {name} must be a number, a DataFrame like the "
                                  f"bars' or a (T, N) array, got {type(value).__name__}") from None
            if a.shape != bars.close.shape:
                raise ConfigError(f"backtest: {name} has shape {a.shape}, the bars "
                                  f"{bars.close.shape} (bars x symbols)")
            out[name] = a
        options[name] = None
    return out


def checked_inputs(strategy, bars: Bars, what: str) -> Strategy:
    """``strategy`` as a :class:`Strategy` none of whose parameters shares a name with a
    backtest option, over ``bars`` that are ``wb.Bars``; ``what`` (the caller) names errors."""
    strat = as_strategy(strategy, what)
    clash = [name for name in strat.schema.names if name in OPTIONS]
    if clash:
        raise StrategyError(
            f"{strat.name}: parameter(s) {', '.join(clash)} have the name of backtest "
            f"option(s) ({', '.join(OPTIONS)}); rename them in the strategy"
        )
    if not isinstance(bars, Bars):
        raise DataError(f"{what} needs wb.Bars, got {type(bars).__name__}")
    return strat


def _arrays(bars: Bars, signals: Signals, direction: str) -> dict[str, Any]:
    def values(frame):
        return None if frame is None else frame.to_numpy(dtype=bool)

    shorts = signals.short_entries
    if direction == "long" and shorts is not None and shorts.to_numpy().any():
        warnings.warn("the strategy returned short signals; they are ignored with direction='long' "
                      "(use direction='longshort' to trade them)", UserWarning, stacklevel=3)
    return {
        "open": bars.open.to_numpy(dtype=float), "high": bars.high.to_numpy(dtype=float),
        "low": bars.low.to_numpy(dtype=float), "close": bars.close.to_numpy(dtype=float),
        "entries": values(signals.entries), "exits": values(signals.exits),
        "short_entries": values(signals.short_entries), "short_exits": values(signals.short_exits),
    }


def _strategy_stops(name: str, signals: Signals, given: dict, per_bar: dict) -> dict:
    """Merge the stops the strategy returned into the options (a number) or the per-bar
    arrays (a frame); a stop given both ways is refused (one of them would be ignored)."""
    for stop, value in signals.stops().items():
        if given.get(stop) is not None or stop in per_bar:
            raise StrategyError(f"{name} returned Signals({stop}=...) and the backtest was "
                                f"given {stop} too: give it in one place")
        if isinstance(value, pd.DataFrame):
            per_bar[stop] = value.to_numpy(dtype=float)
        else:
            given[stop] = value
    return per_bar


def backtest(
    strategy,
    bars: Bars,
    *,
    fill: Fill = "next_open",
    fees_bps: float = 0.0,
    fee_per_share: float = 0.0,
    slippage_bps: float = 2.0,
    shares: Shares = "fractional",
    cash: float = 100_000.0,
    size: float = 1.0,
    direction: Direction = "long",
    sl_stop=None,
    tp_stop=None,
    sl_trail: bool = False,
    **params: Any,
) -> BacktestResult:
    """Backtest ``strategy`` on ``bars`` with strategy parameters ``params``.

    fill: ``"next_open"`` (a signal on bar t fills at the symbol's next open) or ``"close"``.
    fees_bps, fee_per_share, slippage_bps: the :class:`CostModel`.
    shares: ``"fractional"`` or ``"whole"`` (floored). cash: each symbol's starting cash.
    size: fraction of the account's cash spent per entry, fees included (0 < size <= 1).
    direction: ``"long"`` or ``"longshort"``. sl_stop, tp_stop: stop loss / take profit as
    fractions of the entry fill price: a number, or a DataFrame per bar and symbol (NaN: no
    stop for that bar's entries; None: no stop). sl_trail: trail the stop loss.
    """
    strat = checked_inputs(strategy, bars, "backtest")
    given = dict(fill=fill, fees_bps=fees_bps, fee_per_share=fee_per_share,
                 slippage_bps=slippage_bps, shares=shares, cash=cash, size=size,
                 direction=direction, sl_stop=sl_stop, tp_stop=tp_stop, sl_trail=sl_trail)
    per_bar = split_stops(given, bars)
    resolved = strat.params(**params)
    signals = strat(bars, **resolved)
    where = {name: "argument" for name in per_bar}
    per_bar = _strategy_stops(strat.name, signals, given, per_bar)
    costs, options = build_settings(given, periods_per_year(bars.timeframe, bars.index))
    if per_bar:  # recorded: the options hold numbers only
        options = options.model_copy(update={"stops_per_bar": ", ".join(
            f"{name} ({where.get(name, 'Signals')})" for name in sorted(per_bar))})
    if signals.kind == "weights":
        weights = signals.weights.to_numpy(dtype=float)
        if direction == "long" and (weights < 0).any():
            raise StrategyError(f"{strat.name} returned negative (short) weights: backtest "
                                "with direction='longshort' to trade them")
        prices = {k: getattr(bars, k).to_numpy(dtype=float) for k in ("open", "high", "low",
                                                                      "close")}
        sim = simulate(**prices, weights=weights, costs=costs, options=options)
    else:
        sim = simulate(**_arrays(bars, signals, direction), costs=costs, options=options,
                       **per_bar)
    return BacktestResult(strategy=strat.name, params=resolved, bars=bars, signals=signals,
                          simulation=sim)
