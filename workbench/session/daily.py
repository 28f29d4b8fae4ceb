"""A daily (1Day) session: the decision on the completed bar of the day before, made at the
start of the day and filled at its open, as ``wb.backtest`` fills a signal on bar D at D+1's
open.

    bars, source = daily_bars(symbols, "2026-11-20", history_days=30, store=store)
    decide_on = decision_day("2026-11-20")        # 2026-11-19 (the session before)

The session of day D has two rows: **"decision"**, bar D-1 (the last completed daily bar),
handed to the engine when the session starts (before the open for a live session; in a
replay, whose time is its bars', at bar D-1's close), its orders sent as DAY market orders
that the broker fills at D's open (the simulated broker on bar D's open, Alpaca at the
open: it queues a market order sent before the open); the broker never fills on this row (it is yesterday's
bar). **"fill"**, bar D, once it is complete (after the close): the broker fills on it (the
simulated one: the orders at its open, protections from the bar after their entry's),
positions are marked at its close and protections are placed for the next day (GTC); no
decision is made on it: that is the next session's first row. Each run so places and sees
through its own orders: intent before send, one run's journal for one day's orders and
fills, deterministic client ids (bar D-1's time) at a restart, a supervisor's window of
open - lead .. close + tail. (Orders sent after D's close instead, as market-on-open
(Alpaca's ``opg``), would be rejected by Alpaca until 19:00 New York and fill while no
session runs: the next run would meet a fill and an open order its journal never had.)

The kill switches are judged on both rows. Their orders (flatten, force exit) are sent on
the decision row only: on the fill row, after the close, they would wait in the broker
overnight outside any run; they are said in an alert and judged again at the next
session's start on the same closes. The stale-bar switch measures a decision row's age
from the traded day's midnight: bar D-1 is the newest daily bar there can be before D's
close (a Monday's decision on Friday's bar is not stale).

The bars, one rule for a replay and a live session (:func:`daily_bars`): the stored 1Day
bars (what ``wb.data.load(timeframe="1Day")`` gives a daily backtest) when the store holds
them for the day before; else the stored minutes aggregated by the store's rule
(:func:`workbench.data.aggregate.aggregate_bars`). ``bars_from`` in ``session_start``
says which. A replay fills on the replayed day's bar by the same rule; a live session on
the day's minutes from its feed, aggregated by the same function.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import pandas as pd

from workbench.data import calendar
from workbench.data.aggregate import aggregate_bars
from workbench.data.bars import Bars
from workbench.data.timeframe import Timeframe
from workbench.engine import load_sessions
from workbench.errors import ConfigError, DataError
from workbench.model import events as ev
from workbench.model import to_decimal
from workbench.risk.switches import Flatten, ForceExit
from workbench.times import ny_date, ny_midnight, to_new_york

__all__ = ["Role", "account_from", "check_history_days", "daily_bars", "decision_day",
           "first_day", "fresh_from", "hold_actions", "is_daily", "said_after_open",
           "start_equity", "start_marks"]

Role = Literal["bar", "decision", "fill"]
DAY = Timeframe.parse("1Day")


def is_daily(tf: Timeframe | None) -> bool:
    return tf is not None and not tf.is_intraday


def first_day(tf: Timeframe, day) -> pd.Timestamp:
    """The day of a session's first row: ``day``, or a daily session's day before."""
    return decision_day(day) if is_daily(tf) else pd.Timestamp(day)


def decision_day(day) -> pd.Timestamp:
    """The session before ``day``: the bar its session decides on."""
    return calendar.last_sessions(2, pd.Timestamp(day))[0]


def _last_day(bars: Bars | None) -> pd.Timestamp | None:
    return None if bars is None or not len(bars) else pd.Timestamp(
        to_new_york(bars.index[-1]).date())


def check_history_days(history_days: int) -> None:
    if history_days < 1:
        raise ConfigError("a daily session decides on the day before's bar: history_days >= 1 "
                          f"(got {history_days})")


def daily_bars(symbols, through, sessions: int, store) -> tuple[Bars, str]:
    """The daily bars of the ``sessions`` sessions ending on ``through`` (its own bar
    included), by the one rule of the module doc, and where they come from."""
    through = pd.Timestamp(through)
    try:
        bars = load_sessions(sessions, symbols, DAY, end=through, store=store)
    except DataError:
        bars = None
    if _last_day(bars) == through:
        return bars, f"stored {DAY}"
    try:
        minutes = load_sessions(sessions, symbols, "1Min", end=through, store=store)
    except DataError:
        minutes = None
    if _last_day(minutes) == through:
        return aggregate_bars(minutes, DAY), f"stored 1Min aggregated to {DAY}"
    raise DataError(f"no stored {DAY} bars (nor minutes to aggregate) on {through.date()} for "
                    "these symbols: a daily session of the next day decides on that day's "
                    "bar; store it (workbench data fetch/import/synth)")


def fresh_from(bar_time: pd.Timestamp, role: Role, now: pd.Timestamp) -> pd.Timestamp:
    """The time the stale-bar switch measures a row's age from: a decision row's traded
    day's midnight (``now``'s New York day), any other row's own bar time."""
    return ny_midnight(ny_date(now)) if role == "decision" else bar_time


def hold_actions(actions, bar_time, journal, clock) -> None:
    """A fill row's flatten / force-exit actions, not sent after the close: said."""
    held = [a for a in actions if isinstance(a, (Flatten, ForceExit))]
    if held:
        what = "; ".join(f"{type(a).__name__}"
                         f"{'(' + a.symbol + ')' if isinstance(a, ForceExit) else ''}: "
                         f"{a.reason}" for a in held)
        journal.append(ev.ALERT, source="session", level="warning",
                       message=f"daily bar {bar_time.isoformat()}: {what}; not sent after the "
                       "close (it would wait at the broker outside any session): judged "
                       "again at the next session's start", at=clock.now().isoformat())


def start_marks(bars: Bars, day) -> dict[str, Decimal]:
    """The closes a daily session's start equity marks carried positions at: the day
    before's (the decision bar's), where the earlier session's fill row left the account's
    equity; not the positions' average prices, which would count every earlier day's
    gain or loss again in this day's P&L."""
    before = bars.index < ny_midnight(day)
    if not before.any():
        return {}
    closes = bars.close.loc[bars.index[before]].ffill().iloc[-1]
    return {str(s): to_decimal(float(c)) for s, c in closes.items() if pd.notna(c)}


def account_from(fills, day) -> str:
    """The first decision day of the account's daily sessions, fixed at a run's first
    start (``session_start``'s ``account_from``): the day before its first fill, or the
    day before ``day`` when the account has none. The drift replay trades from there, so
    it holds what earlier runs on the account left (:mod:`workbench.monitor.drift_replay`)."""
    first = min((f.time for f in fills), default=None)
    traded = pd.Timestamp(day) if first is None else pd.Timestamp(ny_date(first))
    return decision_day(traded).date().isoformat()


def start_equity(first_start, account, broker, bars: Bars, day, tf, trading: dict) -> Decimal:
    """A run's start equity: its first start's (``first_start``, a ``session_start``
    event, at a restart), else the account's equity now; a daily session's marked at the day
    before's closes (:func:`start_marks`), with its ``account_from`` put in ``trading``
    (recorded in ``session_start``; kept from the first start)."""
    daily_run = is_daily(tf)
    if daily_run:  # the drift replay trades from the account's first daily decision
        trading["account_from"] = (first_start.payload.get("account_from") if first_start
                                   else account_from(broker.fills(), day))
    if first_start:
        return Decimal(first_start.payload["start_equity"])
    return account.account().equity(start_marks(bars, day) if daily_run else {})


def said_after_open(day, now: pd.Timestamp) -> str | None:
    """A live daily session deciding after ``day``'s open: what that changes, or None."""
    opening = calendar.session_open(day)
    if now <= opening:
        return None
    return (f"daily session started at {now.isoformat()}, after the open "
            f"({opening.isoformat()}): the orders on the day before's bar are sent now and "
            "fill at the broker's price now, not the open the backtest fills at (the "
            "simulated broker fills them at the day's open)")
