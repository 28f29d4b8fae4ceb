"""The `workbench data` commands, run as real processes, as the acceptance list states them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import wb_inline
from workbench.data import calendar

SYNTH = ["data", "synth", "--symbols", "50", "--days", "20", "--timeframe", "1Min", "--seed", "7"]
END = "2025-12-31"  # 20 sessions back from here hold Christmas and the Dec 24 early close


def run(cmd, *args, home: Path, check=True, env=None):
    full_env = {**os.environ, "WORKBENCH_HOME": str(home), **(env or {})}
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, env=full_env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}: {proc.stderr}")
    return proc


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def synth_home(tmp_path_factory):
    from tests.conftest import BIN

    home = tmp_path_factory.mktemp("synth")
    run([str(BIN / "workbench")], *SYNTH, "--end", END, home=home)
    return home


def test_ls_json_lists_50_symbols_with_session_bounds(synth_home, workbench_cmd):
    out = run(workbench_cmd, "data", "ls", "--json", home=synth_home).stdout
    rows = json.loads(out)
    assert len(rows) == 50 and {r["timeframe"] for r in rows} == {"1Min"}
    days = calendar.last_sessions(20, END)
    grid = calendar.bar_times(days[0], days[-1], "1Min")
    frame = pd.read_parquet(synth_home / "data" / "bars" / "timeframe=1Min")
    for row in rows:
        mine = frame[frame["symbol"] == row["symbol"]]["ts"]
        assert pd.Timestamp(row["first"]) == mine.min() and pd.Timestamp(row["last"]) == mine.max()
        assert row["rows"] == len(mine)
        assert grid[0] <= pd.Timestamp(row["first"]) and pd.Timestamp(row["last"]) <= grid[-1]


def test_every_bar_in_a_regular_session(synth_home):
    frame = pd.read_parquet(synth_home / "data" / "bars" / "timeframe=1Min")
    days = calendar.last_sessions(20, END)
    grid = calendar.bar_times(days[0], days[-1], "1Min")
    assert frame["ts"].isin(grid).all(), "a bar falls outside a regular session"
    ny = pd.DatetimeIndex(frame["ts"]).tz_convert("America/New_York")
    assert not (ny.date == pd.Timestamp("2025-12-25").date()).any()
    dec24 = ny[ny.date == pd.Timestamp("2025-12-24").date()]
    assert dec24.max().strftime("%H:%M") == "12:59"  # the bar ending 13:00, the early close


def test_same_seed_gives_identical_bytes(synth_home, workbench_cmd, tmp_path):
    other = tmp_path / "again"
    run(workbench_cmd, *SYNTH, "--end", END, home=other)
    assert tree_digest(other / "data" / "bars") == tree_digest(synth_home / "data" / "bars")


def test_synth_again_is_idempotent(synth_home):
    before = tree_digest(synth_home / "data")
    # in this process (the fixture's and the test above's synth are real processes)
    proc = wb_inline(*SYNTH, "--end", END, "--json", env={"WORKBENCH_HOME": str(synth_home)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    report = json.loads(out)
    assert report["written"] == 0 and report["already_stored"] == report["received"] > 0
    assert tree_digest(synth_home / "data") == before


def test_import_reports_and_quarantines(workbench_cmd, tmp_path):
    csv = tmp_path / "bars.csv"
    csv.write_text(
        "Timestamp,Open,High,Low,Close,Volume\n"
        "2026-03-02T14:30:00Z,10,11,9,10.5,100\n"
        "2026-03-02T14:31:00Z,10.5,11,10,10.6,100\n"
        "2026-03-02T14:32:00Z,10.6,10,11,10.7,100\n"  # high < low
        "2026-03-02T14:33:00Z,10.7,11,10,,100\n"  # NaN close
    )
    proc = run(workbench_cmd, "data", "import", str(csv), "--symbol", "ABC", "--timeframe", "1Min",
               "--json", home=tmp_path)
    report = json.loads(proc.stdout)
    assert report["written"] == 2 and report["quarantined"] == {"high_below_low": 1, "nan": 1}
    q = json.loads(run(workbench_cmd, "data", "quarantine", "--json", home=tmp_path).stdout)
    assert sorted(r["reason"] for r in q) == ["high_below_low", "nan"]


def test_import_of_every_kind_of_bad_bar_through_the_store(tmp_path):
    """The acceptance CSV: each bad bar quarantined with its reason, the good bars stored (the
    commands in this process: the test above runs both as real processes)."""
    from tests.test_validate import BAD_CSV, EXPECTED_BAD

    csv = tmp_path / "bad.csv"
    csv.write_text(BAD_CSV)
    home = {"WORKBENCH_HOME": str(tmp_path)}
    report = json.loads(wb_inline("data", "import", csv, "--timeframe", "1Min", "--json",
                                  env=home).stdout)
    n_rows = len(BAD_CSV.strip().splitlines()) - 1
    assert report["written"] == n_rows - len(EXPECTED_BAD)
    assert report["quarantined_total"] == len(EXPECTED_BAD)
    q = json.loads(wb_inline("data", "quarantine", "--json", env=home).stdout)
    assert sorted(r["reason"] for r in q) == sorted(EXPECTED_BAD.values())
    lines = BAD_CSV.strip().splitlines()[1:]
    bad_times = {pd.Timestamp(lines[i].split(",")[1]) for i in EXPECTED_BAD} - {
        pd.Timestamp(lines[i].split(",")[1]) for i in range(len(lines)) if i not in EXPECTED_BAD}
    stored = pd.read_parquet(tmp_path / "data" / "bars" / "timeframe=1Min")
    assert len(stored) == n_rows - len(EXPECTED_BAD) and stored["ts"].is_unique
    assert not set(stored["ts"]) & bad_times
    assert stored["close"].notna().all() and (stored[["open", "high", "low", "close"]] > 0).all().all()
    assert (stored["high"] >= stored["low"]).all() and stored["close"].max() < 100


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["data", "synth", "--timeframe", "7Parsecs"], 2, "unknown timeframe"),
        (["data", "synth", "--symbols", "0"], 2, "between 1 and 5000"),
        (["data", "synth", "--days", "0"], 2, "--days"),
        (["data", "import", "nope.csv", "--timeframe", "1Min"], 2, "no such file"),
        (["data", "import", "{naive}", "--symbol", "ABC", "--timeframe", "1Min"], 3, "--tz"),
        (["data", "frobnicate"], 2, "No such command"),
    ],
)
def test_bad_input_one_line_error(tmp_path, args, code, message):
    """In this process (tests/conftest.wb_inline): the same command, error line and exit code;
    the real processes above run every one of these commands."""
    naive = tmp_path / "naive.csv"
    naive.write_text("time,open,high,low,close,volume\n2026-03-02 09:30,1,1,1,1,1\n")
    args = [a.replace("{naive}", str(naive)) for a in args]
    proc = wb_inline(*args, env={"WORKBENCH_HOME": str(tmp_path)})
    assert proc.returncode == code, proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("group", [[], ["data"], ["data", "synth"], ["data", "import"], ["data", "ls"],
                                   ["data", "quarantine"], ["data", "rm"], ["kernel"], ["kernel", "install"],
                                   ["config"], ["demo"]])
def test_every_command_has_help(group):
    from click.testing import CliRunner

    from workbench.cli import cli

    result = CliRunner().invoke(cli, [*group, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_ls_prints_new_york_time(synth_home, workbench_cmd):
    out = run(workbench_cmd, "data", "ls", home=synth_home).stdout
    days = calendar.last_sessions(20, END)
    assert f"{days[0]:%Y-%m-%d} 09:30 EST" in out and "UTC" not in out and "+00:00" not in out
    rows = json.loads(run(workbench_cmd, "data", "ls", "--json", home=synth_home).stdout)
    assert all(r["first"].endswith("-05:00") for r in rows)


def test_synth_with_other_days_is_refused_not_spliced(workbench_cmd, tmp_path):
    """The issue's splice: `data synth --seed 7` again with another --days joined two paths."""
    daily = ["data", "synth", "--symbols", "3", "--timeframe", "1Day", "--seed", "7", "--end", END]
    run(workbench_cmd, *daily, "--days", "20", home=tmp_path)
    before = tree_digest(tmp_path / "data" / "bars")
    proc = run(workbench_cmd, *daily, "--days", "30", home=tmp_path, check=False)
    assert proc.returncode == 3, proc.stderr
    refused = [line for line in proc.stdout.splitlines() if line.startswith("REFUSED ")]
    assert len(refused) == 3 and all("another series" in line for line in refused)
    assert "refused for" in proc.stderr and tree_digest(tmp_path / "data" / "bars") == before
    proc = run(workbench_cmd, *daily, "--days", "30", "--replace", home=tmp_path)
    assert proc.stdout.count("REPLACED ") == 3 and "trash" in proc.stdout
    rows = json.loads(run(workbench_cmd, "data", "ls", "--json", home=tmp_path).stdout)
    assert [r["rows"] for r in rows] == [30, 30, 30]


def test_synth_far_back_is_reported_as_a_range_jump(workbench_cmd, tmp_path):
    daily = ["data", "synth", "--symbols", "2", "--timeframe", "1Day", "--days", "5"]
    run(workbench_cmd, *daily, "--end", END, home=tmp_path)
    out = run(workbench_cmd, *daily, "--end", "2020-01-03", home=tmp_path).stdout
    jumps = [line for line in out.splitlines() if line.startswith("WARNING ")]
    assert len(jumps) == 2 and all("range jump" in line and "missing" in line for line in jumps)


def test_rm_moves_a_range_and_a_symbol_aside(workbench_cmd, tmp_path):
    run(workbench_cmd, "data", "synth", "--symbols", "AAA,BBB", "--timeframe", "1Day", "--days", "10",
        "--end", END, home=tmp_path)
    out = run(workbench_cmd, "data", "rm", "AAA", "--timeframe", "1Day", "--start", "2025-12-30",
              "--end", "2025-12-31", home=tmp_path).stdout
    assert "AAA: removed 2 1Day bars" in out and "moved: " in out
    moved = [Path(line.split("moved: ", 1)[1]) for line in out.splitlines() if line.startswith("moved: ")]
    assert moved and all(p.exists() and "trash" in p.parts for p in moved)
    run(workbench_cmd, "data", "rm", "BBB", home=tmp_path)
    rows = json.loads(run(workbench_cmd, "data", "ls", "--json", home=tmp_path).stdout)
    assert [(r["symbol"], r["rows"]) for r in rows] == [("AAA", 8)]
    assert rows[0]["last"].startswith("2025-12-29")
    proc = run(workbench_cmd, "data", "rm", "BBB", home=tmp_path, check=False)
    assert proc.returncode == 3 and "nothing to remove" in proc.stderr


def _issue_csv(tmp_path: Path) -> Path:
    """Thirty good minute bars and issue 12's bars that cannot be bars, in time order."""
    rows = ["timestamp,open,high,low,close,volume"]
    start = pd.Timestamp("2024-03-04 14:30Z")
    rows += [f"{(start + pd.Timedelta(minutes=m)).isoformat()},10,10,10,10,100" for m in range(30)]
    rows += ["2024-03-04T15:30:17+00:00,10,10,10,10,100",  # off the minute grid
             "2024-03-04T16:00:00+00:00,1e308,1e308,1e308,1e308,100",
             "2024-03-09T15:00:00+00:00,10,10,10,10,100",  # a Saturday
             "2024-03-10T03:00:00+00:00,10,10,10,10,100",  # 03:00 UTC on a Sunday
             "2199-03-04T16:00:00+00:00,10,10,10,10,100"]
    path = tmp_path / "issue12.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_import_quarantines_what_cannot_be_a_bar_and_refuses_a_wrong_timeframe(tmp_path):
    csv = _issue_csv(tmp_path)
    home = {"WORKBENCH_HOME": str(tmp_path)}
    proc = wb_inline("data", "import", csv, "-s", "AAA", "-t", "1Min", "--json", env=home)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["written"] == 30
    assert report["quarantined"] == {"off_timeframe_grid": 1, "absurd_magnitude": 1,
                                     "not_a_session": 2, "in_the_future": 1}
    good = tmp_path / "good.csv"
    good.write_text("\n".join(csv.read_text().splitlines()[:31]) + "\n")  # minute bars only
    for label in ("7Min", "1Day"):
        proc = wb_inline("data", "import", good, "-s", "BBB", "-t", label, env=home)
        assert proc.returncode == 3 and "REFUSED BBB: refused" in proc.stdout
        assert proc.stderr.startswith("error: refused for BBB") and proc.stderr.count("\n") == 1
    listing = json.loads(wb_inline("data", "ls", "--json", env=home).stdout)
    assert [(r["symbol"], r["timeframe"]) for r in listing] == [("AAA", "1Min")]


@pytest.mark.parametrize("end, message", [
    ("2199-01-01", "after the last completed NYSE session"),
    ("9999-01-01", "end: cannot read '9999-01-01' as a session date"),
    ("someday", "end: cannot read 'someday' as a session date"),
    ("", "end: cannot read '' as a session date"),
    ("1999-01-04", "outside the NYSE calendar"),
])
def test_synth_refuses_an_end_that_is_not_a_past_session(tmp_path, end, message):
    proc = wb_inline("data", "synth", "-n", "1", "-d", "2", "--end", end,
                     env={"WORKBENCH_HOME": str(tmp_path)})
    assert proc.returncode in (2, 3) and message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "data" / "bars").exists()
