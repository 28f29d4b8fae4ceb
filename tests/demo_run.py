"""One `workbench demo` per test session, shared by the tests that need its home
(tests/test_demo.py checks the demo; tests/test_readme.py runs the README's examples on a
copy of what it made)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class DemoRun:
    home: Path
    stdout: str
    stderr: str
    returncode: int


_DONE: dict[str, DemoRun] = {}


def demo_run(jupyter_env: dict, tmp_path_factory) -> DemoRun:
    """`workbench demo` as a real process in a private WORKBENCH_HOME, once."""
    if "run" not in _DONE:
        home = tmp_path_factory.mktemp("demo") / "home"
        home.mkdir()
        env = {**jupyter_env, "WORKBENCH_HOME": str(home)}
        env = {k: v for k, v in env.items() if not k.startswith("WORKBENCH__")
               and k not in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "WORKBENCH_CONFIG")}
        proc = subprocess.run([str(BIN / "workbench"), "demo"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=1200, check=False)
        _DONE["run"] = DemoRun(home, proc.stdout, proc.stderr, proc.returncode)
    return _DONE["run"]
