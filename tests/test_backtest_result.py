"""``BacktestResult`` (stats, trades, equity, plot, display, save), metrics, errors, and
vectorbt's own accounting of the same fills."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from tests.reference_backtest import random_market
from workbench.backtesting import CostModel, metrics
from workbench.backtesting.result import TRADE_COLUMNS
from workbench.data.synth import synthesize
from workbench.errors import ConfigError, DataError, StrategyError


@wb.strategy(warmup=20)
def sma_cross(bars, fast: int = 5, slow: int = 20):
    fast_ma = bars.close.rolling(fast, min_periods=fast).mean()
    slow_ma = bars.close.rolling(slow, min_periods=slow).mean()
    above = (fast_ma > slow_ma).fillna(False)
    was = above.shift(1, fill_value=False)
    return wb.Signals(entries=above & ~was, exits=~above & was)


@pytest.fixture(scope="module")
def bars() -> wb.Bars:
    return wb.Bars.from_long(synthesize(3, 60, "1Day", seed=7), timeframe="1Day")


@pytest.fixture(scope="module")
def result(bars):
    return wb.backtest(sma_cross, bars, fast=5, slow=20, fees_bps=1.0, fee_per_share=0.005,
                       sl_stop=0.05)


# -- tables -----------------------------------------------------------------------------


def test_trades_table(result, bars):
    trades = result.trades()
    assert tuple(trades.columns) == TRADE_COLUMNS and len(trades) > 0
    assert set(trades["symbol"]) <= set(bars.symbols)
    assert set(trades["exit_reason"]) <= {"signal", "stop_loss", "take_profit", "open at end"}
    assert (trades["entry_time"] >= bars.index[20]).all()  # nothing during the warmup
    closed = trades[trades["exit_time"].notna()]
    assert (closed["exit_time"] > closed["entry_time"]).all()
    assert str(trades["entry_time"].dt.tz) == "UTC"


def test_equity_is_per_symbol_plus_total_and_matches_the_trades(result, bars):
    equity = result.equity()
    assert list(equity.columns) == [*bars.symbols, "total"]
    assert equity.index.equals(bars.index)
    np.testing.assert_allclose(equity["total"], equity[bars.symbols].sum(axis=1))
    final = equity[bars.symbols].iloc[-1] - result.options.cash
    pnl = result.trades().groupby("symbol")["pnl"].sum().reindex(bars.symbols, fill_value=0.0)
    np.testing.assert_allclose(final.to_numpy(), pnl.to_numpy(), rtol=1e-9, atol=1e-6)


def test_stats_for_the_book_and_per_symbol(result, bars):
    book = result.stats()
    for key in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate",
                "exposure", "turnover", "fees", "start", "end", "final_equity"):
        assert key in book.index
    per = result.stats(per_symbol=True)
    assert list(per.index) == bars.symbols
    assert book["trades"] == per["trades"].sum() == len(result.trades())
    assert book["final_equity"] == pytest.approx(per["final_equity"].sum())
    assert book["initial_equity"] == result.options.cash * len(bars.symbols)
    assert book["total_return"] == pytest.approx(per["final_equity"].sum() / book["initial_equity"] - 1)
    assert book["fees"] == pytest.approx(per["fees"].sum())
    assert -1 <= book["max_drawdown"] <= 0 and 0 <= book["exposure"] <= 1


def test_params_costs_options_and_display(result):
    assert result.params == {"fast": 5, "slow": 20}
    assert result.costs == CostModel(fees_bps=1.0, fee_per_share=0.005, slippage_bps=2.0)
    assert result.options.sl_stop == 0.05 and result.options.periods_per_year == 252
    page = result._repr_html_()
    for text in ("sma_cross", "sharpe", "fast", "slippage_bps", "next_open", "sl_stop"):
        assert text in page
    assert "sma_cross" in repr(result)


def test_plot_book_and_symbol(result, bars):
    fig = result.plot()
    assert len(fig.data) == 2
    sym = result.trades()["symbol"].iloc[0]
    fig = result.plot(sym)
    names = [t.name for t in fig.data]
    assert f"{sym} close" in names and "long entry" in names and "drawdown" in names
    with pytest.raises(ConfigError, match="unknown symbol"):
        result.plot("NOPE")


def test_save_writes_the_three_tables(result, tmp_path):
    out = result.save(tmp_path / "results")
    stats = pd.read_parquet(out / "stats.parquet")
    trades = pd.read_parquet(out / "trades.parquet")
    equity = pd.read_parquet(out / "equity.parquet")
    assert stats["scope"].tolist()[0] == "book" and len(stats) == 1 + len(result.symbols)
    assert stats.loc[0, "trades"] == len(trades)
    pd.testing.assert_frame_equal(trades, result.trades(), check_dtype=False)
    assert len(equity) == len(result.index) and "total" in equity.columns and "ts" in equity.columns


# -- vectorbt agrees with our accounting ------------------------------------------------


def test_vectorbt_portfolio_of_the_same_fills_agrees():
    bars, sig = random_market(3, 60, 3, 0.15, 0.15)

    @wb.strategy
    def given(bars):
        return wb.Signals(entries=sig["long_entry"], exits=sig["long_exit"],
                          short_entries=sig["short_entry"], short_exits=sig["short_exit"])

    r = wb.backtest(given, bars, direction="longshort", sl_stop=0.03, tp_stop=0.05, fees_bps=2.0,
                    fee_per_share=0.01, cash=10_000.0)
    pf = r.portfolio
    np.testing.assert_allclose(pf.value().to_numpy(), r.equity()[bars.symbols].to_numpy(), rtol=1e-9)
    ours = r.trades()
    theirs = pf.trades.records  # vectorbt's exit trades, rebuilt from our order records
    assert len(theirs) == len(ours) > 5
    np.testing.assert_allclose(theirs["pnl"], ours["pnl"].to_numpy(), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(theirs["entry_price"], ours["entry_price"].to_numpy(), rtol=1e-12)
    assert pf.orders.count().sum() == len(r.simulation.fills)


# -- metrics ------------------------------------------------------------------------------


def test_metric_definitions_on_a_hand_example():
    equity = np.array([[110.0], [99.0], [121.0]])
    m = metrics.summary(equity, np.array([[1.0], [0.0], [1.0]]),
                        np.array([(0, 2.0, 50.0, 1.0)], dtype=[("col", int), ("size", float),
                                                             ("price", float), ("fees", float)]),
                        np.array([(0, 5.0, 0), (0, -1.0, 0), (0, 3.0, 3)],
                                 dtype=[("col", int), ("pnl", float), ("reason", int)]),
                        init_cash=100.0, periods_per_year=252)
    r = np.array([0.1, -0.1, 121 / 99 - 1])
    assert m["total_return"][0] == pytest.approx(0.21)
    assert m["cagr"][0] == pytest.approx(1.21 ** (252 / 3) - 1)
    assert m["sharpe"][0] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert m["sortino"][0] == pytest.approx(r.mean() / math.sqrt((0.1**2) / 3) * math.sqrt(252))
    assert m["max_drawdown"][0] == pytest.approx(99 / 110 - 1)
    assert m["trades"][0] == 3 and m["win_rate"][0] == 0.5  # the open trade is not scored
    assert m["exposure"][0] == pytest.approx(2 / 3)
    assert m["turnover"][0] == pytest.approx(100.0 / (330 / 3) / (3 / 252))
    assert m["fees"][0] == 1.0


def test_metrics_are_vectorized_over_columns():
    e = np.array([[100.0, 100.0], [110.0, 90.0]])
    assert metrics.total_return(e, 100.0).tolist() == pytest.approx([0.1, -0.1])
    assert metrics.max_drawdown(e, 100.0).tolist() == pytest.approx([0.0, -0.1])
    assert np.isnan(metrics.sharpe(np.zeros((5, 1)), 252)[0])


@pytest.mark.parametrize("tf, ppy", [("1Min", 252 * 390), ("5Min", 252 * 78), ("15Min", 252 * 26),
                                     ("1Hour", 252 * 7), ("1Day", 252), (None, 252)])
def test_periods_per_year(tf, ppy):
    assert metrics.periods_per_year(tf) == ppy


def test_periods_per_year_is_guessed_from_the_index_without_a_timeframe():
    minutes = pd.date_range("2026-01-05 14:30", periods=50, freq="5min", tz="UTC")
    assert metrics.periods_per_year(None, minutes) == 252 * 78


# -- (c) errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("option, value", [
    ("fill", "nextopen"), ("fill", None), ("shares", "partial"), ("direction", "short"),
    ("cash", 0), ("cash", -5.0), ("cash", "lots"), ("size", 0.0), ("size", 1.5), ("size", math.nan),
    ("sl_stop", -0.1), ("sl_stop", 0.0), ("tp_stop", "10%"), ("tp_stop", math.inf),
    ("fees_bps", -1.0), ("fee_per_share", -0.01), ("slippage_bps", math.nan),
    ("slippage_bps", 10_000.0), ("fees_bps", True),
])
def test_bad_option_values_are_config_errors_naming_the_option(bars, option, value):
    with pytest.raises(ConfigError, match=option):
        wb.backtest(sma_cross, bars, **{option: value})


def test_a_strategy_parameter_named_like_an_option_is_refused(bars):
    @wb.strategy
    def clash(bars, size: int = 3, fast: int = 2):
        return wb.Signals(entries=bars.close > 0)

    with pytest.raises(StrategyError, match=r"clash: parameter\(s\) size .*rename"):
        wb.backtest(clash, bars)


def test_unknown_strategy_parameter_and_bad_bars(bars):
    with pytest.raises(StrategyError, match="unknown parameter 'fats'.*did you mean fast"):
        wb.backtest(sma_cross, bars, fats=3)
    with pytest.raises(DataError, match="wb.Bars"):
        wb.backtest(sma_cross, bars.close)


def test_cost_model_rules_and_validation():
    c = CostModel(fees_bps=10.0, fee_per_share=0.01, slippage_bps=5.0)
    assert c.fill_price("buy", 100.0) == pytest.approx(100.05) and c.fill_price("SELL", 100.0) == pytest.approx(99.95)
    assert c.fee(-10, 100.0) == pytest.approx(10 * 100 * 0.001 + 10 * 0.01)
    assert c.max_quantity(1000.0, 100.0, whole=True) == 9.0
    assert c.max_quantity(-5.0, 100.0) == 0.0
    np.testing.assert_allclose(c.fill_price_array(np.array([1, -1]), [100.0, 100.0]), [100.05, 99.95])
    np.testing.assert_allclose(c.fee_array([10, 20], [100.0, 50.0]), [1.1, 1.2])
    with pytest.raises(ConfigError, match="side"):
        c.fill_price("hold", 1.0)
    with pytest.raises(ConfigError, match="fees_bps"):
        CostModel(fees_bps=-1)


# -- the package ------------------------------------------------------------------------------


def test_import_stays_light_and_wb_backtest_is_callable_in_any_import_order():
    code = (
        "import sys, workbench as wb\n"
        "assert 'vectorbt' not in sys.modules and 'numba' not in sys.modules\n"
        "import workbench.backtesting\n"  # the package is not the function: no name clash
        "from workbench.backtesting import CostModel\n"
        "assert callable(wb.backtest) and 'vectorbt' not in sys.modules\n"
        "from workbench.backtesting import backtest\n"
        "assert wb.backtest is backtest\n"
        "print(wb.backtest.__module__, wb.backtest.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "workbench.backtesting.run backtest"
