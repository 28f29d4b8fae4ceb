"""An independent, event-driven reference backtester (test support, not product code).

A plain Python loop over each symbol's bars, one event at a time, written from the rules
in the ``workbench.backtesting.simulation`` docstring and nothing else: it reads the option
values of a backtest, never its code. ``tests/test_backtest_reference.py`` checks that
``wb.backtest`` agrees with it trade by trade on random bars, signals and options.

Rules it implements:
  * an order from a signal on bar t waits for the symbol's next bar with an open
    (``next_open``) or fills at t's close (``close``; a missing close waits for the next);
    signals that wait for the same fill merge;
  * same-side entry + exit, or long + short entry, in one merged order: nothing happens;
    an opposite entry reverses, an exit closes, a same-side entry while in position is
    ignored, short signals only with ``direction="longshort"``;
  * buy at ``ref * (1 + slip)``, sell at ``ref * (1 - slip)``; fee = notional * bps +
    shares * per-share fee; an entry spends ``size * cash`` fees included (floored to whole
    shares if asked), and none when cash is not positive or no share is bought;
  * stops relative to the entry fill price, checked on bars after the entry bar: a bar
    opening through a level fills at the open, else a bar reaching it fills at the level;
    stop loss before take profit; slippage and fees as any fill; with ``next_open`` the
    order at the open comes first, with ``close`` the stops come before the close order;
  * a stop may be a frame per bar and symbol: an entry takes the value of its signal bar
    (of several entry signals waiting for one fill, the first), NaN: no stop;
  * ``sl_trail``: the stop loss trails the best price since the entry (the fill price,
    then each later bar's high, a short's low), moved after the bar's stop check;
  * a position open at the end is a trade marked at the last close without exit fee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["RefTrade", "random_market", "reference_backtest"]


@dataclass
class RefTrade:
    symbol: str
    direction: str  # "long" | "short"
    entry_bar: int
    entry_price: float
    size: float
    entry_fee: float
    exit_bar: int | None = None
    exit_price: float = math.nan
    exit_fee: float = 0.0
    exit_reason: str = "open at end"
    sl: float | None = None  # the stop fractions this trade keeps (its signal bar's)
    tp: float | None = None
    best: float = math.nan  # trailing: the best price since the entry

    @property
    def fees(self) -> float:
        return self.entry_fee + self.exit_fee

    @property
    def pnl(self) -> float:
        sign = 1.0 if self.direction == "long" else -1.0
        return sign * (self.exit_price - self.entry_price) * self.size - self.fees


@dataclass
class Account:
    cash: float
    shares: float = 0.0  # signed
    trade: RefTrade | None = None
    trades: list[RefTrade] = field(default_factory=list)


class Broker:
    """Fills market orders for one account with the option values of the backtest."""

    def __init__(self, opts: dict) -> None:
        self.slip = opts["slippage_bps"] / 10_000.0
        self.rate = opts["fees_bps"] / 10_000.0
        self.per_share = opts["fee_per_share"]
        self.size = opts["size"]
        self.whole = opts["shares"] == "whole"
        self.sl = opts["sl_stop"]
        self.tp = opts["tp_stop"]
        self.trail = opts.get("sl_trail", False)

    def fraction(self, stop, symbol: str, bar: int) -> float | None:
        if isinstance(stop, pd.DataFrame):
            v = float(stop[symbol].iloc[bar])
            return None if math.isnan(v) else v
        return stop

    def price(self, buying: bool, ref: float) -> float:
        return ref * (1.0 + self.slip) if buying else ref * (1.0 - self.slip)

    def fee(self, qty: float, price: float) -> float:
        return qty * price * self.rate + qty * self.per_share

    def open(self, acct: Account, symbol: str, long: bool, ref: float, bar: int,
             signal_bar: int | None = None) -> None:
        budget = self.size * acct.cash
        if budget <= 0:
            return
        price = self.price(long, ref)
        qty = budget / (price * (1.0 + self.rate) + self.per_share)
        if self.whole:
            qty = float(math.floor(qty))
        if qty <= 0:
            return
        fee = self.fee(qty, price)
        if long:
            acct.cash -= qty * price + fee
            acct.shares = qty
        else:
            acct.cash += qty * price - fee
            acct.shares = -qty
        at = bar if signal_bar is None else signal_bar
        acct.trade = RefTrade(symbol, "long" if long else "short", bar, price, qty, fee,
                              sl=self.fraction(self.sl, symbol, at),
                              tp=self.fraction(self.tp, symbol, at), best=price)
        acct.trades.append(acct.trade)

    def close(self, acct: Account, ref: float, bar: int, reason: str) -> None:
        long = acct.shares > 0
        qty = abs(acct.shares)
        price = self.price(not long, ref)
        fee = self.fee(qty, price)
        acct.cash += (qty * price - fee) if long else -(qty * price + fee)
        acct.shares = 0.0
        t = acct.trade
        t.exit_bar, t.exit_price, t.exit_fee, t.exit_reason = bar, price, fee, reason
        acct.trade = None

    def on_order(self, acct: Account, symbol: str, order: set[str], ref: float, bar: int,
                 signal_bar: int | None = None) -> None:
        if {"long_entry", "long_exit"} <= order:
            order -= {"long_entry", "long_exit"}
        if {"short_entry", "short_exit"} <= order:
            order -= {"short_entry", "short_exit"}
        if {"long_entry", "short_entry"} <= order:
            order -= {"long_entry", "short_entry"}
        if acct.shares > 0 and "short_entry" in order:
            self.close(acct, ref, bar, "signal")
            self.open(acct, symbol, False, ref, bar, signal_bar)
        elif acct.shares > 0 and "long_exit" in order:
            self.close(acct, ref, bar, "signal")
        elif acct.shares < 0 and "long_entry" in order:
            self.close(acct, ref, bar, "signal")
            self.open(acct, symbol, True, ref, bar, signal_bar)
        elif acct.shares < 0 and "short_exit" in order:
            self.close(acct, ref, bar, "signal")
        elif acct.shares == 0 and "long_entry" in order:
            self.open(acct, symbol, True, ref, bar, signal_bar)
        elif acct.shares == 0 and "short_entry" in order:
            self.open(acct, symbol, False, ref, bar, signal_bar)

    def on_bar_range(self, acct: Account, bar: int, o: float, h: float, lo: float) -> None:
        """Stops of the open position against this bar's open, high and low."""
        t = acct.trade
        if t is None or t.entry_bar >= bar or not o > 0 or math.isnan(h) or math.isnan(lo):
            return
        long = t.direction == "long"
        for reason, frac in (("stop_loss", t.sl), ("take_profit", t.tp)):
            if frac is None:
                continue
            base = t.best if (self.trail and reason == "stop_loss") else t.entry_price
            if long == (reason == "stop_loss"):  # the level is below the entry
                level = base * (1.0 - frac)
                hit = o if o <= level else (level if lo <= level else None)
            else:
                level = base * (1.0 + frac)
                hit = o if o >= level else (level if h >= level else None)
            if hit is not None:
                self.close(acct, hit, bar, reason)
                return
        if self.trail:
            t.best = max(t.best, h) if long else min(t.best, lo)


def _signals(frames: dict, symbol: str, bar: int, longshort: bool) -> set[str]:
    names = ("long_entry", "long_exit") + (("short_entry", "short_exit") if longshort else ())
    return {n for n in names if frames.get(n) is not None and bool(frames[n][symbol].iloc[bar])}


def reference_backtest(bars, signals: dict, opts: dict) -> tuple[list[RefTrade], dict[str, list[float]]]:
    """Trades of every symbol and each symbol's equity after each bar.

    ``bars``: a ``wb.Bars`` (only its frames are read); ``signals``: frames keyed
    ``long_entry``, ``long_exit``, ``short_entry``, ``short_exit`` (None: absent);
    ``opts``: the backtest option values.
    """
    broker = Broker(opts)
    longshort = opts["direction"] == "longshort"
    at_close = opts["fill"] == "close"
    trades: list[RefTrade] = []
    equity: dict[str, list[float]] = {}
    for symbol in bars.symbols:
        acct = Account(cash=opts["cash"])
        order: set[str] = set()
        first_entry = None  # the bar of the first entry signal waiting in ``order``
        mark = math.nan
        curve = []
        for bar in range(len(bars)):
            o, h, lo, c = (float(getattr(bars, f)[symbol].iloc[bar]) for f in ("open", "high", "low", "close"))
            new = _signals(signals, symbol, bar, longshort)
            entry_now = bool(new & {"long_entry", "short_entry"})
            if at_close:
                broker.on_bar_range(acct, bar, o, h, lo)
                order |= new
                first_entry = bar if first_entry is None and entry_now else first_entry
                if order and c > 0:
                    broker.on_order(acct, symbol, order, c, bar, first_entry)
                    order, first_entry = set(), None
            else:
                if order and o > 0:
                    broker.on_order(acct, symbol, order, o, bar, first_entry)
                    order, first_entry = set(), None
                broker.on_bar_range(acct, bar, o, h, lo)
                order |= new
                first_entry = bar if first_entry is None and entry_now else first_entry
            if c > 0:
                mark = c
            curve.append(acct.cash + acct.shares * mark if acct.shares else acct.cash)
        if acct.trade is not None:
            acct.trade.exit_price = mark
        trades.extend(acct.trades)
        equity[symbol] = curve
    return trades, equity


# -- random markets for the property tests ---------------------------------------------


def random_market(seed: int, n_bars: int, n_symbols: int, gap: float, p_signal: float,
                  vol: float = 0.03):
    """``(bars, signals)``: random OHLC walks with missing bars (probability ``gap`` each)
    and random boolean signals (probability ``p_signal`` each) of all four kinds."""
    import workbench as wb

    rng = np.random.default_rng(seed)
    shape = (n_bars, n_symbols)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, vol, shape), axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0.0, vol / 2, shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, vol / 2, shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, vol / 2, shape)))
    missing = rng.random(shape) < gap
    index = pd.date_range("2024-01-02", periods=n_bars, freq="D", tz="UTC", name="ts")
    symbols = pd.Index([f"S{j}" for j in range(n_symbols)], name="symbol")

    def frame(values):
        return pd.DataFrame(np.where(missing, np.nan, values), index=index, columns=symbols)

    bars = wb.Bars.from_wide(frame(close), open=frame(open_), high=frame(high), low=frame(low),
                             timeframe="1Day")
    signals = {name: pd.DataFrame(rng.random(shape) < p_signal, index=index, columns=symbols)
               for name in ("long_entry", "long_exit", "short_entry", "short_exit")}
    return bars, signals
