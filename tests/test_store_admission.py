"""The store judges what a write adds: the one date rule, the calendar, splices, range
jumps, short-history symbols and removal (issue 11's data faults, each shown fixed)."""

from __future__ import annotations

import datetime
import warnings

import pandas as pd
import pytest

import workbench as wb
from workbench.data.bars import Bars
from workbench.data.calendar import judge_bars
from workbench.data.synth import synthesize
from workbench.data.universe import ShortHistoryWarning
from workbench.errors import DataError
from workbench.times import bound


def _daily_bar(symbol: str, day: str, close: float = 10.0) -> pd.DataFrame:
    ts = pd.Timestamp(day).tz_localize("America/New_York").tz_convert("UTC").as_unit("ns")
    return pd.DataFrame({"symbol": [symbol], "ts": pd.Series([ts]).astype("datetime64[ns, UTC]"),
                         "open": [close], "high": [close], "low": [close], "close": [close],
                         "volume": [100.0]})


# -- 1. one date rule ---------------------------------------------------------------------
def test_the_date_rule_reads_a_bare_date_as_a_new_york_day_end_inclusive():
    assert bound("2026-11-23") == pd.Timestamp("2026-11-23 05:00", tz="UTC")
    assert bound("2026-11-23", end=True) == pd.Timestamp("2026-11-24 05:00", tz="UTC") - pd.Timedelta(1, "ns")
    assert bound("2026-11-23 14:30") == pd.Timestamp("2026-11-23 14:30", tz="UTC")  # a time: UTC
    for same_day in ("2026/11/23", "20261123", datetime.date(2026, 11, 23)):
        assert bound(same_day) == bound("2026-11-23")
    assert bound(datetime.datetime(2026, 11, 23)) == pd.Timestamp("2026-11-23", tz="UTC")  # a time
    with pytest.raises(DataError, match="end: cannot read"):
        bound("someday", "end", end=True, error=DataError)


def test_between_one_day_returns_that_day_on_daily_and_minute_bars():
    daily = Bars.from_long(synthesize(["AAA"], 10, "1Day", seed=1, end="2026-11-25"), "1Day")
    one = daily.between("2026-11-23", "2026-11-23")
    assert len(one) == 1 and one.index[0] == bound("2026-11-23")
    minutes = Bars.from_long(synthesize(["AAA"], 3, "1Min", seed=1, end="2026-11-25"), "1Min")
    day = minutes.between("2026-11-24", "2026-11-24")
    ny = day.index.tz_convert("America/New_York")
    assert len(day) > 300 and set(ny.date.astype(str)) == {"2026-11-24"}
    assert ny[-1].strftime("%H:%M") == "15:59"  # the end day is whole


def test_load_end_is_inclusive_on_daily_bars(store):
    store.write(synthesize(["AAA"], 10, "1Day", seed=1, end="2026-11-25"), "1Day")
    bars = wb.data.load(["AAA"], "1Day", start="2026-11-20", end="2026-11-24", store=store)
    days = list(bars.index.tz_convert("America/New_York").strftime("%Y-%m-%d"))
    assert days == ["2026-11-20", "2026-11-23", "2026-11-24"]  # the end day's bar is in
    assert len(store.load("AAA", "1Day", start="2026-11-24", end="2026-11-24")) == 1


def test_load_end_is_inclusive_on_minute_bars(store):
    store.write(synthesize(["AAA"], 3, "1Min", seed=1, end="2026-11-25"), "1Min")
    bars = store.load("AAA", "1Min", start="2026-11-24", end="2026-11-24")
    ny = bars.index.tz_convert("America/New_York")
    assert set(ny.strftime("%Y-%m-%d")) == {"2026-11-24"} and ny[-1].strftime("%H:%M") == "15:59"


# -- 2. the calendar ----------------------------------------------------------------------
def test_a_daily_bar_on_thanksgiving_is_quarantined_not_stored(store):
    good = _daily_bar("AAA", "2026-11-25")
    holiday = _daily_bar("AAA", "2026-11-26")  # Thanksgiving: no session
    report = store.write(pd.concat([good, holiday], ignore_index=True), "1Day")
    assert report.written == 1 and report.quarantined == {"not_a_session": 1}
    q = store.quarantine("AAA", "1Day")
    assert list(q["reason"]) == ["not_a_session"]
    assert list(store.load("AAA", "1Day").index) == list(good["ts"])


def test_minute_bars_written_as_another_timeframe_are_refused(store):
    """Minute bars stored as 5Min or 7Min once kept the bars on the coarser grid as if they
    were whole coarser bars; now the timestamps' spacing refuses the symbol's write."""
    minutes = synthesize(["AAA"], 1, "1Min", seed=2, end="2026-11-24")
    for label in ("5Min", "7Min", "1Hour"):
        report = store.write(minutes, label)
        assert report.written == 0 and not report.quarantined, label
        assert "closer than one " + label + " step" in report.refused["AAA"]
        assert "smallest gap 1 min" in report.refused["AAA"]
    report = store.write(minutes, "1Day")
    assert report.written == 0 and "share a session date" in report.refused["AAA"]
    five = synthesize(["AAA"], 1, "5Min", seed=2, end="2026-11-24")
    report = store.write(five, "1Min")  # coarser bars under a finer label
    assert report.written == 0 and "multiples of 5 min" in report.refused["AAA"]
    assert store.ls().empty and store.quarantine().empty
    assert store.write(minutes, "1Min").written == len(minutes)  # the true label is stored


def _minute_bar(ts: str, price: float = 10.0, volume: float = 100.0) -> dict:
    return {"symbol": "AAA", "ts": pd.Timestamp(ts, tz="UTC").as_unit("ns"), "open": price,
            "high": price, "low": price, "close": price, "volume": volume}


@pytest.mark.parametrize("ts, price, volume, reason", [
    ("2024-03-09 15:00", 10.0, 100.0, "not_a_session"),        # a Saturday
    ("2024-03-10 03:00", 10.0, 100.0, "not_a_session"),        # 03:00 UTC on a Sunday
    ("2024-03-04 15:30:17", 10.0, 100.0, "off_timeframe_grid"),  # off the minute grid
    ("2024-03-04 15:31", 1e308, 100.0, "absurd_magnitude"),
    ("2024-03-04 15:31", 2e7, 100.0, "absurd_magnitude"),       # above MAX_PRICE
    ("2024-03-04 15:31", 5e-5, 100.0, "absurd_magnitude"),      # below MIN_PRICE
    ("2024-03-04 15:31", 10.0, 1e15, "absurd_magnitude"),       # above MAX_VOLUME
    ("2199-03-04 15:31", 10.0, 100.0, "in_the_future"),
    ("2026-12-03 15:31", 10.0, 100.0, "in_the_future"),         # inside the calendar's span
])
def test_what_cannot_be_a_bar_is_quarantined_with_its_reason(store, monkeypatch, ts, price,
                                                             volume, reason):
    from workbench.clock import SimClock
    from workbench.data import admission

    # the wall clock pinned (the one reader of wall time), so "the future" stays put
    monkeypatch.setattr(admission, "LiveClock", lambda: SimClock("2026-12-02 18:00"))
    good = [_minute_bar(f"2024-03-04 15:{m:02d}") for m in range(20, 30)]
    bars = pd.DataFrame(good + [_minute_bar(ts, price, volume)])
    report = store.write(bars, "1Min", spike_band=None)
    assert report.written == 10 and report.quarantined == {reason: 1}
    assert list(store.quarantine("AAA", "1Min")["reason"]) == [reason]


def test_the_future_is_judged_against_now_plus_a_small_margin():
    from workbench.data.admission import FUTURE_MARGIN, off_calendar
    from workbench.data.timeframe import Timeframe

    now = pd.Timestamp("2026-12-02 15:00", tz="UTC")
    rows = pd.DataFrame({"ts": pd.DatetimeIndex([now, now + FUTURE_MARGIN,
                                                 now + FUTURE_MARGIN + pd.Timedelta(minutes=1)])})
    kept, off = off_calendar(rows, Timeframe.parse("1Min"), now=now)
    assert len(kept) == 2 and list(off["reason"]) == ["in_the_future"]


def test_judge_bars_names_each_reason():
    ts = pd.DatetimeIndex(["2026-11-24 14:30", "2026-11-24 14:31", "2026-11-24 13:00",
                           "2026-11-24 21:00", "2026-11-28 15:00", "2026-11-27 17:55",
                           "2026-11-27 18:00", "1990-01-02 15:00"], tz="UTC")
    assert list(judge_bars(ts, "5Min")) == [
        None, "off_timeframe_grid", "outside_session_hours", "outside_session_hours",
        "not_a_session", None, "outside_session_hours",  # the day after Thanksgiving closes 13:00
        "outside_calendar_span"]


# -- 3. no silent splice ------------------------------------------------------------------
def test_another_series_is_refused_per_symbol_not_spliced(store):
    store.write(synthesize(["AAA", "BBB"], 5, "1Day", seed=7, end="2026-11-20"), "1Day")
    before = store.load(["AAA", "BBB"], "1Day").close
    other = synthesize(["AAA", "BBB"], 8, "1Day", seed=7, end="2026-11-20")  # another path
    report = store.write(other, "1Day")
    assert sorted(report.refused) == ["AAA", "BBB"] and report.written == 0
    assert "another series" in report.refused["AAA"] and "\n" not in report.refused["AAA"]
    assert "REFUSED AAA: refused" in report.summary()
    pd.testing.assert_frame_equal(store.load(["AAA", "BBB"], "1Day").close, before)


def test_replace_moves_the_stored_series_aside_and_writes_the_new_one(store):
    store.write(synthesize(["AAA"], 5, "1Day", seed=7, end="2026-11-20"), "1Day")
    other = synthesize(["AAA"], 8, "1Day", seed=7, end="2026-11-20")
    report = store.write(other, "1Day", replace=True)
    assert not report.refused and report.written == 8 and "5 1Day bars" in report.replaced["AAA"]
    assert list(store.load("AAA", "1Day").close["AAA"]) == list(other["close"])
    assert len(list((store.root / "trash").rglob("*.parquet"))) == 1


def test_a_range_jump_is_reported_per_symbol(store):
    store.write(synthesize(["AAA"], 5, "1Day", seed=7, end="2026-11-20"), "1Day")
    report = store.write(synthesize(["AAA"], 3, "1Day", seed=7, end="2020-01-03"), "1Day")
    assert report.written == 3 and set(report.jumps) == {"AAA"}
    assert "range jump" in report.jumps["AAA"] and "WARNING AAA: range jump" in report.summary()
    adjacent = store.write(synthesize(["AAA"], 1, "1Day", seed=7, end="2026-11-23"), "1Day")
    assert not adjacent.jumps  # the next session touches the stored range


# -- 4. short history ---------------------------------------------------------------------
def test_a_short_symbol_is_named_and_left_out_of_the_default_universe(store):
    store.write(synthesize(["AAA", "BBB", "CCC"], 60, "1Day", seed=1, end="2026-11-20"), "1Day")
    store.write(synthesize(["NEW"], 21, "1Day", seed=1, end="2026-11-20"), "1Day")
    with pytest.warns(ShortHistoryWarning, match=r"NEW \(21 bars\)"):
        bars = wb.data.load(None, "1Day", store=store)
    assert bars.symbols == ["AAA", "BBB", "CCC"] and len(bars) == 60
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = wb.data.load(["AAA", "NEW"], "1Day", store=store)  # asked for by name: kept
    assert named.symbols == ["AAA", "NEW"]


# -- 5. removal ---------------------------------------------------------------------------
def test_remove_a_range_keeps_the_rest_and_moves_files_to_the_trash(store):
    store.write(synthesize(["AAA", "BBB"], 10, "1Day", seed=1, end="2026-11-20"), "1Day")
    before = store.load("AAA", "1Day").close["AAA"]
    report = store.remove("AAA", "1Day", start="2026-11-18", end="2026-11-19")
    assert report.removed == {"1Day bars": 2} and len(report.moved) == 1 and len(report.written) == 1
    assert all(p.startswith(str(store.root / "trash")) for p in report.moved)
    after = store.load("AAA", "1Day").close["AAA"]
    gone = (before.index >= bound("2026-11-18")) & (before.index <= bound("2026-11-19", end=True))
    assert gone.sum() == 2
    pd.testing.assert_series_equal(after, before[~gone], check_freq=False)
    whole = store.remove("BBB")
    assert whole.removed == {"1Day bars": 10}
    assert store.symbols("1Day") == ["AAA"]
    with pytest.raises(DataError, match="nothing to remove"):
        store.remove("BBB")


def test_readers_see_whole_series_while_a_range_is_removed(store):
    """rm never deletes in place: a reader loading in a loop meanwhile sees the bars before
    the removal or after it, never an error or a part."""
    import threading

    for end in ("2026-10-30", "2026-11-13", "2026-11-20"):  # three files
        store.write(synthesize(["AAA"], 10, "1Day", seed=1, end="2026-11-20").query(
            "ts <= @pd.Timestamp(@end, tz='America/New_York')"), "1Day")
    full = len(store.load("AAA", "1Day"))
    seen, errors, stop = set(), [], threading.Event()

    def read():
        while not stop.is_set():
            try:
                seen.add(len(store.load("AAA", "1Day")))
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(e))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for day in ("2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"):
            store.remove("AAA", "1Day", start=day, end=day)
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert seen <= set(range(full - 4, full + 1)) and len(store.load("AAA", "1Day")) == full - 4


def test_default_universe_names_the_short_symbol_without_loading(store):
    from workbench.data.universe import default_universe

    store.write(synthesize(["AAA", "BBB", "CCC"], 60, "1Day", seed=1, end="2026-11-20"), "1Day")
    store.write(synthesize(["NEW"], 21, "1Day", seed=1, end="2026-11-20"), "1Day")
    assert default_universe(store, "1Day") == (["AAA", "BBB", "CCC"], {"NEW": 21})
    assert default_universe(store, "1Day", start="2026-11-02") == (["AAA", "BBB", "CCC", "NEW"], {})
