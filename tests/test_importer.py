"""Reading CSV and Parquet OHLCV files into long bars."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from workbench.data.importer import read_bars_file
from workbench.data.validate import NAN, check_long_frame, validate
from workbench.errors import ConfigError, DataError

NAIVE_CSV = """\
Date,Open,High,Low,Close,Volume
2026-03-06 09:30:00,10,11,9,10.5,1000
2026-03-09 09:30:00,10.5,11,10,10.8,1200
"""
UTC_0930_NY = [
    pd.Timestamp("2026-03-06 14:30", tz="UTC"),
    pd.Timestamp("2026-03-09 13:30", tz="UTC"),
]


def write(tmp_path, text, name="bars.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_naive_timestamps_rejected_without_tz(tmp_path):
    path = write(tmp_path, NAIVE_CSV)
    with pytest.raises(DataError) as info:
        read_bars_file(path, symbol="AAA")
    assert "--tz America/New_York" in one_line_error(info)


def test_naive_timestamps_localized_with_tz_across_dst(tmp_path):
    df = read_bars_file(write(tmp_path, NAIVE_CSV), symbol="aaa", tz="America/New_York")
    check_long_frame(df)
    assert df["ts"].tolist() == UTC_0930_NY
    assert df["symbol"].tolist() == ["AAA", "AAA"]
    assert df["volume"].tolist() == [1000.0, 1200.0]


@pytest.mark.parametrize(
    ("wall", "problem"), [("2026-03-08 02:30", "does not exist"), ("2026-11-01 01:30", "ambiguous")]
)
def test_dst_gap_and_overlap_are_errors(tmp_path, wall, problem):
    path = write(tmp_path, f"ts,o,h,l,c,v\n2026-03-06 09:30,1,1,1,1,1\n{wall},1,1,1,1,1\n")
    with pytest.raises(DataError) as info:
        read_bars_file(path, symbol="AAA", tz="America/New_York")
    message = one_line_error(info)
    assert problem in message and "row 2" in message and wall in message


def test_offsets_and_z_are_converted_and_win_over_tz(tmp_path):
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2026-03-06T09:30:00-05:00,1,1,1,1,1\n"
        "2026-03-09T09:30:00-04:00,1,1,1,1,1\n"
    )
    path = write(tmp_path, text)
    assert read_bars_file(path, symbol="AAA")["ts"].tolist() == UTC_0930_NY
    assert read_bars_file(path, symbol="AAA", tz="Asia/Tokyo")["ts"].tolist() == UTC_0930_NY
    z = write(tmp_path, "t,o,h,l,c,v\n2026-03-06T14:30:00Z,1,1,1,1,1\n", "z.csv")
    assert read_bars_file(z, symbol="AAA", tz="America/New_York")["ts"].tolist() == UTC_0930_NY[:1]


@pytest.mark.parametrize("scale", [1, 1_000, 1_000_000, 1_000_000_000])
def test_integer_epochs_are_utc(tmp_path, scale):
    seconds = [int(t.timestamp()) for t in UTC_0930_NY]
    rows = "".join(f"{s * scale},1,1,1,1,1\n" for s in seconds)
    df = read_bars_file(write(tmp_path, "time,o,h,l,c,v\n" + rows), symbol="AAA", tz="Asia/Tokyo")
    assert df["ts"].tolist() == UTC_0930_NY
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"


def test_yyyymmdd_integers_are_dates(tmp_path):
    path = write(tmp_path, "date,o,h,l,c,v\n20260306,1,1,1,1,1\n")
    with pytest.raises(DataError, match="--tz"):
        read_bars_file(path, symbol="AAA")
    df = read_bars_file(path, symbol="AAA", tz="America/New_York")
    assert df["ts"].tolist() == [pd.Timestamp("2026-03-06 05:00", tz="UTC")]


def test_separate_date_and_time_columns(tmp_path):
    path = write(tmp_path, "Date,Time,O,H,L,C,V\n2026-03-09,09:30,1,1,1,1,1\n")
    df = read_bars_file(path, symbol="AAA", tz="America/New_York")
    assert df["ts"].tolist() == UTC_0930_NY[1:]


def test_parquet_import(tmp_path):
    frame = pd.DataFrame(
        {
            "Ticker": ["AAA", "BBB"],
            "DateTime": pd.DatetimeIndex(["2026-03-06 09:30", "2026-03-09 09:30"]).tz_localize(
                "America/New_York"
            ),
            "OPEN": [1, 2],
            "HIGH": [1, 2],
            "LOW": [1, 2],
            "CLOSE": [1, 2],
            "VOLUME": [5, 6],
        }
    )
    aware = tmp_path / "aware.parquet"
    frame.to_parquet(aware)
    df = read_bars_file(aware)
    check_long_frame(df)
    assert df["ts"].tolist() == UTC_0930_NY and df["symbol"].tolist() == ["AAA", "BBB"]
    naive = tmp_path / "naive.pq"
    frame.assign(DateTime=frame["DateTime"].dt.tz_localize(None)).to_parquet(naive)
    with pytest.raises(DataError, match="--tz"):
        read_bars_file(naive)
    assert read_bars_file(naive, tz="America/New_York")["ts"].tolist() == UTC_0930_NY
    indexed = tmp_path / "indexed.parquet"
    frame.set_index("DateTime").to_parquet(indexed)  # timestamps saved as the index
    assert read_bars_file(indexed)["ts"].tolist() == UTC_0930_NY


def test_gzipped_csv(tmp_path):
    path = tmp_path / "bars.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(NAIVE_CSV)
    assert read_bars_file(path, symbol="AAA", tz="America/New_York")["ts"].tolist() == UTC_0930_NY


def test_case_insensitive_columns_and_adj_close(tmp_path):
    text = " SYMBOL , TimeStamp ,OPEN,high,Low,Adj Close,CLOSE,VOL\nAAA,2026-03-06T14:30Z,1,3,0.5,9,2,7\n"
    df = read_bars_file(write(tmp_path, text))
    assert list(df.columns) == ["symbol", "ts", "open", "high", "low", "close", "volume"]
    assert df.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [1, 3, 0.5, 2, 7]
    adj_only = write(tmp_path, "ts,o,h,l,adj_close,v\n2026-03-06T14:30Z,1,3,0.5,9,7\n", "adj.csv")
    assert read_bars_file(adj_only, symbol="AAA")["close"].tolist() == [9.0]


def test_symbol_column_versus_argument(tmp_path):
    path = write(
        tmp_path,
        "ticker,ts,o,h,l,c,v\nAAA,2026-03-06T14:30Z,1,1,1,1,1\nBBB,2026-03-06T14:30Z,1,1,1,1,1\n",
    )
    assert read_bars_file(path)["symbol"].tolist() == ["AAA", "BBB"]
    with pytest.raises(DataError) as info:
        read_bars_file(path, symbol="AAA")
    assert "BBB" in one_line_error(info)
    same = write(tmp_path, "symbol,ts,o,h,l,c,v\naaa,2026-03-06T14:30Z,1,1,1,1,1\n", "same.csv")
    assert read_bars_file(same, symbol="AAA")["symbol"].tolist() == ["AAA"]
    nosym = write(tmp_path, "ts,o,h,l,c,v\n2026-03-06T14:30Z,1,1,1,1,1\n", "nosym.csv")
    with pytest.raises(DataError) as info:
        read_bars_file(nosym)
    assert "--symbol" in one_line_error(info)


def test_unparseable_timestamp_names_the_row(tmp_path):
    path = write(
        tmp_path,
        "ts,o,h,l,c,v\n2026-03-06T14:30Z,1,1,1,1,1\n2026-03-06T14:31Z,1,1,1,1,1\nsoon,1,1,1,1,1\n",
    )
    with pytest.raises(DataError) as info:
        read_bars_file(path, symbol="AAA")
    message = one_line_error(info)
    assert "row 3" in message and "'soon'" in message
    blank = write(tmp_path, "ts,o,h,l,c,v\n2026-03-06T14:30Z,1,1,1,1,1\n,1,1,1,1,1\n", "blank.csv")
    with pytest.raises(DataError, match="row 2"):
        read_bars_file(blank, symbol="AAA")


def test_unparseable_prices_become_nan_and_are_quarantined(tmp_path):
    path = write(
        tmp_path, "ts,o,h,l,c,v\n2026-03-06T14:30Z,1,1,1,1,1\n2026-03-06T14:31Z,1,1,1,n/a,1\n"
    )
    df = read_bars_file(path, symbol="AAA")
    assert np.isnan(df.loc[1, "close"])
    assert validate(df).bad["reason"].tolist() == [NAN]


def test_missing_column_lists_what_was_found(tmp_path):
    path = write(tmp_path, "ts,open,high,low,volume\n2026-03-06T14:30Z,1,1,1,1\n")
    with pytest.raises(DataError) as info:
        read_bars_file(path, symbol="AAA")
    message = one_line_error(info)
    assert "no close column" in message and "found: ts, open, high, low, volume" in message


@pytest.mark.parametrize("text", ["", "ts,o,h,l,c,v\n"])
def test_empty_files(tmp_path, text):
    with pytest.raises(DataError) as info:
        read_bars_file(write(tmp_path, text), symbol="AAA")
    assert "empty" in one_line_error(info) or "no rows" in str(info.value)


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError):
        read_bars_file(write(tmp_path, NAIVE_CSV, "bars.xlsx"), symbol="AAA")
    with pytest.raises(ConfigError):
        read_bars_file(write(tmp_path, NAIVE_CSV), symbol="AAA", tz="America/Nowhere")
    with pytest.raises(DataError, match="no such file"):
        read_bars_file(tmp_path / "missing.csv", symbol="AAA")
