"""Session start: from the command to the first bar processed, for a notebook session under
the supervisor, and where the time goes.

    python bench/session_start.py [--runs 3]

A temporary WORKBENCH_HOME gets a small synthetic store (daily bars for the notebook's
research cells, three minute days for the replay). Each run prepares a paper session of
``notebooks/strategies/sma_cross.ipynb`` (``prepare_run``), starts the supervisor on the
execution child (papermill, the ``workbench`` kernel) and stops the clock at the first
``bar`` event in the run's journal. The executed notebook's per-cell durations (papermill
records them) then say where the time went: kernel start and imports before the first cell,
the research cells, and the session's own start inside the last cell. The baseline, run in
the same process, is a bare ``python -c pass``, so the ratio says how many interpreter starts
a session start costs on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"
REPLAY_DAY = "2025-12-31"


def _first_bar_seconds(run_dir: Path, started: float, done: threading.Event) -> float | None:
    from workbench.journal.reader import read_events

    while not done.is_set():
        if (run_dir / "events").is_dir():
            try:
                if any(e.type == "bar" for e in read_events(run_dir)):
                    return time.perf_counter() - started
            except Exception:  # noqa: BLE001 - a segment being written: look again
                pass
        time.sleep(0.05)
    return None


def _cells(run_dir: Path) -> tuple[float, float, float]:
    """(before the first cell, the research cells, the last cell) in seconds."""
    import nbformat

    nb = nbformat.read(run_dir / "notebook.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    durations = [float(c.metadata.get("papermill", {}).get("duration") or 0.0) for c in code]
    return sum(durations[:-1]), durations[-1], sum(durations)


def one_run() -> dict:
    from workbench.deploy.supervisor import Supervisor, argv_command
    from workbench.execution.run import prepare_run

    record = prepare_run(NOTEBOOK, kind="session", mode="paper",
                         params={"timeframe": "1Min", "replay_date": REPLAY_DAY,
                                 "fast": 5, "slow": 20})
    supervisor = Supervisor(record.path, argv_command(
        [sys.executable, "-m", "workbench.execution.child", "{run_dir}"]))
    done, box = threading.Event(), {}
    started = time.perf_counter()
    watcher = threading.Thread(target=lambda: box.update(
        first=_first_bar_seconds(record.path, started, done)))
    watcher.start()
    result = supervisor.run()
    total = time.perf_counter() - started
    done.set()
    watcher.join()
    if not result.ok:
        raise SystemExit(f"session failed: {result.summary()}")
    research, last, cells = _cells(record.path)
    return {"first_bar_s": box.get("first"), "total_s": total, "research_cells_s": research,
            "last_cell_s": last, "outside_cells_s": total - cells}


def _python_start() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="sessions to start (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-session-start-") as home:
        os.environ["WORKBENCH_HOME"] = home
        from workbench.data.sources import synth_into_store
        from workbench.data.store import Store

        store = Store()
        synth_into_store(store, 8, 300, "1Day", 7, REPLAY_DAY)
        synth_into_store(store, 3, 3, "1Min", 11, REPLAY_DAY)
        rows, base = [], []
        for _ in range(args.runs):
            base.append(_python_start())
            rows.append(one_run())
    python = statistics.median(base)
    print(f"python -c pass: {python:.3f} s (median of {len(base)})")
    for key in ("first_bar_s", "research_cells_s", "last_cell_s", "outside_cells_s", "total_s"):
        values = [r[key] for r in rows if r[key] is not None]
        med = statistics.median(values)
        print(f"{key:<18} median {med:7.2f} s  ({med / python:6.0f}x python)  runs: "
              + ", ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
