"""A secret set in the environment never appears in a repr, a log line or an error."""

from __future__ import annotations

import json
import logging
import os
import subprocess

import pytest

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
                          env={**os.environ, **env, "WORKBENCH_HOME": str(home)}, timeout=120)


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
