"""The order path of a session: state table, order manager, reconciliation.

``OrderManager`` journals each intent durably before sending it, moves orders through the
explicit state table of :mod:`workbench.orders.states`, settles unknown outcomes by lookup
(never by resending), de-duplicates fills by execution id and keeps cash and positions in
Decimal (:mod:`workbench.orders.ledger`). Its state is a pure function of the journaled
events (:func:`rebuild`); :func:`reconcile` compares it with the broker at a restart.
"""

from workbench.orders.book import EVENT_TYPES, OrderBook, rebuild
from workbench.orders.ledger import Ledger, apply_fill
from workbench.orders.manager import NEVER_ARRIVED, OrderManager
from workbench.orders.reconcile import Difference, Reconciliation, reconcile
from workbench.orders.states import (
    OPEN,
    TABLE,
    Event,
    EventKind,
    IllegalTransition,
    catch_up,
    transition,
)

__all__ = [
    "EVENT_TYPES",
    "NEVER_ARRIVED",
    "OPEN",
    "TABLE",
    "Difference",
    "Event",
    "EventKind",
    "IllegalTransition",
    "Ledger",
    "OrderBook",
    "OrderManager",
    "Reconciliation",
    "apply_fill",
    "catch_up",
    "rebuild",
    "reconcile",
    "transition",
]
