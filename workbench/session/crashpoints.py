"""Test-only crash points: SIGKILL the session at a named step of the order path.

Set ``WORKBENCH_TEST_CRASH_AT=<point>:<n>`` in a session's environment and the process
kills itself (``SIGKILL``: no cleanup, no flush, as a power cut or the OOM killer would)
the ``n``-th time it reaches ``point``:

* ``intent_journaled``: the intent is durable in the journal, the broker not yet called
  (with group commit: reached once per intent of the group, right after the group's sync);
* ``group_synced``: a bar's intents are durable (the group's one sync), none sent yet;
* ``send_first`` / ``send_middle`` / ``send_last``: a group of three or more intents (a
  multi-intent bar) is durable and the broker is about to be called with its first /
  middle (the ``(size + 1) // 2``-th) / last intent, the sends before it done; ``n``
  counts such groups;
* ``broker_accepted``: the broker accepted the order, the manager has not seen the reply;
* ``before_reply``: the manager is about to journal the broker's reply;
* ``fill``: a fill is journaled, the order update and position that follow it are not;
* ``bar``: a bar's ``bar`` event is journaled, nothing of the bar done yet (its fills,
  decisions and orders come after the restart: the case of a pending order whose symbol
  has no bar on the resumed minute, issue 12).

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
POINTS = ("intent_journaled", "group_synced", "send_first", "send_middle", "send_last",
          "broker_accepted", "before_reply", "fill", "bar")
GROUP = 3  # the send_* points watch groups of at least this many intents


class CrashPoint:
    """Counts arrivals at one point and kills the process at the ``n``-th."""

    def __init__(self, spec: str) -> None:
        point, _, rest = spec.partition(":")
        count, _, self.only = rest.partition(":")
        if point not in POINTS or not (count or "1").isdigit():
            raise ConfigError(f"{CRASH_ENV}={spec!r}: give <point>:<n>[:<client id text>], "
                              f"point one of {POINTS}")
        self.point, self.n, self.seen = point, int(count or 1), 0
        self.group, self.sent = 0, 0  # the last synced group's size, its submits since

    def synced(self, intents: list[str]) -> None:
        """A group of staged intents (their client ids) was made durable by one sync."""
        self.group, self.sent = len(intents), 0
        self.reached("group_synced")
        for cid in intents:
            self.reached("intent_journaled", cid)

    def sending(self) -> None:
        """The broker is about to be called with a submit."""
        self.sent += 1
        for point in self._send_points(self.sent):
            self.reached(point)

    def kills_at_next_send(self) -> bool:
        """Whether :meth:`sending` would kill the process now (the group's sends before
        it must reach the broker first)."""
        return (self.point in self._send_points(self.sent + 1) and not self.only
                and self.seen + 1 >= self.n)

    def _send_points(self, sent: int) -> tuple[str, ...]:
        if self.group < GROUP:
            return ()
        return tuple(point for point, at in (("send_first", 1),
                                             ("send_middle", (self.group + 1) // 2),
                                             ("send_last", self.group)) if sent == at)

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
        self._unsynced: list[str] = []  # intents appended since the last sync: the group

    def append(self, kind: str, *args: Any, **fields: Any):
        cid = str(fields.get("client_order_id", ""))
        if kind == ev.BROKER_REPLY:
            self._crash.reached("before_reply", cid)
        event = self._sink.append(kind, *args, **fields)
        if kind == ev.INTENT:
            self._unsynced.append(cid)
        if kind == ev.FILL:
            self._crash.reached("fill", cid)
        elif kind == ev.BAR:
            self._crash.reached("bar")
        return event

    def append_durable(self, kind: str, *args: Any, **fields: Any):
        event = self._sink.append_durable(kind, *args, **fields)
        if kind == ev.INTENT:
            self._unsynced = []
            self._crash.group, self._crash.sent = 1, 0
            self._crash.reached("intent_journaled", str(fields.get("client_order_id", "")))
        return event

    def sync(self) -> None:
        self._sink.sync()
        group, self._unsynced = self._unsynced, []
        if group:
            self._crash.synced(group)

    def __getattr__(self, name: str):
        return getattr(self._sink, name)


class _Broker:
    """The broker, with crash points before a send and after the broker accepted one."""

    def __init__(self, broker, crash: CrashPoint) -> None:
        self._broker, self._crash = broker, crash

    def submit(self, intent):
        self._crash.sending()
        order = self._broker.submit(intent)
        self._crash.reached("broker_accepted", intent.client_order_id)
        return order

    def __getattr__(self, name: str):
        return getattr(self._broker, name)


class _GroupBroker(_Broker):
    """A broker that takes a group in one call (``submit_many``), with the same points."""

    def submit_many(self, intents):
        """The broker's ``submit_many`` with the same points: before the intent a send
        point names, the intents before it are sent (one call), then the process dies;
        ``broker_accepted`` once the call returned (the manager has seen no reply)."""
        out, pending = [], []
        for intent in intents:
            if self._crash.kills_at_next_send() and pending:
                out += self._broker.submit_many(pending)
                pending = []
            self._crash.sending()
            pending.append(intent)
        out += self._broker.submit_many(pending) if pending else []
        for intent, result in zip(intents, out):
            if not isinstance(result, BaseException):
                self._crash.reached("broker_accepted", intent.client_order_id)
        return out


def wrap(sink: EventSink, broker, environ=os.environ):
    """``(sink, broker)`` for the order manager: wrapped when ``CRASH_ENV`` is set."""
    spec = environ.get(CRASH_ENV)
    if not spec:
        return sink, broker
    crash = CrashPoint(spec)
    # a broker without ``submit_many`` (Alpaca) must stay one: the manager sends its
    # group one by one when the broker cannot take it in one call
    grouped = callable(getattr(broker, "submit_many", None))
    return _CrashingSink(sink, crash), (_GroupBroker if grouped else _Broker)(broker, crash)
