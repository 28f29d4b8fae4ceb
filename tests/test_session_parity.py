"""Issue 4, parity point 2: a day replayed through engine, risk gateway, order manager and
simulated broker makes the same trades as ``wb.backtest`` when no risk limit binds.

The session runs with ``accounts="per_symbol"`` (each symbol its own account of ``cash``,
the backtest's research default) and fractional shares: an entry is a notional market
buy of ``size`` x the symbol's cash, whose shares the simulated broker sets at the fill
price with the backtest's formula. The backtest runs on exactly the bars the engine saw
(the preloaded day before plus the replayed day), with signals before the replayed day
cleared: the session trades from the day's first bar, flat, with ``cash`` per symbol, and
so does the backtest. Trade by trade: symbol, entry and exit bar times, shares, prices,
fees and P&L agree to 1e-9 relative (both sides compute them from the same floats; the
session's cash is exact Decimal, the backtest's vectorbt's float).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import workbench as wb
from tests.conftest import ROOT
from tests.notebook_strategies import strategy_of
from workbench.brokers.sim import SimBroker
from workbench.data import calendar
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.engine import load_sessions
from workbench.model import OrderIntent, OrderStatus, OrderType, Side
from workbench.model import events as ev
from workbench.model.costs import CostModel
from workbench.orders.states import Event, EventKind, IllegalTransition, transition
from workbench.risk import RiskSettings
from workbench.session.runner import run_session
from workbench.session.trader import Sizing
from workbench.strategy import TradingFrom

END = "2026-11-20"
SYMBOLS = 4
FEES = {"fees_bps": 1.0, "fee_per_share": 0.005, "slippage_bps": 2.0}
CASH, SIZE = 50_000.0, 0.5
# limits far away from anything this day can reach: no check or kill switch binds
LOOSE = RiskSettings(
    daily_loss_reduce="0.98", daily_loss_halt="0.99", position_loss_exit="0.99",
    max_orders=1_000_000, latency_budget_ms=1e9, stale_bar_intervals=1e9,
    max_order_notional=10**12, max_symbol_exposure=10**12, max_total_exposure=10**12,
    max_gross_leverage=1000, price_band="0.99", max_exceptions=1000)
NOTEBOOKS = ("sma_cross", "rsi_reversion")

@pytest.fixture
def home(workbench_home):
    Store(workbench_home / "data").write(synthesize(SYMBOLS, 3, "1Min", 11, END), "1Min",
                                         source="synth")
    return workbench_home


def _day_start() -> pd.Timestamp:
    return pd.Timestamp(END).tz_localize(calendar.NY).tz_convert("UTC")


def _session_trades(broker_path) -> list[dict]:
    """Round trips from the broker's fills: each entry with the exit that closes it."""
    broker = SimBroker(broker_path)
    fills = broker.fills()
    broker.close()
    open_: dict[str, object] = {}
    trades = []
    for f in fills:
        if f.side is Side.BUY:
            assert f.symbol not in open_, "one position per symbol at a time"
            open_[f.symbol] = f
            continue
        entry = open_.pop(f.symbol)
        assert f.quantity == entry.quantity, "an exit sells the whole position"
        pnl = (f.price - entry.price) * f.quantity - entry.fee - f.fee
        trades.append(_trade(entry, f, float(pnl)))
    trades += [_trade(e, None, None) for e in open_.values()]
    return sorted(trades, key=lambda t: (t["symbol"], t["entry_time"]))


def _trade(entry, exit_, pnl) -> dict:
    return {"symbol": entry.symbol, "entry_time": entry.time,
            "exit_time": exit_.time if exit_ else None, "size": float(entry.quantity),
            "entry_price": float(entry.price),
            "exit_price": float(exit_.price) if exit_ else None,
            "fees": float(entry.fee + (exit_.fee if exit_ else 0)), "pnl": pnl}


def trade_rows(result, more: tuple[str, ...] = ("reason",)) -> list[dict]:
    """``wb.backtest``'s trades as the rows a session's trades are compared with, by symbol
    and entry: a trade still open at the end has no exit time, price or fees (nor ``pnl``);
    ``more``: "reason" (the exit reason), "direction", "pnl"."""
    out = []
    for t in result.trades().itertuples():
        done = t.exit_reason != "open at end"
        row = {"symbol": t.symbol, "entry_time": t.entry_time,
               "exit_time": t.exit_time if done else None, "size": t.size,
               "entry_price": t.entry_price, "exit_price": t.exit_price if done else None,
               "fees": t.fees if done else None}
        for name in more:
            row[name] = {"reason": t.exit_reason, "direction": t.direction,
                         "pnl": t.pnl if done else None}[name]
        out.append(row)
    return sorted(out, key=lambda t: (t["symbol"], t["entry_time"]))


def _backtest_trades(strategy, symbols) -> list[dict]:
    bars = load_sessions(2, symbols, "1Min", end=END)  # what the session loads (1 day before)
    result = wb.backtest(TradingFrom(strategy, _day_start()), bars, cash=CASH, size=SIZE,
                         **FEES)
    assert set(result.trades()["exit_reason"]) <= {"signal", "open at end"}
    out = trade_rows(result, ("pnl",))
    assert all(t["entry_time"] >= _day_start() for t in out)
    return out


def _assert_same(session: list[dict], backtest: list[dict]) -> None:
    assert len(session) == len(backtest)
    for ours, theirs in zip(session, backtest, strict=True):
        for key in ("symbol", "entry_time", "exit_time"):
            assert ours[key] == theirs[key], (key, ours, theirs)
        for key in ("size", "entry_price", "exit_price", "fees", "pnl"):
            if theirs[key] is None or (key == "fees" and ours["exit_time"] is None):
                continue
            assert ours[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-9), (key, ours, theirs)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_replayed_session_makes_the_backtests_trades(home, name):
    strategy = strategy_of(name)
    symbols = list(load_sessions(1, None, "1Min", end=END).symbols)
    result = run_session(strategy, {}, replay_date=END, symbols=symbols, cash=CASH, size=SIZE,
                         costs=CostModel(**FEES), risk=LOOSE, accounts="per_symbol")
    assert result.outcome == "succeeded" and result.state == "active", result.message
    session = _session_trades(result.broker_path)
    backtest = _backtest_trades(strategy, symbols)
    assert len({t["symbol"] for t in backtest}) >= 2 and len(backtest) >= 4  # a real test
    assert any(t["exit_time"] is not None for t in backtest)
    _assert_same(session, backtest)
    # the per-symbol books add up: every symbol's account ends where the backtest's does
    positions = {s: Decimal(q) for s, q in result.positions.items()}
    open_ = {t["symbol"]: t["size"] for t in backtest if t["exit_time"] is None}
    assert {s: float(q) for s, q in positions.items()} == pytest.approx(open_, rel=1e-12)


def test_the_shared_default_sizes_at_the_close_and_differs(home):
    """Why the option exists: one shared account sized at the last close does not make
    the backtest's shares (its trades' times still agree, when cash never runs short)."""
    strategy = strategy_of("sma_cross")
    symbols = list(load_sessions(1, None, "1Min", end=END).symbols)
    result = run_session(strategy, {}, replay_date=END, symbols=symbols, cash=CASH, size=SIZE,
                         costs=CostModel(**FEES), risk=LOOSE)
    session = _session_trades(result.broker_path)
    backtest = _backtest_trades(strategy, symbols)
    times = [(t["symbol"], t["entry_time"], t["exit_time"]) for t in session]
    assert times == [(t["symbol"], t["entry_time"], t["exit_time"]) for t in backtest]
    assert [t["size"] for t in session] != pytest.approx([t["size"] for t in backtest])


# -- the pieces: notional orders -----------------------------------------------------------


def _notional_buy(notional="10000", qty="100") -> OrderIntent:
    return OrderIntent("n1", "X", Side.BUY, Decimal(qty), notional=Decimal(notional),
                       bar_time=pd.Timestamp("2025-03-03 14:30", tz="UTC"))


def test_a_notional_order_is_a_market_order_of_a_positive_amount():
    # a notional sell is a short sale of a per-symbol account (tests/test_session_longshort.py)
    assert OrderIntent("n", "X", Side.SELL, Decimal(1), notional=Decimal(100)).notional == 100
    with pytest.raises(ValueError, match="notional"):
        OrderIntent("n", "X", Side.BUY, Decimal(1), OrderType.LIMIT, limit_price=Decimal(1),
                    notional=Decimal(100))
    with pytest.raises(ValueError, match="notional"):
        _notional_buy(notional="0")


def test_the_sim_broker_sizes_a_notional_buy_at_the_fill_price(tmp_path):
    costs = CostModel(**FEES)
    broker = SimBroker(tmp_path / "b.sqlite", costs=costs, cash=100_000)
    broker.submit(_notional_buy())
    t1 = pd.Timestamp("2025-03-03 14:31", tz="UTC")
    [fill] = broker.on_bars(t1, {"X": {"open": 97.31, "high": 98, "low": 97, "close": 97.5}})
    price = costs.fill_price("buy", 97.31)
    assert float(fill.price) == price
    assert float(fill.quantity) == costs.max_quantity(10_000.0, price)  # not the 100 asked
    assert float(fill.fee) == costs.fee(costs.max_quantity(10_000.0, price), price)
    order = broker.get_order("n1")
    assert order.status is OrderStatus.FILLED and order.quantity == fill.quantity
    assert broker.account().cash == Decimal(100_000) - fill.quantity * fill.price - fill.fee
    assert broker.account().cash == pytest.approx(Decimal(90_000), rel=Decimal("1e-12"))
    broker.close()


def test_a_notional_order_is_filled_by_one_execution_within_its_notional():
    from workbench.model import Order

    order = Order(_notional_buy(), OrderStatus.ACCEPTED)
    filled = transition(order, Event(EventKind.FILL, Decimal("102.5"), Decimal("97.5")))
    assert filled.status is OrderStatus.FILLED and filled.remaining == 0
    with pytest.raises(IllegalTransition, match="notional"):
        transition(order, Event(EventKind.FILL, Decimal(103), Decimal("97.5")))


def test_per_symbol_sizing_is_validated():
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="accounts"):
        Sizing(accounts="pooled")
    with pytest.raises(ConfigError, match="size"):
        Sizing(size=1.5)
    with pytest.raises(ConfigError, match="shares"):
        Sizing(shares="round lots")


@pytest.mark.slow  # a notebook kernel
def test_the_command_line_options_are_the_notebooks_parameters(home, jupyter_env, tmp_path):
    """`workbench session` runs the notebook in mode paper: each option is a notebook
    parameter (results/settings.json holds them), per-symbol accounts trade notional entries
    funded with cash x symbols, and the figures printed are the session's own record."""
    import json
    import subprocess

    from tests.conftest import BIN
    from workbench.journal import replay

    notebook = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
    broker_path = tmp_path / "deploy" / "broker.sqlite"  # a new account in a folder that
    broker_path.parent.mkdir()  # exists (a missing folder is refused: a mistyped path)
    proc = subprocess.run([str(BIN / "workbench"), "session", str(notebook), "--replay", END,
                           "--timeframe", "1Min", "--symbols", "2", "--accounts", "per-symbol",
                           "--speed", "max", "--broker-path", str(broker_path),
                           "-p", "fast", "5", "-p", "slow", "20"],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**jupyter_env, "WORKBENCH_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    stored = sorted(Store().ls().query("timeframe == '1Min'")["symbol"])[:2]
    lines = proc.stdout.splitlines()
    assert lines[0] == f"--symbols 2: the first 2 stored 1Min symbols: {', '.join(stored)}"
    run = Path(lines[-1].removeprefix("record: "))
    settings = json.loads((run / "results" / "settings.json").read_text())
    assert settings["data"]["symbols"] == stored and settings["data"]["timeframe"] == "1Min"
    assert settings["params"] == {"fast": 5, "slow": 20}
    assert settings["sizing"]["accounts"] == "per_symbol"
    assert settings["settings"] | {"history_days": None} == {
        "replay_date": END, "speed": "max", "accounts": "per_symbol", "heartbeat_every": 1,
        "history_days": None, "broker_path": str(broker_path), "capital": None,
        "broker": "sim", "feed": "replay", "live": False,
        "cash_per_account": settings["options"]["cash"]}  # no capital: the backtest's cash
    figures = json.loads((run / "results" / "session.json").read_text())
    assert lines[1] == f"run {run.name}: succeeded"
    assert lines[2] == (f"bars {figures['bars']}  orders {figures['orders']}  fills "
                        f"{figures['fills']}  P&L {Decimal(figures['pnl']).quantize(Decimal('0.01')):,}"
                        f"  state {figures['state']}")
    assert lines[3] == ("positions:" if figures["positions"] else "positions: none (flat)")
    assert figures["bars"] == 390 and figures["broker_path"] == str(broker_path)
    events = replay(run).events
    start = next(e for e in events if e.type == ev.SESSION_START)
    assert start.payload["accounts"] == "per_symbol" and start.payload["symbols"] == stored
    entries = [e.payload for e in events
               if e.type == ev.INTENT and e.payload["side"] == "buy"]
    assert entries and all(Decimal(p["notional"]) > 0 for p in entries)
    broker = SimBroker(broker_path)
    assert broker.account().cash + sum(  # funded with cash x symbols: 2 x 100,000
        (p.quantity * p.average_price for p in broker.positions().values()),
        Decimal(0)) == pytest.approx(Decimal(200_000), rel=Decimal("0.05"))
    broker.close()
