"""A replayed paper session: one trading day of stored bars on the simulated broker.

    result = run_session(sma_cross, {"fast": 10}, replay_date="2026-11-20",
                         symbols=["AAA", "BBB"], speed="max")
    result.outcome, result.pnl, result.path           # runs/<run_id>/ holds the record

Start (:mod:`workbench.session.start`): the run record (kind "session", mode
"paper"), the journal (one writer), the broker's lock and file (default
``runs/<run_id>/broker.sqlite``: a fresh account per run; give ``broker_path`` for a
deployment's account that lives across runs and days), then the journal replayed and
reconciled with the broker; an unexplained difference ends the session at once, HALTED,
outcome "halted" (fail closed). A restarted run (``run_dir`` of a run still "running",
i.e. one that crashed) resumes at the last bar it journaled; that bar is processed again
and yields the same client order ids, so nothing is sent twice.

Each bar (one timestamp, every symbol): the control channel is read (halt / resume /
stop); ``broker.on_bars`` fills what is due; ``manager.process_updates``; the risk
gateway's kill switches (``on_bar``; Flatten and ForceExit carried out); the engine's
decision on the same strategy function as the backtest; intents (see
:mod:`workbench.session.trader`) reviewed by the gateway and staged, then the bar's intents
committed together: one journal sync, then each sent (group commit,
:meth:`~workbench.orders.OrderManager.commit`). Journaled: a
``bar`` summary, the ``signal``\\s, every risk decision and order event, an ``equity``
event per bar (its ``latency_ms``: the row's arrival to its orders sent; p50/p99/max in
``SessionResult.latency_ms``) and a ``heartbeat`` every ``heartbeat_every`` bars (default
every bar; with wall time, for ``workbench status`` and a supervisor). SIGTERM and a ``stop`` command end the session
after the current bar: ``session_end`` journaled, manifest outcome "interrupted". At the
end of the day DAY orders expire at the broker. However it ends (succeeded, interrupted,
halted, failed) the session writes its figures (``SessionResult`` without ``run_id`` and
``path``) to ``results/session.json`` and the manifest's ``extra``, then closes its record.

``sl_stop``/``tp_stop``: the backtest's stops (fractions of the entry's fill price), placed
as broker-side orders once an entry fills (:mod:`workbench.session.stops`); a restart
must use the run's stops. A strategy may give its own stops per bar (``Signals(sl_stop=
...)``): each entry is protected with its signal bar's, relearned from the journaled
signals on a restart. ``sl_trail=True`` (with ``sl_stop``) replaces the stop bar by bar;
a trailing run is not restarted (``stops.refuse_trailing_restart``).

``direction``: the backtest's, "long" (short signals journaled, not traded) or
"longshort" (short sales, covers and reversals: :mod:`workbench.session.trader`); a
restart must use the run's. The ``session_start`` event and the manifest's
``extra["trading"]`` record every trading setting (timeframe and where the bars came from,
accounts, cash per account, size, shares, costs, stops, direction). ``run_session``'s own
defaults (``size=0.1``, ``accounts="shared"``, 1Min) are not the backtest's: ``wb.run(...,
mode="paper")`` (``workbench session``) passes the backtest's settings of the notebook.

``accounts``: "shared" (one account of ``cash``) or "per_symbol" (each symbol its own
account of ``cash``, as ``wb.backtest``; the broker is funded with ``cash`` x symbols):
see :mod:`workbench.session.trader`. A restart must use the run's ``accounts``.

``timeframe``: the strategy's bars. Above the minute and intraday (5Min, 15Min, 1Hour) the
session replays the stored *minutes* aggregated by
:func:`workbench.data.aggregate.aggregate_bars` (the rule the store's bars are made by), as
a live session builds its bars from a minute stream: the engine decides at each aggregated
bar's close and the simulated broker fills on the aggregated bars, so the session makes the
backtest's trades on the stored bars of that timeframe. Without stored minutes on the day
it replays the stored bars of the timeframe; ``session_start`` says which (``bars_from``).

``speed``: "max" (as fast as possible) or N (N x real time: a minute bar every 60/N s).
"""

from __future__ import annotations

import collections
import os
import signal
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.brokers.sim import SimBroker
from workbench.clock import LiveClock, SimClock
from workbench.config import load_settings
from workbench.data.timeframe import Timeframe
from workbench.engine import Engine, bar_close
from workbench.engine.engine import LatencyStats
from workbench.errors import ConfigError
from workbench.journal import JournalError
from workbench.journal.reader import replay
from workbench.model import OrderStatus, to_decimal
from workbench.model import events as ev
from workbench.model.costs import CostModel, Shares
from workbench.monitor import monitored
from workbench.risk import RiskGateway, RiskSettings
from workbench.session import crashpoints, daily, rebuild
from workbench.session.bars import check_warmup, load_replay
from workbench.session.control import ControlChannel
from workbench.session.daily import Role
from workbench.session.deferred import after_bar, collector_paused
from workbench.session.ending import SessionResult, close_failed
from workbench.session.ending import finish as _finish
from workbench.session.identity import IDENTITY, refuse_other_identity, restart_changes
from workbench.session.options import HEARTBEAT_EVERY, SessionOptions
from workbench.session.prices import LastPrices
from workbench.session.replay import replay_loop
from workbench.session.risk_caps import say_caps, session_caps
from workbench.session.start import (
    lock_broker,
    open_journal,
    open_record,
    start_manager,
    write_owner,
)
from workbench.session.stops import Stops, refuse_trailing_restart
from workbench.session.trader import Accounts, Direction, Sizing, Trader, carried_flows
from workbench.strategy import as_strategy
from workbench.times import ny_midnight

__all__ = ["SessionResult", "run_session"]  # SessionResult: workbench.session.ending


class _Session:
    """The state and the per-bar loop of one session (see the module doc)."""

    def __init__(self, engine, manager, risk, trader, broker, journal, record, clock,
                 start_equity, options: SessionOptions) -> None:
        self.engine, self.manager, self.risk, self.trader = engine, manager, risk, trader
        self.broker, self.journal, self.record, self.clock = broker, journal, record, clock
        self.start_equity, self.o = start_equity, options
        self.control = ControlChannel(record.path)
        self.last_prices = LastPrices()  # each symbol's last close, Decimal when read
        self.stop_reason: str | None = None
        self.undecided: list[str] = []  # bars not decided (a late start): said at the end
        self.trading: dict = {}  # every trading setting, for session_start and the manifest
        self.bars = self.orders = 0
        self.wall = LiveClock()
        self.latency = LatencyStats()  # each bar: the row's arrival to its orders sent
        self.recent_ms: collections.deque = collections.deque(maxlen=20)  # for the switch
        self.feed_down_since: pd.Timestamp | None = None  # a live feed on REST polling
        self.broker_down_since: pd.Timestamp | None = None  # the broker's stream is down

    def request_stop(self, why: str) -> None:
        self.stop_reason = self.stop_reason or why

    # -- one bar ----------------------------------------------------------------------
    def on_row(self, row, role: Role = "bar") -> None:
        """One row: ``role`` "bar" (filled on, then decided), or a daily session's
        "decision" (the day before's bar: decided, never filled on) or "fill" (the day's
        bar: filled on and marked, never decided) (:mod:`workbench.session.daily`)."""
        with collector_paused():  # collections wait until the orders are sent
            latency = self._decide(row, role)
        self.latency.record(latency)
        self.recent_ms.append(latency * 1e3)
        self.bars += 1
        self._equity(latency_ms=round(latency * 1e3, 3))
        if self.bars % self.o.heartbeat_every == 0:
            self.heartbeat()
        after_bar(self.broker)  # the broker's checkpoint, off the bar's path

    def _decide(self, row, role: Role = "bar") -> float:
        """The bar from its arrival to its orders sent; the seconds that took."""
        self._commands()
        if isinstance(self.clock, SimClock):  # a replay's time is its bars'; a live one runs
            self.clock.set(max(self.clock.now(), bar_close(row.time, self.engine.window.timeframe)))
        self._connection()
        present = np.flatnonzero(row.present)
        self.journal.append(ev.BAR, bar_time=row.time, symbols=len(present),
                            volume=float(np.nansum(row.field("volume"))),
                            **({} if role == "bar" else {"role": role}))
        bars = {row.symbols[j]: row.values[:, j] for j in present}
        if role != "decision" and hasattr(self.broker, "on_bars"):  # the simulated broker
            self.broker.on_bars(row.time, bars)  # fills on the bars
        self.manager.process_updates()
        self.manager.settle_unknown()
        self.last_prices.set_closes(bars, row.values[3, present].tolist())
        ctx = self._context(daily.fresh_from(row.time, role, self.clock.now()))
        try:  # the bar's intents are staged, then committed: one sync, then each sent
            actions = self.risk.on_bar(ctx)
            if role == "fill":  # after the close: judged again at the next session's start
                daily.hold_actions(actions, row.time, self.journal, self.clock)
            else:
                for intent in self.trader.from_actions(actions, row.time):
                    self._send(intent, ctx)
            if role != "fill":
                decision = self.engine.on_bars(row)
                for sig in decision.signals:
                    self.journal.append(ev.SIGNAL, sig)
                for intent in self.trader.from_signals(decision.signals, self.last_prices):
                    self._send(intent, ctx)
            for intent in self.trader.protections(row.time, bars):
                self._send(intent, ctx)
        finally:
            self.manager.commit()
        return time.perf_counter() - (row.received or time.perf_counter())

    def _context(self, bar_time):
        tf = self.engine.window.timeframe
        return self.trader.context(self.clock.now(), self.start_equity, self.last_prices,
                                   bar_time, tf.delta if tf else pd.Timedelta(minutes=1),
                                   feed_down_since=self.feed_down_since,
                                   broker_down_since=self.broker_down_since,
                                   latencies_ms=tuple(self.recent_ms))

    def _connection(self) -> None:
        """The broker's stream state for the disconnected switch (a broker without a
        stream, the simulated one, is always connected)."""
        connected = getattr(self.broker, "connected", True)
        if connected:
            self.broker_down_since = None
        elif self.broker_down_since is None:
            self.broker_down_since = self.clock.now()

    def _send(self, intent, ctx) -> None:
        decision = self.risk.review(intent, ctx)
        if decision.approved and self.manager.order(intent.client_order_id) is None:
            if not self._unprotect(intent):  # a trailing stop's new level replaces the old
                return
            self.manager.stage(intent)  # journaled, sent by the bar's commit
            self.trader.placed(self.clock.now())
            self.orders += 1

    def _unprotect(self, intent) -> bool:
        """Cancel the symbol's protection before any other order of it (a close, a
        reversal); False (the order is not sent, said in an alert) unless every
        protection order is now canceled."""
        left = []
        for cid in self.trader.open_protection(intent.symbol):
            if self.manager.cancel(cid).status is not OrderStatus.CANCELED:
                left.append(f"{cid} {self.manager.order(cid).status}")
        if left:
            self.journal.append(ev.ALERT, source="session", level="warning",
                                message=f"{intent.client_order_id} not sent: the protection "
                                f"of {intent.symbol} could not be canceled ({', '.join(left)})",
                                at=self.clock.now().isoformat())
        return not left

    def _commands(self) -> None:
        for cmd in self.control.poll():
            self.journal.append(ev.COMMAND, command=cmd.command, reason=cmd.reason,
                                operator=cmd.operator, sent_at=cmd.sent_at, file=cmd.name)
            if cmd.command == "halt":
                self.risk.halt(cmd.reason, operator=cmd.operator)
            elif cmd.command == "resume":
                self.risk.resume(cmd.operator)
            else:
                self.request_stop(f"stop command by {cmd.operator}: {cmd.reason}")

    def equity(self) -> Decimal:
        return self.manager.account().equity(self.last_prices)

    def _equity(self, **extra) -> None:
        self.journal.append(ev.EQUITY, equity=self.equity(), cash=self.manager.cash,
                            pnl=self.equity() - self.start_equity, **extra)

    def heartbeat(self) -> None:
        self.journal.append(ev.HEARTBEAT, wall=self.wall.now(), bars=self.bars,
                            state=str(self.risk.state), orders=self.orders,
                            positions=len(self.manager.positions()))


def _install_sigterm(session: _Session):
    try:
        return signal.signal(signal.SIGTERM, lambda *_: session.request_stop("SIGTERM"))
    except ValueError:  # not the main thread: no signal handling
        return None


def run_session(strategy, params=None, *, replay_date, speed="max", symbols=None,
                timeframe="1Min", broker_path=None, run_dir=None, clock=None,
                risk: RiskSettings | None = None, cash=100_000, size: float = 0.1,
                shares: Shares = "fractional", costs: CostModel | None = None,
                heartbeat_every: int = HEARTBEAT_EVERY, history_days: int = 1, store=None,
                runs_root=None, accounts: Accounts = "shared", sl_stop: float | None = None,
                tp_stop: float | None = None, direction: Direction = "long",
                sl_trail: bool = False, broker_costs: CostModel | None = None) -> SessionResult:
    """Replay ``replay_date`` through engine, risk, orders and the simulated broker; a bad
    option is a ``ConfigError`` naming it (:class:`~workbench.session.options.SessionOptions`).
    ``broker_costs``: the simulated broker's fill model when it is not ``costs`` (what the
    session sizes with, the backtest's): recorded in ``session_start`` as ``broker_costs``
    (a harsher market than the backtest's, for drift, :mod:`workbench.monitor.drift`)."""
    costs = costs or CostModel()
    if sl_trail and sl_stop is None:
        raise ConfigError("sl_trail=True in a session needs the sl_stop it trails given to the "
                          "session (a strategy's own per-bar stops do not trail in a session yet)")
    sizing = Sizing(size=size, shares=shares, costs=costs, accounts=accounts,
                    cash=to_decimal(cash), stops=Stops(sl_stop=sl_stop, tp_stop=tp_stop),
                    direction=direction, sl_trail=sl_trail)
    options = SessionOptions(speed=speed, heartbeat_every=heartbeat_every,
                             history_days=history_days, sizing=sizing)
    risk = risk if risk is not None else load_settings().risk  # [risk] of workbench.toml + env
    strategy = as_strategy(strategy, "run_session")
    tf = Timeframe.parse(timeframe)
    bars, source = load_replay(replay_date, symbols, tf, options.history_days, store)
    engine = Engine(strategy, bars.symbols, params=params, timeframe=tf, log_notices=False,
                    clock=clock or SimClock(ny_midnight(daily.first_day(tf, replay_date))))
    clock = engine.clock
    check_warmup(engine, bars, replay_date, options.history_days)
    record = open_record(run_dir, strategy, engine.params, bars, LiveClock(), runs_root)
    journal = monitored(open_journal(record, clock), record.path)  # alerts, metrics, log
    try:
        broker_path = Path(broker_path) if broker_path else record.path / "broker.sqlite"
        lock = lock_broker(broker_path)
    except BaseException:
        journal.close()
        raise
    funds = cash * len(bars.symbols) if accounts == "per_symbol" else cash
    broker = SimBroker(broker_path, costs=broker_costs or costs, cash=funds, clock=clock,
                       checkpoint="manual")  # after each bar (session.deferred)
    differs = broker_costs is not None and broker_costs != costs
    try:
        return _run(engine, bars, replay_date, record, journal, broker, broker_path, clock,
                    risk, options, source,
                    identity={"broker_costs": broker_costs.describe()} if differs else None)
    finally:
        broker.close()
        journal.close()
        os.close(lock)


def _run(engine, bars, replay_date, record, journal, broker, broker_path, clock, risk_settings,
         options: SessionOptions, source: str = "", loop=None, identity=None) -> SessionResult:
    """The session on ``broker``: start, reconcile, then ``loop(session, resume_at)`` (the
    stored day's replay by default); ``identity``: more settings recorded in
    ``session_start`` and the manifest that a restart must keep (a live session's broker
    and feed)."""
    sizing = options.sizing
    stops = sizing.stops.model_dump()
    trading = {"timeframe": str(engine.window.timeframe), "bars_from": source,
               "accounts": sizing.accounts, "cash": f"{sizing.cash:f}",
               "size": float(sizing.size), "shares": sizing.shares,
               "costs": sizing.costs.describe(), "stops": stops,
               "direction": sizing.direction, **({"sl_trail": True} if sizing.sl_trail else {}),
               **(identity or {})}
    events = replay(record.path).events
    starts = [e for e in events if e.type == ev.SESSION_START]
    day, account = str(pd.Timestamp(replay_date).date()), str(Path(broker_path).resolve())
    refuse_other_identity(record.run_id, starts[0].payload if starts else None,
                          {"replay_date": day, "symbols": list(bars.symbols),
                           "strategy": engine.strategy.name, "params": engine.params,
                           "broker": account, "history_days": options.history_days,
                           **trading},
                          keys=IDENTITY + tuple(identity or ()))
    if starts and sizing.sl_trail:
        refuse_trailing_restart(record.run_id)
    carried = {}  # per-symbol accounts: earlier runs' flows, fixed at the first start
    if sizing.accounts == "per_symbol":
        carried = ({k: Decimal(v) for k, v in starts[0].payload.get("carried_flows", {}).items()}
                   if starts else carried_flows(broker.fills()))
    sink, wrapped = crashpoints.wrap(journal, broker)
    manager, check, events = start_manager(wrapped, sink, clock, record, broker_path, journal,
                                           events)
    resume_at = max((pd.Timestamp(e.payload["bar_time"]) for e in events if e.type == ev.BAR),
                    default=None)
    start_equity = daily.start_equity(starts[0] if starts else None, wrapped, broker, bars,
                                      replay_date, engine.window.timeframe, trading)
    caps = session_caps(risk_settings, sizing, len(bars.symbols), start_equity)
    risk = RiskGateway(caps.settings, clock, journal)  # [risk] set, or derived from the sizing
    for e in [e for e in events if e.type == ev.STATE][-1:]:
        risk.restore(e.payload)
    settings = caps.settings.model_dump(mode="json")
    changed = restart_changes(record.run_id, events, str(options.speed), settings)
    journal.append(ev.SESSION_START, replay_date=day,
                   symbols=list(bars.symbols), strategy=engine.strategy.name,
                   params=engine.params, start_equity=start_equity, broker=account,
                   speed=str(options.speed), restart=bool(starts), resume_at=resume_at,
                   risk_caps=caps.record(), history_days=options.history_days,
                   **({"changed": changed} if changed else {}), **trading,
                   **({"carried_flows": {k: f"{v:f}" for k, v in carried.items()}}
                      if carried else {}))
    journal.append(ev.CONFIG, risk=settings)
    say_caps(caps, journal, clock, events)
    trader = Trader(record.run_id, engine.strategy.name, manager, sizing)
    trader.carried = carried
    for e in events:  # a restart: the stops the strategy gave with this run's entries
        if e.type == ev.SIGNAL:
            trader.learn_stops(e.payload)
    trader.order_times.extend(rebuild.order_times(events))  # the order-rate switch's count
    session = _Session(engine, manager, risk, trader, wrapped, sink, record, clock,
                       start_equity, options)  # sink: the journal (and its crash points)
    if resume_at is not None:  # the figures go on from the run's (the resumed bar again)
        session.bars, session.orders = rebuild.counters(events, resume_at)
    session.trading = trading
    if not check.ok:
        risk.halt(check.message, operator="reconcile")
        return _finish(session, "halted", check.message, broker_path, expire=False)
    write_owner(broker_path, record)
    previous = _install_sigterm(session)
    try:
        if loop is None:
            replay_loop(session, bars, replay_date, resume_at, options)
        else:
            loop(session, resume_at)
    except BaseException as e:
        try:
            journal.append(ev.ERROR, error=f"{type(e).__name__}: {e}")
            _finish(session, "failed", f"{type(e).__name__}: {e}", broker_path, expire=False)
        except (JournalError, OSError):  # the journal or the disk failed (full): e says why
            close_failed(record, e)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if session.stop_reason:
        return _finish(session, "interrupted", session.stop_reason, broker_path, expire=False)
    return _finish(session, "succeeded", "the replayed day is over" if loop is None
                   else "the trading day is over", broker_path, expire=True)
