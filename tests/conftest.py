"""Shared fixtures. Every test gets its own WORKBENCH_HOME, so nothing touches data/ or runs/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def workbench_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    for key in list(os.environ):
        if key.startswith("WORKBENCH__") or key in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY"):
            monkeypatch.delenv(key)
    return home


@pytest.fixture
def store(workbench_home):
    from workbench.data.store import Store

    return Store(workbench_home / "data")


@pytest.fixture
def workbench_cmd() -> list[str]:
    """The installed command, run as a real process."""
    return [str(BIN / "workbench")]


@pytest.fixture(scope="session")
def jupyter_env(tmp_path_factory) -> dict[str, str]:
    """An environment with a private Jupyter data dir holding the project's kernelspec (set
    WORKBENCH_HOME in it per test: it is made once, before any test's home). Jupyter
    prefers the virtual environment's folders to the user's unless told otherwise: the
    kernelspec used is this checkout's, not the one last installed in .venv."""
    data = tmp_path_factory.mktemp("jupyter")
    env = {**os.environ, "JUPYTER_DATA_DIR": str(data), "JUPYTER_PATH": "",
           "JUPYTER_PREFER_ENV_PATH": "0"}
    subprocess.run([str(BIN / "workbench"), "kernel", "install", "--user"],
                   env=env, check=True, capture_output=True, timeout=120)
    return env


# fixture -> the long run it waits for, started with the session (tests/early_runs.py)
EARLY = {"demo": "demo", "readme_env": "demo", "sweep_record": "demo", "tutorial": "tutorial"}


@pytest.fixture(scope="session", autouse=True)
def _start_early_runs(request, tmp_path_factory):
    """Starts, in the background, the long runs of the selected tests that wait for them."""
    from tests import early_runs as runs

    wanted = {EARLY[f] for item in request.session.items
              for f in getattr(item, "fixturenames", ()) if f in EARLY}
    if wanted:
        env = request.getfixturevalue("jupyter_env")
        for name in sorted(wanted):
            getattr(runs, name)(env, tmp_path_factory)
    yield
    runs.stop_all()


def wb_inline(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The `workbench` command run in this process by click's runner: the same parsing, the
    same one-line errors and exit codes as the installed command (``workbench.cli`` turns
    them into ``sys.exit``), without the second or more a new Python process costs. A test
    that proves something about the command as a process (its start, signals, what the
    installed script wires up) runs it for real; every command keeps such a test."""
    from click.testing import CliRunner

    from workbench.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], env=env, prog_name="workbench")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # an escape the command's own error handling missed: loud
    return subprocess.CompletedProcess(["workbench", *args], result.exit_code, result.stdout,
                                       result.stderr)


# the dashboards' research tests read a copy of the demo's home (tests/test_dashboard_research.py)
EARLY["demo_home"] = "demo"


@pytest.fixture
def fake():
    """A fresh fake Alpaca on 127.0.0.1 for one test (the Alpaca broker tests), stopped
    after it; a module may define its own ``fake``."""
    from alpaca_broker_helpers import start_fake

    f = start_fake()
    yield f
    f.stop()
