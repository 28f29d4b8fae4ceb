"""Validation of long bars: quarantine with reasons, never silent drops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.data import validate as v
from workbench.data.importer import read_bars_file
from workbench.errors import ConfigError, DataError

COLS = list(v.LONG_COLUMNS)


def bars(closes, symbol="AAA", start="2026-03-02 14:30", spread=0.0):
    """Long bars with the given closes, one minute apart, open == close."""
    c = np.asarray(closes, dtype=np.float64)
    n = len(c)
    return pd.DataFrame(
        {
            "symbol": pd.Series([symbol] * n, dtype="str"),
            "ts": pd.date_range(start, periods=n, freq="min", tz="UTC").as_unit("ns"),
            "open": c,
            "high": c * (1 + spread),
            "low": c * (1 - spread),
            "close": c,
            "volume": np.full(n, 100.0),
        }
    )


BAD_CSV = """\
symbol,ts,open,high,low,close,volume
AAA,2026-03-02T14:30:00Z,10.0,10.2,9.9,10.1,100
AAA,2026-03-02T14:31:00Z,10.1,10.3,10.0,10.2,100
AAA,2026-03-02T14:32:00Z,10.2,10.3,10.1,,100
AAA,2026-03-02T14:33:00Z,10.2,10.4,10.1,10.3,100
AAA,2026-03-02T14:34:00Z,0,10.4,10.1,10.3,100
AAA,2026-03-02T14:35:00Z,10.3,10.5,10.2,10.4,100
AAA,2026-03-02T14:36:00Z,-10.3,10.5,10.2,10.4,100
AAA,2026-03-02T14:37:00Z,10.4,10.6,10.3,10.5,100
AAA,2026-03-02T14:38:00Z,10.4,10.3,10.6,10.5,100
AAA,2026-03-02T14:39:00Z,10.5,10.7,10.4,10.6,100
AAA,2026-03-02T14:40:00Z,10.5,10.7,10.4,11.6,100
AAA,2026-03-02T14:41:00Z,10.6,10.8,10.5,10.7,100
AAA,2026-03-02T14:41:00Z,10.6,10.8,10.5,10.7,100
AAA,2026-03-02T14:42:00Z,10.7,10.9,10.6,10.8,100
AAA,2026-03-02T14:39:30Z,10.6,10.7,10.5,10.6,100
AAA,2026-03-02T14:43:00Z,10.8,11.0,10.7,10.9,100
AAA,2026-03-02T14:44:00Z,1090,1100,1080,1090,100
AAA,2026-03-02T14:45:00Z,10.9,11.1,10.8,11.0,100
AAA,2026-03-02T14:46:00Z,11.0,11.2,10.9,11.1,-5
AAA,2026-03-02T14:47:00Z,11.0,11.2,10.9,11.1,100
AAA,2026-03-02T14:48:00Z,10.0,11.2,10.9,11.1,100
AAA,2026-03-02T14:49:00Z,11.1,11.3,11.0,11.2,100
AAA,2026-03-02T14:50:00Z,11.1,11.3,11.0,11.2,abc
"""
EXPECTED_BAD = {  # 0-based data row -> reason
    2: v.NAN,
    4: v.NON_POSITIVE_PRICE,
    6: v.NON_POSITIVE_PRICE,
    8: v.HIGH_BELOW_LOW,
    10: v.CLOSE_OUTSIDE_RANGE,
    12: v.DUPLICATE_TIMESTAMP,
    14: v.OUT_OF_ORDER,
    16: v.SPIKE,
    18: v.NEGATIVE_VOLUME,
    20: v.OPEN_OUTSIDE_RANGE,
    22: v.NAN,
}


def test_each_bad_bar_quarantined_with_its_reason(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV)
    raw = read_bars_file(path)
    result = v.validate(raw)
    assert dict(zip(result.bad.index, result.bad["reason"])) == EXPECTED_BAD
    good_rows = [i for i in range(len(raw)) if i not in EXPECTED_BAD]
    expected_good = raw.iloc[good_rows].sort_values("ts").reset_index(drop=True)
    pd.testing.assert_frame_equal(result.good, expected_good)
    assert list(result.bad.columns) == COLS + ["reason"]
    assert result.counts[v.NAN] == 2 and sum(result.counts.values()) == len(EXPECTED_BAD)
    assert result.summary().startswith(
        f"{len(raw)} bars: {len(good_rows)} good, 11 quarantined (nan 2,"
    )


def test_first_reason_wins_and_bad_first_duplicate_is_replaced():
    df = bars([10.0, 10.0, 10.0, 10.0])
    df.loc[1, "ts"] = df.loc[0, "ts"]  # duplicate of row 0 ...
    df.loc[1, "close"] = np.nan  # ... but NaN comes first
    df.loc[3, "ts"] = df.loc[2, "ts"]
    df.loc[2, "low"] = -1.0  # row 2 bad, so row 3 (same ts) is kept
    result = v.validate(df)
    assert result.bad["reason"].to_dict() == {1: v.NAN, 2: v.NON_POSITIVE_PRICE}
    assert len(result.good) == 2


def test_good_is_sorted_across_symbols():
    df = pd.concat([bars([5.0, 5.1], "ZZZ"), bars([1.0, 1.1], "AAA")], ignore_index=True)
    df = df.iloc[[0, 2, 1, 3]].reset_index(drop=True)
    result = v.validate(df)
    assert result.bad.empty
    assert result.good["symbol"].tolist() == ["AAA", "AAA", "ZZZ", "ZZZ"]
    assert result.good["ts"].is_monotonic_increasing is False  # per symbol, not global
    assert result.good.groupby("symbol")["ts"].apply(lambda s: s.is_monotonic_increasing).all()


@pytest.mark.parametrize("factor", [100.0, 0.01])
def test_spikes_up_and_down_do_not_contaminate_neighbours(factor):
    closes = [10.0] * 20
    closes[7] *= factor
    closes[8] *= factor  # two adjacent bad closes: still spikes
    closes[15] *= factor
    result = v.validate(bars(closes))
    assert result.bad.index.tolist() == [7, 8, 15]
    assert set(result.bad["reason"]) == {v.SPIKE}


@pytest.mark.parametrize(
    ("closes", "flagged"),
    [
        ([10.0] * 10 + [16.0] * 10, []),  # level shift mid-series: kept
        ([10.0] * 10 + [16.0] * 3, []),  # three bars at the new level at the end
        ([10.0] * 10 + [16.0] * 2, [10, 11]),  # two bars at the end: ambiguous, flagged
        ([16.0] * 3 + [10.0] * 10, []),  # shift right after the start
        ([10.0] * 5 + [16.0] * 2 + [10.0] * 5, [5, 6]),  # two-bar excursion
        ([10.0, 1000.0], []),  # two bars, no reference: not judged
    ],
)
def test_level_shift_rule(closes, flagged):
    assert v.validate(bars(closes)).bad.index.tolist() == flagged


def test_reference_close_judges_the_first_bars():
    assert v.validate(bars([1000.0]), reference_close={"AAA": 10.0}).counts == {v.SPIKE: 1}
    assert v.validate(bars([12.0]), reference_close={"AAA": 10.0}).bad.empty
    # a spike at the very start of a batch is caught thanks to the stored close
    result = v.validate(bars([1000.0, 10.0]), reference_close=pd.Series({"AAA": 10.0}))
    assert result.bad.index.tolist() == [0]
    # unusable references are ignored, other symbols unaffected
    assert v.validate(bars([1000.0]), reference_close={"AAA": np.nan, "BBB": 1.0}).bad.empty


def test_spike_band_and_switch():
    df = bars([10.0] * 5 + [14.0] + [10.0] * 5)
    assert v.validate(df, spike_band=0.5).bad.empty
    assert v.validate(df, spike_band=0.3).counts == {v.SPIKE: 1}
    assert v.validate(bars([10.0] * 5 + [1e4] + [10.0] * 5), spike_band=None).bad.empty
    with pytest.raises(ConfigError):
        v.validate(df, spike_band=0)


def test_empty_frame():
    result = v.validate(bars([]))
    assert result.good.empty and result.bad.empty and result.counts == {}
    assert result.summary() == "0 bars: 0 good, 0 quarantined"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop(columns="volume"), "missing column(s) volume"),
        (lambda df: df.assign(vwap=1.0), "unexpected column(s) vwap"),
        (lambda df: df.assign(ts=df["ts"].dt.tz_localize(None)), "timezone-naive"),
        (
            lambda df: df.assign(ts=df["ts"].dt.tz_convert("America/New_York")),
            "datetime64[ns, UTC]",
        ),
        (lambda df: df.assign(volume=df["volume"].astype("int64")), "volume (int64)"),
        (lambda df: df.assign(symbol=1), "symbol must hold strings"),
        (lambda df: df.assign(ts="2026-03-02"), "ts must hold UTC timestamps"),
    ],
)
def test_check_long_frame(mutate, message):
    df = bars([10.0, 10.1])
    v.check_long_frame(df)
    with pytest.raises(DataError, match=None) as info:
        v.validate(mutate(df))
    assert message in str(info.value) and "\n" not in str(info.value)


# -- property: good + bad partition the input and good satisfies every invariant ----------

_price = st.one_of(st.floats(1.0, 200.0), st.sampled_from([0.0, -1.0, np.nan, np.inf, 1e4, 1e-3]))
_symbol, _minute = st.sampled_from(["AAA", "BBB"]), st.integers(0, 12)
_volume = st.one_of(st.floats(0, 1e6), st.sampled_from([-1.0, np.nan]))
_wild_row = st.tuples(_symbol, _minute, _price, _price, _price, _price, _volume)


@st.composite
def _sane_row(draw):
    low = draw(st.sampled_from([50.0, 52.0, 5000.0, 0.5]) | st.floats(40.0, 60.0))
    high = low * (1 + draw(st.floats(0.0, 0.05)))
    o, c = (low + (high - low) * draw(st.floats(0.0, 1.0)) for _ in range(2))
    return draw(_symbol), draw(_minute), o, high, low, c, draw(st.floats(0, 1e6))


_row = st.one_of(_sane_row(), _sane_row(), _wild_row)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_row, max_size=40), use_ref=st.booleans())
def test_partition_property(rows, use_ref):
    sym, minute, o, h, lo, c, vol = zip(*rows) if rows else ((),) * 7
    df = pd.DataFrame(
        {
            "symbol": pd.Series(sym, dtype="str"),
            "ts": (
                pd.Timestamp("2026-03-02 14:30", tz="UTC")
                + pd.to_timedelta(np.asarray(minute, dtype=np.int64), unit="min")
            ).as_unit("ns"),
            "open": np.asarray(o, dtype=np.float64),
            "high": np.asarray(h, dtype=np.float64),
            "low": np.asarray(lo, dtype=np.float64),
            "close": np.asarray(c, dtype=np.float64),
            "volume": np.asarray(vol, dtype=np.float64),
        }
    )
    result = v.validate(df, reference_close={"AAA": 50.0} if use_ref else None)
    good, bad = result.good, result.bad
    assert len(good) + len(bad) == len(df)
    assert bad.index.is_monotonic_increasing and set(bad["reason"]) <= set(v.REASONS)
    rebuilt = pd.concat([good, bad[COLS]]).sort_values(COLS)
    expected = df.sort_values(COLS)
    assert np.array_equal(
        rebuilt[COLS[2:]].to_numpy(), expected[COLS[2:]].to_numpy(), equal_nan=True
    )
    v.check_long_frame(good)
    num = good[COLS[2:]].to_numpy()
    assert np.isfinite(num).all() and (num[:, :4] > 0).all() and (good["volume"] >= 0).all()
    assert (good["low"] <= good[["open", "close"]].min(axis=1)).all()
    assert (good["high"] >= good[["open", "close"]].max(axis=1)).all()
    assert not good.duplicated(["symbol", "ts"]).any()
    assert list(good.index) == list(range(len(good)))
    assert good.equals(good.sort_values(["symbol", "ts"]).reset_index(drop=True))
