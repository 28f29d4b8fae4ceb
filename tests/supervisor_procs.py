"""Stand-ins for a session under the supervisor tests, as real processes.

    python -m tests.supervisor_procs hang RUN_DIR PIDS   # one heartbeat, then hangs
    python -m tests.supervisor_procs beat RUN_DIR PIDS   # a heartbeat every 0.1 s, forever
    python -m tests.supervisor_procs closed RUN_DIR      # a runner whose kernel died

``closed`` is what papermill's wrapper does when the kernel dies: the session started
(``session_start``, never ``session_end``), and the wrapper marks the run failed and exits 1.

Both hold the run's journal (as a session does), ignore SIGTERM (as a kernel in a hung
C call, or papermill, which does not forward it) and start two grandchildren that sleep:
one in their own process group, one in a session of its own, as jupyter_client starts a
kernel. Every pid is written to PIDS (one a line) before the first heartbeat. Neither
reads the control channel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from workbench.clock import LiveClock
from workbench.journal import Journal
from workbench.model import events as ev

_SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]


def closed(run_dir: str) -> None:
    from workbench.runs.records import RunRecord

    with Journal.open(run_dir, LiveClock()) as journal:
        journal.append(ev.SESSION_START, restart=False)
        journal.append(ev.HEARTBEAT, wall=LiveClock().now(), bars=0)
    RunRecord.open(run_dir, LiveClock()).finish("failed", error="kernel died")
    sys.exit(1)


def main(mode: str, run_dir: str, pids: str = "") -> None:
    if mode == "closed":
        closed(run_dir)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    journal = Journal.open(run_dir, LiveClock())
    same_group = subprocess.Popen(_SLEEP)
    own_session = subprocess.Popen(_SLEEP, start_new_session=True)
    tmp = Path(pids + ".tmp")
    tmp.write_text("".join(f"{p}\n" for p in (os.getpid(), same_group.pid,
                                               own_session.pid)))
    tmp.rename(pids)
    while True:
        journal.append(ev.HEARTBEAT, wall=LiveClock().now(), bars=0)
        if mode == "hang":
            time.sleep(600)
        time.sleep(0.1)


if __name__ == "__main__":
    main(*sys.argv[1:])
