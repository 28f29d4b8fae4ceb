"""Issue 10: a strategy's ``sl_stop``/``tp_stop`` in a session are broker-side orders, and a
replayed day on the simulated broker makes ``wb.backtest``'s trades with stops: the same
entries, exits (signal, stop loss, take profit), sizes and prices, a gap through a stop
filled at the open. Built on tests/test_session_parity.py (per-symbol accounts, the
backtest on exactly the bars the engine saw, signals before the replayed day cleared).

The stored day has level shifts (every symbol's prices scaled from a few minutes on), so
some positions gap through their stop loss; the test checks that the backtest has such a
gap exit, so the comparison covers it.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

import workbench as wb
from tests.notebook_strategies import strategy_of
from tests.test_session_parity import (
    CASH,
    END,
    FEES,
    LOOSE,
    SIZE,
    SYMBOLS,
    TradingFrom,
    _day_start,
    trade_rows,
)
from workbench.brokers.sim import SimBroker
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.engine import load_sessions
from workbench.model import OrderStatus, OrderType, Side
from workbench.model import events as ev
from workbench.model.costs import CostModel
from workbench.session.runner import run_session
from workbench.session.stops import Stops, is_protection, levels

SL, TP = 0.003, 0.004
SHIFTS = {"14:45": 0.985, "15:40": 1.012, "16:30": 0.988, "17:50": 0.99, "19:10": 1.01}


def _gapped(frame: pd.DataFrame) -> pd.DataFrame:
    """The replayed day with level shifts: from each time on, every price x a factor."""
    frame = frame.copy()
    day = pd.Timestamp(END).date()
    for i, (hhmm, factor) in enumerate(SHIFTS.items()):
        at = pd.Timestamp(f"{END} {hhmm}", tz="UTC")
        # the symbols take turns: each shift hits every other symbol
        hit = frame["symbol"].isin(sorted(frame["symbol"].unique())[i % 2::2])
        rows = hit & (frame["ts"] >= at) & (frame["ts"].dt.date == day)
        frame.loc[rows, ["open", "high", "low", "close"]] *= factor
    return frame


@pytest.fixture
def home(workbench_home):
    Store(workbench_home / "data").write(_gapped(synthesize(SYMBOLS, 3, "1Min", 11, END)),
                                         "1Min", source="synth")
    return workbench_home


def _reason(client_order_id: str) -> str:
    if client_order_id.endswith(".tp"):
        return "take_profit"
    return "stop_loss" if is_protection(client_order_id) else "signal"


def _session_trades(broker_path) -> list[dict]:
    broker = SimBroker(broker_path)
    fills = broker.fills()
    broker.close()
    open_, trades = {}, []
    for f in fills:
        if f.side is Side.BUY:
            assert f.symbol not in open_
            open_[f.symbol] = f
            continue
        entry = open_.pop(f.symbol)
        assert f.quantity == entry.quantity, "an exit sells the whole position"
        trades.append({"symbol": f.symbol, "entry_time": entry.time, "exit_time": f.time,
                       "size": float(entry.quantity), "entry_price": float(entry.price),
                       "exit_price": float(f.price), "fees": float(entry.fee + f.fee),
                       "reason": _reason(f.client_order_id)})
    trades += [{"symbol": e.symbol, "entry_time": e.time, "exit_time": None,
                "size": float(e.quantity), "entry_price": float(e.price), "exit_price": None,
                "fees": None, "reason": "open at end"} for e in open_.values()]
    return sorted(trades, key=lambda t: (t["symbol"], t["entry_time"]))


def _backtest(strategy, symbols):
    bars = load_sessions(2, symbols, "1Min", end=END)
    result = wb.backtest(TradingFrom(strategy, _day_start()), bars, cash=CASH, size=SIZE,
                         sl_stop=SL, tp_stop=TP, **FEES)
    return trade_rows(result), bars


def _gap_exits(trades, bars) -> list[dict]:
    """Stop-loss exits filled at the bar's open, below the stop level (a gap through it)."""
    slip = CostModel(**FEES).slippage
    out = []
    for t in trades:
        if t["reason"] != "stop_loss":
            continue
        bar_open = float(bars.open.loc[t["exit_time"], t["symbol"]])
        sl_level, _ = levels(t["entry_price"], Stops(sl_stop=SL))
        if bar_open < sl_level and t["exit_price"] == pytest.approx(bar_open * (1 - slip),
                                                                   rel=1e-12):
            out.append(t)
    return out


def test_a_session_with_stops_makes_the_backtests_trades(home):
    strategy = strategy_of("sma_cross")
    symbols = list(load_sessions(1, None, "1Min", end=END).symbols)
    result = run_session(strategy, {}, replay_date=END, symbols=symbols, cash=CASH, size=SIZE,
                         costs=CostModel(**FEES), risk=LOOSE, accounts="per_symbol",
                         sl_stop=SL, tp_stop=TP)
    assert result.outcome == "succeeded" and result.state == "active", result.message
    session = _session_trades(result.broker_path)
    backtest, bars = _backtest(strategy, symbols)
    reasons = [t["reason"] for t in backtest]
    # a real test: every kind of exit, on several symbols, and a gap through a stop
    assert {"signal", "stop_loss", "take_profit"} <= set(reasons), reasons
    assert len({t["symbol"] for t in backtest}) >= 3
    assert _gap_exits(backtest, bars), "no stop-loss exit at a gap: the data lost its gaps"
    assert len(session) == len(backtest)
    for ours, theirs in zip(session, backtest, strict=True):
        for key in ("symbol", "entry_time", "exit_time", "reason"):
            assert ours[key] == theirs[key], (key, ours, theirs)
        for key in ("size", "entry_price", "exit_price", "fees"):
            if theirs[key] is not None:
                assert ours[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-9), (key, ours,
                                                                                    theirs)
    # the stop exits are the backtest's to the last bit (same floats on both sides)
    stops = [(o["exit_price"], t["exit_price"]) for o, t in zip(session, backtest, strict=True)
             if t["reason"] in ("stop_loss", "take_profit")]
    assert stops and all(a == b for a, b in stops)
    _check_journal(result)


def _check_journal(result) -> None:
    """Each protection was one intent and one broker order; strategy exits canceled theirs;
    the take-profit legs are journaled as order legs."""
    from workbench.journal.reader import replay

    events = replay(result.path).events
    intents = [e.payload for e in events if e.type == ev.INTENT]
    protections = [p for p in intents if is_protection(p["client_order_id"])]
    assert protections and all(p["order_type"] == OrderType.OCO for p in protections)
    ids = [p["client_order_id"] for p in intents]
    assert len(ids) == len(set(ids))
    submits = [e.payload["client_order_id"] for e in events
               if e.type == ev.BROKER_REQUEST and e.payload["action"] == "submit"]
    assert sorted(submits) == sorted(ids)  # one broker order per intent
    legs = {e.payload["client_order_id"] for e in events if e.type == ev.ORDER_LEG}
    assert legs == {p["client_order_id"] + ".tp" for p in protections}
    cancels = [e.payload["client_order_id"] for e in events
               if e.type == ev.BROKER_REQUEST and e.payload["action"] == "cancel"]
    assert cancels and all(is_protection(c) for c in cancels)
    broker = SimBroker(result.broker_path)
    orders = {o.client_order_id: o for o in broker.orders()}
    broker.close()
    for cid in cancels:  # a strategy exit canceled the stop and its take profit with it
        assert orders[cid].status is OrderStatus.CANCELED
        assert orders[cid + ".tp"].status is OrderStatus.CANCELED


def test_the_protection_levels_are_the_backtests_floats():
    fill = 101.23456789
    sl, tp = levels(fill, Stops(sl_stop=0.02, tp_stop=0.05))
    assert sl == fill * (1.0 - 0.02) and tp == fill * (1.0 + 0.05)
    assert levels(fill, Stops(sl_stop=0.02)) == (sl, None)
    assert float(Decimal(repr(sl))) == sl


# -- the pieces: the trader's protections and what they are not -----------------------------


def test_a_protection_follows_the_fill_and_never_blocks_an_exit_or_a_flatten(tmp_path):
    from workbench.clock import SimClock
    from workbench.model import Signal
    from workbench.orders.manager import OrderManager
    from workbench.risk.switches import Flatten
    from workbench.session.trader import Sizing, Trader
    from workbench.testing.sinks import ListSink

    t0 = pd.Timestamp("2025-03-03 14:30", tz="UTC")
    t = [t0 + pd.Timedelta(minutes=i) for i in range(4)]
    costs = CostModel(**FEES)
    clock = SimClock(t0)
    broker = SimBroker(tmp_path / "b.sqlite", costs=costs, cash=100_000, clock=clock)
    manager = OrderManager(broker, ListSink(), clock)
    manager.start()
    stops = Stops(sl_stop=0.01, tp_stop=0.02)
    trader = Trader("run", "s", manager, Sizing(size=0.5, costs=costs, stops=stops))
    prices = {"X": Decimal(100)}
    [entry] = trader.from_signals((Signal("s", "X", t[0], entry=True),), prices)
    manager.place(entry)
    assert trader.protections(t[0]) == []  # not filled yet: nothing to protect
    (fill,) = broker.on_bars(t[1], {"X": {"open": 100.5, "high": 101, "low": 100, "close": 100}})
    manager.process_updates()
    [protect] = trader.protections(t[1])
    sl, tp = levels(float(fill.price), stops)
    assert (protect.order_type, protect.side, protect.quantity) == (OrderType.OCO, Side.SELL,
                                                                    fill.quantity)
    assert (float(protect.stop_loss), float(protect.take_profit)) == (sl, tp)
    manager.place(protect)
    assert trader.protections(t[1]) == []  # placed once
    assert trader.open_protection("X") == [protect.client_order_id]
    # a contingent exit: not an open sell for the risk context, the exit rule or a flatten
    ctx = trader.context(t[1], Decimal(100_000), prices, t[1], pd.Timedelta(minutes=1))
    assert ctx.pending_sells == {}
    [exit_] = trader.from_signals((Signal("s", "X", t[1], exit=True),), prices)
    assert exit_.side is Side.SELL and exit_.quantity == fill.quantity
    assert trader.from_signals((Signal("s", "X", t[1], entry=True),), prices) == []  # held
    [flat] = trader.from_actions([Flatten("test")], t[1])
    assert flat.quantity == fill.quantity and flat.reason == "flatten"
    # the stop fills at a gap: the take profit is canceled, the position is gone
    broker.on_bars(t[2], {"X": {"open": 90.0, "high": 91, "low": 89, "close": 90}})
    manager.process_updates()
    assert manager.positions() == {} and trader.open_protection("X") == []
    assert manager.order(protect.client_order_id + ".tp").status is OrderStatus.CANCELED
    assert trader.protections(t[2]) == []
    broker.close()


def test_a_restart_with_other_stops_is_refused(home):
    """A crashed run (killed at its first protection) resumes only with the stops it
    started with: other stops would protect its open positions differently."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.test_session import NOTEBOOK, _one_run
    from workbench.errors import ConfigError

    crashed = subprocess.run([sys.executable, "-m", "tests.session_procs", "session",
                              str(NOTEBOOK), END, str(SL), str(TP)], capture_output=True,
                             text=True, timeout=300, cwd=ROOT, check=False,
                             env={**os.environ, "WORKBENCH_TEST_CRASH_AT":
                                  "intent_journaled:1:-stops"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    run = _one_run(home)
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"
    with pytest.raises(ConfigError, match="stops"):
        run_session(strategy_of("sma_cross"), {}, replay_date=END, run_dir=run, sl_stop=SL)


# -- issue 11: stops per bar (an ATR stop) and trailing stops ----------------------------------

K_ATR = 4.0


def _atr_cross():
    """sma_cross with an ATR stop: ``K x`` the 14-bar mean true range over the close,
    its take profit twice that; the entry signal's bar fixes both."""
    inner = strategy_of("sma_cross")

    def atr_cross(bars, fast: int = 10, slow: int = 30):
        s = inner.fn(bars, fast=fast, slow=slow)
        prev = bars.close.shift()
        tr = pd.concat([bars.high - bars.low, (bars.high - prev).abs(),
                        (bars.low - prev).abs()]).groupby(level=0).max()
        atr = tr.rolling(14).mean()
        return wb.Signals(entries=s.entries, exits=s.exits, sl_stop=K_ATR * atr / bars.close,
                          tp_stop=2 * K_ATR * atr / bars.close)

    return wb.strategy(atr_cross, warmup=inner._warmup)


def test_a_session_with_an_atr_stop_makes_the_backtests_trades(home):
    strategy = _atr_cross()
    symbols = list(load_sessions(1, None, "1Min", end=END).symbols)
    result = run_session(strategy, {}, replay_date=END, symbols=symbols, cash=CASH, size=SIZE,
                         costs=CostModel(**FEES), risk=LOOSE, accounts="per_symbol")
    assert result.outcome == "succeeded" and result.state == "active", result.message
    session = _session_trades(result.broker_path)
    bars = load_sessions(2, symbols, "1Min", end=END)
    full = wb.backtest(TradingFrom(strategy, _day_start()), bars, cash=CASH, size=SIZE, **FEES)
    backtest = trade_rows(full)
    reasons = [t["reason"] for t in backtest]
    assert {"signal", "stop_loss"} <= set(reasons), reasons
    assert len(session) == len(backtest)
    for ours, theirs in zip(session, backtest, strict=True):
        for key in ("symbol", "entry_time", "exit_time", "reason"):
            assert ours[key] == theirs[key], (key, ours, theirs)
        for key in ("size", "entry_price", "exit_price", "fees"):
            if theirs[key] is not None:
                assert ours[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-9), (key, ours,
                                                                                    theirs)
    # each protection is its entry signal bar's fraction of the entry's fill price: the
    # per-bar stops really differ between entries (not one number)
    from workbench.journal.reader import replay

    events = replay(result.path).events
    signals = {(e.payload["symbol"], pd.Timestamp(e.payload["bar_time"])): e.payload
               for e in events if e.type == ev.SIGNAL and e.payload.get("entry")}
    fractions = set()
    broker = SimBroker(result.broker_path)
    fills = {f.client_order_id: f for f in broker.fills()}
    broker.close()
    intents = [e.payload for e in events if e.type == ev.INTENT]
    for p in intents:
        if not is_protection(p["client_order_id"]):
            continue
        entry = next(i for i in intents if i["client_order_id"].endswith("-entry")
                     and i["symbol"] == p["symbol"] and
                     pd.Timestamp(i["bar_time"]) < pd.Timestamp(p["bar_time"]) and
                     p["client_order_id"].startswith(i["client_order_id"].rsplit("-", 1)[0]))
        sig = signals[(entry["symbol"], pd.Timestamp(entry["bar_time"]))]
        fill = float(fills[entry["client_order_id"]].price)
        assert Decimal(p["stop_loss"]) == Decimal(repr(fill * (1.0 - sig["sl_stop"])))
        assert Decimal(p["take_profit"]) == Decimal(repr(fill * (1.0 + sig["tp_stop"])))
        fractions.add(sig["sl_stop"])
        assert p["order_type"] == OrderType.OCO
    assert len(fractions) >= 3


def _trades_of(result) -> list[dict]:
    return trade_rows(result)


def test_a_session_with_a_trailing_stop_makes_the_backtests_trades(home):
    """sl_trail: the session replaces its stop bar by bar (cancel, new oco at the moved
    level); the trades equal the backtest's, and trailing changed them (not a fixed stop)."""
    strategy = strategy_of("sma_cross")
    symbols = list(load_sessions(1, None, "1Min", end=END).symbols)
    result = run_session(strategy, {}, replay_date=END, symbols=symbols, cash=CASH, size=SIZE,
                         costs=CostModel(**FEES), risk=LOOSE, accounts="per_symbol",
                         sl_stop=SL, tp_stop=TP, sl_trail=True)
    assert result.outcome == "succeeded" and result.state == "active", result.message
    session = _session_trades(result.broker_path)
    bars = load_sessions(2, symbols, "1Min", end=END)
    day = TradingFrom(strategy, _day_start())
    backtest = _trades_of(wb.backtest(day, bars, cash=CASH, size=SIZE, sl_stop=SL, tp_stop=TP,
                                      sl_trail=True, **FEES))
    fixed = _trades_of(wb.backtest(day, bars, cash=CASH, size=SIZE, sl_stop=SL, tp_stop=TP,
                                   **FEES))
    assert [t["exit_price"] for t in backtest] != [t["exit_price"] for t in fixed]
    # some trailed stop-loss exits lock in a gain: above the entry
    assert any(t["reason"] == "stop_loss" and t["exit_price"] > t["entry_price"]
               for t in backtest)
    assert len(session) == len(backtest)
    for ours, theirs in zip(session, backtest, strict=True):
        for key in ("symbol", "entry_time", "exit_time", "reason"):
            assert ours[key] == theirs[key], (key, ours, theirs)
        for key in ("size", "entry_price", "exit_price", "fees"):
            if theirs[key] is not None:
                assert ours[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-9), (key, ours,
                                                                                    theirs)
    from workbench.journal.reader import replay

    events = replay(result.path).events
    protections = [e.payload["client_order_id"] for e in events
                   if e.type == ev.INTENT and is_protection(e.payload["client_order_id"])]
    assert len(protections) > 2 * len(backtest)  # replaced as the best price moved
    assert len(protections) == len(set(protections))


def test_a_trailing_session_refuses_without_sl_stop_and_on_restart(home):
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        run_session(strategy_of("sma_cross"), {}, replay_date=END, sl_trail=True)
    assert "needs the sl_stop" in str(e.value) and "\n" not in str(e.value)
    from workbench.session.stops import refuse_trailing_restart

    with pytest.raises(ConfigError, match="cannot be restarted yet"):
        refuse_trailing_restart("r1")


def test_stops_given_twice_are_refused_by_the_trader(tmp_path):
    from workbench.errors import ConfigError
    from workbench.model import Signal
    from workbench.session.trader import Sizing, Trader

    trader = Trader("run", "s", None, Sizing(stops=Stops(sl_stop=0.01)))
    t0 = pd.Timestamp("2025-03-03 14:30", tz="UTC")
    with pytest.raises(ConfigError, match="one place"):
        trader.learn_stops(Signal("s", "X", t0, entry=True, sl_stop=0.02))
    own = Trader("run", "s", None, Sizing())
    own.learn_stops({"symbol": "X", "bar_time": t0.isoformat(), "sl_stop": 0.02,
                     "tp_stop": None})  # a journaled payload, on a restart
    assert own.entry_stops == {("X", t0): Stops(sl_stop=0.02)}
