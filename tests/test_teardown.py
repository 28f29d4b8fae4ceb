"""``import workbench`` freezes the tracked objects at exit (``workbench.teardown``), after
the handlers registered later, and files are still flushed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def test_objects_are_frozen_at_exit_after_later_handlers_and_files_are_flushed(tmp_path):
    out = tmp_path / "unclosed.txt"
    code = textwrap.dedent(f"""
        import atexit, gc, sys
        atexit.register(lambda: print("frozen at the end:", gc.get_freeze_count() > 0))
        import workbench
        atexit.register(lambda: print("frozen before a later handler:",
                                      gc.get_freeze_count() > 0))
        handle = open({str(out)!r}, "w")
        handle.write("kept")  # never closed: flushed when the module is cleared
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=120)
    assert proc.stdout.splitlines() == ["frozen before a later handler: False",
                                        "frozen at the end: True"]
    assert out.read_text() == "kept"
