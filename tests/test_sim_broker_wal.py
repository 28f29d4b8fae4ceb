"""The simulated broker's file as the session uses it: checkpoints only when asked
(``checkpoint="manual"``), and its own updates handed over without reading them back."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from workbench.brokers.sim import SimBroker
from workbench.brokers.sim_store import SimStore
from workbench.model import OrderIntent, Side


def _fill_wal(path: Path, checkpoint: str) -> tuple[int, int]:
    broker = SimBroker(path, cash=100_000, checkpoint=checkpoint)
    try:
        for i in range(400):
            broker.submit(OrderIntent(f"c{i}", "AAPL", Side.BUY, Decimal(1)))
        return broker.checkpoint()
    finally:
        broker.close()


def test_a_manual_checkpoint_store_never_checkpoints_inside_a_commit(tmp_path):
    auto_log, _ = _fill_wal(tmp_path / "auto.sqlite", "auto")
    manual_log, copied = _fill_wal(tmp_path / "manual.sqlite", "manual")
    assert auto_log < 1000 <= manual_log  # SQLite's automatic checkpoint: at 1,000 pages
    assert copied == manual_log  # the explicit one writes every page of the WAL
    again = SimBroker(tmp_path / "manual.sqlite")  # and every order is there, as with auto
    assert len(again.orders()) == 400
    again.close()
    broker = SimBroker(tmp_path / "manual.sqlite", checkpoint="manual")
    broker.checkpoint()  # opening it committed too
    broker.submit(OrderIntent("more", "AAPL", Side.BUY, Decimal(1)))
    assert broker.checkpoint(min_commits=2) == (0, 0)  # one commit since: not yet
    broker.submit(OrderIntent("more2", "AAPL", Side.BUY, Decimal(1)))
    log, copied = broker.checkpoint(min_commits=2)
    assert log == copied > 0
    broker.close()
    with pytest.raises(ValueError, match="checkpoint must be"):
        SimStore(tmp_path / "x.sqlite", checkpoint="sometimes")


def _stream(broker: SimBroker) -> list:
    return [(u.sequence, u.event, u.order, u.fill, u.time) for u in broker.updates()]


def test_the_sim_brokers_own_updates_are_handed_over_without_reading_them_back(tmp_path):
    path = tmp_path / "broker.sqlite"
    a, b = SimBroker(path, cash=100_000), SimBroker(path, cash=100_000)
    statements: list[str] = []
    a.store._db.set_trace_callback(statements.append)
    try:
        a.submit(OrderIntent("a1", "AAPL", Side.BUY, Decimal(3)))
        a.submit_many([OrderIntent("a2", "AAPL", Side.BUY, Decimal(1)),
                       OrderIntent("a3", "MSFT", Side.SELL, Decimal(2))])
        a.on_bars(a._now() + pd.Timedelta(minutes=5),
                  {"AAPL": {"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5}})
        mine = _stream(a)
        assert not [s for s in statements if "FROM updates WHERE seq" in s]  # from memory
        reader = SimBroker(path)
        reader._cursor = 0
        assert mine == _stream(reader)  # exactly what the file holds: accepted x3, fills x2
        assert [m[1] for m in mine] == ["accepted"] * 3 + ["fill"] * 2
        # another connection's update between two of ours: the rows are read back
        a.submit(OrderIntent("a4", "AAPL", Side.BUY, Decimal(1)))
        b.submit(OrderIntent("b1", "AAPL", Side.BUY, Decimal(1)))
        a.submit(OrderIntent("a5", "AAPL", Side.BUY, Decimal(1)))
        assert [u[2].client_order_id for u in _stream(a)] == ["a4", "b1", "a5"]
        assert [s for s in statements if "FROM updates WHERE seq" in s]
        # a transaction rolled back leaves no update behind, in the file or in memory
        with pytest.raises(RuntimeError), a.store.write():
            a.store.add_update("accepted", {"client_order_id": "ghost"}, None, None)
            raise RuntimeError("rolled back")
        a.submit(OrderIntent("a6", "AAPL", Side.BUY, Decimal(1)))
        assert [u[2].client_order_id for u in _stream(a)] == ["a6"]
        reader.close()
    finally:
        a.close()
        b.close()


def test_the_handed_over_updates_carry_the_submitted_orders_and_the_fills_themselves(
        tmp_path, monkeypatch):
    """Brackets and oco orders too: the stream handed over from memory equals the file's,
    each "accepted" update carries the order its submit returned (legs aside), each fill
    update the fill ``on_bars`` returned, and neither is parsed from the payload."""
    from workbench.brokers import sim_store
    from workbench.model import OrderType
    path = tmp_path / "broker.sqlite"
    a = SimBroker(path, cash=100_000)
    now = a._now()
    replies = [a.submit(OrderIntent("m1", "AAPL", Side.BUY, Decimal(3)))]
    replies += a.submit_many([
        OrderIntent("br", "AAPL", Side.BUY, Decimal(2), OrderType.BRACKET,
                    stop_loss=Decimal(90), take_profit=Decimal(120)),
        OrderIntent("oc", "MSFT", Side.SELL, Decimal(1), OrderType.OCO,
                    stop_loss=Decimal(80), take_profit=Decimal(130))])
    fills = a.on_bars(now + pd.Timedelta(minutes=5),
                      {"AAPL": {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5},
                       "MSFT": {"open": 100.0, "high": 131.0, "low": 99.0, "close": 100.5}})
    parsed = {"order": 0, "fill": 0}
    for name, key in (("order_from_row", "order"), ("fill_from_row", "fill")):
        real = getattr(sim_store, name)
        monkeypatch.setattr(sim_store, name, lambda *x, _r=real, _k=key, **kw: (
            parsed.__setitem__(_k, parsed[_k] + 1), _r(*x, **kw))[1])
    mine = list(a.updates())
    accepted = [u.order for u in mine if u.event == "accepted"]
    held = [o for r in replies for o in (r, *r.legs)]
    assert [o.client_order_id for o in accepted] == ["m1", "br", "br.sl", "br.tp", "oc", "oc.tp"]
    assert accepted[0] is replies[0]  # the very object, not parsed again
    assert accepted == [replace(o, legs=()) for o in held]  # the replies, legs aside
    assert [len(r.legs) for r in replies] == [0, 2, 1]
    assert [u.fill for u in mine if u.fill is not None] == fills and len(fills) >= 2
    assert all(any(u.fill is f for u in mine) for f in fills)
    assert parsed["fill"] == 0 and parsed["order"] == len(mine) - 6  # fill updates' orders only
    monkeypatch.undo()
    reader = SimBroker(path)
    reader._cursor = 0
    assert _stream_of(mine) == _stream(reader)  # exactly what the file holds
    reader.close()
    a.close()


def _stream_of(updates) -> list:
    return [(u.sequence, u.event, u.order, u.fill, u.time) for u in updates]


def test_a_duplicate_is_found_by_the_files_unique_index_without_reading_first(tmp_path):
    """No read of the order before inserting it: the unique index refuses a duplicate,
    whose group goes on (the others accepted, numbered without a gap) with nothing added."""
    from workbench.brokers.base import DuplicateClientOrderId
    broker = SimBroker(tmp_path / "broker.sqlite", cash=100_000)
    broker.submit(OrderIntent("d1", "AAPL", Side.BUY, Decimal(1)))
    statements: list[str] = []
    broker.store._db.set_trace_callback(statements.append)
    out = broker.submit_many([OrderIntent("d2", "AAPL", Side.BUY, Decimal(1)),
                              OrderIntent("d1", "MSFT", Side.SELL, Decimal(9)),
                              OrderIntent("d3", "AAPL", Side.BUY, Decimal(1))])
    broker.store._db.set_trace_callback(None)
    assert not [s for s in statements if "FROM orders WHERE client_order_id" in s]
    assert isinstance(out[1], DuplicateClientOrderId) and "d1" in str(out[1])
    assert [o.broker_order_id for o in (out[0], out[2])] == ["sim-00000002", "sim-00000003"]
    assert [(o.client_order_id, o.symbol, o.quantity) for o in broker.orders()] == [
        ("d1", "AAPL", Decimal(1)), ("d2", "AAPL", Decimal(1)), ("d3", "AAPL", Decimal(1))]
    assert [(u.event, u.order.client_order_id) for u in broker.updates()] == [
        ("accepted", "d1"), ("accepted", "d2"), ("accepted", "d3")]
    with pytest.raises(DuplicateClientOrderId):
        broker.submit(OrderIntent("d3", "AAPL", Side.BUY, Decimal(5)))
    assert len(broker.orders()) == 3 and list(broker.updates()) == []
    broker.close()
