"""The simulated broker's file as the session uses it: checkpoints only when asked
(``checkpoint="manual"``), and its own updates handed over without reading them back."""

from __future__ import annotations

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
