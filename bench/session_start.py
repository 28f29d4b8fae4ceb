"""Session start: from the command to the first bar processed, for a notebook session under
the supervisor, and where the time goes; and a notebook backtest run, command to exit.

    python bench/session_start.py [--runs 3]
    PYTHONPATH=OTHER_TREE python bench/session_start.py   # another checkout's code, same notebook

A temporary WORKBENCH_HOME gets a small synthetic store (daily bars for the notebook's
research cells and backtest, three minute days for the replay). Each run prepares a paper
session of ``notebooks/strategies/sma_cross.ipynb`` (``prepare_run``), starts the supervisor
on the execution child (papermill, the ``workbench`` kernel) and stops the clock at the
first ``bar`` event in the run's journal. The executed notebook's per-cell durations
(papermill records them) then say where the time went: kernel start and imports outside the
cells, the cells before the last (the data cell, and the research cells unless the mode
skips them), and the session's own start inside the last cell. Then the same notebook runs
as ``workbench run NOTEBOOK --mode backtest``, timed from the command to its exit. The
baseline, run in the same process, is a bare ``python -c pass``, so the ratio says how many
interpreter starts each costs on this machine.
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


def _cells(run_dir: Path) -> tuple[float, float, float, int]:
    """(the cells before the last, the last cell, all cells) in seconds, and how many code
    cells the mode skipped (papermill status "skipped": no duration)."""
    import nbformat

    nb = nbformat.read(run_dir / "notebook.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    durations = [float(c.metadata.get("papermill", {}).get("duration") or 0.0) for c in code]
    skipped = sum(c.metadata.get("papermill", {}).get("status") == "skipped" for c in code)
    return sum(durations[:-1]), durations[-1], sum(durations), skipped


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
    earlier, last, cells, skipped = _cells(record.path)
    return {"first_bar_s": box.get("first"), "total_s": total, "earlier_cells_s": earlier,
            "last_cell_s": last, "outside_cells_s": total - cells, "skipped_cells": skipped}


def backtest_run() -> dict:
    """``workbench run NOTEBOOK --mode backtest``, command to exit, and where the time went."""
    import json

    workbench = Path(sys.executable).parent / "workbench"
    started = time.perf_counter()
    proc = subprocess.run([str(workbench), "run", str(NOTEBOOK), "--mode", "backtest", "--json"],
                          capture_output=True, text=True, check=False)
    total = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"backtest run failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    earlier, last, cells, skipped = _cells(Path(json.loads(proc.stdout)["path"]))
    return {"bt_total_s": total, "bt_earlier_cells_s": earlier, "bt_last_cell_s": last,
            "bt_outside_cells_s": total - cells, "bt_skipped_cells": skipped}


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
            rows.append(one_run() | backtest_run())
    python = statistics.median(base)
    print(f"python -c pass: {python:.3f} s (median of {len(base)})")
    print(f"cells skipped: session {rows[0]['skipped_cells']}, "
          f"backtest {rows[0]['bt_skipped_cells']}")
    for key in ("first_bar_s", "earlier_cells_s", "last_cell_s", "outside_cells_s", "total_s",
                "bt_total_s", "bt_earlier_cells_s", "bt_last_cell_s", "bt_outside_cells_s"):
        values = [r[key] for r in rows if r[key] is not None]
        med = statistics.median(values)
        print(f"{key:<18} median {med:7.2f} s  ({med / python:6.0f}x python)  runs: "
              + ", ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
