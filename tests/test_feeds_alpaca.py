"""The live feed through the real alpaca-py clients against the replaying fake Alpaca.

The fake replays minutes of a synthetic day at high speed on a scaled clock; the feed
runs on that clock (``speed``) and must hand the engine every replayed minute once, with
the values the fake served, whatever happens to the stream.
"""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pandas as pd
import pytest

from workbench.config import Credentials, load_settings
from workbench.data import calendar
from workbench.data.synth import synthesize
from workbench.feeds.alpaca import alpaca_feed
from workbench.feeds.alpaca_stream import stream_url, to_minute_bar
from workbench.feeds.options import FeedOptions
from workbench.testing import FakeAlpaca

KEY, SECRET = "PKFEEDTEST01", "feed-secret-3c9d"
SYMBOLS = ["AAPL", "MSFT", "SPY"]
DAY = "2025-12-29"
OPEN = calendar.session_open(DAY)
M = pd.Timedelta(minutes=1)
MINUTES = 10
SPEED = 180.0  # one fake minute in a third of a second
# in the fake's seconds: the cutoff is 0.11 s real, the stale window 0.25 s
OPTIONS = FeedOptions(cutoff_s=20, stale_s=45, poll_delay_s=2, poll_retry_s=5,
                      reconnect_min_s=2, reconnect_max_s=16)


@pytest.fixture(scope="module")
def day() -> pd.DataFrame:
    bars = synthesize(SYMBOLS, 1, "1Min", seed=21, end=DAY)
    window = bars[(bars["ts"] >= OPEN) & (bars["ts"] < OPEN + MINUTES * M)]
    # MSFT trades nothing in minute 5: the row must say NaN, not the minute before
    return window[~((window["symbol"] == "MSFT") & (window["ts"] == OPEN + 5 * M))]


def _fake(day):
    end = (OPEN + MINUTES * M).tz_convert("America/New_York").strftime("%H:%M")
    return FakeAlpaca(day, key=KEY, secret=SECRET, replay=DAY, speed=SPEED, start="09:30",
                      end=end, idle_timeout=60)


def _feed(fake, events):
    settings = load_settings(alpaca={"data_url": fake.url, "request_timeout_s": 5})
    return alpaca_feed(SYMBOLS, DAY, settings=settings,
                       credentials=Credentials(api_key=KEY, secret_key=SECRET),
                       clock=fake.clock, speed=SPEED, options=OPTIONS,
                       on_event=lambda kind, data: events.append((kind, data)),
                       rng=random.Random(5), updated_bars=False)  # the fake serves no "u"


def _run(fake, events, during=None):
    """Iterate the feed over the replayed minutes; ``during(row)`` after each row."""
    rows = []
    for row in _feed(fake, events):
        rows.append(row)
        if during is not None:
            during(row)
        if row.time >= OPEN + (MINUTES - 1) * M:
            break
    return rows


def _check_every_minute_once(rows, day, fake):
    times = [r.time for r in rows]
    assert times == [OPEN + m * M for m in range(MINUTES)]  # in order, none missed or doubled
    served = {(pd.Timestamp(m), s) for m, s in fake.served}
    assert served == {(t, s) for t, s in zip(day["ts"], day["symbol"])}  # the fake's record
    want = day.set_index(["ts", "symbol"])
    for row in rows:
        for j, symbol in enumerate(row.symbols):
            got = row.values[:, j]
            if (row.time, symbol) in served:
                expect = want.loc[(row.time, symbol), ["open", "high", "low", "close", "volume"]]
                np.testing.assert_allclose(got, expect.to_numpy(dtype=float), rtol=1e-12)
            else:
                assert np.isnan(got).all()
    assert rows[5].present.tolist() == [True, False, True]


def _kinds(events, *kinds):
    return [(k, d) for k, d in events if k in kinds]


def test_the_feed_yields_every_replayed_minute_once_with_the_served_values(day):
    events = []
    with _fake(day) as fake:
        rows = _run(fake, events)
        sent = fake.hub.sent_bars
    _check_every_minute_once(rows, day, fake)
    assert {(b.minute, b.symbol) for b in sent} >= {(OPEN + 2 * M, s) for s in SYMBOLS}
    assert all(r.received is not None for r in rows)
    assert not _kinds(events, "bar_late", "bar_corrected", "bar_rejected")


def test_a_mute_data_stream_goes_stale_polls_backfills_and_reconnects(day):
    events = []
    with _fake(day) as fake:
        def mute_after_minute_3(row):
            if row.time == OPEN + 3 * M:
                fake.hub.faults.data.mute()  # connected, pinged, silent
        rows = _run(fake, events, mute_after_minute_3)
        withheld = [w for w in fake.hub.withheld if w.reason == "mute"]
        connections = fake.hub.connections("data")
    _check_every_minute_once(rows, day, fake)
    assert withheld, "the fault withheld no bar: the test proved nothing"
    switches = [d for k, d in events if k == "feed_source"]
    assert switches[0]["source"] == "polling" and "no stream bar for 45 s" in switches[0]["reason"]
    assert "stream" in [d["source"] for d in switches[1:]]  # back on the stream
    assert _kinds(events, "stream_restart") and len(connections) >= 2
    muted_minutes = {pd.Timestamp(w.message["t"]) for w in withheld if "t" in w.message} or None
    assert muted_minutes is None or muted_minutes <= {r.time for r in rows}
    assert not _kinds(events, "bar_late", "bar_rejected")


def test_a_dropped_data_stream_loses_no_minute(day):
    events = []
    with _fake(day) as fake:
        def drop_after_minute_4(row):
            if row.time == OPEN + 4 * M:
                fake.hub.faults.data.drop()
        rows = _run(fake, events, drop_after_minute_4)
        closed = [c for c in fake.hub.connections("data") if c.closed_by == "fault: drop"]
    _check_every_minute_once(rows, day, fake)
    assert closed
    assert not _kinds(events, "bar_late", "bar_rejected")


def test_a_late_bar_is_reported_not_applied_inside_a_running_event_loop(day):
    """Run as a notebook cell runs: in a thread whose asyncio loop is already running (the
    stream keeps its own loop on its own thread)."""
    events = []
    late = {"S": "MSFT", "t": OPEN + 5 * M, "o": 50.0, "h": 50.5, "l": 49.5, "c": 50.2,
            "v": 300.0, "n": 3, "vw": 50.1}
    with _fake(day) as fake:
        def publish_late(row):
            if row.time == OPEN + 6 * M:
                fake.hub.bars([late])  # MSFT's bar for minute 5, decided without it

        async def cell():
            asyncio.get_running_loop()  # a loop runs here, as in a Jupyter kernel
            return _run(fake, events, publish_late)
        rows = asyncio.run(cell())
    _check_every_minute_once(rows, day, fake)  # minute 5 still has NaN for MSFT
    (report,) = [d for k, d in events if k == "bar_late"]
    assert report["symbol"] == "MSFT" and report["time"] == (OPEN + 5 * M).isoformat()
    assert report["close"] == 50.2 and report["source"] == "stream"


def test_stream_url_follows_the_data_url_and_raw_messages_convert():
    settings = load_settings(alpaca={"data_url": "http://127.0.0.1:9/", "feed": "sip"})
    assert stream_url(settings) == "ws://127.0.0.1:9/v2/sip"
    assert stream_url(load_settings()) is None
    assert stream_url(load_settings(alpaca={"data_url": "https://data.alpaca.markets/"})) is None
    import msgpack

    t = msgpack.Timestamp.from_unix_nano(OPEN.value)
    bar = to_minute_bar({"T": "b", "S": "AAPL", "t": t, "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 9})
    assert bar.time == OPEN and bar.values == (1.0, 2.0, 0.5, 1.5, 9.0)
    odd = to_minute_bar({"T": "b", "S": "AAPL", "t": t, "o": None, "h": 2, "l": 1, "c": 1, "v": 1})
    assert np.isnan(odd.open)  # kept for the validator to reject with a reason
    assert to_minute_bar({"T": "b", "t": t}) is None and to_minute_bar({"S": "X", "t": "??"}) is None
