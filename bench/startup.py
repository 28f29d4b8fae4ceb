"""Cold starts: what a user feels before any work, as ratios to a bare interpreter start.

    python bench/startup.py                      # this checkout
    python bench/startup.py --before 9c7a6e7     # and an older commit, runs interleaved

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


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), WORKBENCH_HOME=str(tree))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _once(tree: Path, code: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=_env(tree), cwd=tree,
                          capture_output=True, text=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", metavar="REV", help="also measure this git revision")
    parser.add_argument("--runs", type=int, default=7, help="runs per probe (default 7)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-startup-") as tmp:
        trees = {}
        if args.before:
            trees[f"before ({args.before})"] = _checkout(args.before, Path(tmp) / "before")
        trees["this checkout"] = ROOT
        try:
            result = measure(trees, args.runs)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(Path(tmp) / "before")], capture_output=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)


if __name__ == "__main__":
    main()
