"""Issue 10: ``shares="whole"`` in a session. No broker sizes an order at its fill in whole
shares, so the session fixes the count at the decision: ``size`` x the account's cash over
the fill price the last close gives (slippage and fees included), floored
(:meth:`workbench.session.trader.Sizing.quantity`). The backtest floors the same formula at
the fill price of the next open: the counts agree whenever the next open is the last
close, and a gap moves a count only if it carries it across an integer. The replayed day
(per-symbol accounts, long-only and long-short) makes the backtest's trades; the test
checks which entries opened at a gap and that their counts still agree here.
"""

from __future__ import annotations

from tests.notebook_strategies import strategy_of
from tests.test_session_longshort import (
    CASH,
    END,
    FEES,
    LOOSE,
    SIZE,
    assert_same_trades,
    backtest_trades,
    home,  # noqa: F401 (fixture)
    ls_cross,
    session_trades,
)
from workbench.engine import load_sessions
from workbench.model.costs import CostModel
from workbench.session.runner import run_session


def _check(strategy, direction):
    symbols = list(load_sessions(1, None, "1Min", end=END).symbols)
    result = run_session(strategy, {}, replay_date=END, symbols=symbols, cash=CASH, size=SIZE,
                         costs=CostModel(**FEES), risk=LOOSE, accounts="per_symbol",
                         shares="whole", direction=direction)
    assert result.outcome == "succeeded", result.message
    session = session_trades(result.broker_path)
    backtest, bars = backtest_trades(strategy, symbols, shares="whole", direction=direction)
    assert len(backtest) >= 4 and all(t["size"] == int(t["size"]) > 0 for t in backtest)
    assert_same_trades(session, backtest)
    last_close = bars.close.ffill().shift(1)
    return [t for t in backtest
            if bars.open.loc[t["entry_time"], t["symbol"]]
            != last_close.loc[t["entry_time"], t["symbol"]]]


def test_whole_shares_long_only_make_the_backtests_trades(home):  # noqa: F811
    _check(strategy_of("sma_cross"), "long")


def test_whole_shares_longshort_make_the_backtests_trades(home):  # noqa: F811
    gapped = _check(ls_cross, "longshort")
    assert gapped  # entries at a gap are covered: their floored counts agree too
