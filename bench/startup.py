"""Cold starts: what a user feels before any work, as ratios to a bare interpreter start.

    python bench/startup.py                      # this checkout
    python bench/startup.py --before 9c7a6e7     # and an older commit, runs interleaved
    python bench/startup.py --felt-only          # only the three user-felt times (below)
    python bench/startup.py --no-demo            # all but the demo (its ~2 minutes)

First the three times a user feels, each against its target (issue 11), measured with the
same ``python -c pass`` baseline: (a) a bad parameter reported, ``workbench backtest
notebooks/strategies/sma_cross.ipynb -p fsat 5`` and ``workbench sweep ... --grid
fsat=5,10`` (target 1.5 s; each must exit non-zero with its one error line); (b) ``workbench
backtest`` of that notebook on 20 symbols x 500 daily bars written by ``workbench data
synth`` into a temporary WORKBENCH_HOME, command to exit (target 5 s; the first run after a
change to the compiled core also compiles it, so the first run is shown apart); (c)
``workbench demo`` in another temporary home, against the figure README.md states (its
sentence is printed, and whether the time falls in its range).

Then the import probes. Each tree's notebook runs use its own kernelspec (installed into a
private Jupyter folder for the measurement), not the one last installed in ``.venv``.

Each probe is a fresh process (a cold start of Python, warm disk cache and bytecode):
``python -c pass`` is the baseline, then ``import workbench``, the session's loop module
(``workbench.session.runner``; ``workbench.runs.session`` before the split), the order
manager (``workbench.orders.manager``), ``workbench --help``, the notebook runner's imports
(``workbench.execution.scrub``) and ``import nbformat`` alone. Each probe also reports
which heavy libraries the import loaded. Probes of both trees alternate run by run, so a
noisy machine slows both alike; the ratios to the baseline are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "vectorbt", "duckdb", "plotly", "pyarrow", "talib", "nbformat", "pydantic",
         "lark")

_REPORT = ("import json, sys; "
           "print(json.dumps({m: m in sys.modules for m in %r} | {'_n': len(sys.modules)}))")


def _probes(tree: Path) -> dict[str, str]:
    session = ("workbench.session.runner" if (tree / "workbench/session/runner.py").exists()
               else "workbench.runs.session")
    return {
        "python -c pass": "pass",
        "import workbench": "import workbench",
        f"import {session}": f"import {session}",
        "import workbench.orders.manager": "import workbench.orders.manager",
        "workbench --help": ("import sys; from workbench.cli import main; "
                             "sys.argv = ['workbench', '--help']; main()"),
        # the notebook runner's imports (nbformat, papermill, nbclient, jupyter_client), and
        # nbformat alone, as any process outside the runner imports it
        "import workbench.execution.scrub": "import workbench.execution.scrub",
        "import nbformat": "import nbformat",
    }


_JUPYTER: dict[Path, str] = {}  # tree -> a private Jupyter data folder with its kernelspec


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), WORKBENCH_HOME=str(tree))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if tree in _JUPYTER:  # each tree's own kernelspec, not the one last installed in .venv
        env.update(JUPYTER_DATA_DIR=_JUPYTER[tree], JUPYTER_PATH="", JUPYTER_PREFER_ENV_PATH="0")
    return env


def _own_kernelspec(tree: Path, folder: Path) -> None:
    """Install ``tree``'s kernelspec into ``folder``, used by every run of that tree."""
    folder.mkdir(parents=True)
    _JUPYTER.pop(tree, None)
    env = dict(_env(tree), JUPYTER_DATA_DIR=str(folder), JUPYTER_PATH="",
               JUPYTER_PREFER_ENV_PATH="0")
    subprocess.run([sys.executable, "-c", "from workbench.cli import main; main()", "kernel",
                    "install", "--user"], env=env, cwd=tree, check=True, capture_output=True)
    _JUPYTER[tree] = str(folder)


def _once(tree: Path, code: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=_env(tree), cwd=tree,
                          capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode not in (0,) and "--help" not in code:
        raise SystemExit(f"probe failed in {tree}: {code}\n{proc.stderr[-2000:]}")
    return took


def _loaded(tree: Path, code: str) -> dict:
    if code == "pass" or "--help" in code:
        return {}
    out = subprocess.run([sys.executable, "-c", code + "; " + _REPORT % (HEAVY,)],
                         env=_env(tree), cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _checkout(rev: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(into), rev],
                   check=True, capture_output=True)
    return into


def measure(trees: dict[str, Path], runs: int) -> dict[str, dict[str, dict]]:
    probes = {name: _probes(tree) for name, tree in trees.items()}
    times: dict[str, dict[str, list[float]]] = {n: {p: [] for p in probes[n]} for n in trees}
    for name, tree in trees.items():  # warm-up: bytecode written, files in the page cache
        for code in probes[name].values():
            _once(tree, code)
    for _ in range(runs):
        for name, tree in trees.items():
            for label, code in probes[name].items():
                times[name][label].append(_once(tree, code))
    result = {}
    for name, tree in trees.items():
        base = statistics.median(times[name]["python -c pass"])
        result[name] = {}
        for label, code in probes[name].items():
            med = statistics.median(times[name][label])
            result[name][label] = {"median_s": round(med, 3), "x_python": round(med / base, 1),
                                   "loads": _loaded(tree, code)}
    return result


def _print(result: dict[str, dict[str, dict]]) -> None:
    for name, rows in result.items():
        print(f"== {name}")
        for label, row in rows.items():
            loads = row["loads"]
            heavy = ", ".join(m for m in HEAVY if loads.get(m)) or "-"
            mods = f"{loads['_n']:>4} modules" if loads else " " * 12
            print(f"  {label:<40} {row['median_s']:>6.3f} s  {row['x_python']:>5.1f}x python"
                  f"  {mods}  heavy: {heavy}")
    names = list(result)
    if len(names) == 2:
        a, b = names
        print(f"== {b} / {a} (ratio of the x-python ratios; below 1 is faster)")
        for rowa, (label, rowb) in zip(result[a].values(), result[b].items()):
            print(f"  {label:<40} {rowb['x_python'] / rowa['x_python']:>5.2f}")


# -- the three user-felt times ---------------------------------------------------------
NOTEBOOK = "notebooks/strategies/sma_cross.ipynb"
TARGETS = {"bad parameter": 1.5, "backtest 20 x 500": 5.0}
SYNTH = ["data", "synth", "--symbols", "20", "--days", "500", "--timeframe", "1Day",
         "--seed", "7", "--end", "2025-12-31"]
BAD = {"backtest -p fsat 5": ["backtest", NOTEBOOK, "-p", "fsat", "5"],
       "sweep --grid fsat=5,10": ["sweep", NOTEBOOK, "--grid", "fsat=5,10"]}


CPU: dict[str, list[float]] = {}  # label -> CPU seconds of each run (the process tree)


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _workbench(tree: Path, home: Path, args: list[str], expect_ok: bool,
               label: str | None = None) -> float:
    """Seconds of ``workbench ARGS`` (the installed command's code, this tree first); its
    CPU seconds (with its kernel's: a waited-for grandchild) go to ``CPU[label]``. On a busy
    machine the wall time grows with the load, the CPU time much less: both are printed."""
    env = dict(_env(tree), WORKBENCH_HOME=str(home))
    code = "import sys; from workbench.cli import main; sys.argv = ['workbench'] + %r; main()"
    cpu, start = _cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code % (args,)], env=env, cwd=tree,
                          capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if label:
        CPU.setdefault(label, []).append(_cpu() - cpu)
    if expect_ok and args[0] == "backtest":
        record = next((line.removeprefix("record: ") for line in proc.stdout.splitlines()
                       if line.startswith("record: ")), None)
        if record:
            STEPS.setdefault(str(tree), []).append(steps(Path(record), time.time() - took,
                                                         time.time()))
    if (proc.returncode == 0) != expect_ok:
        raise SystemExit(f"workbench {' '.join(args)} exited {proc.returncode} in {tree}:\n"
                         f"{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    if not expect_ok and "error:" not in proc.stderr:
        raise SystemExit(f"workbench {' '.join(args)}: no error line\n{proc.stderr[-1500:]}")
    return took


STEPS: dict[str, list[dict[str, float]]] = {}  # tree -> each backtest run's steps


def steps(record: Path, began: float, ended: float) -> dict[str, float]:
    """Where a notebook run's seconds went, from its record: the command's start and
    checks until the record exists, until papermill starts, the kernel's start (to the first
    cell), the cells before ``wb.run`` (skipped ones cost nothing), the last cell
    (``wb.run``), papermill's end (the kernel's shutdown, the last save) and the command's
    end (its printing)."""
    from datetime import datetime

    def at(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    manifest = json.loads((record / "manifest.json").read_text())
    nb = json.loads((record / "notebook.ipynb").read_text())
    meta = nb["metadata"]["papermill"]
    cells = [c["metadata"]["papermill"] for c in nb["cells"] if c["cell_type"] == "code"
             and c["metadata"].get("papermill", {}).get("start_time")]
    last = cells[-1]
    return {"command to record created": at(manifest["started_at"]) - began,
            "record to papermill start": at(meta["start_time"]) - at(manifest["started_at"]),
            "kernel start (to the first cell)": at(cells[0]["start_time"]) - at(meta["start_time"]),
            "cells before wb.run": at(last["start_time"]) - at(cells[0]["start_time"]),
            "the last cell, wb.run": last["duration"],
            "after the last cell (kernel shutdown, save)": at(meta["end_time"]) - at(
                last["start_time"]) - last["duration"],
            "papermill end to command exit": ended - at(meta["end_time"])}


def readme_demo_claim(readme: Path) -> tuple[str, float, float] | None:
    """README's sentence on the demo's duration and its range in seconds ("N s to M s")."""
    text = " ".join(readme.read_text(encoding="utf-8").split())
    found = re.search(r"The whole demo takes .*?(\d+) s to (\d+) s measured on [^(;]*", text)
    if not found:
        return None
    return found.group(0).strip(), float(found.group(1)), float(found.group(2))


def felt(trees: dict[str, Path], runs: int, demo: bool, tmp: Path) -> dict[str, dict]:
    out: dict[str, dict] = {name: {} for name in trees}
    for name, tree in trees.items():
        home = Path(tempfile.mkdtemp(prefix="felt-", dir=tmp))
        _workbench(tree, home, SYNTH, expect_ok=True)
        first = _workbench(tree, home, ["backtest", NOTEBOOK], expect_ok=True,
                           label=f"{name}|backtest first run")
        out[name]["backtest first run"] = [first]
        out[name]["python -c pass"] = []
        out[name]["backtest 20 x 500"] = []
        for label in BAD:
            out[name][label] = []
        out[name]["_home"] = home
    for _ in range(runs):  # interleaved, as the import probes
        for name, tree in trees.items():
            home = out[name]["_home"]
            out[name]["python -c pass"].append(_once(tree, "pass"))
            for label, args in BAD.items():
                out[name][label].append(_workbench(tree, home, args, expect_ok=False,
                                                   label=f"{name}|{label}"))
            if len(out[name]["backtest 20 x 500"]) < max(1, min(runs, 3)):
                out[name]["backtest 20 x 500"].append(
                    _workbench(tree, home, ["backtest", NOTEBOOK], expect_ok=True,
                               label=f"{name}|backtest 20 x 500"))
    result = {}
    for name, tree in trees.items():
        rows = {k: v for k, v in out[name].items() if not k.startswith("_")}
        base = statistics.median(rows.pop("python -c pass"))
        result[name] = {"python -c pass": {"median_s": round(base, 3)}}
        for label, times in rows.items():
            med = statistics.median(times)
            target = TARGETS["bad parameter"] if label in BAD else TARGETS.get(label)
            cpu = CPU.get(f"{name}|{label}") or [float("nan")]
            result[name][label] = {"median_s": round(med, 2), "runs": [round(t, 2) for t in times],
                                   "x_python": round(med / base, 1), "target_s": target,
                                   "cpu_s": round(statistics.median(cpu), 2), "tree": str(tree)}
        if demo:
            home = Path(tempfile.mkdtemp(prefix="demo-", dir=tmp))
            env = dict(_env(tree), WORKBENCH_HOME=str(home))
            code = "import sys; from workbench.cli import main; sys.argv = ['workbench', 'demo']; main()"
            cpu, start = _cpu(), time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tree,
                                  capture_output=True, text=True, check=False)
            took, cpu = time.perf_counter() - start, _cpu() - cpu
            if proc.returncode != 0:
                raise SystemExit(f"workbench demo failed in {tree}:\n{proc.stderr[-2000:]}")
            claim = readme_demo_claim(tree / "README.md")
            step_lines = [line.strip() for line in proc.stdout.splitlines()
                          + proc.stderr.splitlines() if re.match(r"^\[\s*[\d.]+ s\]", line)]
            result[name]["workbench demo"] = {
                "median_s": round(took, 1), "runs": [round(took, 1)], "cpu_s": round(cpu, 1),
                "x_python": round(took / base, 1),
                "readme": claim[0] if claim else None,
                "target_s": claim[2] if claim else None,
                "within_readme": bool(claim and claim[1] * 0.8 <= took <= claim[2]),
                "steps": step_lines}
    return result


def _print_felt(result: dict[str, dict]) -> None:
    for name, rows in result.items():
        print(f"== {name}: what a user feels (baseline python -c pass "
              f"{rows['python -c pass']['median_s']:.3f} s)")
        for label, row in rows.items():
            if label == "python -c pass":
                continue
            target = row.get("target_s")
            verdict = ("" if target is None else
                       f"  target <= {target:g} s: {'met' if row['median_s'] <= target else 'NOT met'}")
            runs = ", ".join(f"{t:g}" for t in row["runs"])
            print(f"  {label:<28} {row['median_s']:>7.2f} s  {row['x_python']:>6.1f}x python"
                  f"  cpu {row['cpu_s']:>6.2f} s  (runs: {runs}){verdict}")
            if label == "backtest 20 x 500" and STEPS.get(row.get("tree", "")):
                runs_ = STEPS[row["tree"]][1:] or STEPS[row["tree"]]  # the first compiles
                print("    where it goes (median of the runs after the first):")
                for step in runs_[0]:
                    print(f"      {step:<46} {statistics.median(r[step] for r in runs_):>6.2f} s")
            if label == "workbench demo":
                print(f"    README: {row['readme'] or '(no figure found)'}")
                print(f"    within the README's range: {'yes' if row['within_readme'] else 'NO'}")
                for step in row["steps"]:
                    print(f"    {step}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", metavar="REV", help="also measure this git revision")
    parser.add_argument("--runs", type=int, default=7, help="runs per probe (default 7)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--felt-only", action="store_true",
                        help="only the three user-felt times, not the import probes")
    parser.add_argument("--no-demo", action="store_true", help="leave out `workbench demo`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-startup-") as tmp:
        trees = {}
        if args.before:
            trees[f"before ({args.before})"] = _checkout(args.before, Path(tmp) / "before")
        trees["this checkout"] = ROOT
        for n, tree in enumerate(trees.values()):
            _own_kernelspec(tree, Path(tmp) / f"jupyter-{n}")
        try:
            felt_result = felt(trees, args.runs, not args.no_demo, Path(tmp))
            result = {} if args.felt_only else measure(trees, args.runs)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(Path(tmp) / "before")], capture_output=True, check=False)
    if args.json:
        print(json.dumps({"felt": felt_result, "imports": result}, indent=2))
    else:
        _print_felt(felt_result)
        if result:
            _print(result)


if __name__ == "__main__":
    main()
