"""The workbench kernel's process: ipykernel, with ``workbench`` imported first and a quick end.

The kernelspec (``kernels/workbench/kernel.json``) runs ``python -m
workbench.kernel_launcher -f {connection_file}``: ipykernel's own launcher with two changes
a user feels on every ``workbench backtest``, sweep or session (issue 11's cold start).

* **workbench is imported before the kernel says it is ready**, into ``sys.modules`` only
  (the notebook's namespace stays empty: its ``import workbench as wb`` binds the name).
  When the runner starts the kernel while it prepares the run, that import overlaps the
  runner's own work. An import that fails is left for the notebook's first import to
  raise in its cell, where the user sees it.
* **The end skips the interpreter's teardown.** After the kernel has shut down, the
  threads have been joined and every other ``atexit`` handler has run, the last handler
  flushes every open file object and the C library's stdio buffers, then ends the
  process with its exit status (``os._exit``). What is skipped is the teardown of about
  two thousand modules and its full garbage collections: 0.5-0.8 s on this machine after a
  backtest, which the runner waits for before it can say the run ended. Python does not
  promise to run ``__del__`` of objects still alive at exit; files opened and not closed
  by a cell are flushed here, as the teardown would have flushed them.

``WORKBENCH_KERNEL_TEARDOWN=1`` in the kernel's environment keeps the full teardown
(to compare, or when a library needs its finalizers at exit).
"""

from __future__ import annotations

import atexit
import gc
import io
import os
import sys
from pathlib import Path

__all__ = ["main"]

_status: list[int] = [0]
#: the file objects that hold written bytes in a buffer (the concrete classes: an
#: ``isinstance`` against the ``io.IOBase`` ABC costs seconds over every object)
_BUFFERED = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom, io.BufferedRWPair)


def _preload() -> None:
    try:
        import workbench  # noqa: F401 - into sys.modules, for the notebook's own import
    except Exception:  # noqa: BLE001, S110 - the notebook's import raises it in its cell
        pass


def _flush_files() -> None:
    """Flush every open Python file object, then the C library's stdio buffers."""
    for obj in gc.get_objects():
        if isinstance(obj, _BUFFERED):
            try:
                if not obj.closed:
                    obj.flush()
            except Exception:  # noqa: BLE001, S112 - a broken file must not stop the others
                continue
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:  # noqa: BLE001, S110 - no libc to flush
        pass


def _quick_end() -> None:
    """The last atexit handler: flush, then end without the interpreter's teardown."""
    _flush_files()
    os._exit(_status[0])


def _code(exit_: SystemExit) -> int:
    code = exit_.code
    if code is None:
        return 0
    return code if isinstance(code, int) else 1  # sys.exit("message"): Python prints it


def main() -> None:
    """Run ipykernel as ``python -m ipykernel_launcher`` would."""
    if os.environ.get("WORKBENCH_KERNEL_TEARDOWN") != "1":
        atexit.register(_quick_end)  # registered first: runs after every other handler
    _preload()
    from ipykernel import kernelapp

    try:
        kernelapp.launch_new_instance()
    except SystemExit as e:
        _status[0] = _code(e)
        raise
    except BaseException:
        _status[0] = 1
        raise


if __name__ == "__main__":
    # as ipykernel_launcher: the working folder leaves sys.path while the kernel loads
    # (IPython puts it back)
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    main()
