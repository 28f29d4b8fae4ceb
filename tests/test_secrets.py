"""A secret set in the environment never appears in a repr, a log line or an error."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

CANARY_KEY = "PKCANARY0123456789AB"
CANARY_SECRET = "canarySecret-6f1d2e9a7b"


@pytest.fixture
def canary_env(monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", CANARY_KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", CANARY_SECRET)
    return {"ALPACA_API_KEY": CANARY_KEY, "ALPACA_SECRET_KEY": CANARY_SECRET}


def assert_clean(text: str) -> None:
    assert CANARY_KEY not in text and CANARY_SECRET not in text, text


def test_settings_never_show_secrets(canary_env):
    from workbench.config import load_settings

    s = load_settings()
    assert s.credentials.present
    assert s.credentials.secret_key.get_secret_value() == CANARY_SECRET
    for text in (repr(s), str(s), s.model_dump_json(), json.dumps(s.model_dump(mode="json")),
                 repr(s.credentials), str(s.credentials.api_key), f"{s!r:}"):
        assert_clean(text)


def test_log_lines_are_redacted(canary_env, capsys):
    from workbench.log import configure, get_logger

    configure("INFO", "json")
    get_logger("test").info("connecting", key=CANARY_KEY, note=f"secret={CANARY_SECRET}")
    logging.getLogger("third.party").warning("header APCA-API-SECRET-KEY: %s", CANARY_SECRET)
    try:
        raise RuntimeError(f"bad key {CANARY_KEY}")
    except RuntimeError:
        get_logger("test").exception("failed")
    err = capsys.readouterr().err
    assert "connecting" in err and "failed" in err and "header" in err
    assert_clean(err)


def _cli(args, env, home):
    from tests.conftest import BIN

    return subprocess.run([str(BIN / "workbench"), *args], capture_output=True, text=True,
                          env={**os.environ, **env, "WORKBENCH_HOME": str(home)}, timeout=120,
                          check=False)


@pytest.mark.parametrize(
    "args, extra_env",
    [
        (["config"], {}),
        (["config", "--json"], {}),
        (["data", "import", f"/nowhere/{CANARY_SECRET}.csv", "--timeframe", "1Min"], {}),
        (["data", "ls", "--timeframe", CANARY_KEY], {}),
        (["data", "ls"], {"WORKBENCH__DATA__SPIKE_BAND": CANARY_SECRET}),
        (["data", "ls"], {"WORKBENCH__LOG__LEVEL": CANARY_KEY, "WORKBENCH_DEBUG": "1"}),
    ],
)
def test_command_output_and_errors_are_redacted(canary_env, workbench_home, args, extra_env):
    proc = _cli(args, {**canary_env, **extra_env}, workbench_home)
    assert_clean(proc.stdout + proc.stderr)


def test_unexpected_error_traceback_is_redacted(canary_env, workbench_home):
    """A traceback (WORKBENCH_DEBUG) that would carry the secret shows the mask instead."""
    bad = workbench_home / "workbench.toml"
    bad.write_text(f'[data]\nspike_band = "{CANARY_SECRET}"\n')
    proc = _cli(["data", "ls"], {**canary_env, "WORKBENCH_DEBUG": "1"}, workbench_home)
    assert proc.returncode == 2 and "invalid setting data.spike_band" in proc.stderr
    assert_clean(proc.stdout + proc.stderr)


def test_config_file_may_not_hold_credentials(workbench_home):
    (workbench_home / "workbench.toml").write_text('[alpaca]\napi_key = "PKX"\n')
    from workbench.config import load_settings
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="credentials come only from the environment"):
        load_settings()


def test_env_override_of_a_nested_setting(monkeypatch, workbench_home):
    from workbench.config import load_settings

    (workbench_home / "workbench.toml").write_text("[data]\nspike_band = 0.4\n")
    assert load_settings().data.spike_band == 0.4
    monkeypatch.setenv("WORKBENCH__DATA__SPIKE_BAND", "0.25")
    assert load_settings().data.spike_band == 0.25


# -- fault 20: a supervised notebook paper session, every file it writes --------------------

LEAK = """import logging, os, sys, traceback
leak = f"{os.environ['ALPACA_SECRET_KEY']} {os.environ['ALPACA_API_KEY']}"
print("stdout", leak)
print("stderr", leak, file=sys.stderr)
os.write(1, f"fd1 {leak}\\n".encode()); os.write(2, f"fd2 {leak}\\n".encode())
logging.getLogger("strategy").warning("logged %s", leak)
try:
    raise RuntimeError(f"caught {leak}")
except RuntimeError:
    traceback.print_exc()
{"shown": leak, os.environ["ALPACA_API_KEY"]: 1}"""


def _leaky_strategy_notebook(path: Path) -> Path:
    """sma_cross.ipynb with a cell that shows both credentials every way a cell can (after
    the parameters) and a last cell, after the session, that raises with one."""
    from tests.conftest import ROOT

    nb = nbformat.read(ROOT / "notebooks" / "strategies" / "sma_cross.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, new_code_cell(LEAK))
    nb.cells.append(new_code_cell(
        "raise RuntimeError('after the session ' + os.environ['ALPACA_SECRET_KEY'])"))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.mark.slow
def test_a_supervised_notebook_session_writes_the_canary_nowhere(jupyter_env, workbench_home,
                                                                  store, tmp_path):
    """Fault 20: with a canary in ALPACA_SECRET_KEY and another in ALPACA_API_KEY, a notebook
    paper session under the supervisor prints both, logs them, prints a traceback holding
    them and ends raising with one; no file under the test's folder (the home: runs/<id>/
    with session.log, the executed notebook, the journal, the manifest, results/; the data;
    the notebook's folder) and neither the supervisor's nor the child's output holds
    either value (bytes, whatever the encoding of the file)."""
    from workbench.data.sources import synth_into_store
    from workbench.execution.run import prepare_run
    from workbench.runs.records import load_manifest

    day = "2025-12-31"
    synth_into_store(store, 3, 3, "1Min", 11, day)
    secret, key = "canary-" + secrets.token_hex(12), "PKCANARY" + secrets.token_hex(6).upper()
    nb = _leaky_strategy_notebook(tmp_path / "nbs" / "leaky.ipynb")
    record = prepare_run(nb, kind="session", mode="paper",
                         params={"timeframe": "1Min", "replay_date": day, "fast": 5, "slow": 20})
    env = {**jupyter_env, "WORKBENCH_HOME": str(workbench_home), "ALPACA_SECRET_KEY": secret,
           "ALPACA_API_KEY": key}
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.deploy.supervisor", str(record.path), "--",
         sys.executable, "-m", "workbench.execution.child", "--resumable", "{run_dir}"],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    run = record.path
    log = (run / "session.log").read_text(encoding="utf-8")
    manifest = load_manifest(run)
    # it ran, and said everything: the session traded, then the last cell raised
    assert manifest["outcome"] == "failed", (proc.stdout, proc.stderr, log[-3000:])
    assert manifest["error"] == "RuntimeError: after the session **********"
    assert manifest["extra"]["recorded_outcome"] == "succeeded"
    assert (run / "events").is_dir() and (run / "results" / "settings.json").is_file()
    assert "fd1 ********** **********" in log and "fd2 ********** **********" in log
    executed = (run / "notebook.ipynb").read_text(encoding="utf-8")
    for shown in ("stdout ********** **********", "stderr ********** **********",
                  "logged ********** **********", "RuntimeError: caught ********** **********",
                  "after the session **********"):
        assert shown in executed, shown
    assert proc.returncode == 1 and "failed" in proc.stdout
    # and nowhere the values themselves
    assert secret not in proc.stdout + proc.stderr and key not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {run / "manifest.json", run / "session.log", run / "notebook.ipynb"} <= set(files)
    leaks = [str(p) for p in files for value in (secret, key)
             for form in (value.encode(), value.encode("utf-16-le"),
                          json.dumps(value).encode())
             if form in p.read_bytes()]
    assert not leaks


def test_any_credential_named_variable_is_masked_but_not_plain_words(monkeypatch):
    from workbench.secrets import MASK, redact

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:tg-canary-token")
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2hunter2")
    monkeypatch.setenv("USE_KEYRING", "true")     # a flag, not a credential
    monkeypatch.setenv("CACHE_KEY_TTL", "86400")  # a number
    monkeypatch.setenv("SHORT_TOKEN", "abc12")    # too short to mask safely
    text = "sent 123456:tg-canary-token with hunter2hunter2: true 86400 abc12"
    assert redact(text) == f"sent {MASK} with {MASK}: true 86400 abc12"


# -- issue 12: a canary nowhere under runs/, whatever the artifact's format -----------------

def _leaks(root: Path, values: tuple[str, ...]) -> list[str]:
    """Files under ``root`` holding any of ``values`` as bytes: UTF-8, UTF-16, JSON-escaped."""
    return [f"{p} holds {value[:6]}..." for p in root.rglob("*") if p.is_file()
            for value in values
            for form in (value.encode(), value.encode("utf-16-le"), json.dumps(value).encode())
            if form in p.read_bytes()]


def test_a_canary_is_nowhere_under_runs_after_a_backtest_a_sweep_and_a_journal(monkeypatch,
                                                                              workbench_home):
    """Credentials in the environment (Alpaca's two and any credential-named variable), one
    also given as a strategy parameter and two as string values of a swept parameter: the
    records (manifest, settings.json, parquet tables, best.json), the sweep's heatmap.html
    (once raw), a SweepResult saved by hand under runs/ and a journal hold none of them, nor
    does the figure a PNG is drawn from (write_png draws ``masked(fig)``: pixels cannot be
    searched). The notebook (ipynb) and log files of a replayed session are the slow test
    above's."""
    import plotly.io as pio

    import workbench as wb
    from workbench.backtesting.plots import masked
    from workbench.clock import SimClock
    from workbench.data.synth import synthesize
    from workbench.execution.recorded import run_backtest, run_sweep
    from workbench.journal.writer import Journal
    from workbench.runs.records import RunRecord
    from workbench.secrets import MASK

    secret, key = "canary-" + secrets.token_hex(12), "PKCANARY" + secrets.token_hex(6).upper()
    token = "tok-canary-" + secrets.token_hex(8)
    for name, value in (("ALPACA_SECRET_KEY", secret), ("ALPACA_API_KEY", key),
                        ("NOTIFY_BOT_TOKEN", token)):
        monkeypatch.setenv(name, value)

    @wb.strategy
    def tagged(bars, fast: int = 5, slow: int = 20, tag: str = "plain"):
        fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
        return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                          exits=wb.crossed_below(fast_ma, slow_ma))

    bars = wb.Bars.from_long(synthesize(2, 80, "1Day", seed=5, end="2026-11-20"), "1Day")
    clock = SimClock("2026-12-01 15:00")
    record = RunRecord.create("backtest", tagged, {"fast": 5, "tag": secret}, "backtest",
                              bars, clock)
    run_backtest(tagged, bars, {"fast": 5, "tag": secret}, {}, {}, record)
    record.finish()
    record = RunRecord.create("sweep", tagged, {}, "sweep", bars, clock)
    grid = {"grid": {"fast": [3, 5], "tag": [secret, token]}, "constraint": None,
            "metric": "sharpe"}
    result = run_sweep(tagged, bars, {}, {}, grid, record)
    drawn = pio.to_json(masked(result.heatmap("fast", "tag")))
    assert MASK in drawn and not any(v in drawn for v in (secret, key, token))
    result.save(record.path / "saved")
    record.finish()
    journal = Journal.open(record.path, clock)
    journal.append("note", {"said": f"key {key} secret {secret}", token: [secret]})
    journal.close()

    runs = workbench_home / "runs"
    heatmap = next(runs.rglob("heatmap.html")).read_text(encoding="utf-8")
    assert MASK in heatmap  # the swept values are there, masked
    assert not _leaks(runs, (secret, key, token))
