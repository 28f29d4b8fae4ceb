"""Walk-forward: folds, out-of-sample trades inside their windows, no peeking ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.backtesting.walkforward import fold_windows
from workbench.data.synth import synthesize
from workbench.errors import ConfigError


@wb.strategy(warmup=lambda p: p["slow"])
def sma_cross(bars, fast: int = 5, slow: int = 20):
    f, s = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(f, s), exits=wb.crossed_below(f, s))


GRID = {"fast": [3, 5, 8], "slow": [15, 25]}


@pytest.fixture(scope="module")
def bars():
    return wb.Bars.from_long(synthesize(4, 400, "1Day", seed=5, end="2026-06-30"), "1Day")


def test_fold_windows_rolling_and_anchored():
    assert fold_windows(10, 4, 3) == [(0, 4, 7), (3, 7, 10)]
    assert fold_windows(11, 4, 3) == [(0, 4, 7), (3, 7, 10), (6, 10, 11)]
    assert fold_windows(10, 4, 3, anchored=True) == [(0, 4, 7), (0, 7, 10)]
    assert fold_windows(4, 4, 3) == []


def test_out_of_sample_trades_stay_in_their_windows(bars):
    wf = wb.walk_forward(sma_cross, bars, GRID, train=150, test=60, progress=False)
    assert len(wf.folds) == 5
    assert wf.returns.index.is_unique and wf.returns.index[0] == bars.index[150]
    assert len(wf.returns) == len(bars) - 150
    for _, fold in wf.folds.iterrows():
        mine = wf.trades[wf.trades["fold"] == fold["fold"]]
        assert (mine["entry_time"] > fold["test_start"]).all()  # filled at a later open
        closed = mine["exit_time"].dropna()
        assert (closed <= fold["test_end"]).all()
        assert fold["params"]["fast"] in GRID["fast"]
    stats = wf.stats()
    assert stats["folds"] == 5 and np.isfinite(stats["sharpe"])
    eq = wf.equity()
    assert eq.iloc[-1] == pytest.approx(wf.cash * (1 + stats["total_return"]))
    assert wf.plot().data  # a figure with traces


def test_choice_depends_only_on_the_past(bars):
    """Changing every bar after fold 0's training window cannot change fold 0's choice."""
    wf = wb.walk_forward(sma_cross, bars, GRID, train=150, test=60, progress=False)
    later = bars.close.index >= bars.index[150]
    noisy = {f: getattr(bars, f).copy() for f in ("open", "high", "low", "close")}
    rng = np.random.default_rng(1)
    scale = pd.DataFrame(rng.uniform(0.5, 1.5, bars.close.shape), index=bars.index,
                         columns=bars.close.columns)
    for f in noisy:
        noisy[f].loc[later] = noisy[f].loc[later] * scale.loc[later]
    other = wb.Bars(**noisy, volume=bars.volume, timeframe=bars.timeframe)
    wf2 = wb.walk_forward(sma_cross, other, GRID, train=150, test=60, progress=False)
    assert wf2.folds.loc[0, "params"] == wf.folds.loc[0, "params"]


def test_bad_windows(bars):
    with pytest.raises(ConfigError, match="nothing to test"):
        wb.walk_forward(sma_cross, bars, GRID, train=len(bars), test=10, progress=False)
    with pytest.raises(ConfigError, match="number of bars or a duration"):
        wb.walk_forward(sma_cross, bars, GRID, train="a while", test=10, progress=False)
