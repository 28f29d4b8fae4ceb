"""The outcome of a submit, journaled: one order's, or a group's sent in one broker call.

:class:`Sending` is a part of :class:`~workbench.orders.OrderManager` (its base class),
kept here for size: how a broker's answer to a submit (an order, or the exception the
submit raised) becomes the journaled reply and the book's state, and how a group of
staged intents goes to a broker that takes them in one call (``submit_many``, see
:meth:`~workbench.orders.OrderManager.commit`). It uses the manager's ``_emit``,
``_reply``, ``_learn_legs``, ``sync`` and ``book``.
"""

from __future__ import annotations

from workbench.brokers.base import (
    DuplicateClientOrderId,
    OrderRejected,
    RateLimited,
    TemporaryBrokerError,
)
from workbench.model import Order, OrderStatus
from workbench.model import events as ev

__all__ = ["Sending"]

S = OrderStatus


class Sending:
    """Settling submits (see the module doc); mixed into the order manager."""

    def _send_many(self, submit_many) -> list[Order]:
        """The staged group in one broker call (see :meth:`commit`)."""
        group, self._staged = self._staged, []
        for intent in group:
            self._emit(ev.BROKER_REQUEST, client_order_id=intent.client_order_id,
                       action="submit")
        try:
            results = list(submit_many(group))
            if len(results) != len(group):
                raise TypeError(f"submit_many answered {len(results)} outcomes for "
                                f"{len(group)} orders")
        except Exception as e:  # noqa: BLE001 - the call failed: did any order arrive? unknown
            results = [e] * len(group)
        failure = None
        for intent, result in zip(group, results, strict=True):
            try:
                self._settle(intent.client_order_id, "submit", result)
            except Exception as e:  # noqa: BLE001 - not a broker's answer: raised after the group
                failure = failure or e
        if failure is not None:
            raise failure
        return [self.book.orders[i.client_order_id] for i in group]

    def _settle(self, cid: str, action: str, result) -> Order:
        """Journal the outcome of submitting ``cid``: the broker's order, or the exception
        the submit raised (re-raised here, after journaling, unless the broker's own)."""
        if isinstance(result, DuplicateClientOrderId):
            self._reply(cid, "duplicate", action, reason=str(result))
            return self.sync(cid)
        if isinstance(result, RateLimited):
            self._reply(cid, "rejected", action, reason=f"rate limited, not sent: {result}")
        elif isinstance(result, OrderRejected):
            self._reply(cid, "rejected", action, reason=result.reason)
        elif isinstance(result, BaseException):  # timeout, lost reply, 5xx, adapter bug
            if self.book.orders[cid].status is S.UNKNOWN:
                self._reply(cid, "unknown", action, reason=repr(result))
            else:
                self._emit(ev.ORDER_UNKNOWN, client_order_id=cid, action=action,
                           error=repr(result))
            if not isinstance(result, TemporaryBrokerError):
                raise result
        else:
            self._reply(cid, "accepted", action, status=result.status,
                        broker_order_id=result.broker_order_id)
            self._learn_legs(result)
        return self.book.orders[cid]
