"""A session whose stored history cannot cover the strategy's warmup refuses to start,
naming the shortfall, instead of replaying a day without a decision and calling it done."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.data.synth import synthesize
from workbench.errors import DataError


@wb.strategy(warmup=lambda p: p["slow"])
def slow_cross(bars, fast: int = 10, slow: int = 100):
    fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                      exits=wb.crossed_below(fast_ma, slow_ma))


@pytest.fixture
def daily(store):
    """2 symbols x 50 daily sessions ending on 2025-12-31."""
    store.write(synthesize(2, 50, "1Day", 5, "2025-12-31"), "1Day", source="synth")
    return store


def _session(store, **kw):
    from workbench.session.runner import run_session

    return run_session(slow_cross, {"fast": 10, "slow": kw.pop("slow", 100)},
                       replay_date="2025-12-31", timeframe="1Day", store=store, **kw)


def test_a_warmup_longer_than_the_stored_history_is_refused_naming_the_shortfall(daily):
    with pytest.raises(DataError) as e:
        _session(daily, history_days=200)
    text = str(e.value)
    assert ("slow_cross needs 100 1Day bars before the bar of 2025-12-30 (the decision of "
            "the daily session of 2025-12-31)") in text  # a daily session: session.daily
    assert "hold 48 from" in text and "\n" not in text


def test_too_few_history_days_for_the_warmup_is_refused(daily):
    with pytest.raises(DataError, match="the 1 stored sessions before it hold 0:"):
        _session(daily, history_days=1, slow=20)


def test_a_covered_warmup_replays_and_decides(daily):
    result = _session(daily, history_days=30, slow=20)
    assert result.outcome == "succeeded" and result.bars == 2  # the decision and fill rows


def test_a_symbol_whose_own_history_is_short_is_named_and_the_others_decide(daily):
    """The window's rows cover the warmup, one symbol's own bars do not (it was listed
    later, or its early bars were removed): the session starts, says which symbol it will
    not decide until its bars reach the warmup (the backtest masks its signals the same
    way), and decides the others."""
    import pandas as pd

    from workbench.strategy import ShortWarmupWarning

    late, kept = daily.symbols("1Day")
    daily.remove(late, "1Day", end=pd.Timestamp("2025-12-10", tz="America/New_York"))
    with pytest.warns(ShortWarmupWarning) as seen:
        result = _session(daily, history_days=30, slow=20)
    assert result.outcome == "succeeded" and result.bars == 2
    (warning,) = [str(w.message) for w in seen if w.category is ShortWarmupWarning]
    assert "1 of 2 symbols have fewer than the warmup's 20 stored bars" in warning
    assert f"{late} (" in warning and kept not in warning


def test_every_symbol_with_its_warmup_starts_without_a_warning(daily):
    import warnings

    from workbench.strategy import ShortWarmupWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ShortWarmupWarning)
        assert _session(daily, history_days=30, slow=20).outcome == "succeeded"
