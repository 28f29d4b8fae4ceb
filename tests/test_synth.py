"""Synthetic bars: on the real NYSE calendar, reproducible, consistent, U-shaped volume."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from workbench.data import calendar as cal
from workbench.data.synth import COLUMNS, DEFAULT_END, synthesize, tickers
from workbench.errors import ConfigError

PRICES = ["open", "high", "low", "close"]


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    # 2025-11-17 .. 2025-12-31: Thanksgiving, its early close, Christmas Eve and Day
    return synthesize(40, 31, "1Min", seed=7, end="2025-12-31")


def digest(df: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(df["symbol"].str.cat(sep=",").encode())
    h.update(df["ts"].to_numpy(dtype="datetime64[ns]").tobytes())
    for col in COLUMNS[2:]:
        h.update(df[col].to_numpy().tobytes())
    return h.hexdigest()


def test_columns_dtypes_and_order(minutes):
    assert list(minutes.columns) == list(COLUMNS)
    assert minutes["symbol"].dtype == "str"
    assert str(minutes["ts"].dtype) == "datetime64[ns, UTC]"
    assert all(minutes[c].dtype == np.float64 for c in COLUMNS[2:])
    assert minutes["symbol"].nunique() == 40
    ordered = minutes.sort_values(["symbol", "ts"], ignore_index=True)
    pd.testing.assert_frame_equal(minutes, ordered)
    assert not minutes.duplicated(["symbol", "ts"]).any()


def test_bars_only_in_regular_sessions(minutes):
    grid = cal.bar_times("2025-11-17", "2025-12-31", "1Min")
    assert minutes["ts"].isin(grid).all()
    local = cal.to_display(pd.DatetimeIndex(minutes["ts"]))
    dates = set(local.strftime("%Y-%m-%d"))
    assert "2025-11-27" not in dates and "2025-12-25" not in dates
    assert len(dates) == 31
    assert local.min() == pd.Timestamp("2025-11-17 09:30", tz=cal.NY)
    assert local.max() == pd.Timestamp("2025-12-31 15:59", tz=cal.NY)


@pytest.mark.parametrize("day", ["2025-11-28", "2025-12-24"])
def test_early_close_ends_at_1259(minutes, day):
    local = cal.to_display(pd.DatetimeIndex(minutes["ts"]))
    on_day = local[local.strftime("%Y-%m-%d") == day]
    assert on_day.max() == pd.Timestamp(f"{day} 12:59", tz=cal.NY)
    assert on_day.min() == pd.Timestamp(f"{day} 09:30", tz=cal.NY)


def test_dst_weeks_open_at_930():
    df = synthesize(["LIQ"], 6, "1Min", end="2026-11-04")  # spans 2026-11-01
    local = cal.to_display(pd.DatetimeIndex(df["ts"]))
    firsts = local.to_series().groupby(local.date).min()
    assert (firsts.dt.strftime("%H:%M") == "09:30").all()
    assert len(firsts) == 6


def test_ohlc_consistent(minutes):
    o, h, low, c = (minutes[k].to_numpy() for k in PRICES)
    assert (low > 0).all()
    assert (low <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all()
    assert (minutes["volume"] >= 1).all()
    assert np.array_equal(minutes["volume"], np.round(minutes["volume"]))


def test_reproducible_byte_identical(minutes):
    again = synthesize(40, 31, "1Min", seed=7, end="2025-12-31")
    assert digest(again) == digest(minutes)
    other = synthesize(40, 31, "1Min", seed=8, end="2025-12-31")
    assert not np.array_equal(other["close"].to_numpy()[:100], minutes["close"].to_numpy()[:100])


def test_symbol_independent_of_others():
    alone = synthesize(["MSFT"], 5, "1Min", seed=3, end="2026-06-12")
    crowd = synthesize(["AAPL", "MSFT", "ZZZ"], 5, "1Min", seed=3, end="2026-06-12")
    mine = crowd[crowd["symbol"] == "MSFT"].reset_index(drop=True)
    assert digest(alone) == digest(mine)


def test_generated_tickers():
    names = tickers(300)
    assert len(set(names)) == 300
    assert all(n.isalpha() and n.isupper() and 3 <= len(n) <= 4 for n in names)
    assert tickers(10) == names[:10]
    df = synthesize(5, 1, "1Day", seed=99)
    assert sorted(df["symbol"].unique()) == sorted(names[:5])


def test_volume_u_shape(minutes):
    local = cal.to_display(pd.DatetimeIndex(minutes["ts"]))
    clock = local.hour * 60 + local.minute
    full_day = ~local.strftime("%Y-%m-%d").isin(["2025-11-28", "2025-12-24"])
    vol = minutes["volume"].to_numpy()[full_day]
    clock = np.asarray(clock)[full_day]
    first = vol[clock < 10 * 60].mean()
    last = vol[clock >= 15 * 60 + 30].mean()
    midday = vol[(clock >= 12 * 60) & (clock < 14 * 60)].mean()
    assert first > 1.5 * midday and last > 1.3 * midday


def test_some_minutes_missing(minutes):
    per_symbol = minutes.groupby("symbol").size()
    full = len(cal.bar_times("2025-11-17", "2025-12-31", "1Min"))
    assert per_symbol.max() <= full
    assert (per_symbol < full).any()  # illiquid names skip minutes
    assert (per_symbol > 0.97 * full).sum() >= len(per_symbol) // 2  # liquid ones rarely do


def test_overnight_gaps(minutes):
    one = minutes[minutes["symbol"] == minutes["symbol"].iloc[0]]
    local = cal.to_display(pd.DatetimeIndex(one["ts"]))
    new_day = np.r_[False, local.date[1:] != local.date[:-1]]
    opens = one["open"].to_numpy()[new_day]
    prev_close = one["close"].to_numpy()[np.flatnonzero(new_day) - 1]
    assert (opens != prev_close).mean() > 0.5


def test_daily_one_bar_per_session():
    df = synthesize(["AAA", "BBB"], 60, "1Day", seed=1, end="2026-07-10")
    dates = cal.last_sessions(60, "2026-07-10")
    for _, bars in df.groupby("symbol"):
        assert list(cal.to_display(pd.DatetimeIndex(bars["ts"])).tz_localize(None)) == dates
    o, h, low, c = (df[k].to_numpy() for k in PRICES)
    assert (low > 0).all() and (low <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all()
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize("tf,last", [("5Min", "12:55"), ("1Hour", "12:30")])
def test_intraday_aggregates_match_minutes(tf, last):
    kw = {"symbols": ["AAA", "THIN"], "days": 3, "seed": 5, "end": "2025-11-28"}
    ones = synthesize(timeframe="1Min", **kw)
    bars = synthesize(timeframe=tf, **kw)
    grid = cal.bar_times("2025-11-25", "2025-11-28", tf)
    assert bars["ts"].isin(grid).all()
    assert bars.groupby("symbol").size().max() <= len(grid)
    assert cal.to_display(bars["ts"]).max() == pd.Timestamp(f"2025-11-28 {last}", tz=cal.NY)
    for sym in kw["symbols"]:
        a, b = ones[ones["symbol"] == sym], bars[bars["symbol"] == sym]
        assert a["volume"].sum() == b["volume"].sum()
        assert a["high"].max() == b["high"].max() and a["low"].min() == b["low"].min()
        assert a["open"].iloc[0] == b["open"].iloc[0] and a["close"].iloc[-1] == b["close"].iloc[-1]


def test_default_end_is_fixed():
    df = synthesize(["AAA"], 1, "1Day")
    assert cal.to_display(df["ts"]).iloc[0].date() == pd.Timestamp(DEFAULT_END).date()


def test_progress_callable():
    seen = []
    synthesize(["A", "B", "C"], 1, "1Day", progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_bad_arguments():
    for kwargs in (
        {"symbols": 0, "days": 1},
        {"symbols": ["A", "A"], "days": 1},
        {"symbols": ["A"], "days": 0},
        {"symbols": ["A"], "days": 1, "seed": -1},
        {"symbols": ["A"], "days": 1, "timeframe": "7Days"},
    ):
        with pytest.raises(ConfigError):
            synthesize(**kwargs)
