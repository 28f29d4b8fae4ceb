"""A live session: one trading day on Alpaca's minute feed, the Alpaca broker or the
simulated one.

    result = run_live_session(sma_cross, {"fast": 10}, symbols=["AAPL", "MSFT"],
                              broker="alpaca")            # paper, keys from the environment
    result = run_live_session(..., broker="sim")          # live data, simulated fills

The same session as :func:`~workbench.session.runner.run_session` (record, journal,
start reconciliation, risk gateway, trader, group commit), fed by
:func:`workbench.feeds.alpaca.alpaca_feed` instead of stored bars:

- **Clock**: :class:`MarketClock`, Alpaca's ``GET /v2/clock`` run on the local monotonic
  clock at ``speed`` x real time and re-read once a market minute. In production (speed 1)
  that is the exchange's wall clock; against a replaying ``workbench fake-alpaca`` it is the
  fake's scaled clock (give the fake's ``--speed``). The day is the clock's New York date:
  the feed waits for the open, decides each minute (late/corrected/rejected bars, source
  switches: ``feed`` events in the journal) and ends after the close (half days included).
- **Broker**: ``"alpaca"``, :class:`~workbench.brokers.alpaca.AlpacaBroker` (paper unless
  ``live=True``; see :func:`live_refusals`), its lock and owner file under
  ``<home>/brokers/alpaca-<mode>-<account>``; or ``"sim"``, the simulated broker filling on
  the live bars (file as ``run_session``'s).
- **Kill switches**: stale feed (the last bar's age), feed disconnected (the feed on REST
  polling), broker disconnected (the adapter's trade-updates stream down), latency (each
  minute's decision, the row's arrival to its orders sent).
- **Start after the open, restart** (``run_dir`` of a running run): the journal replayed
  and reconciled with the account as for a replay; the day's minutes closed before the
  start are read from REST into the strategy's window (no decisions on them, said in an
  alert); a restart with another broker, feed, mode or speed is refused.

- **Timeframes above the minute** (5Min, 15Min, 1Hour, 1Day): the feed's minutes built
  into the timeframe's bars by the store's rule (:mod:`workbench.feeds.timeframes`, the
  function the store and a replayed session aggregate with), the warmup history the
  stored minutes aggregated the same way; the session decides at each bar's close (a bar
  is complete when its last minute is in or every minute of it is decided; a 1Day
  session decides on the day before's bar at its start and fills on the day's bar after
  the close: :mod:`workbench.session.daily`). A start or restart mid-bar rebuilds the bar in
  progress from the day's minutes read from REST (those before the feed's first minute)
  and the live ones after them: each minute once. ``session_start`` records the
  timeframe (part of the run's identity) and ``bars_from`` says where the bars come from.

Credentials come from the environment only (``ALPACA_API_KEY``, ``ALPACA_SECRET_KEY``;
:mod:`workbench.config`); nothing secret is recorded.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from workbench import paths
from workbench.brokers.sim import SimBroker
from workbench.clock import Clock, LiveClock
from workbench.config import Settings, load_settings
from workbench.data import calendar
from workbench.data.aggregate import aggregate_bars
from workbench.data.bars import Bars
from workbench.data.timeframe import Timeframe
from workbench.engine import Engine, ReplayFeed, load_sessions
from workbench.errors import ConfigError, DataError, WorkbenchError
from workbench.feeds.options import FeedOptions
from workbench.model import events as ev
from workbench.model import to_decimal
from workbench.model.costs import CostModel, Shares
from workbench.monitor import monitored
from workbench.risk import RiskSettings
from workbench.session import daily, rebuild
from workbench.session.bars import check_warmup
from workbench.session.options import HEARTBEAT_EVERY, SessionOptions
from workbench.session.runner import SessionResult, _run
from workbench.session.start import lock_broker, open_journal, open_record
from workbench.session.stops import Stops
from workbench.session.trader import Accounts, Direction, Sizing
from workbench.strategy import as_strategy
from workbench.times import to_new_york

__all__ = ["BROKERS", "FEED_EVENT", "MarketClock", "live_refusals", "run_live_session"]

BROKERS = ("sim", "alpaca")
FEED_EVENT = "feed"  # the journal's type for the feed's events (its ``kind`` says which)
MINUTE = pd.Timedelta(minutes=1)


class MarketClock(Clock):
    """The market's now: ``read()`` (Alpaca's ``/v2/clock``) run on the local monotonic
    clock at ``speed`` x real time, re-read every ``resync_s`` real seconds (default one
    market minute); never goes back. A failed re-read keeps the local run (counted)."""

    def __init__(self, read: Callable[[], pd.Timestamp], speed: float = 1.0,
                 resync_s: float | None = None, mono: Callable[[], float] = time.monotonic):
        self._read, self.speed, self._mono = read, float(speed), mono
        self.resync_s = resync_s if resync_s is not None else 60.0 / self.speed
        self.failures = 0
        self._t0, self._m0 = read(), mono()
        self._last = self._t0

    def now(self) -> pd.Timestamp:
        m = self._mono()
        if m - self._m0 >= self.resync_s:
            try:
                self._t0, self._m0 = self._read(), self._mono()
                m = self._m0
            except WorkbenchError:
                self.failures += 1
                self._m0, self._t0 = m, self._t0 + pd.Timedelta(
                    seconds=(m - self._m0) * self.speed)
        t = self._t0 + pd.Timedelta(seconds=(m - self._m0) * self.speed)
        self._last = max(self._last, t)
        return self._last


def live_refusals(*, live: bool, broker: str, settings: Settings, capital) -> list[str]:
    """What keeps a session from trading real money (empty: nothing). Live needs every one:
    ``broker="alpaca"``, the explicit ``live=True`` (``--live``), the setting
    ``alpaca.paper = false`` and a ``capital`` (a live session's cash is named, never the
    backtest's default). The adapter then checks the key, the URL and the account
    (:mod:`workbench.brokers.alpaca.safety`)."""
    if not live:
        return []
    out = []
    if broker != "alpaca":
        out.append(f"--live trades through a real broker: --broker alpaca (not {broker!r})")
    if settings.alpaca.paper:
        out.append("the setting alpaca.paper is true (set WORKBENCH__ALPACA__PAPER=false)")
    if capital is None:
        out.append("no capital given: a live session names the money it trades (capital)")
    return out


def _history(symbols, day: pd.Timestamp, history_days: int, store,
             tf: Timeframe) -> tuple[Bars, str]:
    """The warmup: ``history_days`` stored sessions of minutes before ``day``, above the
    minute aggregated by the store's rule (the bars the live ones continue); a daily
    session's: :func:`workbench.session.daily.daily_bars` (as a replay's). Where from."""
    if history_days < 1:
        raise ConfigError("a live session warms up on stored minutes: history_days >= 1")
    before = calendar.last_sessions(2, day)[0] if calendar.is_session(day) else day
    if daily.is_daily(tf):  # the replay's rule; its last bar the one decided at the start
        return daily.daily_bars(symbols, before, history_days, store)
    minutes = load_sessions(history_days, symbols, "1Min", end=before.date().isoformat(),
                            store=store)
    return (aggregate_bars(minutes, tf) if tf.seconds > 60 else minutes), \
        f"stored 1Min aggregated to {tf}"


def _bars_from(tf: Timeframe, feed: str, history: str) -> str:
    live = f"live Alpaca 1Min ({feed})"
    return live if tf.seconds == 60 else f"{live} aggregated to {tf}; history: {history}"


def _alpaca_broker(mode: str, settings: Settings, events: queue.SimpleQueue):
    from workbench.brokers.alpaca import AlpacaBroker

    broker = AlpacaBroker(mode, settings=settings, on_event=lambda *e: events.put(e))
    account = "".join(c for c in broker.account_number if c.isalnum()) or "unknown"
    return broker, paths.home() / "brokers" / f"alpaca-{mode}-{account}"


def run_live_session(strategy, params=None, *, symbols=None, broker: str = "sim",
                     live: bool = False, speed: float = 1.0, timeframe="1Min",
                     broker_path=None, run_dir=None, risk: RiskSettings | None = None,
                     cash=100_000, size: float = 0.1, shares: Shares = "fractional",
                     costs: CostModel | None = None, heartbeat_every: int = HEARTBEAT_EVERY,
                     history_days: int = 1, store=None, runs_root=None,
                     accounts: Accounts = "shared", sl_stop: float | None = None,
                     tp_stop: float | None = None, direction: Direction = "long",
                     settings: Settings | None = None, feed_options: FeedOptions | None = None,
                     capital=None, sl_trail: bool = False) -> SessionResult:
    """Run today's session on Alpaca's live minutes (see the module doc); refused with a
    ``ConfigError`` naming what is wrong before anything is sent."""
    from workbench.feeds.alpaca import alpaca_feed
    from workbench.feeds.alpaca_clock import clock_reader

    if broker not in BROKERS:
        raise ConfigError(f"broker={broker!r}: one of {', '.join(BROKERS)}")
    if sl_trail:  # a trail replaces its stop each bar, and waits for nothing: a replay's rule
        raise ConfigError("sl_trail=True: trailing stops are traded in replayed sessions only; "
                          "on the live feed a replaced stop must wait for the broker's cancel")
    if broker == "alpaca" and broker_path is not None:
        raise ConfigError(f"broker_path={str(broker_path)!r} is a simulated account's file; "
                          "the Alpaca account is the one of the keys in the environment")
    settings = settings or load_settings()
    refused = live_refusals(live=live, broker=broker, settings=settings, capital=capital)
    if refused:
        raise ConfigError("live trading refused: " + "; ".join(refused))
    tf = Timeframe.parse(timeframe)
    if not (isinstance(speed, (int, float)) and speed > 0):
        raise ConfigError(f"speed={speed!r}: the market clock's rate, a number > 0 (1 live)")
    costs = costs or CostModel()
    sizing = Sizing(size=size, shares=shares, costs=costs, accounts=accounts,
                    cash=to_decimal(cash), stops=Stops(sl_stop=sl_stop, tp_stop=tp_stop),
                    direction=direction)
    options = SessionOptions(speed=speed, heartbeat_every=heartbeat_every,
                             history_days=history_days, sizing=sizing)
    risk = risk if risk is not None else settings.risk
    strategy = as_strategy(strategy, "run_live_session")
    clock = MarketClock(clock_reader(settings), speed)
    start = clock.now()
    day = pd.Timestamp(to_new_york(start).date())
    if not calendar.is_session(day):
        raise DataError(f"{day.date()} is not an NYSE session (weekend or holiday): no live "
                        "session today")
    if start >= calendar.session_close(day):
        raise DataError(f"the session of {day.date()} closed at "
                        f"{calendar.session_close(day).isoformat()}: start before the close")
    history, source = _history(symbols, day, options.history_days, store, tf)
    engine = Engine(strategy, history.symbols, params=params, timeframe=tf, log_notices=False,
                    clock=clock)
    check_warmup(engine, history, day, options.history_days)
    mode = "live" if live else "paper"
    real = None
    broker_events: queue.SimpleQueue = queue.SimpleQueue()  # from the adapter's threads
    if broker == "alpaca":
        real, broker_path = _alpaca_broker(mode, settings, broker_events)  # reads the account; sends nothing
    record = open_record(run_dir, strategy, engine.params, history, LiveClock(), runs_root)
    journal = monitored(open_journal(record, clock), record.path, mode=mode, settings=settings)
    try:
        broker_path = Path(broker_path) if broker_path else record.path / "broker.sqlite"
        lock = lock_broker(broker_path)
    except BaseException:
        journal.close()
        if real is not None:
            real.close()
        raise
    if real is None:
        funds = cash * len(history.symbols) if accounts == "per_symbol" else cash
        real = SimBroker(broker_path, costs=costs, cash=funds, clock=clock,
                         checkpoint="manual")  # after each bar (session.deferred)
    identity = {"broker_kind": broker, "feed": "alpaca", "mode": mode,
                "clock_speed": float(speed), "alpaca_feed": settings.alpaca.feed}
    loop = _live_loop(alpaca_feed, settings, history, day, clock, feed_options, journal,
                      broker_events, tf)
    try:
        return _run(engine, history, day, record, journal, real, broker_path, clock, risk,
                    options, _bars_from(tf, settings.alpaca.feed, source), loop=loop,
                    identity=identity)
    finally:
        real.close()
        journal.close()
        os.close(lock)


def _live_loop(alpaca_feed, settings, history: Bars, day, clock: MarketClock, feed_options,
               journal, broker_events: queue.SimpleQueue, tf: Timeframe):
    symbols = history.symbols

    def loop(session, resume_at) -> None:
        late: dict[str, set[str]] = {}  # minute -> symbols whose bar came after its decision

        def on_event(kind: str, data: dict) -> None:
            journal.append(FEED_EVENT, kind=kind, **data)
            if kind == "bar_late":
                late.setdefault(data["time"], set()).add(data["symbol"])
            if kind == "feed_source":
                polling = data.get("source") != "stream"
                session.feed_down_since = (session.feed_down_since or clock.now()) \
                    if polling else None

        feed = alpaca_feed(symbols, day, settings=settings, clock=clock, speed=clock.speed,
                           options=feed_options, on_event=on_event, timeframe=tf)
        if daily.is_daily(tf):  # the day before's bar decided now, filled at the open
            _decide_day_before(session, history, day, clock)
        else:
            session.engine.preload(history)
        first = feed.first_minute
        if first > calendar.session_open(day):  # started (or restarted) after the open
            _catch_up(session, feed, day, first, resume_at)
        role = "fill" if daily.is_daily(tf) else "bar"
        session.engine.prime()  # the history's state before the first bar is waited for
        try:
            for row in feed:
                _journal_broker_events(journal, broker_events, clock)
                session.on_row(row, role)
                if session.stop_reason:
                    return
            _journal_broker_events(journal, broker_events, clock)
        finally:
            if late:  # each a feed event (an alert with channels); the end says them all
                session.undecided.append(_decided_without(late))
    return loop


def _decided_without(late: dict[str, set[str]]) -> str:
    """The end message's line for the minutes decided before some of their bars came."""
    times = sorted(late)
    shown = "; ".join(f"{t} without {', '.join(sorted(late[t]))}" for t in times[:5])
    more = f"; and {len(times) - 5} more" if len(times) > 5 else ""
    return (f"{len(times)} minute(s) decided without a bar that came after (bar_late: a "
            f"backtest on the stored bars decides them with it): {shown}{more}")


def _decide_day_before(session, history: Bars, day, clock) -> None:
    """A daily session's start: bar D-1 (the history's last) decided, its orders sent
    before the open (said when after it); the bars before it preloaded."""
    last = pd.Timestamp(to_new_york(history.index[-1]).date())
    if last != daily.decision_day(day):
        raise DataError(f"a daily session of {day.date()} decides on the bar of "
                        f"{daily.decision_day(day).date()}; the stored history ends on "
                        f"{last.date()}: store it first")
    session.engine.preload(history.iloc(slice(0, len(history) - 1)))
    late = daily.said_after_open(day, clock.now())
    if late:
        session.journal.append(ev.ALERT, source="session", level="warning", message=late,
                               at=clock.now().isoformat())
    session.on_row(next(iter(ReplayFeed(history, start=history.index[-1]))), "decision")


def _journal_broker_events(journal, events: queue.SimpleQueue, clock) -> None:
    """The adapter's events since the last bar (its stream's thread reports them), journaled
    from the session's thread: those an operator must hear of (a 406 slot taken, the stream
    down, a 429) as warning alerts, the rest (stream connected, throttled) as info."""
    from workbench.brokers.alpaca.broker import ALERT_EVENTS

    while True:
        try:
            name, fields = events.get_nowait()
        except queue.Empty:
            return
        journal.append(ev.ALERT, source="broker",
                       level="warning" if name in ALERT_EVENTS else "info",
                       message=name, at=clock.now().isoformat(), fields=fields)


def _catch_up(session, feed, day, first: pd.Timestamp, resume_at) -> None:
    """A start after the open: the day's minutes closed before the feed's first one, from
    REST: the bars they complete into the strategy's window (no decisions on them, said),
    those of the bar in progress to the feed (:meth:`LiveFeed.seed`), which completes it
    with the live minutes after them; at a restart, the bars after the last decided one,
    ``resume_at``, up to the one in progress, were not traded (said)."""
    opening = calendar.session_open(day)
    got = feed._poller.bars(feed.symbols, opening, first - MINUTE)
    current = feed.bar_start(first)  # the bar in progress at the feed's first minute
    if got:
        frame = pd.DataFrame([{"symbol": b.symbol, "ts": b.time, "open": b.open,
                               "high": b.high, "low": b.low, "close": b.close,
                               "volume": b.volume} for b in got])
        minutes = Bars.from_long(frame, "1Min")
        done = minutes.iloc(slice(0, int(minutes.index.searchsorted(current))))
        if len(done):
            session.engine.preload(aggregate_bars(done, feed.timeframe))
        feed.seed(minutes.iloc(slice(len(done), None)))
        if resume_at is not None:  # a restart: the day's last closes, as if never stopped
            session.last_prices.update(rebuild.last_prices(minutes.close, opening, current))
    said = (f"started after the open: {len({b.time for b in got})} minute(s) of the day read "
            "from REST into the strategy's window, no decision on them")
    if current < first:
        said += (f"; the {feed.timeframe} bar of {current.isoformat()} in progress: its "
                 "earlier minutes from REST, decided at its close")
    if resume_at is not None:
        grid = feed.row_times
        missed = max(int(grid.searchsorted(current))
                     - int(grid.searchsorted(pd.Timestamp(resume_at), side="right")), 0)
        unit = "minute(s)" if feed.timeframe.seconds == 60 else f"{feed.timeframe} bar(s)"
        said = (f"restart: {said}; {missed} {unit} after the last decided one "
                f"({resume_at}) passed without a decision")
    session.journal.append(ev.ALERT, source="session", level="warning", message=said,
                           at=session.clock.now().isoformat())
    session.undecided.append(said)  # and in the session's end message

