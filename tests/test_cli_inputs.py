"""Every command input answers a hostile value with one `error: ...` line naming the input
and a non-zero exit, before anything starts (issue 12: seven inputs ended in "error:
unexpected <Exception>", and a full disk in "unexpected OSError"). In this process
(tests/conftest.wb_inline) except the disk test, which needs a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import wb_inline
from workbench import paths

NB = str(paths.project_root() / "notebooks" / "strategies" / "sma_cross.ipynb")
DAY = ("--replay", "2024-03-08")

CASES = [
    # dates beyond pandas' range, unreadable or empty
    (["data", "synth", "--end", "9999-01-01"], "end: cannot read '9999-01-01'"),
    (["data", "synth", "--end", "-1"], "end: cannot read '-1'"),
    (["data", "synth", "--end", ""], "end: cannot read ''"),
    (["data", "synth", "--end", "2199-01-01"], "after the last completed NYSE session"),
    (["data", "rm", "AAA", "--end", "9999-01-01"], "end: '9999-01-01' is outside the dates"),
    (["data", "rm", "AAA", "--start", "nan"], "start: cannot read 'nan'"),
    (["backtest", NB, "--start", "-1"], "--start: '-1' is outside the dates"),
    (["backtest", NB, "--end", ""], "--end '': not a day"),
    (["backtest", NB, "--start", "2024-03-08", "--end", "2024-03-01"], "is after --end"),
    (["session", NB, "--replay", "-1"], "--replay: a day like"),
    (["session", NB, "--replay", "9999-01-01"], "--replay: a day like"),
    (["session", NB, "--replay", "2024-13-45"], "--replay: a day like"),
    (["fake-alpaca", "--replay", "-1"], "--replay: a day like"),
    (["schedule", "--dry-run", "--from", "9999-01-01"], "--from: a day like"),
    (["schedule", "--dry-run", "--to", "abc"], "--to: a day like"),
    (["schedule", "--dry-run", "--now", "-1"], "--now: cannot read '-1'"),
    # numbers: tiny, huge, negative, not a number
    (["session", NB, *DAY, "--speed", "1e-300"], "a number > 0 (times real time, from 0.001 to 1,000,000)"),
    (["session", NB, *DAY, "--speed", "1e308"], "a number > 0 (times real time, from 0.001 to 1,000,000)"),
    (["session", NB, *DAY, "--speed", "nan"], "a number > 0 (times real time, from 0.001 to 1,000,000)"),
    (["session", NB, *DAY, "--speed", "-1"], "a number > 0 (times real time, from 0.001 to 1,000,000)"),
    (["fake-alpaca", *DAY, "--speed", "1e-300"], "--speed must be a number > 0 (times real time, from 0.001"),
    (["sweep", NB, "--grid", "fast=1:100000:1", "--grid", "slow=1:100000:1"],
     "10,000,000,000 combinations"),
    (["sweep", NB, "--max-combinations", "-5"], "--max-combinations '-5'"),
    (["sweep", NB, "--max-cells", "abc"], "--max-cells 'abc'"),
    # a folder where a file is expected, a file of another kind, no such folder
    (["session", NB, *DAY, "--broker-path", "/tmp"], "--broker-path /tmp: is a folder"),
    (["session", NB, *DAY, "--broker-path", "/etc/passwd"], "not a broker state file"),
    (["session", NB, *DAY, "--broker-path", "/nonexistent/x/y"], "no folder /nonexistent/x"),
    (["session", NB, *DAY, "--broker-path", ""], "--broker-path: empty"),
    (["data", "import", "/tmp", "--timeframe", "1Min"], "is a directory"),
    # names no store can hold
    (["data", "quarantine", "--symbol", "/etc"], "invalid symbol '/ETC'"),
    (["data", "quarantine", "--timeframe", ""], "unknown timeframe ''"),
    (["backtest", NB, "--symbols", "/etc/passwd"], "--symbols '/etc/passwd': invalid symbol"),
    (["session", NB, *DAY, "--symbols", "a b"], "--symbols 'a b': invalid symbol"),
    # halt/resume: never outside runs/
    (["resume", "/etc"], "no run record at /etc"),
    (["halt", ""], "halt: RUN is empty"),
]


@pytest.mark.parametrize("args, says", CASES, ids=[" ".join(a[:1] + a[-2:])[:60] for a, _ in CASES])
def test_a_hostile_input_is_one_line_naming_it(args, says):
    result = wb_inline(*args)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    error = [line for line in lines if line.startswith("error: ")]
    assert len(error) == 1 and says in error[0], result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert not paths.runs_dir().exists() or not any(paths.runs_dir().iterdir())  # no run


def test_a_write_the_system_refuses_is_one_plain_line_naming_the_file(tmp_path):
    """A full disk (here: the file size limit, which fails a write the same way) once ended
    in "error: unexpected OSError" naming no file; nothing half-written is left."""
    script = textwrap.dedent("""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        sys.argv = ["workbench", "data", "synth", "-n", "2", "-d", "5", "--end", "2024-03-08"]
        from workbench.cli import main
        main()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "WORKBENCH_HOME": str(tmp_path)}, timeout=120,
                          check=False)
    error = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 1 and len(error) == 1, proc.stderr
    assert "unexpected" not in proc.stderr and "File too large: " in error[0]
    assert f"{tmp_path}/data/bars/timeframe=1Min/symbol=" in error[0]
    assert "ulimit -f" in error[0]
    assert not any((tmp_path / "data" / "tmp").iterdir())
