"""The fake replays a stored day at speed: the scaled clock, minutes published once and in
order, no unclosed minute over REST, and fills equal to the simulated broker's on the same
bars (the same sim_rules, the same cost model)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import warnings
from dataclasses import replace
from decimal import Decimal

import pandas as pd
import pytest

from workbench.brokers.sim import SimBroker
from workbench.data.synth import synthesize
from workbench.errors import ConfigError
from workbench.model import OrderIntent, OrderType, Side, TimeInForce
from workbench.model.costs import CostModel
from workbench.testing import FakeAlpaca

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.data.live.stock import StockDataStream
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderClass, OrderSide
    from alpaca.trading.enums import TimeInForce as Tif
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
    )
    from alpaca.trading.stream import TradingStream

KEY, SECRET = "PKFAKEREPLAY01", "fake-replay-secret"
DAY = "2026-11-23"
SYMBOLS = ["AAPL", "MSFT", "SPY"]
COSTS = CostModel(slippage_bps=2, fees_bps=1, fee_per_share=0.005)
SPEED = 600  # a fake minute in 0.1 s


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synthesize(SYMBOLS, 2, "1Min", seed=7, end=DAY)


def window(bars, start="10:00", end="10:10"):
    ts = bars["ts"].dt.tz_convert("America/New_York")
    day = ts.dt.strftime("%Y-%m-%d") == DAY
    hhmm = ts.dt.strftime("%H:%M")
    return bars[day & (hhmm >= start) & (hhmm < end)]


def get(fake, path):
    request = urllib.request.Request(f"{fake.url}{path}",
                                     headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET})
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.loads(r.read())


def test_replay_publishes_each_minute_once_on_a_scaled_clock(bars):
    want = window(bars)
    with FakeAlpaca(bars, key=KEY, secret=SECRET, replay=DAY, speed=SPEED, start="10:00",
                    end="10:10", symbols=["AAPL", "MSFT"], paused=True) as fake:
        clock = get(fake, "/v2/clock")
        assert clock["is_open"] and pd.Timestamp(clock["timestamp"]) == pd.Timestamp(
            "2026-11-23 09:59", tz="America/New_York")  # one minute's lead before the first bar
        assert get(fake, "/v2/stocks/bars/latest?symbols=AAPL")["bars"]["AAPL"]["t"] \
            == "2026-11-23T14:59:00Z"  # the minute before the window: closed, shown
        fake.play()
        seen = []
        while not fake.done:
            latest = get(fake, "/v2/stocks/bars/latest?symbols=AAPL")["bars"]
            history = get(fake, "/v2/stocks/bars?symbols=AAPL&timeframe=1Min"
                                "&start=2026-11-23T15:00:00Z&limit=10000")["bars"]
            shown = [pd.Timestamp(b["t"]) for b in history.get("AAPL", [])]
            served = {m for m, s in fake.served if s == "AAPL"}
            assert set(shown) <= served  # nothing unpublished (an unclosed minute) is shown
            if latest:
                seen.append(pd.Timestamp(latest["AAPL"]["t"]))
                assert seen[-1] in served or seen[-1] < pd.Timestamp("2026-11-23 15:00", tz="UTC")
            time.sleep(0.02)
        fake.wait_until_done(5)
        expected = want[want["symbol"].isin(["AAPL", "MSFT"])].sort_values(["ts", "symbol"])
        assert fake.served == list(zip(expected["ts"], expected["symbol"], strict=True))
        assert seen == sorted(seen) and len(set(seen)) > 3  # "latest" moved forward only
        clock = get(fake, "/v2/clock")
        assert not clock["is_open"]  # after the window the clock shows the close
        assert pd.Timestamp(clock["timestamp"]) == pd.Timestamp("2026-11-23 16:00",
                                                                tz="America/New_York")
        assert fake.hub.sent_bars == []  # no data client subscribed: nothing sent


def _sim_fills(day, intents, tmp_path, late: list[tuple[pd.Timestamp, OrderIntent]]):
    broker = SimBroker(tmp_path / "sim.sqlite", costs=COSTS, cash=100_000)
    for intent in intents:
        broker.submit(intent)
    for ts, rows in day.groupby("ts", sort=True):
        for when, intent in late:
            if when == ts:
                broker.submit(intent)
        broker.on_bars(ts, {r.symbol: {"open": r.open, "high": r.high, "low": r.low}
                            for r in rows.itertuples()})
    broker.expire()
    return broker


def test_replayed_orders_fill_as_on_the_simulated_broker(bars, tmp_path):
    day = window(bars, "10:00", "10:15")
    first = day[day["ts"] == day["ts"].min()].set_index("symbol")
    later = day[day["ts"] > day["ts"].min() + pd.Timedelta(minutes=1)]
    spy_high = float(later[later.symbol == "SPY"]["high"].max())
    msft_low = float(later[later.symbol == "MSFT"]["low"].min())
    aapl_low = float(later[later.symbol == "AAPL"]["low"].min())
    tp = round(spy_high - 0.01, 2)  # reached within the window
    limit = round(msft_low + 0.01, 2)
    stop = round(aapl_low + 0.01, 2)
    sl = round(float(first.loc["SPY", "open"]) * 0.8, 2)
    aapl_high = float(later[later.symbol == "AAPL"]["high"].max())
    exit_tp, exit_sl = round(aapl_high - 0.01, 2), round(aapl_low - 5, 2)  # the tp is reached
    before = day["ts"].min() - pd.Timedelta(minutes=1)  # sent in the lead minute
    intents = [
        OrderIntent("mkt", "AAPL", Side.BUY, Decimal(10)),
        OrderIntent("lmt", "MSFT", Side.BUY, Decimal(5), OrderType.LIMIT,
                    limit_price=Decimal(str(limit)), time_in_force=TimeInForce.GTC),
        OrderIntent("stp", "AAPL", Side.SELL, Decimal(4), OrderType.STOP,
                    stop_price=Decimal(str(stop))),
        OrderIntent("brk", "SPY", Side.BUY, Decimal(3), OrderType.BRACKET,
                    take_profit=Decimal(str(tp)), stop_loss=Decimal(str(sl))),
        OrderIntent("never", "MSFT", Side.BUY, Decimal(1), OrderType.LIMIT,
                    limit_price=Decimal(1)),
        OrderIntent("exit", "AAPL", Side.SELL, Decimal(3), OrderType.OCO,  # mkt's protection
                    take_profit=Decimal(str(exit_tp)), stop_loss=Decimal(str(exit_sl)),
                    time_in_force=TimeInForce.GTC),
    ]
    intents = [replace(i, bar_time=before) for i in intents]
    requests = [
        MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=Tif.DAY,
                           client_order_id="mkt"),
        LimitOrderRequest(symbol="MSFT", qty=5, side=OrderSide.BUY, time_in_force=Tif.GTC,
                          limit_price=limit, client_order_id="lmt"),
        StopOrderRequest(symbol="AAPL", qty=4, side=OrderSide.SELL, time_in_force=Tif.DAY,
                         stop_price=stop, client_order_id="stp"),
        MarketOrderRequest(symbol="SPY", qty=3, side=OrderSide.BUY, time_in_force=Tif.DAY,
                           client_order_id="brk", order_class=OrderClass.BRACKET,
                           take_profit=TakeProfitRequest(limit_price=tp),
                           stop_loss=StopLossRequest(stop_price=sl)),
        LimitOrderRequest(symbol="MSFT", qty=1, side=OrderSide.BUY, time_in_force=Tif.DAY,
                          limit_price=1, client_order_id="never"),
        LimitOrderRequest(symbol="AAPL", qty=3, side=OrderSide.SELL, time_in_force=Tif.GTC,
                          client_order_id="exit", order_class=OrderClass.OCO,
                          take_profit=TakeProfitRequest(limit_price=exit_tp),
                          stop_loss=StopLossRequest(stop_price=exit_sl)),
    ]
    with FakeAlpaca(bars, key=KEY, secret=SECRET, replay=DAY, speed=SPEED, start="10:00",
                    end="10:15", costs=COSTS, paused=True) as fake:
        client = TradingClient(KEY, SECRET, url_override=fake.url)
        for request in requests:  # during the lead minute, before the first bar
            client.submit_order(request)
        fake.play()
        deadline = time.monotonic() + 10
        while len({m for m, _ in fake.served}) < 4:  # a session reacting to minute 4's bar
            assert time.monotonic() < deadline and not fake.done
            time.sleep(0.005)
        seen = max(m for m, _ in fake.served)
        client.submit_order(MarketOrderRequest(symbol="MSFT", qty=2, side=OrderSide.SELL,
                                               time_in_force=Tif.DAY, client_order_id="late"))
        fake.wait_until_done(10)
        got = {f.client_order_id: f for f in fake.fills}
        late_fill = got["late"].time
        assert late_fill > seen  # never a bar the client could not have seen closing
        account = client.get_account()
        statuses = {o["client_order_id"]: o["status"] for o in fake.orders}
    late = [(late_fill, OrderIntent("late", "MSFT", Side.SELL, Decimal(2),
                                    bar_time=late_fill - pd.Timedelta(minutes=1)))]
    sim = _sim_fills(day, intents, tmp_path, late)
    # Alpaca's oco is the take profit with a stop-loss leg, the sim broker's the stop with a
    # take-profit leg: the same two orders under each one's names
    names = {"exit.tp": "exit", "exit": "exit.sl"}
    theirs = {names.get(f.client_order_id, f.client_order_id): f for f in sim.fills()}
    assert set(got) == set(theirs) == {"mkt", "lmt", "stp", "brk", "brk.tp", "late", "exit"}
    for cid, fill in got.items():
        other = theirs[cid]
        assert (fill.symbol, fill.side, fill.quantity, fill.price, fill.fee, fill.time) == \
            (other.symbol, other.side, other.quantity, other.price, other.fee, other.time), cid
    assert fake.positions == {s: p for s, p in sim.positions().items() if p.quantity}
    assert Decimal(account.cash) == sim.account().cash
    assert statuses["brk.sl"] == "canceled" and statuses["never"] == "expired"  # OCO; the close
    assert statuses["exit.sl"] == "canceled"  # the oco's stop, canceled by its take profit
    assert statuses["lmt"] == "filled"


def test_replay_from_a_store_and_bad_windows(bars, tmp_path):
    from workbench.data.store import Store

    store = Store(tmp_path / "data")
    store.write(bars, "1Min")
    with FakeAlpaca(key=KEY, secret=SECRET, replay=DAY, speed=6000, store=store,
                    symbols=["SPY"], start="15:58", paused=True) as fake:
        history = get(fake, "/v2/stocks/bars?symbols=SPY&timeframe=1Min&limit=10000")["bars"]
        shown = pd.DatetimeIndex([b["t"] for b in history["SPY"]])
        stored = bars[(bars.symbol == "SPY") & (bars.ts < pd.Timestamp("2026-11-23 20:58", tz="UTC"))]
        assert list(shown) == list(stored["ts"])  # the sessions before, the day up to 15:57
        fake.play()
        fake.wait_until_done(10)
        assert [s for _, s in fake.served] == ["SPY", "SPY"]  # 15:58 and 15:59: to the close
    with pytest.raises(ConfigError, match="not an NYSE session"):
        FakeAlpaca(bars, replay="2026-11-26")  # Thanksgiving
    with pytest.raises(ConfigError, match="holds no minute"):
        FakeAlpaca(bars, replay=DAY, start="10:00", end="09:00")
    with pytest.raises(ConfigError, match="cannot read"):
        FakeAlpaca(bars, replay=DAY, start="ten")
    with pytest.raises(ConfigError, match="no bars to replay for ZZZ"):
        FakeAlpaca(bars, replay=DAY, symbols=["ZZZ"])
    with pytest.raises(ConfigError, match="speed must be positive"):
        FakeAlpaca(bars, replay=DAY, speed=0)
    with pytest.raises(ConfigError, match="belong to a replay"):
        FakeAlpaca(bars, start="10:00")


def _run(client) -> threading.Thread:
    thread = threading.Thread(target=client.run, daemon=True)
    thread.start()
    return thread


def _stop(fake, *running) -> None:
    for client, _ in running:
        deadline = time.monotonic() + 5
        while getattr(client, "_loop", None) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        client.stop()
    fake.hub.disconnect()  # wakes the clients blocked in recv
    for _, thread in running:
        thread.join(10)
    assert not [t for _, t in running if t.is_alive()], "a stream client survived"


def test_replay_through_alpaca_py_streams_every_bar_once_and_the_fills(bars):
    """The whole loop on the real clients: bars over StockDataStream, the order over
    TradingClient, its fill over TradingStream."""
    got_bars, updates = [], []

    async def on_bar(bar):
        got_bars.append((pd.Timestamp(bar.timestamp), bar.symbol, bar.open))

    async def on_update(update):
        updates.append((update.event, update.order.client_order_id, update.price))

    with FakeAlpaca(bars, key=KEY, secret=SECRET, replay=DAY, speed=SPEED, start="11:00",
                    end="11:08", symbols=["AAPL", "SPY"], paused=True) as fake:
        data = StockDataStream(KEY, SECRET, url_override=fake.data_stream_url("iex"))
        data.subscribe_bars(on_bar, "AAPL", "SPY")
        trading = TradingStream(KEY, SECRET, url_override=fake.stream_url)
        trading.subscribe_trade_updates(on_update)
        running = [(data, _run(data)), (trading, _run(trading))]
        try:
            fake.hub.wait_until(lambda: any(c.subscriptions.get("bars") for c in
                                            fake.hub.open_connections("data")), what="subscribed")
            fake.hub.wait_until(lambda: any(c.listening for c in
                                            fake.hub.open_connections("trading")), what="listening")
            TradingClient(KEY, SECRET, url_override=fake.url).submit_order(MarketOrderRequest(
                symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=Tif.DAY,
                client_order_id="streamed"))
            fake.play()
            fake.wait_until_done(10)
            fake.hub.wait_until(lambda: len(got_bars) == len(fake.served), what="every bar")
            fake.hub.wait_until(lambda: len(updates) == 2, what="new and fill")
        finally:
            _stop(fake, *running)
    want = window(bars, "11:00", "11:08")
    want = want[want["symbol"].isin(["AAPL", "SPY"])].sort_values(["ts", "symbol"])
    assert fake.served == list(zip(want["ts"], want["symbol"], strict=True))
    assert [(m, s) for m, s, _ in got_bars] == fake.served  # each bar once, in order
    first_spy = next(o for m, s, o in got_bars if s == "SPY")
    assert updates == [("new", "streamed", None), ("fill", "streamed", first_spy)]
