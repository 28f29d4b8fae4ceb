"""A strategy's ``sl_stop``/``tp_stop`` as broker-side orders, placed when the entry fills.

    stops = Stops(sl_stop=0.02, tp_stop=0.05)
    intent = protection(run_id, strategy, entry_order, quantity, bar_time, stops)

The backtest (``workbench.backtesting.simulation``) sets a position's stop levels from the
entry's *fill* price, slippage included: long ``fill * (1 - sl_stop)`` and
``fill * (1 + tp_stop)``, in floats, and checks them on every bar after the entry's fill
bar, stop loss first. A bracket sent with the entry cannot carry those levels (they are
not known before the fill, and a per-symbol account's entry is a notional market buy,
which a bracket cannot be), so the session places the exit protection once the entry has
filled: one ``OrderType.OCO`` sell of a long position, a stop at the stop-loss level and a
take-profit limit as its leg (one alone: a plain stop or limit), levels computed from the
fill price with the backtest's very float arithmetic (exact as ``Decimal(repr(x))``).

Stops per bar (a strategy returning ``Signals(sl_stop=2 * atr / close)``): the entry
signal's bar fixes the fractions, as in the backtest; the engine hands them to the trader
on the entry's ``Signal`` (``sl_stop``/``tp_stop``, journaled with it), which keeps them
for that entry (:meth:`Trader.protections`), so the protection placed at the fill is the
signal bar's fraction of the fill price. NaN on that bar: no protection for that entry.
On a restart the trader relearns them from the journaled signals (:func:`signal_stops`).

Trailing stops (``sl_trail=True`` with ``sl_stop``): the protection is replaced bar by bar
(:meth:`Trader.protections`: cancel, then a new oco at the moved level, id leg ``stops``
of that bar), which the broker checks from the next bar on: the backtest's rule (each bar
checked against the level before it, then the best price moves to its high). A trailing
run cannot be restarted yet (:func:`refuse_trailing_restart`: the best price since each
entry is not journaled).
Placed on the entry's fill bar, the simulated broker checks it from the next bar on,
which is the backtest's rule; it fills it by the backtest's rules (gap through the level:
the open; slippage and fees as any sell). Good till canceled: a position held overnight
keeps its protection.

A strategy exit (or a risk Flatten / ForceExit) cancels the symbol's protection before
its sell is sent, and the sell is not sent unless the protection is canceled (it may have
filled meanwhile: then the position is gone). A short position's protection is the
mirror: an OCO *buy*, a buy stop above (``fill * (1 + sl_stop)``) with a buy limit below
(``fill * (1 - tp_stop)``) as its leg, filled by the simulated broker's rules for those
orders, which are the backtest's for a short's stops.

The risk gateway reviews a protection like any order (it only reduces a position, so it
passes REDUCING; it is counted by the order-rate switch). While trading is HALTED no new
protection is placed (the denial is journaled), and the protections already at the broker
stay there and may fill: a halt stops what the session sends, not the broker's stops.
A real broker takes stop and limit prices in cents; the levels here are the backtest's
floats, exact on the simulated broker (rounding for a real one is its adapter's job, and
then the stop exits differ from the backtest's by up to a cent).

Client ids: ``client_order_id(run, strategy, symbol, <entry's bar time>, "stops")``, its
take-profit leg ``<that>.tp``: a restart recomputes the same id and never places the
protection twice; the order and its leg are in the journal (``intent``, ``order_leg``)
and reconciled with the broker like any order.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from workbench.model import (
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    client_order_id,
)
from workbench.values import Number, Value

__all__ = ["LEG", "Stops", "is_protection", "levels", "protection", "refuse_trailing_restart",
           "signal_stops"]

LEG = "stops"
_SUFFIXES = (f"-{LEG}", f"-{LEG}.tp")


class Stops(Value):
    """The backtest's ``sl_stop``/``tp_stop``: fractions of the entry's fill price."""

    sl_stop: Number | None = Field(None, gt=0)
    tp_stop: Number | None = Field(None, gt=0)

    @property
    def any(self) -> bool:
        return self.sl_stop is not None or self.tp_stop is not None


def refuse_trailing_restart(run_id: str) -> None:
    """A ``ConfigError``: a trailing run is not restarted (see the module doc)."""
    from workbench.errors import ConfigError

    raise ConfigError(f"run {run_id} trails its stops (sl_trail) and cannot be restarted yet: "
                      "the best price since each entry is not journaled; flatten it and start "
                      "a new run")


def signal_stops(signal) -> Stops | None:
    """The stops a strategy gave with ``signal`` (a ``Signal``, or its journaled payload):
    None if it gave none."""
    get = signal.get if isinstance(signal, dict) else lambda k: getattr(signal, k, None)
    sl, tp = get("sl_stop"), get("tp_stop")
    return None if sl is None and tp is None else Stops(sl_stop=sl, tp_stop=tp)


def is_protection(client_order_id_: str) -> bool:
    """True for a protection order (or its take-profit leg) made by :func:`protection`."""
    return client_order_id_.endswith(_SUFFIXES)


def levels(fill_price: float, stops: Stops, long: bool = True
           ) -> tuple[float | None, float | None]:
    """(stop loss, take profit) of a long (short: ``long=False``) position entered at
    ``fill_price``: the backtest's arithmetic (``workbench.backtesting.vbt_core``), float
    for float: long ``fill * (1 - sl)``, ``fill * (1 + tp)``; short ``fill * (1 + sl)``,
    ``fill * (1 - tp)``."""
    sign = 1.0 if long else -1.0
    sl = fill_price * (1.0 - sign * stops.sl_stop) if stops.sl_stop is not None else None
    tp = fill_price * (1.0 + sign * stops.tp_stop) if stops.tp_stop is not None else None
    return sl, tp


def _exact(x: float | None) -> Decimal | None:
    return None if x is None else Decimal(repr(float(x)))


def protection(run_id: str, strategy: str, entry: Order, quantity: Decimal, bar_time,
               stops: Stops) -> OrderIntent | None:
    """The protection of the position ``entry`` (a filled entry, a buy or a short sale)
    opened: an order of the other side; None if the entry is not filled (partial fills
    wait) or has no price."""
    if entry.status is not OrderStatus.FILLED or entry.average_price is None:
        return None
    intent = entry.intent
    long_ = intent.side is Side.BUY
    sl, tp = levels(float(entry.average_price), stops, long_)
    return OrderIntent(client_order_id(run_id, strategy, intent.symbol, intent.bar_time, LEG),
                       intent.symbol, Side.SELL if long_ else Side.BUY, Decimal(quantity),
                       OrderType.OCO,
                       stop_loss=_exact(sl), take_profit=_exact(tp),
                       time_in_force=TimeInForce.GTC, bar_time=bar_time,
                       reason="stop_loss" if sl is not None else "take_profit")
