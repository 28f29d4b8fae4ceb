"""The NYSE calendar: real exchange_calendars data, no mocks."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.data import calendar as cal
from workbench.errors import ConfigError, DataError


def ny(ts: str) -> pd.Timestamp:
    return pd.Timestamp(ts, tz=cal.NY)


def test_sessions_frame_shape():
    table = cal.sessions("2025-11-24", "2025-12-05")
    assert list(table.columns) == ["open", "close", "early_close"]
    assert table.index.tz is None and (table.index == table.index.normalize()).all()
    assert str(table["open"].dtype) == "datetime64[ns, UTC]"
    assert table["early_close"].dtype == bool
    assert pd.Timestamp("2025-11-27") not in table.index  # Thanksgiving
    assert table.loc["2025-11-28", "early_close"]
    assert not table.loc["2025-11-26", "early_close"]


@pytest.mark.parametrize("holiday", ["2025-12-25", "2026-07-03", "2026-01-19", "2026-04-03"])
def test_holidays_are_not_sessions(holiday):
    # 2026-07-03 is the observed Independence Day (July 4th is a Saturday)
    assert not cal.is_session(holiday)
    assert cal.bar_times(holiday, holiday, "1Min").size == 0


def test_independence_day_2026_week():
    times = cal.to_display(cal.bar_times("2026-06-29", "2026-07-06", "1Min"))
    days = sorted({t.date().isoformat() for t in times})
    assert days == ["2026-06-29", "2026-06-30", "2026-07-01", "2026-07-02", "2026-07-06"]
    assert cal.is_session("2026-07-02") and not cal.is_session("2026-07-04")


@pytest.mark.parametrize("day", ["2025-11-28", "2025-12-24"])
def test_early_close_last_minute_bar(day):
    assert cal.sessions(day, day)["early_close"].item()
    assert cal.session_close(day) == ny(f"{day} 13:00")
    minutes = cal.bar_times(day, day, "1Min")
    assert len(minutes) == 210
    assert cal.to_display(minutes[-1]) == ny(f"{day} 12:59")
    hours = cal.to_display(cal.bar_times(day, day, "1Hour"))
    assert list(hours.strftime("%H:%M")) == ["09:30", "10:30", "11:30", "12:30"]


def test_regular_day_bar_counts():
    day = "2026-11-18"
    assert len(cal.bar_times(day, day, "1Min")) == 390
    assert len(cal.bar_times(day, day, "5Min")) == 78
    assert len(cal.bar_times(day, day, "15Min")) == 26
    hours = cal.to_display(cal.bar_times(day, day, "1Hour"))
    assert list(hours.strftime("%H:%M")) == [f"{h:02d}:30" for h in range(9, 16)]
    assert cal.to_display(cal.bar_times(day, day, "1Min")[-1]) == ny(f"{day} 15:59")


@pytest.mark.parametrize("start,end", [("2026-03-05", "2026-03-10"), ("2026-10-29", "2026-11-03")])
def test_dst_weeks_open_at_930_new_york(start, end):
    times = cal.bar_times(start, end, "1Min")
    local = cal.to_display(times)
    firsts = local.to_series().groupby(local.date).min()
    assert (firsts.dt.strftime("%H:%M") == "09:30").all()
    utc_hours = sorted({t.hour for t in times.to_series().groupby(local.date).min()})
    assert utc_hours == [13, 14]  # the UTC open moves by an hour across the change
    assert str(times.dtype) == "datetime64[ns, UTC]"


def test_daily_bars_stamped_midnight_new_york():
    days = cal.bar_times("2026-03-06", "2026-03-10", "1Day")
    assert list(cal.to_display(days)) == [ny("2026-03-06"), ny("2026-03-09"), ny("2026-03-10")]
    assert days[0] == pd.Timestamp("2026-03-06 05:00", tz="UTC")
    assert days[1] == pd.Timestamp("2026-03-09 04:00", tz="UTC")


def test_last_sessions_skips_weekend_and_holiday():
    got = cal.last_sessions(3, "2026-07-05")
    assert got == [pd.Timestamp(d) for d in ("2026-06-30", "2026-07-01", "2026-07-02")]
    assert cal.last_sessions(1, "2026-07-02") == [pd.Timestamp("2026-07-02")]


def test_last_completed_session():
    assert cal.last_completed_session("2026-11-20 20:59") == pd.Timestamp("2026-11-19")
    assert cal.last_completed_session("2026-11-20 21:00") == pd.Timestamp("2026-11-20")
    assert cal.last_completed_session(ny("2026-11-22 10:00")) == pd.Timestamp("2026-11-20")


def test_to_display_kinds():
    ts = pd.Timestamp("2026-01-05 14:30", tz="UTC")
    assert cal.to_display(ts) == ny("2026-01-05 09:30")
    assert cal.to_display(pd.Timestamp("2026-01-05 14:30")) == ny("2026-01-05 09:30")
    series = pd.Series([ts])
    assert cal.to_display(series).iloc[0] == ny("2026-01-05 09:30")
    frame = pd.DataFrame({"x": [1]}, index=pd.DatetimeIndex([ts]))
    assert cal.to_display(frame).index[0].tz is not None
    with pytest.raises(ConfigError):
        cal.to_display(pd.DataFrame({"x": [1]}))


def test_errors_are_one_line():
    for call in (
        lambda: cal.is_session("1990-01-02"),
        lambda: cal.sessions("2026-01-01", "2099-01-01"),
        lambda: cal.session_close("2026-07-04"),
        lambda: cal.last_sessions(10, "2000-01-05"),
    ):
        with pytest.raises(DataError) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError):
        cal.sessions("2026-02-01", "2026-01-01")
    with pytest.raises(ConfigError):
        cal.last_sessions(0, "2026-01-05")
    with pytest.raises(ConfigError):
        cal.is_session("not a date")
    with pytest.raises(ConfigError):
        cal.bar_times("2026-01-05", "2026-01-06", "2Day")
