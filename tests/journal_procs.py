"""Processes for the journal tests: a session-like writer, a dashboard-like reader, a
writer to SIGKILL, a writer that runs out of file size.

Run as ``python -m tests.journal_procs writer|reader|burst|fsize ARGS...``; each reports
as JSON (``writer``/``reader``) or one line per acknowledged seq on stdout (``burst``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path

from workbench.clock import SimClock
from workbench.journal import Journal, JournalError, read_events
from workbench.journal.catalog import catalog
from workbench.model import Fill, Order, OrderIntent, OrderStatus, Position, Side
from workbench.model import events as ev
from workbench.runs.records import RunRecord

SYMBOLS = [f"S{i:02d}" for i in range(20)]
STATUSES = {s.value for s in OrderStatus}
SEGMENT = 2 * 2**20  # small segments: the writer rolls while readers read


def padded(rng: random.Random, big: bool = False) -> dict[str, str]:
    """A random pad and its checksum: a reader verifies every event it sees is whole."""
    pad = os.urandom(rng.randint(1000, 2500) if big else rng.randint(0, 40)).hex()
    return {"pad": pad, "check": hashlib.md5(pad.encode()).hexdigest()}


def _trade(journal: Journal, rng: random.Random, sym: str, n: int, price: Decimal,
           clock: SimClock, book: dict[str, Decimal]) -> None:
    """One order's life in the journal: intent (durable) to fill and position."""
    side = rng.choice([Side.BUY, Side.SELL])
    intent = OrderIntent(f"wb-{sym}-{n}", sym, side, Decimal(rng.randint(1, 100)),
                         bar_time=clock.now())
    journal.append(ev.SIGNAL, symbol=sym, entry=True, **padded(rng))
    journal.append(ev.RISK_DECISION, client_order_id=intent.client_order_id, approved=True,
                   **padded(rng))
    journal.append_durable(ev.INTENT, intent, **padded(rng, big=True))
    journal.append(ev.BROKER_REQUEST, client_order_id=intent.client_order_id, **padded(rng))
    journal.append(ev.BROKER_REPLY, client_order_id=intent.client_order_id,
                   status="accepted", broker_order_id=f"b{n}", **padded(rng))
    journal.append(ev.FILL, Fill(f"x{n}", intent.client_order_id, sym, side, intent.quantity,
                                 price, Decimal("0.01"), clock.now()), **padded(rng))
    journal.append(ev.ORDER_UPDATE, Order(intent, OrderStatus.FILLED, f"b{n}", intent.quantity,
                                          price, clock.now()), **padded(rng))
    book[sym] = book.get(sym, Decimal(0)) + side.sign * intent.quantity
    journal.append(ev.POSITION, Position(sym, book[sym], price), **padded(rng))


def _minute(journal: Journal, rng: random.Random, clock: SimClock, book: dict[str, Decimal],
            n: int) -> int:
    """One bar of every symbol, a trade for some, equity and a heartbeat; the order count."""
    clock.advance("1min")
    for sym in SYMBOLS:
        price = Decimal(rng.randint(10000, 20000)) / 100
        journal.append(ev.BAR, symbol=sym, close=price, volume=rng.randint(1, 9999),
                       **padded(rng, big=rng.random() < 0.1))
        if rng.random() < 0.3:
            n += 1
            _trade(journal, rng, sym, n, price, clock, book)
    journal.append(ev.EQUITY, equity=Decimal("100000.00") + n, cash=Decimal("50000.00"),
                   **padded(rng))
    journal.append(ev.HEARTBEAT, **padded(rng))
    return n


def writer(root: str, out: str, seconds: str) -> None:
    """A replay session: bars, orders, fills, positions, equity, heartbeats, reopened
    every second (a lock left by any reader would make the reopen fail)."""
    rng, clock, errors = random.Random(7), SimClock("2026-03-02 14:30"), []
    record = RunRecord.create("replay", "acceptance", {}, "paper", None, clock, root=root)
    journal = Journal.open(record.path, clock, segment_bytes=SEGMENT)
    n, reopens, book = 0, 0, {}
    end = time.monotonic() + float(seconds)
    next_reopen = time.monotonic() + 1.0
    try:
        journal.append(ev.SESSION_START, mode="paper", **padded(rng))
        while time.monotonic() < end:
            n = _minute(journal, rng, clock, book, n)
            time.sleep(0.02)  # a few thousand events/s: fast, and leaves the reader a CPU
            if time.monotonic() > next_reopen:
                journal.close()
                journal = Journal.open(record.path, clock, segment_bytes=SEGMENT)
                reopens += 1
                next_reopen = time.monotonic() + 1.0
        journal.append(ev.SESSION_END, **padded(rng))
    except Exception as e:  # noqa: BLE001 - the test reports every error
        errors.append(f"{type(e).__name__}: {e}")
    finally:
        journal.close()
        record.finish("succeeded")
    report = {"events": journal.last_seq, "orders": n, "reopens": reopens, "errors": errors,
              "run_id": record.run_id}
    Path(out).write_text(json.dumps(report))


_CHECKS = {
    "events": """SELECT run_id, count(*) AS n, min(seq) AS lo, max(seq) AS hi,
                 count(DISTINCT seq) AS distinct_seq,
                 count(*) FILTER (WHERE payload->>'check' IS DISTINCT FROM md5(payload->>'pad'))
                     AS bad
                 FROM events GROUP BY run_id""",
    "orders": """SELECT count(*) AS n, count(*) FILTER (WHERE symbol IS NULL OR qty IS NULL
                 OR side IS NULL OR status IS NULL) AS bad, list(DISTINCT status) AS statuses
                 FROM orders""",
    "fills": """SELECT count(*) AS n, count(*) FILTER (WHERE qty IS NULL OR price IS NULL
                OR execution_id IS NULL OR time IS NULL) AS bad FROM fills""",
    "positions": "SELECT count(*) AS n, count(*) FILTER (WHERE qty IS NULL) AS bad FROM positions",
    "equity": "SELECT count(*) AS n, count(*) FILTER (WHERE equity IS NULL) AS bad FROM equity",
    "runs": "SELECT count(*) AS n, count(*) FILTER (WHERE run_id IS NULL) AS bad FROM runs",
}


def _check(con, last: dict[str, int]) -> list[str]:
    """Problems seen in one round of queries over every view."""
    problems = []
    for run_id, n, lo, hi, distinct, bad in con.execute(_CHECKS["events"]).fetchall():
        if bad or lo != 1 or n != hi or distinct != n:
            problems.append(f"{run_id}: {n} events, seq {lo}..{hi}, {bad} incomplete")
        if hi < last.get(run_id, 0):
            problems.append(f"{run_id}: seq went back from {last[run_id]} to {hi}")
        last[run_id] = hi
    for view in ("orders", "fills", "positions", "equity", "runs"):
        row = con.execute(_CHECKS[view]).fetchall()[0]
        if row[1]:
            problems.append(f"{view}: {row[1]} of {row[0]} rows incomplete")
        if view == "orders" and not set(row[2] or []) <= STATUSES:
            problems.append(f"orders: unknown statuses {row[2]}")
    return problems


def _tail(root: str, tails: dict[str, int]) -> list[str]:
    """Follow every run's journal with the Python reader from where it stopped last time."""
    problems = []
    for events in Path(root).glob("*/events"):
        run = events.parent
        for event in read_events(run, after_seq=tails.get(run.name), warn=False):
            expect = tails.get(run.name, 0) + 1
            if event.seq != expect or event.payload.get("check") != hashlib.md5(
                    event.payload.get("pad", "").encode()).hexdigest():
                problems.append(f"{run.name}: seq {event.seq} (expected {expect}) or checksum")
            tails[run.name] = event.seq
    return problems


def reader(root: str, out: str, done_file: str) -> None:
    """A dashboard: every 100 ms, query every view (a new connection every 10th round) and
    follow the journals with ``read_events``."""
    queries, errors, problems, last, tails = 0, [], [], {}, {}
    con, deadline = catalog(root), time.monotonic() + 60
    while time.monotonic() < deadline:
        finished = os.path.exists(done_file)
        try:
            if queries % 10 == 9:
                con.close()
                con = catalog(root)
            problems += _check(con, last) + _tail(root, tails)
            queries += 1
        except Exception as e:  # noqa: BLE001 - the test reports every error
            errors.append(f"{type(e).__name__}: {e}")
        if finished:
            break
        time.sleep(0.1)
    report = {"queries": queries, "errors": errors, "problems": problems, "seen": last,
              "tail_events": sum(tails.values())}
    Path(out).write_text(json.dumps(report))


def burst(run_dir: str) -> None:
    """Append big events as fast as possible; print each acknowledged seq."""
    journal = Journal.open(run_dir, SimClock("2026-03-02 14:30"), segment_bytes=2**30)
    rng = random.Random()
    while True:
        size = rng.randint(1, 6) * 2**20
        pad = "ab" * (size // 2)
        event = journal.append(ev.BAR, symbol="S", pad=pad,
                               check=hashlib.md5(pad.encode()).hexdigest())
        print(event.seq, flush=True)


def fsize(run_dir: str, limit: str) -> None:
    """Append until the file size limit stops a write (like a full disk); report."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    journal = Journal.open(run_dir, SimClock("2026-03-02 14:30"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
    errors = []
    for i in range(10_000):
        try:
            journal.append(ev.BAR, symbol="S", i=i, pad="x" * 300)
        except JournalError as e:
            errors.append(str(e))
            if len(errors) == 2:
                break
    journal.close()
    print(json.dumps({"last_seq": journal.last_seq, "errors": errors}))


if __name__ == "__main__":
    {"writer": writer, "reader": reader, "burst": burst, "fsize": fsize}[sys.argv[1]](
        *sys.argv[2:])
