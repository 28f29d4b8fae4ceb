"""The main job on the embedded defaults (``make demo``): issue 9's whole path, no credentials.

1. **data**: seeded synthetic bars on the NYSE calendar into the store: daily bars for the
   research, minute bars for the replayed paper day;
2. **research**: ``notebooks/strategies/sma_cross.ipynb`` executed by papermill as a
   backtest (its parameters cell's values) and as a sweep of ``fast`` x ``slow``, on the
   daily bars, the two runs concurrently;
3. **evidence**: what the paper gates (:mod:`workbench.deploy.gates`) judge, of the same
   notebook code and of the parameters promoted next (the sweep's best pair on the minute
   bars): a backtest, a walk-forward and a parity run, concurrently;
4. **promote**: ``workbench promote NOTEBOOK --to paper -p ...`` itself (the report printed,
   a deployment registered);
5. **session**: the deployment's paper session, replaying the last stored minute day on the
   simulated broker, the notebook run in mode ``paper`` under the supervisor
   (:class:`workbench.deploy.supervisor.Supervisor`);
6. **records**: where each record is and how to look at it.

Every notebook run is :func:`workbench.execution.run.prepare_run` (parameters checked, the
record created) then :func:`~workbench.execution.run.execute_run` in a child process
(``python -m workbench.execution.child``), which is :func:`~workbench.execution.run.
run_notebook` split in two so that independent runs overlap. Each step prints one progress
line with its elapsed time; a failing step raises :class:`DemoFailed`: one line naming the
record to look at.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pandas as pd

from workbench import paths
from workbench.errors import WorkbenchError

__all__ = ["DEMO_CONSTRAINT", "DEMO_END", "DEMO_GATES", "DEMO_GRID", "DEMO_NOTEBOOK",
           "DEMO_SEED", "DEMO_SYMBOLS", "DemoFailed", "run_demo"]

DEMO_SYMBOLS = 20
DEMO_SEED = 7
DEMO_MINUTE_DAYS = 5
DEMO_DAILY_DAYS = 500
DEMO_END = "2025-12-31"  # fixed: the same bars, figures and README examples on every day
DEMO_NOTEBOOK = Path("notebooks/strategies/sma_cross.ipynb")
DEMO_GRID = {"fast": [5, 10, 15, 20], "slow": [20, 30, 40, 50, 60]}
DEMO_CONSTRAINT = "fast < slow"
DEMO_TIMEFRAME = "1Min"  # what is promoted and traded: the replayed day is minute bars
DEMO_FOLDS = {"train": 780, "test": 390}  # walk-forward: two sessions in, one out
# synthetic prices are a random walk: no strategy earns an out-of-sample Sharpe on them, so
# the demo's promotion opens these two thresholds (only for itself, said when it runs)
DEMO_GATES = {"WORKBENCH__GATES__MIN_OOS_SHARPE": "-100",
              "WORKBENCH__GATES__MAX_OOS_DRAWDOWN": "1"}

Echo = Callable[[str], None]
CHILD_LOG = "child.log"  # a concurrent run's child process output, in its record


class DemoFailed(WorkbenchError):
    """A step of the demo failed; the message names the record to look at."""

    exit_code = 1


@dataclass(frozen=True)
class Run:
    """A finished notebook run of the demo: its record and what the manifest says."""

    kind: str
    path: Path
    outcome: str
    error: str | None

    @property
    def notebook(self) -> Path:
        return self.path / "notebook.ipynb"

    def results(self, name: str) -> Any:
        path = self.path / "results" / name
        return json.loads(path.read_text()) if name.endswith(".json") else pd.read_parquet(path)


def run_demo(echo: Echo = print, end: str | None = None) -> dict:
    """Run the demo (see the module doc), printing as it goes; returns what it made."""
    from workbench.data.store import Store

    started = time.perf_counter()
    store = Store()
    out: dict[str, Any] = {"runs": {}}
    with _Step(echo, "data", started) as step:
        out["store"] = _data(step, store, pd.Timestamp(end or DEMO_END))
    with _Step(echo, "research", started) as step:
        out["runs"].update(_research(step))
    best = out["runs"]["sweep"].results("best.json")["params"]
    params = {"timeframe": DEMO_TIMEFRAME, **best}
    with _Step(echo, "evidence", started) as step:
        out["runs"].update(_evidence(step, params))
    with _Step(echo, "promote", started) as step:
        out["deployment"] = _promote(step, params)
    with _Step(echo, "session", started) as step:
        from workbench.deploy.registry import Registry

        out["runs"]["session"] = _session(step, store, Registry(), out["deployment"])
    _where(echo, out, started)
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


class _Step:
    """One step: its detail lines, then one progress line with its elapsed time."""

    def __init__(self, echo: Echo, name: str, started: float) -> None:
        self.echo, self.name, self.started = echo, name, started
        self.lines: list[str] = []
        self.summary = ""

    def __enter__(self) -> Self:
        self.t0 = time.perf_counter()
        return self

    def say(self, line: str) -> None:
        self.lines.append(line)

    def __exit__(self, kind, error, tb) -> None:
        took, total = time.perf_counter() - self.t0, time.perf_counter() - self.started
        state = "done" if kind is None else "FAILED"
        self.echo(f"[{total:6.1f} s] {self.name}: {state} in {took:.1f} s"
                  f"{'; ' + self.summary if self.summary and kind is None else ''}")
        for line in self.lines:
            self.echo(f"    {line}")


# -- the steps ---------------------------------------------------------------------------


def _data(step: _Step, store, end: pd.Timestamp) -> Path:
    from workbench.data import calendar
    from workbench.data.sources import synth_into_store

    for timeframe, days in (("1Min", DEMO_MINUTE_DAYS), ("1Day", DEMO_DAILY_DAYS)):
        step.say(synth_into_store(store, DEMO_SYMBOLS, days, timeframe, DEMO_SEED, end).summary())
    listing = store.ls()
    for tf, group in listing.groupby("timeframe"):
        first = calendar.to_display(group["first"].min())
        last = calendar.to_display(group["last"].max())
        step.say(f"{tf}: {len(group)} symbols, {int(group['rows'].sum()):,} bars, "
                 f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} New York, "
                 f"under {store.root / 'bars' / f'timeframe={tf}'}")
    step.summary = (f"synthetic bars of {DEMO_SYMBOLS} symbols (seed {DEMO_SEED}) ending "
                    f"{end:%Y-%m-%d} in {store.root}")
    return store.root


def _research(step: _Step) -> dict[str, Run]:
    runs = _concurrently(step, {
        "backtest": ("backtest", {}),
        "sweep": ("sweep", {"grid": DEMO_GRID, "constraint": DEMO_CONSTRAINT}),
    })
    stats = runs["backtest"].results("stats.parquet")
    book = stats[stats["scope"] == "book"].iloc[0]
    step.say(f"backtest, the parameters cell's values on the daily bars: return "
             f"{book['total_return']:+.2%}, Sharpe {book['sharpe']:.2f}, max drawdown "
             f"{book['max_drawdown']:.2%}, {int(book['trades'])} trades")
    step.say(f"  record: {runs['backtest'].path}")
    best = runs["sweep"].results("best.json")
    shown = ", ".join(f"{k}={v}" for k, v in best["params"].items())
    step.say(f"sweep, {' x '.join(DEMO_GRID)} where {DEMO_CONSTRAINT} ({best['n_combos']} "
             f"pairs): best by {best['metric']}: {shown}, Sharpe "
             f"{best['metrics']['sharpe']:.2f}; DSR {best['dsr']:.3f}, PBO {best['pbo']:.3f}")
    step.say(f"  record: {runs['sweep'].path}")
    step.summary = f"sma_cross backtested and swept on the daily bars; best {shown}"
    return runs


def _evidence(step: _Step, params: dict) -> dict[str, Run]:
    runs = _concurrently(step, {
        "backtest_1min": ("backtest", params),
        "walk_forward": ("walk_forward", {**params, "grid": DEMO_GRID,
                                          "constraint": DEMO_CONSTRAINT, **DEMO_FOLDS}),
        "parity": ("parity", params),
    })
    oos = runs["walk_forward"].results("oos_stats.json")
    parity = runs["parity"].results("parity.json")
    step.say(f"backtest of {_shown(params)}: record {runs['backtest_1min'].path}")
    step.say(f"walk_forward ({DEMO_FOLDS['train']} bars in, {DEMO_FOLDS['test']} out, "
             f"{oos['folds']} folds): out-of-sample Sharpe {oos['sharpe']:.2f}, max drawdown "
             f"{oos['max_drawdown']:.2%}: record {runs['walk_forward'].path}")
    step.say(f"parity: {parity['compared']:,} signals compared, {parity['mismatches']} "
             f"mismatches: record {runs['parity'].path}")
    step.summary = f"what the paper gates judge, of {_shown(params)}"
    return runs


def _promote(step: _Step, params: dict):
    """``workbench promote`` itself, with the demo's two thresholds opened."""
    from workbench.deploy.registry import Registry
    from workbench.execution.hashing import notebook_hash

    notebook = paths.project_root() / DEMO_NOTEBOOK
    registry = Registry()
    code = notebook_hash(notebook)
    for dep in _deployments(registry, code, params):  # an earlier demo's: a twin is refused
            registry.retire(dep.id, "replaced by a new `workbench demo` run")
            step.say(f"retired {dep.id}, an earlier demo's deployment of the same code and "
                     "parameters (one active deployment of each)")
    flags = [a for k, v in params.items() for a in ("-p", k, _flag(v))]
    step.say("thresholds: " + ", ".join(f"{k.split('__')[-1].lower()} {v}"
                                        for k, v in DEMO_GATES.items())
             + " for this promotion only (synthetic prices are a random walk: nothing earns "
               "an out-of-sample Sharpe on them); yours are [gates] in workbench.toml")
    argv = [_workbench(), "promote", str(DEMO_NOTEBOOK), "--to", "paper", *flags]
    step.say("$ workbench " + " ".join(argv[1:]))
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=paths.project_root(),
                          env={**os.environ, **DEMO_GATES}, timeout=300, check=False)
    for line in proc.stdout.splitlines():
        step.say(f"  {line}")
    if proc.returncode != 0:
        error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DemoFailed(f"promote: {error} (the report: {paths.deployments_dir() / 'reports'})")
    deps = _deployments(registry, code, params)
    if len(deps) != 1:
        raise DemoFailed(f"promote: passed, but {len(deps)} active deployments of this code and "
                         f"parameters in {registry.root}")
    step.summary = f"deployment {deps[0].id} ({_shown(params)}, {deps[0].broker} broker)"
    return deps[0]


def _deployments(registry, code: str, params: dict) -> list:
    """The active paper deployments of this notebook code with these parameters."""
    return [d for d in registry.list("active") if d.notebook_hash == code and d.mode == "paper"
            and all(d.parameters.get(k) == v for k, v in params.items())]


def _session(step: _Step, store, registry, deployment) -> Run:
    """The deployment's paper session of the last stored minute day, under the supervisor:
    what ``workbench supervise DEPLOYMENT --date DAY --speed max`` runs."""
    from workbench.deploy.launcher import supervise
    from workbench.session.demo import last_minute_session, session_figures, session_lines

    day = f"{last_minute_session(store):%Y-%m-%d}"
    result = supervise(registry, deployment.id, date=day, speed="max",
                       on_start=lambda _sup, account: account and step.say(account))
    run = _finished("session", result.run_dir)
    if not result.ok or run.outcome != "succeeded":
        raise DemoFailed(f"session: run {result.run_dir.name} {run.outcome}: "
                         f"{run.error or result.summary()}; look at "
                         f"{result.run_dir / 'session.log'} and {run.notebook}")
    step.say(f"replayed {day} at speed max, {_shown(deployment.parameters)}, on the "
             f"deployment's simulated account {registry.root / deployment.id / 'broker.sqlite'}")
    for line in session_lines(session_figures(result.run_dir)):
        step.say(line)
    step.say(f"record: {result.run_dir} (journal {result.run_dir / 'events'}/*.jsonl, "
             f"supervisor log {result.run_dir / 'session.log'})")
    step.say(f"the same from the command line: workbench supervise {deployment.id} "
             f"--date {day} --speed max")
    step.summary = f"a paper session of {deployment.id}, supervised: {run.outcome}"
    return run


def _where(echo: Echo, out: dict, started: float) -> None:
    runs: dict[str, Run] = out["runs"]
    total = time.perf_counter() - started
    echo(f"[{total:6.1f} s] records: every run is a folder under {paths.runs_dir()}")
    for name, run in runs.items():
        echo(f"    {name:<13} {run.outcome:<9} {run.path}")
    echo(f"    deployment    {out['deployment'].status:<9} "
         f"{paths.deployments_dir() / (out['deployment'].id + '.json')}")
    echo("    each run folder holds notebook.ipynb (the executed notebook, with its plots), "
         "manifest.json (parameters, code hash, outcome) and results/; the session's journal "
         "is its events/*.jsonl")
    echo("  look at them:")
    echo("    workbench status                              the sessions: outcome, P&L, "
         "positions, risk state")
    echo("    workbench deployments                         the deployment; "
         "`workbench schedule --dry-run` plans its sessions")
    session = runs["session"].notebook
    echo(f"    jupyter lab {session}   the executed notebook, with its plots "
         "(each run has one)")
    given = os.environ.get("WORKBENCH_HOME")  # the records are there: so must the server look
    home = f"WORKBENCH_HOME={shlex.quote(given)} " if given else ""
    echo(f"    {home}workbench dashboard   the monitor in a browser (Voila, 127.0.0.1): open the "
         "URL it prints, http://127.0.0.1:8866/voila/render/monitor.ipynb?token=<its token>")


# -- plumbing ----------------------------------------------------------------------------


def _concurrently(step: _Step, jobs: dict[str, tuple[str, dict]]) -> dict[str, Run]:
    """Prepare every run here (parameters checked before any kernel), execute each in a
    child process, all at once; any run that did not succeed fails the step."""
    from workbench.execution.run import prepare_run

    notebook = paths.project_root() / DEMO_NOTEBOOK
    records = {name: prepare_run(notebook, kind=mode, mode=mode, params=params)
               for name, (mode, params) in jobs.items()}
    children = {}
    for name, rec in records.items():
        with open(rec.path / CHILD_LOG, "ab") as log:  # the child's own line, the kernel's
            children[name] = subprocess.Popen(
                [sys.executable, "-m", "workbench.execution.child", str(rec.path)],
                stdout=log, stderr=subprocess.STDOUT)
    try:
        for child in children.values():
            child.wait()
    except BaseException:
        for child in children.values():  # SIGTERM: each child records "interrupted"
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            child.wait()
        raise
    runs = {name: _finished(jobs[name][0], rec.path) for name, rec in records.items()}
    for name, run in runs.items():
        if run.outcome != "succeeded":
            raise DemoFailed(f"{step.name}: the {run.kind} run {run.path.name} {run.outcome}: "
                             f"{run.error or _last_line(run.path / CHILD_LOG)}; look at "
                             f"{run.notebook if run.notebook.exists() else run.path / CHILD_LOG}")
    return runs


def _finished(kind: str, path: Path) -> Run:
    from workbench.runs.records import load_manifest

    manifest = load_manifest(path)
    return Run(kind, path, str(manifest.get("outcome") or manifest.get("status")),
               manifest.get("error"))


def _workbench() -> str:
    """The ``workbench`` command next to this interpreter (the venv's)."""
    command = Path(sys.executable).parent / "workbench"
    if not command.is_file():
        raise DemoFailed(f"no `workbench` command next to {sys.executable}: install the "
                         "package (make install)")
    return str(command)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"


def _flag(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _shown(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())
