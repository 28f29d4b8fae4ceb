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
"""

from __future__ import annotations

import warnings
from typing import Any

from workbench.backtesting.metrics import periods_per_year
from workbench.backtesting.result import BacktestResult
from workbench.backtesting.simulation import Direction, Fill, SimOptions, simulate
from workbench.data.bars import Bars
from workbench.errors import DataError, StrategyError
from workbench.model.costs import CostModel, Shares
from workbench.strategy import Signals, Strategy, as_strategy

__all__ = ["OPTIONS", "backtest"]

OPTIONS = ("fill", "fees_bps", "fee_per_share", "slippage_bps", "shares", "cash", "size",
           "direction", "sl_stop", "tp_stop")


def build_settings(options: dict[str, Any], ppy: float | None = None) -> tuple[CostModel, SimOptions]:
    """The cost model and simulation options from backtest keywords (a subset of OPTIONS);
    each bad value is a ``ConfigError`` naming it. The one place keywords become settings."""
    cost_names = set(CostModel.model_fields)
    costs = CostModel(**{k: v for k, v in options.items() if k in cost_names})
    sim = SimOptions(**{k: v for k, v in options.items() if k not in cost_names},
                     periods_per_year=ppy)
    return costs, sim


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
    sl_stop: float | None = None,
    tp_stop: float | None = None,
    **params: Any,
) -> BacktestResult:
    """Backtest ``strategy`` on ``bars`` with strategy parameters ``params``.

    fill: ``"next_open"`` (a signal on bar t fills at the symbol's next open) or ``"close"``.
    fees_bps, fee_per_share, slippage_bps: the :class:`CostModel`.
    shares: ``"fractional"`` or ``"whole"`` (floored). cash: each symbol's starting cash.
    size: fraction of the account's cash spent per entry, fees included (0 < size <= 1).
    direction: ``"long"`` or ``"longshort"``. sl_stop, tp_stop: stop loss / take profit as
    fractions of the entry fill price (None: no stop).
    """
    strat = checked_inputs(strategy, bars, "backtest")
    costs, options = build_settings(
        dict(fill=fill, fees_bps=fees_bps, fee_per_share=fee_per_share,
             slippage_bps=slippage_bps, shares=shares, cash=cash, size=size,
             direction=direction, sl_stop=sl_stop, tp_stop=tp_stop),
        periods_per_year(bars.timeframe, bars.index))
    resolved = strat.params(**params)
    signals = strat(bars, **resolved)
    if signals.kind == "weights":
        weights = signals.weights.to_numpy(dtype=float)
        if direction == "long" and (weights < 0).any():
            raise StrategyError(f"{strat.name} returned negative (short) weights: backtest "
                                "with direction='longshort' to trade them")
        prices = {k: getattr(bars, k).to_numpy(dtype=float) for k in ("open", "high", "low",
                                                                      "close")}
        sim = simulate(**prices, weights=weights, costs=costs, options=options)
    else:
        sim = simulate(**_arrays(bars, signals, direction), costs=costs, options=options)
    return BacktestResult(strategy=strat.name, params=resolved, bars=bars, signals=signals,
                          simulation=sim)
