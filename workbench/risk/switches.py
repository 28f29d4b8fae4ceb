"""The kill switches: the table of ARCHITECTURE.md, evaluated on a context snapshot.

:meth:`KillSwitches.evaluate` runs every row on each bar and heartbeat and returns
:data:`Action` values; the gateway applies state changes and entry blocks itself and hands
the rest (flatten, force exits, alerts to deliver) to the session.

| row             | trigger (defaults)                          | actions                         |
|-----------------|---------------------------------------------|---------------------------------|
| daily_loss      | loss > 3% of start equity                   | SetState(REDUCING), Alert       |
| daily_loss      | loss > 5%                                   | SetState(HALTED, for_day),      |
|                 |                                             | Flatten, Alert                  |
| (flatten)       | HALTED with a flatten demanded, a position  | Flatten (again)                 |
|                 | not covered by open exit orders             |                                 |
| position_loss   | one position's unrealized loss > 5%         | ForceExit(symbol), Alert        |
| order_rate      | > 50 orders in 5 min (since the last resume)| SetState(HALTED), Alert         |
| connectivity    | feed/broker down > 30 s, last bar > 2 bars  | BlockEntries, Alert; Unblock    |
| latency         | decision over 250 ms / N in a row           | Alert / BlockEntries; Unblock   |
| exceptions      | > N unexpected exceptions per minute        | SetState(HALTED), Alert         |

States only tighten here (ACTIVE -> REDUCING -> HALTED); only an operator's resume loosens
them. Entry blocks lift by themselves when their condition clears. While HALTED without a
flatten, a losing position raises an alert but no order: positions stay until resumed.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import pandas as pd

from workbench.config import RiskSettings
from workbench.model import Side, TradingState
from workbench.risk.checks import RiskContext

__all__ = [
    "Action", "Alert", "BlockEntries", "Flatten", "ForceExit", "KillSwitches", "SetState",
    "SwitchView", "UnblockEntries", "count_recent", "secs",
]

Level = Literal["info", "warning", "critical"]
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SetState:
    """Trading state changes to ``state`` (applied by the gateway)."""

    state: TradingState
    reason: str
    switch: str
    for_day: bool = False  # HALTED for the rest of the trading day (daily loss)


@dataclass(frozen=True, slots=True)
class Flatten:
    """The session must close every position not covered by open exit orders (intents
    with ``reason="flatten"``); repeated each bar while such a position is left."""

    reason: str


@dataclass(frozen=True, slots=True)
class ForceExit:
    """The session must close ``quantity`` of ``symbol`` (intent ``reason="force_exit"``)."""

    symbol: str
    side: Side
    quantity: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class Alert:
    """Tell a human (journaled by the gateway; the session forwards it to the notifier)."""

    level: Level
    message: str
    switch: str


@dataclass(frozen=True, slots=True)
class BlockEntries:
    """No new entries while ``switch``'s condition holds (applied by the gateway)."""

    switch: str
    reason: str


@dataclass(frozen=True, slots=True)
class UnblockEntries:
    """``switch``'s condition cleared: its entry block is lifted (applied by the gateway)."""

    switch: str
    reason: str


Action = SetState | Flatten | ForceExit | Alert | BlockEntries | UnblockEntries


@dataclass(frozen=True, slots=True)
class SwitchView:
    """What the switches need to know of the gateway's state."""

    state: TradingState = TradingState.ACTIVE
    halted_for_day: bool = False
    flatten_demanded: bool = False
    blocks: frozenset[str] = frozenset()
    resumed_at: pd.Timestamp | None = None  # counts of orders/exceptions start after it


def count_recent(times: Sequence[pd.Timestamp], now: pd.Timestamp, window: pd.Timedelta,
                 since: pd.Timestamp | None = None) -> int:
    """How many ``times`` fall within ``window`` before ``now`` (and after ``since``).

    Times oldest first, as ``RiskContext.order_times`` and ``exception_times`` are
    (stamped by the session's clock, which never goes back), are counted by bisection: a
    few comparisons where a scan cost one per time (up to a thousand, for every order
    reviewed). A sequence whose first time is after its last (newest first, or unordered)
    is scanned; one whose ends are in order is taken as ordered throughout."""
    start = now - window
    if since is not None and since > start:
        start = since
    if not isinstance(times, Sequence):
        times = tuple(times)
    if len(times) > 1 and times[0] > times[-1]:
        return sum(1 for t in times if t > start)
    return len(times) - bisect.bisect_right(times, start)


def secs(delta: pd.Timedelta) -> str:
    """A duration for a message: ``"121 s"``."""
    return f"{delta.total_seconds():g} s"


def _advance(view: SwitchView, actions: list[Action]) -> SwitchView:
    for a in actions:
        if isinstance(a, SetState):
            view = dataclasses.replace(view, state=a.state,
                                       halted_for_day=view.halted_for_day or a.for_day)
        elif isinstance(a, Flatten):
            view = dataclasses.replace(view, flatten_demanded=True)
        elif isinstance(a, BlockEntries):
            view = dataclasses.replace(view, blocks=view.blocks | {a.switch})
        elif isinstance(a, UnblockEntries):
            view = dataclasses.replace(view, blocks=view.blocks - {a.switch})
    return view


class KillSwitches:
    """The rows of the table. Keeps only alert de-duplication memory; the rest is the view."""

    def __init__(self, settings: RiskSettings) -> None:
        self.settings = settings
        self._raised: set[str] = set()  # alert keys whose condition is still true

    def evaluate(self, ctx: RiskContext, view: SwitchView) -> list[Action]:
        """Every row, most severe first; each row sees the state the previous ones left."""
        actions: list[Action] = []
        for row in (self._flatten_rest, self._daily_loss, self._order_rate, self._exceptions,
                    self._position_loss, self._connectivity, self._latency):
            new = row(ctx, view)
            view = _advance(view, new)
            actions += new
        return actions

    def _once(self, key: str, condition: bool) -> bool:
        """True the first time ``condition`` holds for ``key`` (again after it cleared)."""
        if not condition:
            self._raised.discard(key)
            return False
        if key in self._raised:
            return False
        self._raised.add(key)
        return True

    # -- rows ---------------------------------------------------------------------------
    def _flatten_rest(self, ctx: RiskContext, view: SwitchView) -> list[Action]:
        """A demanded flatten is repeated while a position is left no open order covers."""
        if view.state is not TradingState.HALTED or not view.flatten_demanded:
            return []
        if any(_uncovered_exit(ctx, s, p.quantity) for s, p in ctx.positions.items()
               if p.quantity):
            return [Flatten("flatten demanded; positions remain")]
        return []

    def _daily_loss(self, ctx: RiskContext, view: SwitchView) -> list[Action]:
        s, loss = self.settings, ctx.daily_loss()
        if loss > s.daily_loss_halt:
            if view.state is TradingState.HALTED and view.halted_for_day:
                return []
            why = f"daily loss {loss:.2%} > {s.daily_loss_halt:.2%}: flatten, halted for the day"
            flatten = [] if view.flatten_demanded else [Flatten(why)]
            return [SetState(TradingState.HALTED, why, "daily_loss", for_day=True), *flatten,
                    Alert("critical", why, "daily_loss")]
        if loss > s.daily_loss_reduce and view.state is TradingState.ACTIVE:
            why = f"daily loss {loss:.2%} > {s.daily_loss_reduce:.2%}: reducing only"
            return [SetState(TradingState.REDUCING, why, "daily_loss"),
                    Alert("warning", why, "daily_loss")]
        return []

    def _halt_on_count(self, name: str, times, window, limit: int, what: str,
                       ctx: RiskContext, view: SwitchView) -> list[Action]:
        n = count_recent(times, ctx.now, window, view.resumed_at)
        if n <= limit or view.state is TradingState.HALTED:
            return []
        why = f"{n} {what} in {secs(window)}: more than {limit}; halted until an operator resumes"
        return [SetState(TradingState.HALTED, why, name), Alert("critical", why, name)]

    def _order_rate(self, ctx: RiskContext, view: SwitchView) -> list[Action]:
        s = self.settings
        return self._halt_on_count("order_rate", ctx.order_times, s.order_window,
                                   s.max_orders, "orders", ctx, view)

    def _exceptions(self, ctx: RiskContext, view: SwitchView) -> list[Action]:
        s = self.settings
        return self._halt_on_count("exceptions", ctx.exception_times, s.exception_window,
                                   s.max_exceptions, "unexpected exceptions", ctx, view)

    def _position_loss(self, ctx: RiskContext, view: SwitchView) -> list[Action]:
        if view.flatten_demanded:
            return []  # the flatten covers every position
        actions: list[Action] = []
        for symbol, pos in ctx.positions.items():
            loss = _unrealized_loss(pos.quantity, pos.average_price, ctx.last_prices.get(symbol))
            losing = loss is not None and loss > self.settings.position_loss_exit
            why = (f"{symbol} unrealized loss {loss:.2%} > "
                   f"{self.settings.position_loss_exit:.2%}" if losing else "")
            if view.state is TradingState.HALTED:
                if self._once(f"position_loss:{symbol}", losing):
                    actions.append(Alert("critical", why + "; halted: no order sent",
                                         "position_loss"))
                continue
            if losing and (exit_ := _uncovered_exit(ctx, symbol, pos.quantity)) is not None:
                actions += [exit_(why + ": force exit"), Alert("warning", why + ": force exit",
                                                                "position_loss")]
        return actions

    def _connectivity(self, ctx: RiskContext, view: SwitchView) -> list[Action]:
        s, problems = self.settings, []
        for label, since in (("broker", ctx.broker_down_since), ("feed", ctx.feed_down_since)):
            if since is not None and ctx.now - since > s.disconnect_grace:
                problems.append(f"{label} disconnected for {secs(ctx.now - since)}")
        if ctx.last_bar_time is not None:
            age, limit = ctx.now - ctx.last_bar_time, ctx.bar_interval * s.stale_bar_intervals
            if age > limit:
                problems.append(f"last bar is {secs(age)} old (limit {secs(limit)})")
        return self._block_while("connectivity", "; ".join(problems), view)

    def _latency(self, ctx: RiskContext, view: SwitchView) -> list[Action]:
        s, run = self.settings, 0
        for ms in reversed(ctx.latencies_ms):
            if ms <= s.latency_budget_ms:
                break
            run += 1
        actions: list[Action] = []
        if self._once("latency", run > 0):
            actions.append(Alert("warning", f"decision latency {ctx.latencies_ms[-1]:.0f} ms "
                                 f"over the {s.latency_budget_ms:.0f} ms budget", "latency"))
        persistent = (f"{run} decisions in a row over the {s.latency_budget_ms:.0f} ms budget"
                      if run >= s.latency_breaches_to_block else "")
        return actions + self._block_while("latency", persistent, view)

    @staticmethod
    def _block_while(switch: str, problem: str, view: SwitchView) -> list[Action]:
        if problem and switch not in view.blocks:
            return [BlockEntries(switch, problem),
                    Alert("warning", f"new entries blocked: {problem}", switch)]
        if not problem and switch in view.blocks:
            return [UnblockEntries(switch, "condition cleared"),
                    Alert("info", f"{switch} back to normal: entries allowed", switch)]
        return []


def _unrealized_loss(qty: Decimal, avg: Decimal, last: Decimal | None) -> Decimal | None:
    """Loss of a position as a fraction of its cost (positive: losing), or None."""
    if qty == 0 or last is None or avg <= 0:
        return None
    return (avg - last) / avg if qty > 0 else (last - avg) / avg


def _uncovered_exit(ctx: RiskContext, symbol: str, qty: Decimal):
    """A ForceExit factory for the part of the position no open exit order covers."""
    if qty > 0:
        side, left = Side.SELL, qty - ctx.pending_sells.get(symbol, _ZERO)
    else:
        side, left = Side.BUY, -qty - ctx.pending_buys.get(symbol, _ZERO)
    if left <= 0:
        return None
    return lambda why: ForceExit(symbol, side, left, why)
