"""The supervisor's poll of a growing journal: the whole current segment parsed again
(``read_events(after_seq=...)``, before) against a byte-offset tail
(:class:`workbench.journal.tail.JournalTail`, now).

    python bench/journal_tail.py [--events 20000] [--polls 50]

A temporary run gets a journal of ``--events`` heartbeat events (a session writes one a
bar, plus bars, signals, orders: a long day's journal is thousands of events); then each
poll appends one event and reads what is new both ways. Printed: milliseconds per poll
each way and the ratio; the baseline is reading the one new line's bytes with ``open``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    from workbench.clock import SimClock
    from workbench.journal import HEARTBEAT, Journal
    from workbench.journal.reader import read_events
    from workbench.journal.tail import JournalTail

    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--polls", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        clock = SimClock(pd.Timestamp("2026-11-20 14:30", tz="UTC"))
        before, after, base = [], [], []
        with Journal.open(run, clock) as journal:
            for i in range(args.events):
                journal.append(HEARTBEAT, bar=i, equity="100000.00", positions={"AAA": "10"})
            tail = JournalTail.at_end(run)
            seq = tail.last_seq
            segment = run / "events" / "000001.jsonl"
            for i in range(args.polls):
                journal.append(HEARTBEAT, bar=args.events + i)
                t = time.perf_counter()
                new = [e for e in read_events(run, after_seq=seq, warn=False)]
                before.append(time.perf_counter() - t)
                t = time.perf_counter()
                got = tail.read()
                after.append(time.perf_counter() - t)
                t = time.perf_counter()
                with open(segment, "rb") as f:
                    f.seek(-200, 2)
                    f.read()
                base.append(time.perf_counter() - t)
                assert [e.seq for e in new] == [e.seq for e in got] == [seq + 1]
                seq += 1
        size = segment.stat().st_size
    b, a, o = (statistics.median(x) * 1000 for x in (before, after, base))
    print(f"journal of {args.events} events ({size / 2**20:.1f} MiB), median of {args.polls} "
          f"polls:")
    print(f"  open+read of the new bytes (baseline) {o:.3f} ms")
    print(f"  read_events(after_seq)                {b:.3f} ms  ({b / o:.0f}x baseline)")
    print(f"  JournalTail.read                      {a:.3f} ms  ({a / o:.1f}x baseline)")
    print(f"  ratio before / after                  {b / a:.0f}x")


if __name__ == "__main__":
    main()
