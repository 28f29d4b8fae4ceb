"""Issue 10: timeframes above the minute in a session. The session replays the stored minutes
aggregated by :func:`workbench.data.aggregate.aggregate_bars`, the rule the store's bars are
made by (:mod:`workbench.data.synth` aggregates with the same function), decides at each
aggregated bar's close and fills on the aggregated bars: a 5Min long-short strategy with
stops makes ``wb.backtest``'s trades on the stored 5Min bars, trade by trade."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_session_longshort import (
    CASH,
    END,
    FEES,
    LOOSE,
    SIZE,
    SYMBOLS,
    assert_same_trades,
    backtest_trades,
    gap_reversals,
    ls_cross,
    session_trades,
)
from workbench.data.aggregate import aggregate_bars
from workbench.data.bars import Bars
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.engine import load_sessions
from workbench.errors import DataError
from workbench.model import events as ev
from workbench.model.costs import CostModel
from workbench.session.runner import run_session


@pytest.fixture
def home(workbench_home):
    store = Store(workbench_home / "data")
    for tf in ("1Min", "5Min"):
        store.write(synthesize(SYMBOLS, 3, tf, 11, END), tf, source="synth")
    return workbench_home


@pytest.mark.parametrize("tf", ["5Min", "15Min", "1Hour"])
def test_the_stores_bars_are_the_aggregated_minutes(tf):
    minutes = Bars.from_long(synthesize(3, 2, "1Min", 11, END), "1Min")
    stored = Bars.from_long(synthesize(3, 2, tf, 11, END), tf)
    ours = aggregate_bars(minutes, tf)
    assert ours.timeframe == stored.timeframe
    for field in ("open", "high", "low", "close", "volume"):
        assert getattr(ours, field).equals(getattr(stored, field)), field
    with pytest.raises(DataError, match="1Min"):
        aggregate_bars(stored, "1Hour")


def test_a_5min_session_makes_the_backtests_trades(home):
    symbols = list(load_sessions(1, None, "5Min", end=END).symbols)
    result = run_session(ls_cross, {"fast": 3, "slow": 8}, replay_date=END, symbols=symbols,
                         timeframe="5Min", cash=CASH, size=SIZE, costs=CostModel(**FEES),
                         risk=LOOSE, accounts="per_symbol", direction="longshort",
                         sl_stop=0.004, tp_stop=0.006)
    assert result.outcome == "succeeded" and result.bars == 78, result.message
    session = session_trades(result.broker_path)
    backtest, bars = backtest_trades(ls_cross, symbols, "5Min", fast=3, slow=8,
                                     sl_stop=0.004, tp_stop=0.006)
    assert len(backtest) >= 6 and {t["reason"] for t in backtest} >= {"signal", "stop_loss"}
    assert all(t["entry_time"].minute % 5 == 0 for t in backtest)
    assert_same_trades(session, backtest, gap_reversals(backtest, bars))
    from workbench.journal import replay

    events = replay(result.path).events
    start = next(e for e in events if e.type == ev.SESSION_START)
    assert start.payload["timeframe"] == "5Min"
    assert start.payload["bars_from"] == "stored 1Min aggregated to 5Min"
    bar_times = [e.payload["bar_time"] for e in events if e.type == ev.BAR]
    assert len(bar_times) == 78


def test_the_manifest_records_every_trading_setting(home):
    import json

    symbols = list(load_sessions(1, None, "5Min", end=END).symbols)[:2]
    result = run_session(ls_cross, {"fast": 3, "slow": 8}, replay_date=END, symbols=symbols,
                         timeframe="15Min", cash=CASH, size=SIZE, costs=CostModel(**FEES),
                         risk=LOOSE, accounts="per_symbol", direction="longshort",
                         shares="whole", tp_stop=0.01)
    manifest = json.loads((Path(result.path) / "manifest.json").read_text())
    trading = manifest["extra"]["trading"]
    assert float(trading.pop("cash")) == CASH
    assert trading == {
        "timeframe": "15Min", "bars_from": "stored 1Min aggregated to 15Min",
        "accounts": "per_symbol", "size": SIZE, "shares": "whole",
        "costs": CostModel(**FEES).describe(), "stops": {"sl_stop": None, "tp_stop": 0.01},
        "direction": "longshort"}
