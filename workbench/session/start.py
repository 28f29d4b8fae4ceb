"""A session's start: the run's locks, its broker, its journal replayed and reconciled.

Order matters, and fails closed:

1. the run record (new, or a running one being restarted after a crash);
2. the run's journal, one writer: a second session of the same run gets
   :class:`SessionLocked` here and never touches the broker;
3. the broker's lock (``<broker>.lock``): one session per broker file, whatever the run;
4. the broker, then the journal replayed (:meth:`OrderManager.from_journal`) and
   reconciled with ``resend=True`` (an intent that never reached the broker is sent once,
   under its own client id). A new run on a broker file another run used first rebuilds
   that run's journal (named in ``<broker>.owner.json``) and compares it with the
   broker: a position or order changed behind the sessions' back is a difference.

Any unexplained difference: a ``reconcile`` event (ok false, the differences), a
``state`` event (HALTED) and no trading. The broker's order and fill history since the
run began is part of the comparison (:mod:`workbench.orders.reconcile`): a filled order
deleted or edited at the broker halts. An open order that ended at the broker while the
session was down (canceled behind its back) is adopted, and said (:func:`say_ended`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from workbench.clock import SimClock
from workbench.errors import WorkbenchError
from workbench.fsutil import atomic_write, exclusive_lock
from workbench.journal import Journal, JournalLocked
from workbench.journal.reader import replay
from workbench.model import OrderStatus
from workbench.model import events as ev
from workbench.orders import OrderManager, rebuild, reconcile
from workbench.runs.records import MANIFEST, RunRecord

__all__ = ["SessionLocked", "StartCheck", "lock_broker", "open_journal", "open_record",
           "previous_run_check", "say_ended", "start_manager", "write_owner"]


class SessionLocked(WorkbenchError):
    """Another session holds this run or this broker: one session at a time."""

    exit_code = 5


class StartCheck:
    """The outcome of the start reconciliation: ``ok``, ``message``, ``differences``."""

    def __init__(self, ok: bool, message: str, differences=()) -> None:
        self.ok, self.message, self.differences = ok, message, list(differences)


def open_record(run_dir, strategy, params, data_range, clock, root=None) -> RunRecord:
    """The run's record: ``run_dir`` (a running run, restarted) or a new session run."""
    if run_dir is not None and (Path(run_dir) / MANIFEST).exists():
        return RunRecord.open(run_dir, clock)
    if run_dir is not None:
        raise WorkbenchError(f"no run at {run_dir}: give a run folder to restart, or none")
    return RunRecord.create("session", strategy, params, "paper", data_range, clock, root=root)


def open_journal(record: RunRecord, clock) -> Journal:
    try:
        return Journal.open(record.path, clock)
    except JournalLocked as e:
        raise SessionLocked(f"{e}; run {record.run_id} already has a session: this one exits "
                            "without touching the broker") from None


def lock_broker(path: Path) -> int:
    """An exclusive lock on the broker file for this process (fd to keep open)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return exclusive_lock(f"{path}.lock", wait=False)
    except BlockingIOError:
        raise SessionLocked(f"the broker {path} is in use by another session: one session "
                            "per broker") from None


def _owner_file(broker_path: Path) -> Path:
    return Path(f"{broker_path}.owner.json")


def write_owner(broker_path: Path, record: RunRecord) -> None:
    """Name ``record`` as the last run that traded on ``broker_path``."""
    body = json.dumps({"run_id": record.run_id, "path": str(record.path)})
    atomic_write(_owner_file(broker_path), lambda p: p.write_text(body + "\n"), overwrite=True)


def previous_run_check(broker_path: Path, broker, record: RunRecord) -> StartCheck:
    """Compare the broker with the journal of the last run that used it (read only)."""
    try:
        owner = json.loads(_owner_file(broker_path).read_text())
    except (OSError, ValueError):
        owner = None
    if owner is None or owner.get("run_id") == record.run_id:
        if broker.positions() or broker.open_orders():
            diffs = [(f"broker has positions {sorted(broker.positions())} and "
                     f"{len(broker.open_orders())} open order(s) that no run journal explains")]
            return StartCheck(False, _halt_message(diffs), diffs)
        return StartCheck(True, "new broker account")
    book = rebuild(replay(owner["path"]).events)
    result = reconcile(book, broker)
    diffs = [f"since run {owner['run_id']}: {d}" for d in result.differences]
    if result.adopted_fills or any(o.client_order_id in book.open_orders()
                                   for o in result.adopted_orders):
        diffs.append(f"run {owner['run_id']} did not finish reconciled: restart it first")
    if diffs:
        return StartCheck(False, _halt_message(diffs), diffs)
    return StartCheck(True, f"broker matches the journal of run {owner['run_id']}")


_ENDED = (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)


def say_ended(journal, clock, adopted) -> None:
    """An open order of the journal that ended at the broker without a fill while the
    session was down (canceled behind its back, expired, rejected) is adopted by the
    reconciliation; it is said too: an ``alert`` (warning) journaled and a line on stderr."""
    for order in adopted:
        if order.status not in _ENDED or order.filled_quantity:
            continue
        text = (f"order {order.client_order_id} ({order.side} {order.quantity} "
                f"{order.symbol}) was {order.status} at the broker while the session was "
                f"down{f' ({order.reason})' if order.reason else ''}: adopted as "
                f"{order.status}")
        journal.append(ev.ALERT, source="reconcile", level="warning", message=text,
                       at=clock.now().isoformat())
        print(f"warning: {text}", file=sys.stderr, flush=True)


def _halt_message(diffs) -> str:
    return ("reconciliation failed: the broker differs from the journal; trading halts "
            "(fail closed):\n" + "\n".join(f"  - {d}" for d in diffs))


def start_manager(broker, sink, clock, record, broker_path, journal, events=None) -> tuple:
    """``(manager, check, events)``: rebuilt from the run's journaled ``events`` (read here
    unless given) and reconciled, or new (no account snapshot yet) and checked against the
    broker."""
    events = replay(record.path).events if events is None else events
    if any(e.type == ev.ACCOUNT_SNAPSHOT for e in events):
        if isinstance(clock, SimClock):  # a replay's time goes on from where the run stopped
            clock.set(max(clock.now(), events[-1].ts))
        manager = OrderManager.from_journal(broker, sink, clock, events)
        open_before = set(manager.open_orders())
        rec = manager.reconcile(resend=True)
        say_ended(journal, clock, [o for o in rec.adopted_orders
                                   if o.client_order_id in open_before])
        return manager, StartCheck(rec.ok, rec.message if rec.ok else _halt_message(
            [str(d) for d in rec.differences]), [str(d) for d in rec.differences]), events
    manager = OrderManager(broker, sink, clock)
    check = previous_run_check(broker_path, broker, record)
    if check.ok:
        manager.start()
    journal.append(ev.RECONCILE, ok=check.ok, differences=check.differences,
                   message=check.message, adopted_fills=[], adopted_orders=[])
    return manager, check, events
