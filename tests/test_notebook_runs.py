"""Notebook runs: papermill on the real `workbench` kernel, real child processes, no mocks.

Parameters are checked before a kernel starts; the outcome papermill does not record (a
dead kernel, a timeout, an interrupt) is recorded; the executed notebook is kept, scrubbed of
every credential value in the environment.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import BIN, ROOT
from workbench.errors import ConfigError
from workbench.execution.params import check_parameters, notebook_parameters
from workbench.execution.run import OUTPUT, execute_run, prepare_run, run_notebook
from workbench.runs.records import load_manifest

PARAMS = 'mode = "research"\nrun_dir = None\nfast = 10  # fast length\nlabel = "x"\n'
PLOT = "import plotly.graph_objects as go\ngo.Figure(go.Scatter(y=[1, 3, 2]))"
CHILD = [sys.executable, "-m", "workbench.execution.child"]


def notebook(path: Path, *cells: str, params: str = PARAMS) -> Path:
    nb = new_notebook()
    first = new_code_cell(params)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, *(new_code_cell(c) for c in cells)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def executed(run_path: Path) -> dict:
    return json.loads((run_path / OUTPUT).read_text(encoding="utf-8"))


def outputs_text(nb: dict) -> str:
    return json.dumps([c.get("outputs", []) for c in nb["cells"]])


def child(run_dir: Path, *args: str, env: dict | None = None, timeout: float = 120):
    return subprocess.run([*CHILD, str(run_dir), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def workbench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "workbench"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=180, check=False)


# -- parameters: before any kernel ---------------------------------------------------------


def test_notebook_parameters_are_the_parameters_cell(tmp_path):
    nb = notebook(tmp_path / "p.ipynb", "print(1)")
    assert notebook_parameters(nb) == {"mode": "research", "run_dir": None, "fast": 10,
                                       "label": "x"}
    bare = notebook(tmp_path / "bare.ipynb", params="x = 1")
    bare_nb = nbformat.read(str(bare), as_version=4)
    bare_nb.cells[0].metadata["tags"] = []
    nbformat.write(bare_nb, str(bare))
    assert notebook_parameters(bare) == {}
    with pytest.raises(ConfigError, match="takes no parameter"):
        check_parameters(bare, {"x": 2})


def test_parameters_are_checked(tmp_path, monkeypatch):
    nb = notebook(tmp_path / "sma_cross.ipynb", "print(1)")
    assert check_parameters(nb, {"fast": 5, "label": ["a", {"b": None}]}) == {
        "fast": 5, "label": ["a", {"b": None}]}
    with pytest.raises(ConfigError) as e:
        check_parameters(nb, {"fsat": 5})
    assert str(e.value) == "unknown parameter 'fsat' for sma_cross.ipynb (did you mean 'fast'?)"
    for name in ("api_key", "secret", "broker_token", "password"):
        with pytest.raises(ConfigError, match="through the environment only"):
            check_parameters(nb, {name: "x"})
    with pytest.raises(ConfigError, match="label.api_key looks like a secret"):
        check_parameters(nb, {"label": {"api_key": "x"}})
    for name in ("mode", "run_dir"):
        with pytest.raises(ConfigError, match="reserved"):
            check_parameters(nb, {name: "backtest"})
    with pytest.raises(ConfigError, match="plain"):
        check_parameters(nb, {"fast": {1, 2}})
    with pytest.raises(ConfigError, match="not a finite number"):
        check_parameters(nb, {"fast": float("nan")})
    monkeypatch.setenv("ALPACA_SECRET_KEY", "sk-" + secrets.token_hex(8))
    with pytest.raises(ConfigError, match="holds a credential"):
        check_parameters(nb, {"label": "x" + os.environ["ALPACA_SECRET_KEY"]})
    with pytest.raises(ConfigError, match="no such notebook"):
        check_parameters(tmp_path / "missing.ipynb", {})


def test_a_typo_is_one_line_and_exit_2_before_any_kernel(tmp_path, workbench_home):
    nb = notebook(tmp_path / "sma_cross.ipynb", "print(1)")
    proc = workbench("run", str(nb), "--mode", "backtest", "-p", "fsat", "5")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[0] == (
        "error: unknown parameter 'fsat' for sma_cross.ipynb (did you mean 'fast'?)")
    proc = workbench("run", str(nb), "--mode", "backtest", "-p", "alpaca_secret_key", "x")
    assert proc.returncode == 2 and "environment only" in proc.stderr
    proc = workbench("run", str(nb), "--mode", "backtest", "-p", "mode", "live")
    assert proc.returncode == 2 and "reserved" in proc.stderr
    assert not (workbench_home / "runs").exists() or not any((workbench_home / "runs").iterdir())
    with pytest.raises(ConfigError, match="did you mean 'fast'"):
        prepare_run(nb, kind="backtest", mode="backtest", params={"fsat": 1})
    assert not (workbench_home / "runs").exists() or not any((workbench_home / "runs").iterdir())


def test_the_iri_grammar_is_deferred_in_the_runner_and_the_backtester_and_still_works(
        tmp_path):
    """nbformat's jsonschema would compile rfc3987_syntax's grammar (lark) at import: the
    runner and the backtester (whose vectorbt and plotly reach nbformat, in a kernel) defer
    it to the first IRI check; importing workbench.execution alone changes nothing."""
    nb = notebook(tmp_path / "p.ipynb", "print(1)")
    code = f"""
import sys
import workbench.execution
assert "rfc3987_syntax" not in sys.modules and "nbformat" not in sys.modules
import workbench.execution.modes, workbench.execution.run  # the backtester: the stand-in
assert type(sys.modules["rfc3987_syntax"]).__name__ == "_Deferred"
assert "nbformat" not in sys.modules and "lark" not in sys.modules
from workbench.execution.params import notebook_parameters
assert notebook_parameters({str(nb)!r})["fast"] == 10  # nbformat and papermill imported
import jsonschema, vectorbt  # what a kernel's backtest imports, nbformat through plotly
assert "lark" not in sys.modules, "the grammar was compiled at import"
checker = jsonschema.FormatChecker()
assert checker.conforms("https://b\u00fccher.example/x?y#z", "iri")
assert not checker.conforms("http://a b", "iri") and "lark" in sys.modules
import rfc3987_syntax
assert type(rfc3987_syntax).__name__ == "module", type(rfc3987_syntax)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


# -- runs on the real kernel ---------------------------------------------------------------


def test_a_good_run_keeps_the_executed_notebook(tmp_path, workbench_home):
    nb = notebook(tmp_path / "nbs" / "good.ipynb",
                  "import os, workbench\nprint(f'fast={fast} mode={mode} label={label}')\n"
                  "print('cwd', os.getcwd())\nprint('package', workbench.__file__)\n"
                  "print('run_dir', run_dir)",
                  PLOT)
    proc = workbench("run", str(nb), "--mode", "backtest", "-p", "fast", "5", "-p", "label",
                     "two words", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["outcome"] == "succeeded" and out["error"] is None and out["kind"] == "backtest"
    run = Path(out["path"])
    assert run.parent == workbench_home / "runs"
    m = load_manifest(run)
    assert m["outcome"] == "succeeded" and m["status"] == "finished"
    assert m["kind"] == "backtest" and m["mode"] == "backtest" and m["strategy"] == "good"
    assert m["params"] == {"fast": 5, "label": "two words"}
    assert m["notebook"]["path"] == str(nb.resolve())
    assert m["notebook"]["hash"].startswith("sha256:") and m["extra"]["notebook"] == OUTPUT
    done = executed(run)
    injected = [c for c in done["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1
    source = "".join(injected[0]["source"])
    assert 'mode = "backtest"' in source and "fast = 5" in source
    assert f'run_dir = "{run}"' in source
    text = outputs_text(done)
    assert "fast=5 mode=backtest label=two words" in text
    assert f"cwd {nb.parent}" in text  # the notebook's folder
    assert f"run_dir {run}" in text
    assert f"package {ROOT / 'workbench'}" in text  # this checkout's package in the kernel
    mimes = [k for c in done["cells"] for o in c.get("outputs", []) for k in o.get("data", {})]
    assert "application/vnd.plotly.v1+json" in mimes
    assert done["metadata"]["papermill"]["input_path"] == str(nb.resolve())
    # a plain notebook run, in process, with the defaults
    again = run_notebook(nb, kind="research", mode="research", params={})
    assert again.succeeded and again.output == again.path / OUTPUT
    assert "fast=10 mode=research label=x" in outputs_text(executed(again.path))


def test_failures_are_recorded_with_exit_codes(tmp_path):
    cases = {
        "raises": ("print('before')", "raise ValueError(f'boom at fast={fast}')"),
        "dies": ("import os\nos._exit(1)",),
        "hangs": ("import time\ntime.sleep(60)",),
    }
    runs = {name: prepare_run(notebook(tmp_path / f"{name}.ipynb", *cells), kind="backtest",
                              mode="backtest", params={"fast": 3})
            for name, cells in cases.items()}
    # a temporary folder of these runs' own (other processes start kernels in /tmp too),
    # short enough for a Unix socket's path
    private = Path(tempfile.mkdtemp(prefix="wbt-", dir="/tmp"))
    env = {**os.environ, "TMPDIR": str(private)}
    started = time.monotonic()
    raised = child(runs["raises"].path, env=env)
    died = child(runs["dies"].path, env=env)
    hung = child(runs["hangs"].path, "--timeout", "3", env=env)
    assert time.monotonic() - started < 90
    assert not list(private.glob("workbench-kernel-*"))  # each run removed its sockets
    private.rmdir()
    assert raised.returncode == 1, raised.stderr
    assert raised.stderr.strip().splitlines()[-1] == (
        f"run {runs['raises'].run_id}: failed: ValueError: boom at fast=3")
    m = load_manifest(runs["raises"].path)
    assert (m["outcome"], m["error"]) == ("failed", "ValueError: boom at fast=3")
    assert "before" in outputs_text(executed(runs["raises"].path))
    assert "boom at fast=3" in outputs_text(executed(runs["raises"].path))  # the traceback

    assert died.returncode == 1, died.stderr
    m = load_manifest(runs["dies"].path)
    assert (m["outcome"], m["error"]) == ("failed", "kernel died")
    assert died.stderr.strip().splitlines()[-1].endswith(": failed: kernel died")
    assert (runs["dies"].path / OUTPUT).exists()

    assert hung.returncode == 124, hung.stderr
    m = load_manifest(runs["hangs"].path)
    assert m["outcome"] == "timeout" and "3 s timeout" in m["error"]
    # a finished record is not run again
    again = child(runs["raises"].path)
    assert again.returncode == 2 and "has ended" in again.stderr


def test_workbench_run_exits_non_zero_on_a_failed_run(tmp_path):
    nb = notebook(tmp_path / "bad.ipynb", "raise RuntimeError('nope')")
    proc = workbench("run", str(nb), "--mode", "research")
    assert proc.returncode == 1, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("failed (RuntimeError: nope): record ")
    assert load_manifest(Path(line.split("record ", 1)[1]))["outcome"] == "failed"


def test_a_canary_secret_appears_in_no_file_of_the_run(tmp_path):
    canary = "canary-" + secrets.token_hex(12)
    api = "apikey-" + secrets.token_hex(12)
    nb = notebook(
        tmp_path / "leak.ipynb",
        "import os, sys\nkey = os.environ['ALPACA_SECRET_KEY']\nprint('stdout', key)\n"
        "print('stderr', key, file=sys.stderr)\nos.write(2, ('fd ' + key + '\\n').encode())\n"
        "{'key': key, os.environ['ALPACA_API_KEY']: 1}",
        "from IPython.display import HTML\nHTML(f'<b>{key}</b>')",
        "raise RuntimeError('rejected with ' + key)")
    record = prepare_run(nb, kind="backtest", mode="paper", params={"label": "fine"})
    env = {**os.environ, "ALPACA_SECRET_KEY": canary, "ALPACA_API_KEY": api}
    proc = child(record.path, env=env)
    assert proc.returncode == 1
    assert canary not in proc.stdout + proc.stderr and api not in proc.stdout + proc.stderr
    assert "fd **********" in proc.stderr  # the kernel's own output, forwarded, scrubbed
    m = load_manifest(record.path)
    assert m["outcome"] == "failed" and m["error"] == "RuntimeError: rejected with **********"
    text = outputs_text(executed(record.path))
    assert "stdout **********" in text and "<b>**********</b>" in text
    files = [p for p in record.path.rglob("*") if p.is_file()]
    assert len(files) >= 2
    for path in files:
        data = path.read_bytes()
        assert canary.encode() not in data and api.encode() not in data, path


def test_the_output_notebook_shows_progress_while_running(tmp_path):
    nb = notebook(tmp_path / "slow.ipynb",
                  "import os, time\nprint('kernel', os.getpid(), flush=True)\n"
                  "for i in range(40):\n    print('tick', i, flush=True)\n    time.sleep(0.5)")
    record = prepare_run(nb, kind="session", mode="paper", params={})
    proc = subprocess.Popen([*CHILD, str(record.path), "--autosave", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, seen = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "tick 3" not in seen:
            time.sleep(0.5)
            if (record.path / OUTPUT).exists():
                seen = (record.path / OUTPUT).read_text(encoding="utf-8")
        assert "tick 3" in seen and proc.poll() is None  # saved while the cell still runs
        partial = nbformat.reads(seen, as_version=4)  # a whole notebook, mid-cell
        assert partial.cells[-1].metadata.papermill["status"] == "running"
        assert "tick 39" not in seen
        assert load_manifest(record.path)["status"] == "running"
        kernel = int(seen.split("kernel ", 1)[1].split("\\n", 1)[0].split()[0])
        proc.send_signal(signal.SIGTERM)  # ends the run as interrupted, kernel included
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert load_manifest(record.path)["outcome"] == "interrupted"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(kernel):
        time.sleep(0.2)
    assert not _alive(kernel), "the kernel outlived its run"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().split(") ", 1)[1][0] != "Z"


FINISH = ("from workbench.clock import LiveClock\nfrom workbench.runs.records import RunRecord\n"
          "RunRecord.open(run_dir, LiveClock()).finish({outcome!r}, error={error!r})")


def test_a_record_the_kernel_finished_keeps_its_outcome_unless_papermill_failed(tmp_path):
    halted = run_notebook(notebook(tmp_path / "halts.ipynb",
                                   FINISH.format(outcome="halted", error="risk: daily loss")),
                          kind="session", mode="paper", params={})
    assert (halted.outcome, halted.error) == ("halted", "risk: daily loss")
    then_raises = run_notebook(notebook(tmp_path / "then.ipynb",
                                        FINISH.format(outcome="succeeded", error=None),
                                        "raise RuntimeError('after the session')"),
                               kind="session", mode="paper", params={})
    assert (then_raises.outcome, then_raises.error) == ("failed",
                                                        "RuntimeError: after the session")
    m = load_manifest(then_raises.path)
    assert m["extra"]["recorded_outcome"] == "succeeded"
    assert then_raises.output is not None


def test_execute_run_refuses_what_is_not_a_prepared_notebook_run(tmp_path, workbench_home):
    from workbench.clock import LiveClock
    from workbench.runs.records import RunRecord

    plain = RunRecord.create("backtest", "x", {}, "backtest", None, LiveClock())
    with pytest.raises(ConfigError, match="not a notebook run"):
        execute_run(plain.path)
    with pytest.raises(ConfigError, match="no run record"):
        execute_run(tmp_path / "nowhere")
    proc = child(tmp_path / "nowhere")
    assert proc.returncode == 2 and proc.stderr.startswith("error: no run record")


def test_a_missing_kernel_fails_the_run_with_the_fix(tmp_path):
    nb = notebook(tmp_path / "k.ipynb", "print(1)")
    run = run_notebook(nb, kind="research", mode="research", kernel="no-such-kernel")
    assert run.outcome == "failed"
    assert run.error == ("no Jupyter kernel named 'no-such-kernel' "
                         "(install it: workbench kernel install)")


def test_a_notebook_edited_after_prepare_does_not_run(tmp_path):
    nb = notebook(tmp_path / "edited.ipynb", "open('ran', 'w').write('yes')")
    record = prepare_run(nb, kind="backtest", mode="backtest", params={})
    notebook(nb, "open('ran', 'w').write('edited')")
    proc = child(record.path)
    assert proc.returncode == 1
    m = load_manifest(record.path)
    assert m["outcome"] == "failed" and "notebook changed after the run was prepared" in m["error"]
    assert not (tmp_path / "ran").exists()


# -- research-only cells ---------------------------------------------------------------


def research_notebook(path: Path, *cells: tuple[str, bool]) -> Path:
    """A notebook whose cells after the parameters are (source, tagged research)."""
    notebook(path, *(source for source, _ in cells))
    nb = nbformat.read(str(path), as_version=4)
    for cell, (_, research) in zip(nb.cells[1:], cells, strict=True):
        if research:
            cell.metadata["tags"] = ["research"]
    nbformat.write(nb, str(path))
    return path


def test_research_cells_are_what_a_mode_skips_and_part_of_the_hash(tmp_path):
    from workbench.execution.hashing import hash_of, read_notebook, research_cells

    plain = read_notebook(notebook(tmp_path / "plain.ipynb", "x = 1", "print(x)"))
    tagged = read_notebook(research_notebook(tmp_path / "tagged.ipynb", ("x = 1", True),
                                             ("print(x)", False)))
    assert research_cells(plain, "backtest") == []  # no tag is ever required
    assert research_cells(tagged, "backtest") == research_cells(tagged, "paper") == [1]
    assert research_cells(tagged, "research") == []
    # the tag decides what a session runs: tagging a cell is a change of the notebook's code
    assert hash_of(tagged) != hash_of(plain)
    tagged["cells"][1]["metadata"]["tags"] = ["other"]
    assert hash_of(tagged) == hash_of(plain)


def test_research_cells_are_skipped_outside_mode_research(tmp_path):
    nb = research_notebook(tmp_path / "nbs" / "research.ipynb",
                           ("print('research ran')\nraise RuntimeError('research ran')", True),
                           ("print(f'work of mode {mode}')", False))
    proc = workbench("run", str(nb), "--mode", "backtest", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["outcome"] == "succeeded" and out["skipped"] == [1]
    run = Path(out["path"])
    assert load_manifest(run)["notebook"]["skipped_cells"] == [1]
    done = executed(run)
    # the executed notebook: the parameters, papermill's injected cell, then ours
    skipped, work = done["cells"][2], done["cells"][3]
    assert "raise RuntimeError" in "".join(skipped["source"])  # its source is kept
    assert skipped["execution_count"] is None and skipped["metadata"]["papermill"]["status"] == (
        "skipped")
    assert [o["output_type"] for o in skipped["outputs"]] == ["stream"]
    assert "".join(skipped["outputs"][0]["text"]).startswith(
        "[workbench] skipped in mode backtest: this cell is tagged 'research'")
    assert "work of mode backtest" in outputs_text({"cells": [work]})
    assert "research ran" not in outputs_text(done)
    # in mode research it runs (and here raises)
    ran = run_notebook(nb, kind="research", mode="research")
    assert (ran.outcome, ran.error) == ("failed", "RuntimeError: research ran")
    assert load_manifest(ran.path)["notebook"]["skipped_cells"] == [] and ran.skipped == ()


def test_a_name_only_a_skipped_cell_defines_fails_saying_it_was_skipped(tmp_path):
    nb = research_notebook(tmp_path / "uses.ipynb", ("print('ok')", True),
                           ("result = 41", True), ("print(result + 1)", False))
    run = run_notebook(nb, kind="backtest", mode="backtest")
    assert run.outcome == "failed" and run.skipped == (1, 2)
    assert run.error == ("NameError: name 'result' is not defined (cell 2, which names "
                         "'result', tagged 'research', skipped in mode backtest: "
                         "research-only cells run in mode research only)")
    assert load_manifest(run.path)["error"] == run.error


# -- the outcome's old name ----------------------------------------------------------------


def test_an_old_ok_outcome_reads_as_succeeded(workbench_home):
    from workbench.journal import catalog as catalog_module
    from workbench.journal.catalog import catalog
    from workbench.model import outcomes
    from workbench.runs import records
    from workbench.runs.records import list_runs

    # one definition of the old names, read by the records and by the catalog below them
    assert records.LEGACY_OUTCOMES is catalog_module.LEGACY_OUTCOMES is outcomes.LEGACY_OUTCOMES

    run = workbench_home / "runs" / "20250101T000000Z-session-old-abcdef"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({
        "run_id": run.name, "kind": "session", "mode": "paper", "strategy": "old",
        "status": "finished", "outcome": "ok", "started_at": "2025-01-01T00:00:00+00:00"}))
    assert load_manifest(run)["outcome"] == "succeeded"
    assert list_runs()["outcome"].tolist() == ["succeeded"]
    con = catalog()
    try:
        assert con.execute("SELECT outcome FROM runs").fetchall() == [("succeeded",)]
    finally:
        con.close()
    proc = workbench("status", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["outcome"] == "succeeded"


def test_a_finished_run_does_not_wait_for_its_kernels_teardown(tmp_path):
    """The kernel is asked to shut down and its exit handlers run, but the run ends without
    waiting for them (jupyter_client would wait, then SIGTERM a slow teardown)."""
    marker = tmp_path / "exited.txt"
    nb = notebook(tmp_path / "slow_exit.ipynb", textwrap_exit(marker))
    run = prepare_run(nb, kind="backtest", mode="backtest", params={"fast": 3})
    done = child(run.path)
    assert done.returncode == 0, done.stderr
    assert load_manifest(run.path)["outcome"] == "succeeded"
    assert not marker.exists()  # the runner did not wait for the 4 s teardown...
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.read_text().startswith("exit handlers ran")  # ...and did not cut it short
    pid = int(marker.read_text().split()[-1])
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"kernel {pid} still alive")


def textwrap_exit(marker: Path) -> str:
    return ("import atexit, os, time\n"
            "def _slow_exit():\n"
            "    time.sleep(4)\n"
            f"    open({str(marker)!r}, 'w').write(f'exit handlers ran {{os.getpid()}}')\n"
            "atexit.register(_slow_exit)\n")
