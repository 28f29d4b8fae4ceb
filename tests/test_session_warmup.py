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
