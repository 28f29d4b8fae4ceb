"""Issue 10: a daily (1Day) session trades like its backtest. The session of day D decides
on bar D-1 at its start and its orders fill at D's open (:mod:`workbench.session.daily`);
before, it decided on bar D after the close and its DAY orders expired unfilled. Several
daily sessions in a row on one simulated account make ``wb.backtest``'s trades on the same
stored 1Day bars, trade by trade (entries, exits, sizes, prices, fees), per-symbol accounts
carried from one run to the next."""

from __future__ import annotations

import pandas as pd
import pytest

import workbench as wb
from tests.test_session_longshort import assert_same_trades, session_trades
from tests.test_session_parity import LOOSE
from workbench.data import calendar
from workbench.data.aggregate import aggregate_bars
from workbench.data.bars import Bars
from workbench.data.synth import synthesize
from workbench.engine import load_sessions
from workbench.journal import replay
from workbench.model import events as ev
from workbench.model.costs import CostModel
from workbench.session.runner import run_session
from workbench.strategy import TradingFrom

END = "2025-12-31"
DAYS = 12  # daily sessions in a row
HISTORY = 30
FEES = {"fees_bps": 1.0, "fee_per_share": 0.005, "slippage_bps": 2.0}
CASH, SIZE = 50_000.0, 0.5
RISK = LOOSE.model_copy(update={"stale_bar_intervals": 100.0})  # 1e9 days overflow


@wb.strategy(warmup=lambda p: p["slow"] + 1)
def daily_cross(bars, fast: int = 2, slow: int = 5):
    fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                      exits=wb.crossed_below(fast_ma, slow_ma))


def _midnight(day) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize(calendar.NY).tz_convert("UTC")


def _sessions(store, days, broker_path, **kw):
    return [run_session(daily_cross, {}, replay_date=d.date().isoformat(), timeframe="1Day",
                        history_days=HISTORY, store=store, risk=RISK, broker_path=broker_path,
                        accounts="per_symbol", cash=CASH, size=SIZE,
                        costs=CostModel(**FEES), **kw) for d in days]


def _backtest(store, days) -> list[dict]:
    """The backtest on the bars the sessions saw, signals before the first session's
    decision bar (the day before it) cleared."""
    bars = load_sessions(len(days) + HISTORY, None, "1Day", end=END, store=store)
    first = _midnight(calendar.last_sessions(2, days[0])[0])
    result = wb.backtest(TradingFrom(daily_cross, first), bars, cash=CASH, size=SIZE, **FEES)
    out = []
    for t in result.trades().itertuples():
        done = t.exit_reason != "open at end"
        out.append({"symbol": t.symbol, "direction": t.direction, "entry_time": t.entry_time,
                    "exit_time": t.exit_time if done else None, "size": t.size,
                    "entry_price": t.entry_price, "exit_price": t.exit_price if done else None,
                    "fees": t.fees if done else None, "reason": t.exit_reason})
    return sorted(out, key=lambda t: (t["symbol"], t["entry_time"]))


@pytest.fixture
def daily(store):
    store.write(synthesize(4, DAYS + HISTORY, "1Day", 5, END), "1Day", source="synth")
    return store


def test_daily_sessions_in_a_row_make_the_backtests_trades(daily, tmp_path):
    days = calendar.last_sessions(DAYS, pd.Timestamp(END))
    results = _sessions(daily, days, tmp_path / "account.sqlite")
    assert all(r.outcome == "succeeded" and r.bars == 2 for r in results), results
    session = session_trades(results[-1].broker_path)
    backtest = _backtest(daily, days)
    # a real test: several symbols, round trips closed and entered again, one left open
    assert len(backtest) >= 6 and len({t["symbol"] for t in backtest}) >= 3, backtest
    again = {t["symbol"] for t in backtest if t["exit_time"] is not None} & {
        t["symbol"] for t in backtest if t["entry_time"] > min(
            u["exit_time"] for u in backtest if u["exit_time"] is not None)}
    assert again, "no symbol entered again after a closed trade: sizes carried untested"
    assert_same_trades(session, backtest)
    # each entry filled at the open of the day after its signal, in that day's session
    for r, day in zip(results, days, strict=True):
        events = replay(r.path).events
        bars = [(e.payload["bar_time"], e.payload["role"]) for e in events if e.type == ev.BAR]
        decided = calendar.last_sessions(2, day)[0]
        assert bars == [(_midnight(decided).isoformat(), "decision"),
                        (_midnight(day).isoformat(), "fill")]
        fills = [e for e in events if e.type == ev.FILL]
        assert all(pd.Timestamp(e.payload["time"]) == _midnight(day) for e in fills)
        assert not [e for e in events if e.type == ev.ORDER_UPDATE
                    and e.payload.get("status") == "expired"]


def test_a_daily_session_with_stored_minutes_only_aggregates_them(store, tmp_path):
    """No stored 1Day bars: the stored minutes aggregated by the store's rule, said."""
    minutes = synthesize(2, 9, "1Min", 17, END)
    store.write(minutes, "1Min", source="synth")
    result = run_session(daily_cross, {"fast": 2, "slow": 3}, replay_date=END,
                         timeframe="1Day", history_days=8, store=store, risk=RISK,
                         broker_path=tmp_path / "a.sqlite")
    assert result.outcome == "succeeded" and result.bars == 2, result.message
    events = replay(result.path).events
    start = next(e for e in events if e.type == ev.SESSION_START)
    assert start.payload["bars_from"] == "stored 1Min aggregated to 1Day"
    agg = aggregate_bars(Bars.from_long(minutes, "1Min"), "1Day")
    volumes = [e.payload["volume"] for e in events if e.type == ev.BAR]
    assert volumes == pytest.approx(list(agg.volume.sum(axis=1).iloc[-2:]))


def test_history_days_must_reach_the_day_before(daily):
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="history_days >= 1"):
        run_session(daily_cross, {}, replay_date=END, timeframe="1Day", history_days=0,
                    store=daily, risk=RISK)
