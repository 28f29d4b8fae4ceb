"""The order state table: the legal moves, and nothing else (examples and hypothesis)."""

from __future__ import annotations

from decimal import Decimal as D

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.model import Order, OrderIntent, OrderStatus, Side
from workbench.orders.states import (
    OPEN,
    TABLE,
    Event,
    EventKind,
    IllegalTransition,
    catch_up,
    transition,
)

S, K = OrderStatus, EventKind
T0 = pd.Timestamp("2025-03-03 14:30", tz="UTC")


def order(qty="10", status=S.NEW, filled="0") -> Order:
    intent = OrderIntent("c1", "AAPL", Side.BUY, D(qty))
    return Order(intent, status=status, filled_quantity=D(filled))


def fill(qty, price="100") -> Event:
    return Event(K.FILL, D(str(qty)), D(price), T0)


def run(o: Order, *kinds) -> Order:
    for kind in kinds:
        o = transition(o, kind if isinstance(kind, Event) else Event(kind))
    return o


def test_the_happy_path_new_accepted_partially_filled_filled():
    o = run(order(), K.ACCEPT)
    assert o.status is S.ACCEPTED
    o = transition(o, fill(4, "100"))
    assert (o.status, o.filled_quantity) == (S.PARTIALLY_FILLED, D(4))
    o = transition(o, fill(6, "110"))
    assert (o.status, o.filled_quantity, o.remaining) == (S.FILLED, D(10), D(0))
    assert o.average_price == D(106)  # (4 * 100 + 6 * 110) / 10, exact


@pytest.mark.parametrize("kind, end", [(K.CANCEL, S.CANCELED), (K.EXPIRE, S.EXPIRED),
                                       (K.REJECT, S.REJECTED)])
def test_accepted_orders_end_canceled_expired_or_rejected(kind, end):
    assert run(order(), K.ACCEPT, kind).status is end


def test_a_partially_filled_order_can_be_canceled_but_not_rejected():
    o = run(order(), K.ACCEPT, fill(3))
    assert run(o, K.CANCEL).status is S.CANCELED
    assert run(o, K.CANCEL).filled_quantity == D(3)
    with pytest.raises(IllegalTransition):
        run(o, K.REJECT)


def test_a_fill_never_exceeds_the_quantity():
    o = run(order("10"), K.ACCEPT, fill(7))
    with pytest.raises(IllegalTransition, match="exceeds the remaining 3"):
        transition(o, fill(4))
    for bad in (fill(0), Event(K.FILL, D(1), None), Event(K.FILL, None, D(1))):
        with pytest.raises(IllegalTransition):
            transition(o, bad)


def test_a_new_order_cannot_fill_or_cancel_before_the_broker_accepts_it():
    for kind in (fill(1), K.CANCEL, K.EXPIRE, K.FOUND):
        with pytest.raises(IllegalTransition):
            run(order(), kind)


@pytest.mark.parametrize("start", [S.NEW, S.ACCEPTED, S.PARTIALLY_FILLED])
def test_unknown_is_reachable_when_a_request_outcome_is_unknown(start):
    filled = "2" if start is S.PARTIALLY_FILLED else "0"
    assert run(order(status=start, filled=filled), K.LOSE).status is S.UNKNOWN


def test_unknown_is_left_by_lookup_to_the_real_state():
    lost = run(order(), K.LOSE)
    assert run(lost, K.FOUND).status is S.ACCEPTED
    assert run(lost, K.REJECT).status is S.REJECTED  # looked up: never arrived
    partly = run(order(status=S.PARTIALLY_FILLED, filled="2"), K.LOSE)
    assert run(partly, K.FOUND).status is S.PARTIALLY_FILLED
    with pytest.raises(IllegalTransition):
        run(partly, K.REJECT)  # it had fills: it certainly arrived
    for kind in (fill(1), K.CANCEL, K.ACCEPT, K.LOSE):
        with pytest.raises(IllegalTransition):
            run(lost, kind)  # nothing happens to an UNKNOWN order but a lookup


@pytest.mark.parametrize("end", [S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED])
def test_terminal_states_are_final(end):
    o = order(status=end, filled="10" if end is S.FILLED else "0")
    assert TABLE[end] == {}
    for event in (Event(k) for k in K if k is not K.FILL):
        with pytest.raises(IllegalTransition):
            transition(o, event)
    with pytest.raises(IllegalTransition):
        transition(o, fill(1))


def test_catch_up_composes_the_tables_events_and_ignores_stale_reports():
    assert catch_up(order(), S.CANCELED).status is S.CANCELED  # accept, then cancel
    assert catch_up(run(order(), K.LOSE), S.EXPIRED).status is S.EXPIRED  # found, expire
    partly = run(order(), K.ACCEPT, fill(3))
    assert catch_up(partly, S.ACCEPTED) == partly  # an older report
    assert catch_up(partly, S.FILLED) == partly  # fills, not reports, fill an order
    done = run(partly, fill(7))
    assert catch_up(done, S.ACCEPTED) == done


def test_catch_up_refuses_contradictions():
    with pytest.raises(IllegalTransition, match="rejected here"):
        catch_up(run(order(), K.REJECT), S.ACCEPTED)  # we said never arrived; it did
    with pytest.raises(IllegalTransition, match="canceled here but expired"):
        catch_up(run(order(), K.ACCEPT, K.CANCEL), S.EXPIRED)
    with pytest.raises(IllegalTransition):
        catch_up(order(), S.UNKNOWN)


# -- properties ---------------------------------------------------------------------------

events = st.one_of(
    st.sampled_from([Event(k) for k in K if k is not K.FILL]),
    st.builds(lambda q, p: Event(K.FILL, D(q), D(p)),
              st.integers(-2, 12), st.integers(1, 500)),
)


def legal(o: Order, e: Event) -> bool:
    """An independent statement of the table's rules."""
    allowed = {S.NEW: {K.ACCEPT, K.REJECT, K.LOSE},
               S.ACCEPTED: {K.FILL, K.CANCEL, K.EXPIRE, K.REJECT, K.LOSE},
               S.PARTIALLY_FILLED: {K.FILL, K.CANCEL, K.EXPIRE, K.LOSE},
               S.UNKNOWN: {K.FOUND, K.REJECT}}.get(o.status, set())
    if e.kind not in allowed:
        return False
    if e.kind is K.FILL:
        return 0 < e.quantity <= o.remaining
    return not (e.kind is K.REJECT and o.filled_quantity > 0)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 10), st.lists(events, max_size=25))
def test_random_event_sequences_only_ever_make_legal_moves(qty, sequence):
    o = order(str(qty))
    prices = []
    for e in sequence:
        before = o
        try:
            o = transition(o, e)
        except IllegalTransition:
            assert not legal(before, e)
            continue
        assert legal(before, e)
        assert o.status in TABLE[before.status][e.kind]
        assert before.status not in (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED)
        assert o.filled_quantity >= before.filled_quantity
        assert o.filled_quantity <= o.intent.quantity
        assert (o.status is S.FILLED) == (o.filled_quantity == o.intent.quantity)
        if e.kind is K.FILL:
            prices.append(e.price)
        if prices:
            assert min(prices) <= o.average_price <= max(prices)
    if o.status.is_terminal:
        for e in (Event(k) for k in K):
            with pytest.raises(IllegalTransition):
                transition(o, e)
    assert (o.status in OPEN) != o.status.is_terminal


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=12),
       st.sampled_from([s for s in S if s is not S.UNKNOWN]))
def test_catch_up_only_moves_through_the_table(sequence, reported):
    o = order("10")
    for e in sequence:
        try:
            o = transition(o, e)
        except IllegalTransition:
            pass
    try:
        after = catch_up(o, reported)
    except IllegalTransition:
        return
    assert after.filled_quantity == o.filled_quantity  # reports never invent fills
    assert after == o or after.status in (S.ACCEPTED, S.PARTIALLY_FILLED, reported)
    if o.status.is_terminal:
        assert after == o
