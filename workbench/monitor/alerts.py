"""Which journal events are alerts, and what an alert says.

:class:`AlertRules` reads a session's events in order (``on(type, payload, at)``) and
returns the :class:`Alert`\\s they call for, each with a severity, a kind, a readable
title and text, and a ``key``: two alerts with the same key are the same incident (the
throttle sends it once, :mod:`workbench.monitor.throttle`).

======================  =========  ==================================================
event                   severity   alert
======================  =========  ==================================================
``fill``                info       trade: entry, exit or stop (stop loss/take profit),
                                   forced exits named
``broker_reply``        error      an order rejected by the broker (a cancel: warning)
/ ``order_update``
``order_unknown``       warning    an order whose outcome is not known
``alert`` (risk)        its level  kill-switch action (halt, block, force exit, resume)
``alert`` (supervisor)  error      a dead or hung session: heartbeat loss, restart;
                                   critical when the supervisor gives up
``alert`` (broker,      its level  the broker's stream, rate limits, a late start
session)
``error``               error      an exception that ended the session
``reconcile``           critical   differences between the journal and the broker
``feed`` (source)       warning    the live feed left its stream for REST polling (and
                                   info when it is back), a failed poll (error)
``bar`` (gap)           warning    no bar for more than ``gap_bars`` bar intervals
``session_end``         info       the daily summary (warning unless it succeeded
                                   and trading is active, critical when it halted)
======================  =========  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

__all__ = ["FEED_EVENT", "SEVERITIES", "Alert", "AlertRules"]

SEVERITIES = ("info", "warning", "error", "critical")
FEED_EVENT = "feed"  # the live session's feed events (workbench.session.live.FEED_EVENT)
_STOPS = {"stop_loss": "stop loss", "take_profit": "take profit"}
_FORCED = {"flatten": "flatten", "force_exit": "forced exit"}
_LEVEL = {"debug": "info", "info": "info", "warning": "warning", "warn": "warning",
          "error": "error", "critical": "critical"}


@dataclass(frozen=True)
class Alert:
    """One alert: ``severity`` (:data:`SEVERITIES`), ``kind``, ``title``, ``text``, the
    incident's ``key``, the session time ``at`` (ISO) and whether the session already
    journaled it (``journaled``: an ``alert`` event of the risk gateway, supervisor, ...)."""

    severity: str
    kind: str
    title: str
    text: str
    key: str
    at: str
    journaled: bool = False
    fields: dict = field(default_factory=dict, compare=False)

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.severity)


def _num(value) -> str:
    """A quantity or price as people read it: at most 4 places, no trailing zeros."""
    try:
        d = Decimal(str(value)).quantize(Decimal("0.0001"))
    except ArithmeticError:
        return str(value)
    text = f"{d:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class AlertRules:
    """The alert rules of one session (see the module doc); ``gap_bars``: bar intervals
    without a bar before a feed outage is alerted."""

    def __init__(self, gap_bars: int = 5) -> None:
        self.gap_bars = gap_bars
        self._reasons: dict[str, str] = {}  # client order id -> the intent's reason
        self._intents: dict[str, dict] = {}
        self._qty: dict[str, Decimal] = {}  # symbol -> position
        self._interval = pd.Timedelta(minutes=1)
        self._last_bar: pd.Timestamp | None = None
        self.strategy = ""

    def on(self, kind: str, payload: dict, at: str) -> list[Alert]:
        rule = getattr(self, f"_on_{kind}", None)
        return rule(payload, at) or [] if rule is not None else []

    # -- session --------------------------------------------------------------------
    def _on_session_start(self, p: dict, at: str) -> None:
        self.strategy = str(p.get("strategy", ""))
        self._last_bar = None
        tf = str(p.get("timeframe", "1Min"))
        try:
            self._interval = pd.Timedelta(tf.replace("Min", "min").replace("Hour", "h")
                                          .replace("Day", "D"))
        except ValueError:
            self._interval = pd.Timedelta(minutes=1)

    def _on_intent(self, p: dict, at: str) -> None:
        cid = p.get("client_order_id", "")
        self._reasons[cid] = str(p.get("reason", ""))
        self._intents[cid] = p

    def _on_position(self, p: dict, at: str) -> None:
        self._qty[p["symbol"]] = Decimal(str(p["quantity"]))

    def _on_fill(self, p: dict, at: str) -> list[Alert]:
        cid, symbol = p.get("client_order_id", ""), p.get("symbol", "")
        qty, side = Decimal(str(p["quantity"])), str(p.get("side", ""))
        reason = self._reasons.get(cid) or ("take_profit" if cid.endswith(".tp") else "")
        before = self._qty.get(symbol, Decimal(0))
        after = before + (qty if side == "buy" else -qty)
        self._qty[symbol] = after
        if reason in _STOPS:
            what, title = "stop", f"{_STOPS[reason]} hit: {symbol}"
        elif reason in _FORCED:
            what, title = "exit", f"{_FORCED[reason]}: {symbol}"
        elif abs(after) > abs(before) and before * after >= 0:
            what, title = "entry", f"entry: {symbol}"
        else:
            what, title = "exit", f"exit: {symbol}"
        text = (f"{side.upper()} {_num(qty)} {symbol} @ {_num(p.get('price'))} ({what}"
                f"{', ' + reason if reason and reason != 'signal' else ''}); position "
                f"{_num(before)} -> {_num(after)}; order {cid}")
        return [Alert("info", "trade", title, text, f"trade:{p.get('execution_id', cid)}", at,
                      fields={"trade": what, "symbol": symbol, "side": side})]

    # -- orders ---------------------------------------------------------------------
    def _rejected(self, cid: str, action: str, reason, at: str) -> list[Alert]:
        i = self._intents.get(cid, {})
        order = " ".join(str(i[k]) for k in ("side", "quantity", "symbol") if k in i)
        if action == "cancel":
            return [Alert("warning", "order", f"cancel rejected: {cid}",
                          f"the cancel of {cid} was rejected: {reason}", f"cancel:{cid}", at)]
        return [Alert("error", "order", f"order rejected: {i.get('symbol', cid)}",
                      f"order {cid} ({order or 'unknown order'}) rejected by the broker: "
                      f"{reason}", f"rejected:{cid}", at)]

    def _on_broker_reply(self, p: dict, at: str) -> list[Alert] | None:
        if p.get("outcome") == "rejected":
            return self._rejected(p.get("client_order_id", ""), p.get("action", "submit"),
                                  p.get("reason") or "no reason given", at)
        return None

    def _on_order_update(self, p: dict, at: str) -> list[Alert] | None:
        if p.get("status") == "rejected":
            return self._rejected(p.get("client_order_id", ""), "submit",
                                  p.get("reason") or "rejected after acceptance", at)
        return None

    def _on_order_unknown(self, p: dict, at: str) -> list[Alert]:
        cid = p.get("client_order_id", "")
        return [Alert("warning", "order", f"order outcome unknown: {cid}",
                      f"the broker call for {cid} has no known outcome: "
                      f"{p.get('reason') or p.get('error') or 'no reply'}; it is looked up",
                      f"unknown:{cid}", at)]

    # -- alerts journaled by the session, its risk gateway, its supervisor ------------
    def _on_alert(self, p: dict, at: str) -> list[Alert] | None:
        source = p.get("source")
        if source == "monitor":
            return None  # ours
        message = str(p.get("message", ""))
        if source == "supervisor":
            action = str(p.get("action", ""))
            sev = "critical" if action == "gave up" else "error"
            return [Alert(sev, "supervisor", f"supervisor: session {action}",
                          f"{message} (attempt {p.get('attempt')}, pid {p.get('pid')})",
                          f"supervisor:{action}:{p.get('attempt')}", at, journaled=True)]
        level = _LEVEL.get(str(p.get("level", "warning")).lower(), "warning")
        if "switch" in p:
            switch = p.get("switch")
            return [Alert(level, "kill_switch", f"kill switch {switch}: {level}", message,
                          f"switch:{switch}:{level}", at, journaled=True)]
        what = source or "session"
        return [Alert(level, what, f"{what}: {message[:60]}", message,
                      f"{what}:{message[:60]}", at, journaled=True)]

    def _on_error(self, p: dict, at: str) -> list[Alert]:
        error = str(p.get("error", ""))
        return [Alert("error", "error", "session error", error,
                      f"error:{error.splitlines()[0][:80] if error else ''}", at)]

    def _on_reconcile(self, p: dict, at: str) -> list[Alert] | None:
        if p.get("ok", True):
            return None
        diffs = "; ".join(str(d) for d in p.get("differences", [])[:5])
        return [Alert("critical", "reconcile", "reconciliation: journal and broker differ",
                      f"{p.get('message', '')}: {diffs}; trading halted", "reconcile", at)]

    # -- the feed -------------------------------------------------------------------
    def _on_feed(self, p: dict, at: str) -> list[Alert] | None:
        kind = p.get("kind")
        if kind == "feed_source":
            if p.get("source") == "stream":
                return [Alert("info", "feed", "feed back on the stream",
                              f"the live feed is back on its stream: {p.get('reason', '')}",
                              "feed:stream", at)]
            return [Alert("warning", "feed", "feed outage: on REST polling",
                          f"the live feed left its stream for REST polling: "
                          f"{p.get('reason', '')}", "feed:polling", at)]
        if kind == "bar_late":  # the minute was decided without this symbol's bar
            when = p.get("time", "")
            return [Alert("warning", "feed", f"feed: late bar for {p.get('symbol')}",
                          f"{p.get('symbol')}'s bar of {when} came ({p.get('source', '')}) after "
                          "the minute was decided without it: that decision saw no bar for it "
                          "where a backtest on the stored bars sees one", f"feed:late:{when}",
                          at)]
        if kind == "poll_failed":
            return [Alert("error", "feed", "feed: a REST poll failed",
                          f"poll of {p.get('first')} .. {p.get('last')} failed: "
                          f"{p.get('error', '')}", "feed:poll_failed", at)]
        return None

    def _on_bar(self, p: dict, at: str) -> list[Alert] | None:
        t = pd.Timestamp(p["bar_time"])
        last, self._last_bar = self._last_bar, t
        if last is None or t - last <= self._interval * self.gap_bars:
            return None
        missing = int((t - last) / self._interval) - 1
        ny = "%H:%M"
        text = (f"no bars after {last.tz_convert('America/New_York').strftime(ny)} until "
                f"{t.tz_convert('America/New_York').strftime(ny)} New York ({missing} bar "
                f"interval(s) missing): the feed was out; decisions resumed on the next bar")
        return [Alert("warning", "feed", "feed outage: bars missing", text,
                      f"feed:gap:{last.isoformat()}", at)]

    # -- the end of the day ----------------------------------------------------------
    def _on_session_end(self, p: dict, at: str) -> list[Alert]:
        outcome = str(p.get("outcome", ""))
        sev = ("critical" if outcome == "halted" else "info"
               if outcome == "succeeded" and p.get("state") == "active" else "warning")
        positions = ", ".join(f"{s} {_num(q)}" for s, q in (p.get("positions") or {}).items())
        lat = p.get("latency_ms") or {}
        text = (f"{self.strategy or 'session'}: {outcome} ({p.get('message', '')}); P&L "
                f"{_money(p.get('pnl'))}, equity {_money(p.get('equity'))}, cash "
                f"{_money(p.get('cash'))}; {p.get('bars')} bars, {p.get('orders')} orders, "
                f"{p.get('fills')} fills; positions: {positions or 'none'}; state "
                f"{p.get('state')}; decision latency p99 {lat.get('p99')} ms")
        return [Alert(sev, "summary", f"daily summary: {self.strategy or 'session'} "
                      f"{outcome}", text, f"summary:{at}", at)]


def _money(value) -> str:
    try:
        return f"{Decimal(str(value)):,.2f}"
    except ArithmeticError:
        return str(value)
