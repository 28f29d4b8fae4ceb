"""Position accounting: cash and positions conserved under any sequence of fills and fees.

Both records are checked: the order manager's ``Ledger`` and the simulated broker's own
books (its SQLite file), which reconciliation compares with each other.
"""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.brokers import SimBroker
from workbench.brokers.sim_rules import position_after
from workbench.model import Fill, OrderIntent, Side
from workbench.model.costs import CostModel
from workbench.orders.ledger import Ledger, apply_fill

T0 = pd.Timestamp("2025-03-03 14:30", tz="UTC")
SYMBOLS = ("AAA", "BBB", "CCC")

decimals = st.decimals(min_value=D("0.0001"), max_value=D(5000), places=4)
fills = st.lists(st.builds(
    lambda n, sym, side, qty, price, fee: Fill(f"x{n}", f"c{n}", sym, side, qty, price, fee, T0),
    st.integers(0, 10**9), st.sampled_from(SYMBOLS), st.sampled_from(list(Side)),
    decimals, decimals, st.decimals(min_value=D(0), max_value=D(25), places=5)),
    max_size=40)
marks = st.fixed_dictionaries({s: decimals for s in SYMBOLS})


def booked(sequence, start=D(100_000)) -> Ledger:
    ledger = Ledger(cash=start)
    for f in sequence:
        ledger.apply(f)
    return ledger


@settings(max_examples=300, deadline=None)
@given(fills, marks)
def test_cash_plus_positions_is_conserved_minus_fees(sequence, mark):
    start = D(100_000)
    ledger = booked(sequence, start)
    value = ledger.cash + sum((p.quantity * mark[s] for s, p in ledger.positions.items()), D(0))
    moved = sum((f.side.sign * f.quantity * (mark[f.symbol] - f.price) for f in sequence), D(0))
    assert value == start + moved - ledger.fees  # exact: Decimal, no rounding anywhere
    assert ledger.fees == sum((f.fee for f in sequence), D(0))
    for s in SYMBOLS:
        assert ledger.quantity(s) == sum((f.side.sign * f.quantity for f in sequence
                                          if f.symbol == s), D(0))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(Side)), decimals,
                          st.decimals(min_value=D(0), max_value=D(5), places=4)), max_size=30),
       decimals)
def test_trading_at_one_price_costs_exactly_the_fees(trades, price):
    """Marked at the one price a symbol traded at, the account is worth its start minus fees."""
    sequence = [Fill(f"x{i}", "c", "AAA", side, qty, price, fee, T0)
                for i, (side, qty, fee) in enumerate(trades)]
    ledger = booked(sequence)
    assert ledger.equity({"AAA": price}) == D(100_000) - ledger.fees
    assert abs(ledger.realized) < D("1e-18")  # no gain or loss, only rounding of averages


@settings(max_examples=300, deadline=None)
@given(fills, marks)
def test_realized_plus_unrealized_equals_the_change_in_equity_plus_fees(sequence, mark):
    ledger = booked(sequence)
    unrealized = sum(((mark[s] - p.average_price) * p.quantity
                      for s, p in ledger.positions.items()), D(0))
    change = ledger.equity(mark) - D(100_000) + ledger.fees
    assert abs(ledger.realized + unrealized - change) < D("1e-12")


def test_average_price_grows_shrinks_flips_and_resets():
    def f(side, qty, price):
        return Fill("x", "c", "AAA", side, D(qty), D(price), D(0), T0)

    pos, realized = apply_fill(None, f(Side.BUY, 10, 100))
    pos, _ = apply_fill(pos, f(Side.BUY, 10, 110))
    assert (pos.quantity, pos.average_price) == (D(20), D(105))
    pos, realized = apply_fill(pos, f(Side.SELL, 5, 120))
    assert (pos.quantity, pos.average_price, realized) == (D(15), D(105), D(75))
    pos, realized = apply_fill(pos, f(Side.SELL, 20, 90))  # flips short
    assert (pos.quantity, pos.average_price, realized) == (D(-5), D(90), D(-225))
    pos, realized = apply_fill(pos, f(Side.BUY, 5, 80))
    assert (pos.quantity, pos.average_price, realized) == (D(0), D(0), D(50))


@settings(max_examples=300, deadline=None)
@given(fills)
def test_the_brokers_position_arithmetic_agrees_with_the_ledger(sequence):
    """Two independent records (the broker's and ours) of the same fills agree."""
    ledger, broker = Ledger(), {}
    for f in sequence:
        ledger.apply(f)
        broker[f.symbol] = position_after(broker.get(f.symbol), f)
    for s, p in broker.items():
        assert p.quantity == ledger.positions[s].quantity
        assert abs(p.average_price - ledger.positions[s].average_price) < D("1e-18")


_files = itertools.count()


@pytest.fixture(scope="module")
def broker_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("accounting")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(list(Side)),
                          st.integers(1, 500), st.floats(1.0, 1000.0)), min_size=1, max_size=15),
       )
def test_the_sim_brokers_cash_and_positions_follow_its_fills(broker_dir, orders):
    costs = CostModel(fees_bps=1.0, fee_per_share=0.005, slippage_bps=2.0)
    broker = SimBroker(broker_dir / f"b{next(_files)}.sqlite", costs=costs, cash=50_000)
    try:
        for i, (sym, side, qty, open_) in enumerate(orders):
            broker.submit(OrderIntent(f"o{i}", sym, side, D(qty), bar_time=T0 + pd.Timedelta(i, "min")))
            bar = {"open": open_, "high": open_ * 1.01, "low": open_ * 0.99, "close": open_}
            broker.on_bars(T0 + pd.Timedelta(i + 1, "min"), {sym: bar})
        executed = broker.fills()
        assert len(executed) == len(orders)
        assert len({f.execution_id for f in executed}) == len(executed)
        account = broker.account()
        spent = sum((f.side.sign * f.quantity * f.price + f.fee for f in executed), D(0))
        assert account.cash == D(50_000) - spent
        ours = booked(executed, D(50_000))
        assert account.cash == ours.cash
        assert {s: p.quantity for s, p in account.positions.items()} == \
               {s: p.quantity for s, p in ours.open_positions().items()}
    finally:
        broker.close()
