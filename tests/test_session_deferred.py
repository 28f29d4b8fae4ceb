"""What a bar's path leaves until its orders are sent (``workbench.session.deferred``), and
the last closes made Decimal only when read (``workbench.session.prices``)."""

from __future__ import annotations

import gc
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.brokers.sim import SimBroker
from workbench.data.store import Store
from workbench.data.synth import synthesize
from workbench.model import to_decimal
from workbench.session.deferred import CHECKPOINT_COMMITS, after_bar, collector_paused
from workbench.session.prices import LastPrices
from workbench.session.runner import run_session

END = "2026-11-20"


@pytest.fixture
def home(workbench_home) -> Path:
    Store(workbench_home / "data").write(synthesize(4, 2, "1Min", 7, END), "1Min", source="synth")
    return workbench_home


def test_a_bars_path_runs_without_collections_and_the_checkpoint_follows_it(home, monkeypatch):
    decided: list[bool] = []  # gc.isenabled() each time the strategy decides (inside a bar)
    checkpoints: list[tuple[bool, int]] = []  # (gc enabled, the connection's autocheckpoint)

    @wb.strategy(warmup=2)
    def probe(bars, n: int = 2):
        decided.append(gc.isenabled())
        up = bars.close > bars.close.shift(n)
        return wb.Signals(entries=up, exits=~up)

    real = SimBroker.checkpoint

    def spy(self, min_commits=0):
        auto = self.store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        checkpoints.append((gc.isenabled(), auto, min_commits))
        return real(self, min_commits)

    monkeypatch.setattr(SimBroker, "checkpoint", spy)
    assert gc.isenabled()
    result = run_session(probe, replay_date=END, history_days=1)
    assert result.outcome == "succeeded" and result.orders > 10
    # the first evaluation is the start's, of the history (Engine.prime), outside any bar;
    # the collector was off whenever the strategy ran in a bar
    assert decided[0] and decided[1:] and not any(decided[1:])
    assert gc.isenabled()  # and on again after the session
    # one checkpoint after each bar, the collector on again by then; the session's broker
    # connection never checkpoints inside a commit
    assert len(checkpoints) == result.bars == 390
    assert checkpoints[0] == (True, 0, CHECKPOINT_COMMITS) and len(set(checkpoints)) == 1


def test_the_collector_is_left_off_when_it_was_off():
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a bar that failed")
    assert gc.isenabled()


def test_after_bar_checkpoints_a_broker_that_has_one_and_leaves_others_alone():
    calls = []

    class Sim:
        def checkpoint(self, min_commits):
            calls.append(min_commits)

    after_bar(Sim())
    after_bar(object())  # Alpaca's broker: no checkpoint
    assert calls == [CHECKPOINT_COMMITS]


def test_last_prices_are_to_decimal_of_each_symbols_last_close_made_when_read():
    rng = np.random.default_rng(3)
    prices = LastPrices()
    symbols = [f"S{i}" for i in range(50)]
    closes = (rng.random(50) * 500).tolist()
    prices.set_closes(symbols, closes)
    assert len(prices) == 50 and "S7" in prices and "ZZZ" not in prices
    assert dict(prices) == {s: to_decimal(c) for s, c in zip(symbols, closes, strict=True)}
    first = prices["S3"]
    prices.set_closes(["S3", "NEW"], [123.456789, 7.0])  # a later bar: only some symbols
    assert prices["S3"] == Decimal("123.4568") != first and prices["NEW"] == Decimal("7.0000")
    assert prices["S4"] == to_decimal(closes[4])  # a symbol without a bar keeps its close
    prices.update({"S4": Decimal("9.5")})  # a restart's closes, as Decimals
    assert prices["S4"] == Decimal("9.5") and prices.get("ZZZ") is None
    with pytest.raises(KeyError):
        prices["ZZZ"]
    with pytest.raises(ValueError):
        prices.set_closes(["A", "B"], [1.0])


def test_last_prices_get_is_the_mappings():
    """``LastPrices.get`` (its own, not ``Mapping.get``): a known symbol's Decimal, the
    default for an unknown one, never a KeyError."""
    from workbench.model import to_decimal
    from workbench.session.prices import LastPrices

    prices = LastPrices()
    prices.set_closes(["A", "B"], [10.125, 3.0])
    assert prices.get("A") == prices["A"] == to_decimal(10.125)
    assert prices.get("Z") is None and prices.get("Z", 0) == 0
    prices.set_closes(["A"], [11.5])
    assert prices.get("A") == to_decimal(11.5) and prices.get("B") == to_decimal(3.0)
