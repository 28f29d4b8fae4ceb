"""`workbench halt` / `resume` write to a running session's control channel only: a record
that is not a running session (finished, a backtest, no record at all) is a one-line error,
exit non-zero, and nothing is written (a command no session will read must not look sent)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import wb_inline


def _record(tmp_path, **manifest):
    run = tmp_path / "runs" / "20261202-000000-x"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


@pytest.mark.parametrize("command", ["halt", "resume"])
@pytest.mark.parametrize("manifest, says", [
    ({"kind": "session", "status": "finished"}, "a session that is finished"),
    ({"kind": "backtest", "status": "finished"}, "a backtest record"),
])
def test_a_record_that_is_not_a_running_session_is_refused(tmp_path, command, manifest, says):
    run = _record(tmp_path, **manifest)
    result = wb_inline(command, str(run))
    assert result.returncode != 0
    assert says in result.stderr and "nothing sent" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (run / "control").exists() and len(list(run.iterdir())) == 1


def test_a_folder_without_a_record_is_refused(tmp_path):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    result = wb_inline("halt", str(folder))
    assert result.returncode != 0 and "no run record" in result.stderr
    assert list(folder.iterdir()) == []


def test_a_running_session_gets_the_command(tmp_path):
    run = _record(tmp_path, kind="session", status="running")
    result = wb_inline("halt", str(run), "--reason", "test")
    assert result.returncode == 0, result.stderr
    (sent,) = [p for p in run.rglob("*.json") if p.name != "manifest.json"]
    assert json.loads(sent.read_text())["command"] == "halt"
