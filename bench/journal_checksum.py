"""What the journal's checksums cost: writing (the order path), reading, and the catalog.

    python bench/journal_checksum.py [--events 20000] [--catalog-events 200000]

Each line ends in ``"sum"``, 8 hex digits of a SHA-256 of its canonical bytes
(:mod:`workbench.journal.events`). Measured in this one process, against a baseline that
is the same work without the checksum:

* encode: ``encode_event`` of an intent-sized payload, against the same line built without
  its sum (the text, its ASCII bytes); and ``Journal.append`` (encode + ``os.write``)
  against the encoding's own cost, to put the sum in the append's terms;
* decode: ``decode_line`` (sum verified, then JSON) against ``decode_event`` (JSON only);
* catalog: a full scan of ``events`` (every line's sum checked in SQL) against the same
  view with the check left out (``--catalog-events`` lines); the ``damage`` view's scan.

Printed: microseconds per event each way and the ratio (with / without).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd


def _per_event(fn, items) -> float:
    started = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - started) / len(items) * 1e6


def main() -> None:
    from workbench.clock import SimClock
    from workbench.journal import INTENT, Journal
    from workbench.journal import events as jev
    from workbench.journal import catalog as cat
    from workbench.model import OrderIntent, Side
    from workbench.runs.records import RunRecord

    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--catalog-events", type=int, default=200000)
    args = parser.parse_args()
    ts = pd.Timestamp("2026-11-20 14:31", tz="UTC")
    stamp = ts.isoformat()
    payload = jev.make_payload(OrderIntent("wb-3d07b8e191-ISI-20261120T143000-entry", "ISI",
                                           Side.BUY, Decimal("1150.5179")), {})
    seqs = list(range(1, args.events + 1))

    def without_sum(seq: int) -> bytes:  # the line as it was before checksums
        return (f'{jev.LINE_PREFIX % INTENT}"seq":{seq:d},"ts":"{stamp}",'
                f'"payload":{jev._body(INTENT, payload)}}}\n').encode("ascii")

    for _ in range(2):  # warm up, then measure
        plain = _per_event(without_sum, seqs)
        summed = _per_event(lambda s: jev.encode_event(s, ts, INTENT, payload, stamp=stamp),
                            seqs)
    print(f"encode: {summed:.2f} us with the sum, {plain:.2f} us without: "
          f"ratio {summed / plain:.3f} (+{summed - plain:.2f} us)")
    lines = [jev.encode_event(s, ts, INTENT, payload, stamp=stamp) for s in seqs]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        clock = SimClock(ts)
        record = RunRecord.create("session", "bench", {}, "paper", None, clock, root=root)
        with Journal.open(record.path, clock) as journal:
            appended = _per_event(lambda _: journal.append(INTENT, payload), seqs)
        print(f"append (encode + os.write, no sync): {appended:.2f} us; the sum is "
              f"{(summed - plain) / appended:.1%} of it")
        for _ in range(2):
            verified = _per_event(jev.decode_line, lines)
            unverified = _per_event(jev.decode_event, lines)
        print(f"decode: {verified:.2f} us verified, {unverified:.2f} us JSON only: "
              f"ratio {verified / unverified:.3f}")
        big = RunRecord.create("session", "bench", {}, "paper", None, clock, root=root)
        with Journal.open(big.path, clock) as journal:
            for _ in range(args.catalog_events):
                journal.append(INTENT, payload)
        con = cat.catalog(root)
        con.execute("CREATE VIEW unchecked AS " + cat._parsed().replace(cat._VERIFIED, "true"))
        times = {}
        for name, sql in (("events (sums checked)", "SELECT count(*), max(seq) FROM events"),
                          ("unchecked", "SELECT count(*), max(seq) FROM unchecked")):
            con.sql(sql).fetchall()
            started = time.perf_counter()
            for _ in range(3):
                con.sql(sql).fetchall()
            times[name] = (time.perf_counter() - started) / 3
        n = args.catalog_events
        a, b = times.values()
        print(f"catalog full scan of {n} events: {a:.3f} s with sums checked, {b:.3f} s "
              f"without the check: ratio {a / b:.2f}")
        started = time.perf_counter()
        con.sql("SELECT count(*) FROM damage").fetchall()
        print(f"damage view over {n} events: {time.perf_counter() - started:.3f} s")


if __name__ == "__main__":
    main()
