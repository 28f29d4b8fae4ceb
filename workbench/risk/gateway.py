"""The risk gateway: one object between the strategy's intents and the order manager.

    gateway = RiskGateway(RiskSettings(), clock, journal)
    for action in gateway.on_bar(ctx):          # every bar and heartbeat: kill switches
        ...                                     # carry out Flatten / ForceExit, send Alerts
    decision = gateway.review(intent, ctx)      # every order: Approved() or Denied(...)

Every decision is journaled (``risk_decision``), every change of state or entry blocks
(``state``), every alert (``alert``) to ``sink``, an :class:`~workbench.model.events.EventSink`
(the run's journal).
Payload values are plain JSON types (Decimals and times as strings).

What each state lets through (``review``):

* **ACTIVE**: every check in order, the first denial wins; new entries are also denied
  while an entry block is on (stale feed, disconnection, slow decisions) and, for the
  rest of the day, in a symbol whose position was force-exited.
* **REDUCING**: only orders that reduce a position without reversing it, then the checks.
* **HALTED**: nothing, exits included: positions stay as they are and the operator decides.
  The one exception is a halt that demands a flatten (daily loss limit, or
  ``halt(flatten=True)``): then orders with ``reason="flatten"`` that reduce a position pass
  (no order-rate limit for them), and nothing else does.

Only :meth:`resume` loosens the state. A halt by the daily loss limit is for the day:
``resume`` refuses it the same trading day (America/New_York) unless ``force=True``; the
switch stays armed, so if the loss is still beyond the limit at the next bar it halts
(and flattens) again; ``force`` is for a trigger found to be spurious (a bad mark).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from workbench.clock import Clock
from workbench.config import RiskSettings
from workbench.model import OrderIntent, TradingState
from workbench.model.events import ALERT, RISK_DECISION, STATE, EventSink
from workbench.risk.checks import (
    APPROVED,
    Check,
    Decision,
    Denied,
    RiskContext,
    default_checks,
    is_reducing,
)
from workbench.risk.switches import (
    Action,
    Alert,
    BlockEntries,
    Flatten,
    ForceExit,
    KillSwitches,
    SetState,
    SwitchView,
    UnblockEntries,
    count_recent,
    secs,
)
from workbench.times import NEW_YORK

__all__ = ["FLATTEN", "FORCE_EXIT", "MARKET_TZ", "RiskGateway"]

FLATTEN = "flatten"  # OrderIntent.reason of the orders carrying out a Flatten
FORCE_EXIT = "force_exit"  # OrderIntent.reason of the order carrying out a ForceExit
MARKET_TZ = NEW_YORK  # the trading day of a for-the-day halt


class RiskGateway:
    """Pre-trade checks, trading state and kill switches; decisions, never exceptions."""

    def __init__(self, settings: RiskSettings | None, clock: Clock, sink: EventSink,
                 checks: Sequence[Check] | None = None) -> None:
        self.settings = settings or RiskSettings()
        self.checks = tuple(checks) if checks is not None else default_checks(self.settings)
        self._clock, self._sink = clock, sink
        self._switches = KillSwitches(self.settings)
        self._state = TradingState.ACTIVE
        self._reason = ""
        self._halt_day: dt.date | None = None
        self._flatten = False
        self._blocks: dict[str, str] = {}
        self._resumed_at: pd.Timestamp | None = None
        self._exited: set[tuple[dt.date, str]] = set()
        self._queued: list[Action] = []
        self._base: RiskContext | None = None
        self._ctx: RiskContext | None = None
        self._window = (None, None)  # order_window_s, and it as a Timedelta
        self._day: tuple = (None, None)  # the clock's last time, its trading day
        self._iso: tuple = (None, "")  # the clock's last time, its ISO text

    # -- read-only state ------------------------------------------------------------------
    @property
    def state(self) -> TradingState:
        return self._state

    @property
    def reason(self) -> str:
        """Why the state is what it is ('' when ACTIVE)."""
        return self._reason

    @property
    def entries_blocked(self) -> dict[str, str]:
        """Active entry blocks: switch -> reason."""
        return dict(self._blocks)

    @property
    def flatten_demanded(self) -> bool:
        return self._flatten

    @property
    def halted_for_day(self) -> dt.date | None:
        return self._halt_day

    # -- orders ----------------------------------------------------------------------------
    def review(self, intent: OrderIntent, ctx: RiskContext) -> Decision:
        """Approve or deny one order; journaled. Review all orders of a bar against the
        same ``ctx`` object: the orders approved against it count as open orders."""
        ctx = self._effective(ctx)
        decision = self._gate(intent, ctx)
        if decision is None and not self._is_flatten(intent, ctx):
            decision = self._rate(ctx)
        if decision is None:
            decision = next((d for c in self.checks if not (d := c.check(intent, ctx)).approved),
                            APPROVED)
        if decision.approved:
            self._ctx = ctx.with_order(intent, self._clock.now())
        self._journal_decision(intent, decision)
        return decision

    def _effective(self, ctx: RiskContext) -> RiskContext:
        if ctx is not self._base:
            self._base = self._ctx = ctx
        return self._ctx

    def _is_flatten(self, intent: OrderIntent, ctx: RiskContext) -> bool:
        return (self._state is TradingState.HALTED and self._flatten
                and intent.reason == FLATTEN and is_reducing(intent, ctx))

    def _gate(self, intent: OrderIntent, ctx: RiskContext) -> Denied | None:
        if self._state is TradingState.HALTED:
            if self._is_flatten(intent, ctx):
                return None
            only = " except reducing flatten orders" if self._flatten else ""
            return Denied(f"trading is HALTED ({self._reason}): no orders{only}", "state")
        if is_reducing(intent, ctx):
            return None
        if self._state is TradingState.REDUCING:
            return Denied(f"trading is REDUCING ({self._reason}): only orders that reduce a "
                          "position without reversing it", "state")
        if self._blocks:
            return Denied("new entries blocked: " + "; ".join(self._blocks.values()),
                          "entries_blocked")
        if (self._today(), intent.symbol) in self._exited:
            return Denied(f"{intent.symbol} was force-exited today: no new entry until "
                          "tomorrow", "force_exited")
        return None

    def _rate(self, ctx: RiskContext) -> Denied | None:
        s = self.settings
        if self._window[0] != s.order_window_s:  # a Timedelta per review cost 80 us
            self._window = (s.order_window_s, s.order_window)
        n = count_recent(ctx.order_times, ctx.now, self._window[1], self._resumed_at) + 1
        if n <= s.max_orders:
            return None
        why = (f"order {n} in {secs(s.order_window)}: more than {s.max_orders}; halted until an "
               "operator resumes")
        self._apply([SetState(TradingState.HALTED, why, "order_rate"),
                     Alert("critical", why, "order_rate")], queue=True)
        return Denied(why, "order_rate")

    # -- kill switches ------------------------------------------------------------------
    def on_bar(self, ctx: RiskContext) -> list[Action]:
        """Evaluate the kill switches on a fresh snapshot (every bar and heartbeat).

        Returns every action taken, oldest first, including those raised while reviewing
        orders since the last call. State changes, entry blocks and journaling are done;
        the session carries out ``Flatten`` and ``ForceExit`` and delivers ``Alert``s.
        """
        self._base = self._ctx = ctx
        actions = self._switches.evaluate(ctx, self._view())
        self._apply(actions)
        out, self._queued = self._queued + actions, []
        return out

    def _view(self) -> SwitchView:
        return SwitchView(self._state, self._halt_day is not None, self._flatten,
                          frozenset(self._blocks), self._resumed_at)

    # -- operator control channel ---------------------------------------------------------
    def halt(self, reason: str, operator: str = "operator", flatten: bool = False) -> list[Action]:
        """Stop trading now; with ``flatten`` also close every position. Returns the
        actions (a ``Flatten`` to carry out when asked for)."""
        actions: list[Action] = []
        if self._state is not TradingState.HALTED:
            actions.append(SetState(TradingState.HALTED, f"{reason} (by {operator})", "operator"))
        if flatten and not self._flatten:
            actions.append(Flatten(f"{reason} (by {operator})"))
        if actions:
            actions.append(Alert("critical", f"halted by {operator}: {reason}", "operator"))
        self._apply(actions, operator=operator)
        return actions

    def resume(self, operator: str, force: bool = False) -> Decision:
        """Back to ACTIVE. Refused (a ``Denied``) for a daily-loss halt of today unless
        ``force``. Order and exception counts restart from now."""
        if self._state is TradingState.ACTIVE:
            return APPROVED
        if self._halt_day == self._today() and not force:
            why = (f"halted for the day ({self._reason}); resume tomorrow, or with force=True "
                   "if the trigger was spurious")
            self._apply([Alert("warning", f"resume by {operator} refused: {why}", "operator")])
            return Denied(why, "resume")
        self._resumed_at = self._clock.now()
        self._apply([SetState(TradingState.ACTIVE, f"resumed by {operator}"
                              + (" (forced)" if force else ""), "operator")], operator=operator)
        return APPROVED

    def restore(self, payload: Mapping[str, Any]) -> None:
        """Take the state of the last ``state`` event of a journal being replayed
        (not journaled again). Entry blocks are recomputed at the next ``on_bar``."""
        self._state = TradingState(payload["state"])
        self._reason = payload.get("reason", "")
        day = payload.get("halted_for_day")
        self._halt_day = dt.date.fromisoformat(day) if day else None
        self._flatten = bool(payload.get("flatten", False))
        at = payload.get("resumed_at")
        self._resumed_at = pd.Timestamp(at) if at else None
        self._exited |= {(dt.date.fromisoformat(d), s) for d, s in payload.get("force_exited", ())}

    # -- applying actions and journaling ------------------------------------------------
    def _apply(self, actions: list[Action], operator: str | None = None,
               queue: bool = False) -> None:
        before = self._snapshot()
        previous, switch = self._state, None
        for a in actions:
            if isinstance(a, SetState):
                switch = a.switch
                self._set_state(a)
            elif isinstance(a, Flatten):
                self._flatten = True
            elif isinstance(a, BlockEntries):
                self._blocks[a.switch] = a.reason
                switch = switch or a.switch
            elif isinstance(a, UnblockEntries):
                self._blocks.pop(a.switch, None)
                switch = switch or a.switch
            elif isinstance(a, ForceExit):
                self._exited.add((self._today(), a.symbol))
        if self._snapshot() != before:
            self._journal_state(previous, switch, operator)
        for a in actions:
            if isinstance(a, Alert):
                self._sink.append(ALERT, level=a.level, switch=a.switch, message=a.message,
                                  at=self._clock.now().isoformat())
        if queue:
            self._queued += actions

    def _set_state(self, a: SetState) -> None:
        self._state, self._reason = a.state, a.reason
        if a.state is TradingState.ACTIVE:
            self._reason, self._halt_day, self._flatten = "", None, False
        elif a.for_day:
            self._halt_day = self._today()

    def _snapshot(self) -> tuple:
        return (self._state, self._reason, self._halt_day, self._flatten,
                tuple(sorted(self._blocks.items())), self._resumed_at, frozenset(self._exited))

    def _journal_state(self, previous: TradingState, switch: str | None,
                       operator: str | None) -> None:
        self._sink.append(
            STATE, state=str(self._state), previous=str(previous), reason=self._reason,
            switch=switch, operator=operator,
            halted_for_day=self._halt_day.isoformat() if self._halt_day else None,
            flatten=self._flatten, entries_blocked=dict(self._blocks),
            resumed_at=self._resumed_at.isoformat() if self._resumed_at is not None else None,
            force_exited=sorted((d.isoformat(), s) for d, s in self._exited),
            at=self._clock.now().isoformat())

    def _journal_decision(self, intent: OrderIntent, decision: Decision) -> None:
        self._sink.append(
            RISK_DECISION, client_order_id=intent.client_order_id, symbol=intent.symbol,
            side=str(intent.side), quantity=str(intent.quantity),
            order_type=str(intent.order_type), intent_reason=intent.reason,
            approved=decision.approved, check=getattr(decision, "check", None),
            reason=getattr(decision, "reason", None), state=str(self._state),
            at=self._iso_now())

    def _iso_now(self) -> str:
        """The clock's time as ISO text, converted once per time object (a bar's reviews
        share one)."""
        now = self._clock.now()
        if now is not self._iso[0]:
            self._iso = (now, now.isoformat())
        return self._iso[1]

    def _today(self) -> dt.date:
        now = self._clock.now()
        if now is not self._day[0]:  # the same time object all bar long: converted once
            self._day = (now, now.tz_convert(MARKET_TZ).date())
        return self._day[1]
