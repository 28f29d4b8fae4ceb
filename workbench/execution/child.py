"""``python -m workbench.execution.child RUN_DIR [--timeout S] [--autosave S]``: one run, executed.

What a supervisor starts (in a process group of its own) after
:func:`workbench.execution.run.prepare_run`: it executes the run
(:func:`~workbench.execution.run.execute_run`), prints one line on stderr
(``run <id>: <outcome>[: <error>]``, secrets masked) and exits with the outcome's code
(:data:`~workbench.execution.run.EXIT_CODES`: 0 succeeded, 1 failed, 6 halted, 124 timeout,
130 interrupted; 2 for a bad RUN_DIR or option, nothing run). SIGTERM ends the run as
"interrupted": the kernel is shut down and the record finished before the process exits.
"""

from __future__ import annotations

import argparse
import signal
import sys

from workbench.errors import WorkbenchError
from workbench.secrets import redact

__all__ = ["main"]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.execution.child",
        description="Execute a prepared notebook run (runs/<run_id>/) and record its outcome.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder, from prepare_run")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="a cell running longer ends the run, outcome timeout")
    parser.add_argument("--autosave", type=int, default=None, metavar="SECONDS",
                        help="save the output notebook this often during a long cell (10)")
    parser.add_argument("--kernel", default="workbench", help="the Jupyter kernel (workbench)")
    parser.add_argument("--resumable", action="store_true",
                        help="a session whose kernel dies is left running, for its supervisor "
                             "to resume (its journal replayed and reconciled); without it the "
                             "run is recorded failed")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    from workbench.execution.run import AUTOSAVE_SECONDS, execute_run, exit_code

    autosave = AUTOSAVE_SECONDS if args.autosave is None else args.autosave
    try:
        run = execute_run(args.run_dir, timeout=args.timeout, kernel=args.kernel,
                          autosave=autosave, resumable=args.resumable)
    except WorkbenchError as e:
        print(redact(f"error: {e}"), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # before the run began: nothing was recorded
        print("error: interrupted", file=sys.stderr)
        return 130
    detail = f": {run.error}" if run.error and run.error != run.outcome else ""
    print(redact(f"run {run.run_id}: {run.outcome}{detail}"), file=sys.stderr)
    return exit_code(run.outcome)


if __name__ == "__main__":
    sys.exit(main())
