"""Fetching bars from Alpaca: the real alpaca-py client against the loopback fake server."""

from __future__ import annotations

import json
import time
import traceback
import urllib.error
import urllib.request

import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.config import Credentials, load_settings
from workbench.data import alpaca_history
from workbench.data.alpaca_history import fetch_bars
from workbench.data.synth import synthesize
from workbench.errors import ConfigError, DataError
from workbench.secrets import MASK
from workbench.testing import FakeAlpaca, Fault

KEY = "PKTESTKEY0001"
CANARY = "canary-secret-7f3a9c1e5b"  # must never appear in any output
SYMBOLS = ["AAPL", "MSFT", "SPY"]
START, END = "2025-12-29", "2025-12-31"


@pytest.fixture(scope="module")
def served() -> pd.DataFrame:
    return synthesize(SYMBOLS, 3, "1Min", seed=11, end=END)


@pytest.fixture
def fake(served):
    with FakeAlpaca(served, key=KEY, secret=CANARY, page_size=500, idle_timeout=60) as fake:
        yield fake


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(alpaca_history, "_RETRY_WAIT_S", 0)


def _settings(fake, **alpaca):
    return load_settings(alpaca={"data_url": fake.url, **alpaca})


def _creds(key=KEY, secret=CANARY) -> Credentials:
    return Credentials(api_key=key, secret_key=secret)


def _fetch(fake, symbols=SYMBOLS, start=START, end=END, timeframe="1Min", **kw):
    return fetch_bars(symbols, start, end, timeframe, settings=_settings(fake, **kw),
                      credentials=_creds())


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text and KEY not in text


# -- the library ---------------------------------------------------------------------------
def test_multi_page_fetch_of_three_symbols_equals_the_served_bars(fake, served):
    got = _fetch(fake)
    pd.testing.assert_frame_equal(got, served.sort_values(["symbol", "ts"], ignore_index=True))
    assert str(got["ts"].dtype) == "datetime64[ns, UTC]" and got["symbol"].dtype == "str"
    pages = fake.requests
    assert len(pages) == -(-len(served) // 500) > 3
    assert "page_token" not in pages[0].query and all("page_token" in p.query for p in pages[1:])
    first = pages[0]
    assert (first.method, first.path) == ("GET", "/v2/stocks/bars")
    assert first.query["symbols"] == "AAPL,MSFT,SPY" and first.query["timeframe"] == "1Min"
    assert first.query["feed"] == "iex" and first.query["adjustment"] == "raw"
    assert first.query["start"] == "2025-12-29T05:00:00+00:00"  # midnight New York
    assert first.query["end"] == "2026-01-01T04:59:59.999999+00:00"  # end day inclusive
    assert first.headers["apca-api-key-id"] == MASK == first.headers["apca-api-secret-key"]
    assert all(p.status == 200 for p in pages)


def test_long_ranges_are_fetched_in_windows_without_overlap():
    served = synthesize(["AAPL", "MSFT"], 60, "1Min", seed=5, end=END)  # from early October
    done = []
    with FakeAlpaca(served, key=KEY, secret=CANARY, page_size=5000) as fake:
        got = fetch_bars(["AAPL", "MSFT"], "2025-10-01", END, "1Min", settings=_settings(fake),
                         credentials=_creds(), progress=lambda d, t: done.append((d, t)))
    pd.testing.assert_frame_equal(got, served)
    starts = sorted({r.query["start"] for r in fake.requests})
    assert starts == ["2025-10-01T04:00:00+00:00", "2025-11-01T04:00:00+00:00",
                      "2025-12-02T04:00:00+00:00"]  # 31-day windows
    assert done == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("ours, theirs", [("5Min", "5Min"), ("15Min", "15Min"),
                                          ("1Hour", "1Hour"), ("1Day", "1Day")])
def test_timeframe_mapping(fake, ours, theirs):
    _fetch(fake, symbols=["AAPL"], timeframe=ours)
    assert fake.requests[0].query["timeframe"] == theirs


def test_feed_from_settings_and_a_feed_not_subscribed(served):
    with FakeAlpaca(served, key=KEY, secret=CANARY, feeds=("iex",)) as fake:
        with pytest.raises(ConfigError, match="credentials refused .*HTTP 403.*'sip'"):
            _fetch(fake, feed="sip")
        assert fake.requests[0].query["feed"] == "sip"


def test_429_is_retried_then_served(fake, served):
    fake.fail(429, times=2)
    got = _fetch(fake)
    assert len(got) == len(served)
    assert [r.status for r in fake.requests[:3]] == [429, 429, 200]


def test_persistent_429_is_a_temporary_data_error(fake):
    fake.fail(429, times=4)
    with pytest.raises(DataError, match="rate limit .*temporary") as info:
        _fetch(fake)
    assert len(fake.requests) == 4  # alpaca-py: one try and three retries
    assert "\n" not in str(info.value)


def test_500_is_not_retried(fake):
    fake.fail(500, message="internal error")
    with pytest.raises(DataError, match=r"HTTP 500: internal error"):
        _fetch(fake)
    assert len(fake.requests) == 1


def test_wrong_secret_is_a_config_error_without_the_secret(fake, monkeypatch):
    monkeypatch.setenv("ALPACA_SECRET_KEY", CANARY)
    with pytest.raises(ConfigError, match="credentials refused .*HTTP 401") as info:
        fetch_bars(SYMBOLS, START, END, "1Min", settings=_settings(fake),
                   credentials=_creds(secret=CANARY + "-wrong"))
    _no_secret(str(info.value), "".join(traceback.format_exception(info.value)))
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no alpaca-py frames


def test_missing_credentials_name_the_variables(fake):
    with pytest.raises(ConfigError, match="ALPACA_API_KEY and ALPACA_SECRET_KEY"):
        fetch_bars(SYMBOLS, START, END, "1Min", settings=_settings(fake), credentials=Credentials())
    assert fake.requests == []


@pytest.mark.parametrize("after_headers", [False, True])
def test_a_stalled_server_times_out(fake, after_headers):
    fake.stall(30, after_headers=after_headers)
    began = time.monotonic()
    with pytest.raises(DataError, match="did not answer within the 1 s request timeout"):
        _fetch(fake, request_timeout_s=1)
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("args, message", [
    ({"symbols": []}, "no symbols"), ({"symbols": ["aapl!"]}, "invalid symbol"),
    ({"start": "2025-12-31", "end": "2025-12-01"}, "after end"),
    ({"start": "yesterday-ish"}, "cannot read"), ({"timeframe": "90Min"}, "not one Alpaca serves"),
])
def test_bad_arguments_fail_before_any_request(fake, args, message):
    with pytest.raises(ConfigError, match=message):
        _fetch(fake, **args)
    assert fake.requests == []


def test_malformed_answer_and_unreachable_server(fake):
    fake.inject(Fault(status=200, body={"bars": None, "next_page_token": None}))
    with pytest.raises(DataError, match="malformed answer"):
        _fetch(fake)
    settings = _settings(fake)
    fake.stop()
    with pytest.raises(DataError, match="cannot reach .*Connection refused"):
        fetch_bars(SYMBOLS, START, END, "1Min", settings=settings, credentials=_creds())


def test_empty_answer_and_malformed_bars(served):
    odd = served.head(3).assign(close=[1.0, float("nan"), 1.0])
    with FakeAlpaca(odd, key=KEY, secret=CANARY) as fake:
        assert _fetch(fake, start="2020-01-02", end="2020-01-03").empty
        got = _fetch(fake)
    assert len(got) == 3 and got["close"].isna().sum() == 1  # for the validator to quarantine


def test_an_answer_that_is_not_json_is_called_malformed_not_unreachable(served):
    from workbench.testing.alpaca.faults import Fault

    with FakeAlpaca(served, key=KEY, secret=CANARY) as fake:
        fake.inject(Fault(status=200, body=b'{"bars": {"AAPL": [NaN', path="/v2/stocks/bars"))
        with pytest.raises(DataError, match="malformed answer .* not JSON") as e:
            _fetch(fake)
    assert "cannot reach" not in str(e.value) and CANARY not in str(e.value)


# -- the fake itself -----------------------------------------------------------------------
def _get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_fake_checks_auth_routes_and_page_tokens(fake):
    auth = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": CANARY}
    assert _get(f"{fake.url}/v2/stocks/bars?symbols=AAPL&timeframe=1Min")[0] == 401
    assert _get(f"{fake.url}/v2/nowhere", auth)[0] == 404
    status, body = _get(f"{fake.url}/v2/stocks/bars?symbols=AAPL&timeframe=1Min&page_token=x", auth)
    assert status == 400 and body["code"] == 40010001
    status, body = _get(f"{fake.url}/v2/stocks/bars?symbols=AAPL&timeframe=1Min&limit=2&sort=desc", auth)
    assert status == 200 and body["next_page_token"] and list(body["bars"]) == ["AAPL"]
    first, second = body["bars"]["AAPL"]
    assert first["t"] > second["t"] and {"n", "vw"} <= set(first)


def test_fake_stops_when_idle_and_releases_stalls(served):
    with FakeAlpaca(served, idle_timeout=0.2) as fake:
        url = fake.url
        time.sleep(1.0)
        assert fake.stopped_reason == "idle timeout"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/v2/stocks/bars", timeout=2)
    began = time.monotonic()
    with FakeAlpaca(served) as fake:
        fake.inject(Fault(delay=60))
    assert time.monotonic() - began < 2


# -- the command line ----------------------------------------------------------------------
def _cli(fake, *extra, key=KEY, secret=CANARY, **env):
    env = {"WORKBENCH__ALPACA__DATA_URL": fake.url, "ALPACA_API_KEY": key,
           "ALPACA_SECRET_KEY": secret, **env}
    args = ["data", "fetch", "--symbols", ",".join(SYMBOLS), "--start", START, "--end", END,
            "--timeframe", "1Min", *extra]
    result = CliRunner().invoke(cli, args, env=env)
    _no_secret(result.stdout, result.stderr)
    return result


def test_cli_fetch_writes_the_served_bars_to_the_store(fake, served, workbench_home):
    result = _cli(fake, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["written"] == report["received"] == len(served) and report["quarantined_total"] == 0
    stored = pd.read_parquet(workbench_home / "data" / "bars" / "timeframe=1Min")
    stored["symbol"] = stored["symbol"].astype("str")
    stored = stored[list(served.columns)].sort_values(["symbol", "ts"], ignore_index=True)
    pd.testing.assert_frame_equal(stored, served.sort_values(["symbol", "ts"], ignore_index=True),
                                  check_categorical=False)
    again = _cli(fake)
    assert again.exit_code == 0 and f"{len(served)} already stored" in again.stdout


def _error_line(result) -> str:
    """The one ``error:`` line, last on stderr (after any finished progress bar)."""
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0]


def test_cli_missing_credentials_exit_2_with_one_line(fake):
    result = _cli(fake, key="", secret="")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "ALPACA_API_KEY" in _error_line(result) and "ALPACA_SECRET_KEY" in result.stderr
    assert fake.requests == []


def test_cli_wrong_key_is_one_line(fake):
    result = _cli(fake, "--json", key="PKWRONGKEY99")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "credentials refused" in _error_line(result) and result.stdout == ""


def test_cli_stalled_server_errors_within_seconds(fake):
    fake.stall(30)
    began = time.monotonic()
    result = _cli(fake, WORKBENCH__ALPACA__REQUEST_TIMEOUT_S="1")
    assert time.monotonic() - began < 5
    assert result.exit_code == 3 and "1 s request timeout" in _error_line(result)


# -- adjustment, re-runs, progress, the ticker NA ------------------------------------------
def test_cli_fetch_states_and_records_raw_by_default_and_refuses_to_mix(fake, workbench_home):
    from workbench.data.store import Store

    first = _cli(fake)
    assert first.exit_code == 0, first.stderr
    assert "adjustment: raw (prices as traded, not adjusted)" in first.stdout
    assert fake.requests[0].query["adjustment"] == "raw"
    store = Store(workbench_home / "data")
    (meta,) = store.provenance("1Min", "AAPL")
    assert meta["adjustment"] == "raw" and meta["source"] == "alpaca:iex"
    asked = len(fake.requests)
    mixed = _cli(fake, "--adjustment", "all")
    assert mixed.exit_code == 2 and len(fake.requests) == asked  # refused before any request
    line = _error_line(mixed)
    assert "AAPL (raw)" in line and "'all'" in line and "--adjustment" in line
    assert store.provenance("1Min", "AAPL") == [meta]  # nothing was added


def test_cli_fetch_split_adjusted_is_recorded_and_sent(fake, workbench_home):
    from workbench.data.store import Store

    result = _cli(fake, "--adjustment", "split", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["adjustment"] == "split"
    assert {r.query["adjustment"] for r in fake.requests} == {"split"}
    assert Store(workbench_home / "data").provenance("1Min", "MSFT")[0]["adjustment"] == "split"
    assert _cli(fake, "--adjustment", "bogus").exit_code == 2


def test_cli_fetch_rerun_adds_nothing_and_says_so(fake, served, workbench_home):
    assert _cli(fake).exit_code == 0
    files = sorted((workbench_home / "data").rglob("*.parquet"))
    again = _cli(fake)
    assert again.exit_code == 0, again.stderr
    assert f"0 written, {len(served)} already stored" in again.stdout
    assert f"nothing new: {len(served)} bars fetched were already stored" in again.stdout
    assert sorted((workbench_home / "data").rglob("*.parquet")) == files


def test_cli_fetch_shows_a_progress_bar_on_stderr_only(fake):
    result = _cli(fake)
    assert result.exit_code == 0
    assert "alpaca:" in result.stderr and "request" in result.stderr  # tqdm's bar
    assert "alpaca: " not in result.stdout and "%|" not in result.stdout


def test_stored_bars_without_a_recorded_adjustment_get_a_note(fake, served, workbench_home):
    from workbench.data.store import Store

    Store(workbench_home / "data").write(served[served["symbol"] == "AAPL"].head(5), "1Min")
    result = _cli(fake)
    assert result.exit_code == 0
    assert "note: stored 1Min bars of AAPL record no price adjustment" in result.stdout


def test_the_ticker_NA_travels_as_a_ticker(workbench_home):
    from workbench.data.store import Store

    served = synthesize(["NA", "AAPL"], 2, "1Min", seed=3, end=END)
    with FakeAlpaca(served, key=KEY, secret=CANARY) as fake:
        result = CliRunner().invoke(cli, [
            "data", "fetch", "--symbols", "NA,AAPL", "--start", "2025-12-30", "--end", END],
            env={"WORKBENCH__ALPACA__DATA_URL": fake.url, "ALPACA_API_KEY": KEY,
                 "ALPACA_SECRET_KEY": CANARY})
        assert result.exit_code == 0, result.stderr
        assert fake.requests[0].query["symbols"] == "NA,AAPL"
        got = fetch_bars(["NA"], "2025-12-30", END, settings=_settings(fake), credentials=_creds())
    assert set(got["symbol"]) == {"NA"} and len(got) == (served["symbol"] == "NA").sum()
    store = Store(workbench_home / "data")
    assert "NA" in store.symbols("1Min")
    listing = store.ls()
    assert "NA" in listing["symbol"].tolist() and listing["symbol"].notna().all()
    bars = store.load(["NA"], "1Min")
    assert bars.symbols == ["NA"] and bars.close["NA"].notna().any()
    ls = CliRunner().invoke(cli, ["data", "ls", "--json"])
    assert {"NA", "AAPL"} <= {r["symbol"] for r in json.loads(ls.stdout)}


def test_a_missing_value_in_symbols_is_refused_not_read_as_NAN(fake):
    # what pandas.read_csv or YAML makes of a ticker NA without keep_default_na=False / quotes
    read = pd.read_csv(__import__("io").StringIO("symbol\nNA\nAAPL\n"))["symbol"].tolist()
    assert read[0] != read[0]  # NaN: the trap itself
    with pytest.raises(ConfigError, match="a ticker such as NA read as missing"):
        _fetch(fake, symbols=read)
    with pytest.raises(ConfigError, match="must be names"):
        _fetch(fake, symbols=[None])
    assert fake.requests == []


def test_a_rerun_does_not_quarantine_the_same_bad_bars_twice(served, workbench_home):
    from workbench.data.store import Store

    bad = served.copy()
    bad.loc[bad.index[[3, 10]], "close"] = float("nan")
    with FakeAlpaca(bad, key=KEY, secret=CANARY) as fake:
        first = _cli(fake)
        assert first.exit_code == 0 and "quarantined: nan=2" in first.stdout
        again = _cli(fake)
    assert again.exit_code == 0, again.stderr
    assert "quarantined: none" in again.stdout and "nothing new" in again.stdout
    assert "2 bar(s) quarantined by an earlier fetch came again" in again.stdout
    assert len(Store(workbench_home / "data").quarantine()) == 2


def test_the_cli_offers_exactly_the_adjustments_the_fetch_knows():
    from workbench.cli.data import ADJUSTMENTS as CLI_ADJUSTMENTS

    assert CLI_ADJUSTMENTS == alpaca_history.ADJUSTMENTS


def test_a_fetch_quarantines_what_cannot_be_a_bar(served, workbench_home):
    """Issue 12: a broker's answer passes the same rules as an import (magnitude, grid)."""
    from workbench.data.store import Store

    bad = served.copy()
    bad.loc[bad.index[5], ["open", "high", "low", "close"]] = 1e308
    bad.loc[bad.index[20], "ts"] += pd.Timedelta(seconds=17)  # 15:30:17-like, off the grid
    with FakeAlpaca(bad, key=KEY, secret=CANARY) as fake:
        result = _cli(fake, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["quarantined"] == {"absurd_magnitude": 1,
                                                        "off_timeframe_grid": 1}
    q = Store(workbench_home / "data").quarantine()
    assert sorted(q["reason"]) == ["absurd_magnitude", "off_timeframe_grid"]
