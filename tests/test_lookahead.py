"""wb.lookahead_check: past signals must not change when the future is cut off."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.data.synth import synthesize
from workbench.strategy.lookahead import LookaheadError, LookaheadReport, cut_points


@pytest.fixture(scope="module")
def bars() -> wb.Bars:
    return wb.Bars.from_long(synthesize(4, 2, "5Min", seed=5))


@wb.strategy(warmup=20)
def sma_cross(bars, fast: int = 5, slow: int = 20):
    fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                      exits=wb.crossed_below(fast_ma, slow_ma))


@wb.strategy(warmup=10)
def peeks_next_bar(bars, period: int = 10):
    ma = wb.ta.SMA(bars.close, period)
    tomorrow = bars.close.shift(-1)  # the planted look-ahead
    return wb.Signals(entries=(tomorrow > ma).fillna(False), exits=(tomorrow < ma).fillna(False))


@wb.strategy(warmup=10)
def centered(bars):
    smooth = bars.close.rolling(9, center=True, min_periods=1).mean()
    return wb.Signals(entries=wb.crossed_above(bars.close, smooth),
                      exits=wb.crossed_below(bars.close, smooth))


@wb.strategy(warmup=10)
def zscore_weights(bars):
    z = (bars.close - bars.close.mean()) / bars.close.std()  # whole-history statistics
    return wb.Signals(weights=-z.clip(-1, 1) / 4)


@wb.strategy(warmup=10)
def causal_weights(bars):
    ret = bars.close.pct_change(fill_method=None)
    return wb.Signals(weights=(-ret.rolling(10, min_periods=1).mean()).clip(-0.2, 0.2))


def test_clean_sma_cross_passes(bars):
    report = wb.lookahead_check(sma_cross, bars, fast=4, slow=12)
    assert isinstance(report, LookaheadReport)
    assert report.ok and report.first_mismatch is None
    assert report.params == {"fast": 4, "slow": 12}
    n = len(bars)
    assert len(report.cut_points) >= 20
    assert min(report.cut_points) > 20 and {n - 3, n - 2, n - 1} <= set(report.cut_points)
    assert "ok" in repr(report)


def test_clean_weights_pass(bars):
    assert wb.lookahead_check(causal_weights, bars, checkpoints=8).ok  # NaN == NaN


def test_shift_minus_one_is_caught(bars):
    with pytest.raises(LookaheadError) as err:
        wb.lookahead_check(peeks_next_bar, bars)
    m = err.value.mismatch
    assert m.symbol in bars.symbols and m.field in ("entries", "exits")
    assert m.time == bars.index[m.cut - 1]  # the last bar of the cut: it saw no future there
    assert (m.truncated, m.full) in ((False, True), (True, False))
    msg = str(err.value)
    assert "peeks_next_bar looks ahead" in msg and m.symbol in msg and str(m.time) in msg
    assert isinstance(err.value, wb.StrategyError) and not err.value.report.ok


def test_centered_window_is_caught(bars):
    with pytest.raises(LookaheadError, match="centered looks ahead"):
        wb.lookahead_check(centered, bars)


def test_whole_history_normalization_is_caught(bars):
    with pytest.raises(LookaheadError) as err:
        wb.lookahead_check(zscore_weights, bars)
    m = err.value.mismatch
    assert m.field == "weights" and isinstance(m.truncated, float) and m.truncated != m.full


def test_parameters_are_checked(bars):
    with pytest.raises(wb.StrategyError, match="did you mean slow"):
        wb.lookahead_check(sma_cross, bars, slwo=3)
    with pytest.raises(wb.StrategyError, match="checkpoints"):
        wb.lookahead_check(sma_cross, bars, checkpoints=0)


def test_too_short_for_any_cut(bars):
    with pytest.raises(wb.StrategyError, match="lookahead_check needs more than"):
        wb.lookahead_check(sma_cross, bars.iloc(slice(0, 21)))


def test_plain_function_is_accepted(bars):
    def plain(bars):
        return wb.Signals(entries=bars.close > bars.open)

    assert wb.lookahead_check(plain, bars, checkpoints=3).ok


def test_cut_points():
    assert cut_points(100, 20, 5) == (21, 40, 60, 80, 97, 98, 99)
    assert cut_points(23, 20, 20) == (21, 22)
    assert cut_points(21, 20, 20) == ()
    assert np.all(np.diff(cut_points(10_000, 60, 20)) > 0)
