"""One `workbench demo` per test session, shared by the tests that need its home
(tests/test_demo.py checks the demo; tests/test_readme.py runs the README's examples on a
copy of what it made). It is started early, in the background (tests/early_runs.py)."""

from __future__ import annotations

from tests import early_runs
from tests.early_runs import Finished as DemoRun

__all__ = ["DemoRun", "demo_run"]


def demo_run(jupyter_env: dict, tmp_path_factory) -> DemoRun:
    """`workbench demo` as a real process in a private WORKBENCH_HOME, once: its end."""
    return early_runs.demo(jupyter_env, tmp_path_factory).wait()
