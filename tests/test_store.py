"""The Parquet store: round trips, appends that never lose bars, idempotent re-imports."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.data.synth import synthesize
from workbench.errors import DataError


def _digests(store):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in store.root.rglob("*.parquet")}


@pytest.fixture
def week():
    return synthesize(["AAA", "BBB", "CCC"], days=5, timeframe="1Min", seed=3, end="2026-03-13")


def test_round_trip_long_to_wide(store, week):
    report = store.write(week, "1Min", source="test")
    assert report.written == len(week) and report.quarantined_total == 0
    bars = wb.data.load(["AAA", "BBB", "CCC"], timeframe="1Min", store=store)
    assert bars.symbols == ["AAA", "BBB", "CCC"]
    assert str(bars.index.tz) == "UTC" and bars.index.is_monotonic_increasing
    back = bars.to_long()
    expected = week.sort_values(["symbol", "ts"], ignore_index=True)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)


def test_load_range_uses_new_york_days(store, week):
    store.write(week, "1Min")
    bars = store.load(["AAA"], "1Min", start="2026-03-10", end="2026-03-11")
    ny = bars.index.tz_convert("America/New_York")
    assert {d.isoformat() for d in ny.date} <= {"2026-03-10", "2026-03-11"}
    assert ny[0].strftime("%H:%M") == "09:30" and ny[-1].date().isoformat() == "2026-03-11"


def test_append_never_rewrites_or_loses(store, week):
    first = week[week["ts"] < "2026-03-12"]
    store.write(first, "1Min")
    before = _digests(store)
    report = store.write(week, "1Min")  # overlaps the stored days and adds two more
    assert report.written == len(week) - len(first)
    assert report.already_stored == len(first) and report.conflicts == 0
    after = _digests(store)
    assert all(after[p] == d for p, d in before.items()), "a stored file changed"
    assert len(store.load(None, "1Min").to_long()) == len(week)


def test_reimport_is_idempotent(store, week):
    store.write(week, "1Min")
    files = sorted(store.root.rglob("*.parquet"))
    report = store.write(week, "1Min")
    assert report.written == 0 and report.already_stored == len(week)
    assert sorted(store.root.rglob("*.parquet")) == files
    listing = store.ls()
    assert listing["rows"].sum() == len(week)


def test_conflicting_reimport_keeps_stored_and_counts(store, week):
    store.write(week, "1Min")
    changed = week.copy()
    changed.loc[changed.index[:5], "volume"] += 1
    report = store.write(changed, "1Min")
    assert report.conflicts == 5 and report.written == 0
    stored = store.load(None, "1Min").to_long()
    pd.testing.assert_frame_equal(stored, week.sort_values(["symbol", "ts"], ignore_index=True),
                                  check_dtype=False)


def test_bad_bars_quarantined_not_stored(store, week):
    bad = week.copy()
    bad.loc[3, "close"] = np.nan
    bad.loc[10, "high"] = bad.loc[10, "low"] - 1
    report = store.write(bad, "1Min")
    assert report.quarantined == {"nan": 1, "high_below_low": 1}
    assert report.written == len(week) - 2
    q = wb.data.quarantine(store=store)
    assert sorted(q["reason"]) == ["high_below_low", "nan"]
    assert set(q.columns) >= {"symbol", "timeframe", "ts", "reason", "source"}
    assert store.ls().set_index("symbol").loc["AAA", "quarantined"] == 2


def test_ls_lists_first_last_rows(store, week):
    store.write(week, "1Min")
    listing = store.ls().set_index("symbol")
    for sym, rows in week.groupby("symbol"):
        assert listing.loc[sym, "rows"] == len(rows)
        assert listing.loc[sym, "first"] == rows["ts"].min()
        assert listing.loc[sym, "last"] == rows["ts"].max()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(symbols=["ZZZ"]), "no 1Min bars stored for ZZZ"),
        (dict(symbols=["AAA"], start="2030-01-01"), "no 1Min bars stored for AAA between"),
        (dict(symbols=["AAA"], start="2026-03-12", end="2026-03-10"), "is after end"),
        (dict(symbols=["AAA"], start="yesterday-ish"), "cannot read"),
    ],
)
def test_load_errors_are_clear(store, week, kwargs, message):
    store.write(week, "1Min")
    with pytest.raises(DataError, match=message):
        store.load(timeframe="1Min", **kwargs)


def test_invalid_symbol_refused(store, week):
    with pytest.raises(DataError, match="invalid symbol"):
        store.write(week.assign(symbol="../etc"), "1Min")


def test_bars_from_wide_and_long_agree():
    idx = pd.date_range("2026-01-05 14:30", periods=4, freq="1min", tz="UTC")
    close = pd.DataFrame({"A": [1.0, 2, 3, 4], "B": [5.0, 6, np.nan, 8]}, index=idx)
    wide = wb.Bars.from_wide(close=close, volume=close * 10)
    assert wide.open.equals(wide.close) and wide.volume.iloc[0, 1] == 50
    long = wide.to_long()
    assert len(long) == 7  # the NaN close is no bar
    again = wb.Bars.from_long(long)
    pd.testing.assert_frame_equal(again.close, wide.close, check_freq=False)


def test_bars_refuse_naive_and_misaligned():
    idx = pd.date_range("2026-01-05 14:30", periods=3, freq="1min")
    with pytest.raises(DataError, match="naive"):
        wb.Bars.from_wide(close=pd.DataFrame({"A": [1.0, 2, 3]}, index=idx))
    aware = idx.tz_localize("UTC")
    close = pd.DataFrame({"A": [1.0, 2, 3]}, index=aware)
    with pytest.raises(DataError, match="not aligned"):
        wb.Bars.from_wide(close=close, volume=close.iloc[:2])
