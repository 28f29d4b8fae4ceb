"""Test-only crash points: SIGKILL the session at a named step of the order path.

Set ``WORKBENCH_TEST_CRASH_AT=<point>:<n>`` in a session's environment and the process
kills itself (``SIGKILL``: no cleanup, no flush, as a power cut or the OOM killer would)
the ``n``-th time it reaches ``point``:

* ``intent_journaled``: the intent is durable in the journal, the broker not yet called;
* ``broker_accepted``: the broker accepted the order, the manager has not seen the reply;
* ``before_reply``: the manager is about to journal the broker's reply;
* ``fill``: a fill is journaled, the order update and position that follow it are not.

``<point>:<n>:<text>`` counts only the arrivals for orders whose client id contains
``text`` (e.g. ``broker_accepted:2:-stops``: the second protection order accepted).

Without the variable the wrappers are not installed (:func:`wrap` returns its inputs).
The crash-safety tests restart the run and check that every intent has exactly one
broker order and that positions equal the broker's.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from workbench.errors import ConfigError
from workbench.model import events as ev
from workbench.model.events import EventSink

__all__ = ["CRASH_ENV", "POINTS", "CrashPoint", "wrap"]

CRASH_ENV = "WORKBENCH_TEST_CRASH_AT"
POINTS = ("intent_journaled", "broker_accepted", "before_reply", "fill")


class CrashPoint:
    """Counts arrivals at one point and kills the process at the ``n``-th."""

    def __init__(self, spec: str) -> None:
        point, _, rest = spec.partition(":")
        count, _, self.only = rest.partition(":")
        if point not in POINTS or not (count or "1").isdigit():
            raise ConfigError(f"{CRASH_ENV}={spec!r}: give <point>:<n>[:<client id text>], "
                              f"point one of {POINTS}")
        self.point, self.n, self.seen = point, int(count or 1), 0

    def reached(self, point: str, client_order_id: str = "") -> None:
        if point != self.point or self.only not in client_order_id:
            return
        self.seen += 1
        if self.seen >= self.n:
            os.kill(os.getpid(), signal.SIGKILL)


class _CrashingSink:
    """An event sink (the journal) with crash points around the order manager's events."""

    def __init__(self, sink: EventSink, crash: CrashPoint) -> None:
        self._sink, self._crash = sink, crash

    def append(self, kind: str, *args: Any, **fields: Any):
        cid = str(fields.get("client_order_id", ""))
        if kind == ev.BROKER_REPLY:
            self._crash.reached("before_reply", cid)
        event = self._sink.append(kind, *args, **fields)
        if kind == ev.FILL:
            self._crash.reached("fill", cid)
        return event

    def append_durable(self, kind: str, *args: Any, **fields: Any):
        event = self._sink.append_durable(kind, *args, **fields)
        if kind == ev.INTENT:
            self._crash.reached("intent_journaled", str(fields.get("client_order_id", "")))
        return event

    def __getattr__(self, name: str):
        return getattr(self._sink, name)


class _Broker:
    """The broker, with a crash point after it accepted an order."""

    def __init__(self, broker, crash: CrashPoint) -> None:
        self._broker, self._crash = broker, crash

    def submit(self, intent):
        order = self._broker.submit(intent)
        self._crash.reached("broker_accepted", intent.client_order_id)
        return order

    def __getattr__(self, name: str):
        return getattr(self._broker, name)


def wrap(sink: EventSink, broker, environ=os.environ):
    """``(sink, broker)`` for the order manager: wrapped when ``CRASH_ENV`` is set."""
    spec = environ.get(CRASH_ENV)
    if not spec:
        return sink, broker
    crash = CrashPoint(spec)
    return _CrashingSink(sink, crash), _Broker(broker, crash)
