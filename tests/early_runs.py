"""The suite's two longest single runs, started in the background when the session starts:
`workbench demo` (tests/test_demo.py, tests/test_readme.py) and the idea-to-paper tutorial
under papermill (tests/test_tutorials.py). Each is a chain of notebook kernels, one to three
at a time, that shares nothing with the other tests (a WORKBENCH_HOME and a copy of the
kernelspec of its own); run early and niced, they use the CPU the sequential tests leave
idle instead of adding their minutes each. What a test proves does not change: it waits for
the same process, run as before, and judges its output and what it left. Only the runs the
selected tests' fixtures need are started (conftest.py's ``_start_early_runs``); a run no
test waited for is killed at the end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EarlyRun", "Finished", "clean_env", "demo", "start", "stop_all", "tutorial"]


@dataclass(frozen=True)
class Finished:
    home: Path
    stdout: str
    stderr: str
    returncode: int


def clean_env(jupyter_env: dict, home: Path) -> dict[str, str]:
    """``jupyter_env`` with ``home`` as WORKBENCH_HOME and no settings or credentials from the
    outer environment."""
    env = {k: v for k, v in jupyter_env.items() if not k.startswith("WORKBENCH__")
           and k not in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "WORKBENCH_CONFIG")}
    return {**env, "WORKBENCH_HOME": str(home)}


class EarlyRun:
    """One background process (in a process group of its own) and the home it writes."""

    def __init__(self, argv: list[str], home: Path, env: dict, cwd: Path,
                 output: Path | None = None) -> None:
        self.home, self.output = home, output  # output: a file the run writes, if any
        # niced: it takes the CPU the tests in the foreground leave, never theirs (some of
        # them bound a wait in seconds); its kernels inherit the niceness
        self.proc = subprocess.Popen(["nice", "-n", "10", *argv], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self._done: Finished | None = None

    def wait(self, timeout: float = 1200) -> Finished:
        if self._done is None:
            out, err = self.proc.communicate(timeout=timeout)
            self._done = Finished(self.home, out, err, self.proc.returncode)
        return self._done

    def stop(self) -> None:
        if self.proc.poll() is None:  # no test waited for it: it and its kernels go
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()


_RUNS: dict[str, EarlyRun] = {}


def start(name: str, argv: list[str], jupyter_env: dict, tmp_path_factory, cwd: Path,
          output: str | None = None) -> EarlyRun:
    """Start ``name`` once in a fresh home (``{output}`` in ``argv`` is a file ``output``
    next to it); later calls return the same run."""
    if name not in _RUNS:
        where = tmp_path_factory.mktemp(name)
        home, out = where / "home", (where / output if output else None)
        home.mkdir()
        argv = [a.replace("{output}", str(out)) for a in argv]
        # a copy of the kernelspec: a test's `workbench kernel install --user` into the
        # shared one (the README's) must not pull it from under this run's kernels
        jupyter = where / "jupyter"
        shutil.copytree(jupyter_env["JUPYTER_DATA_DIR"], jupyter)
        env = {**clean_env(jupyter_env, home), "JUPYTER_DATA_DIR": str(jupyter)}
        _RUNS[name] = EarlyRun(argv, home, env, cwd, out)
    return _RUNS[name]


def stop_all() -> None:
    while _RUNS:
        _RUNS.popitem()[1].stop()


def demo(jupyter_env: dict, tmp_path_factory) -> EarlyRun:
    """`workbench demo` as a real process from the project's folder."""
    from tests.conftest import BIN, ROOT

    return start("demo", [str(BIN / "workbench"), "demo"], jupyter_env, tmp_path_factory, ROOT)


TUTORIAL = Path(__file__).resolve().parent.parent / "notebooks" / "tutorials" / \
    "02_idea_to_paper.ipynb"


def tutorial(jupyter_env: dict, tmp_path_factory) -> EarlyRun:
    """The tutorial executed by papermill on the `workbench` kernel into ``run.output``."""
    from tests.conftest import BIN

    return start("tutorial", [str(BIN / "papermill"), str(TUTORIAL), "{output}", "-k",
                              "workbench", "--cwd", str(TUTORIAL.parent), "--log-level",
                              "ERROR"],
                 jupyter_env, tmp_path_factory, TUTORIAL.parent, output=TUTORIAL.name)
