"""``workbench fake-alpaca``: a real process serving a stored day; it prints its URLs,
answers alpaca-py, and stops when the replay ends or on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.data.store import Store
from workbench.data.synth import synthesize

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.trading.client import TradingClient

DAY = "2026-11-23"
COMMAND = [sys.executable, "-c", "from workbench.cli import main; main()", "fake-alpaca"]


@pytest.fixture
def stored(workbench_home):
    Store().write(synthesize(["AAPL", "MSFT"], 1, "1Min", seed=3, end=DAY), "1Min")
    return workbench_home


def _launch(*args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen([*COMMAND, "--replay", DAY, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    printed: dict[str, str] = {}
    while "key" not in printed:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the command ended early: {proc.stderr.read()}")
        name, _, value = line.partition(":")
        printed[name.strip()] = value.strip()
    return proc, printed


def test_cli_prints_urls_answers_and_stops_when_the_replay_ends(stored):
    proc, printed = _launch("--speed", "200", "--symbols", "AAPL", "--start", "10:00",
                            "--end", "10:05", "--key", "cli-key", "--secret", "cli-secret",
                            "--linger", "0")
    try:
        rest = printed["REST"]
        assert rest.startswith("http://127.0.0.1:")
        assert printed["trading stream"] == rest.replace("http", "ws") + "/stream"
        assert printed["data stream"] == rest.replace("http", "ws") + "/v2/iex"
        assert printed["key"] == "cli-key  secret: cli-secret"
        client = TradingClient("cli-key", "cli-secret", url_override=rest)
        assert client.get_account().status == "ACTIVE"
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "replay done: 5 bars served" in out


@pytest.mark.slow  # a second process start (~3-5 s on a loaded machine)
def test_cli_stops_on_ctrl_c(stored):
    proc, _ = _launch("--speed", "1")
    try:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "interrupted: stopping" in out, err


@pytest.mark.parametrize("args, message", [
    (["--speed", "max"], "--speed must be a number > 0"),
    (["--start", "25:99"], "cannot read '25:99'"),
    (["--symbols", "ZZZ"], "no 1Min bars stored for ZZZ"),
])
def test_cli_bad_input_is_one_line(stored, args, message):
    result = CliRunner().invoke(cli, ["fake-alpaca", "--replay", DAY, *args])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_cli_help_explains(stored):
    result = CliRunner().invoke(cli, ["fake-alpaca", "--help"])
    assert result.exit_code == 0 and "--replay" in result.output and "Ctrl-C" in result.output
