"""Kill -9 chaos: randomized kills and every named crash point, each run restarted (the
restarts killed too) until it ends, then compared with an uncrashed reference run, order
by order (issue 12).

    python bench/chaos.py [--trials 100] [--seed 12] [--out FILE.json]

A temporary WORKBENCH_HOME gets the chaos data (:func:`tests.chaos_procs.make_store`: six
symbols of synthetic minutes, three of them missing a quarter of their bars). Two
strategies are replayed on one day (1Min, at max speed, one shared account): ``sma``
(sma_cross, fast 4 / slow 12: ~190 orders, entries sized from the cash left after
pending buys) and ``burst`` (every symbol enters, then exits, on the same bars: groups of
six intents, for the group-commit points). Each gets one uncrashed reference run. Then:

* **every crash point** (``workbench.session.crashpoints.POINTS``) at three arrivals
  each (early, middle, late in the day), on ``burst`` for the group-commit points
  (``group_synced``, ``send_*``) and on ``sma`` for the others, plus every ``bar:k``
  after which the reference sized an entry with a buy pending on a symbol without a bar
  (:func:`tests.chaos_procs.priced_gaps`: issue 12's case);
* ``--trials`` **randomized trials** (on ``sma``; every fifth on ``burst``): 1 to 3
  SIGKILLs, each at a uniform random moment of an uncrashed process's time, the first on
  the first process and the others on the restarts; then a restart that runs to the end.

Every trial is checked (:func:`tests.chaos_procs.check_run`): run succeeded, 0 duplicate
broker orders, 0 unsettled intents (an intent without its broker order), the journal's
positions equal to the broker's, and the broker's orders equal to the reference's (client
id without the run's hash, side, quantity, type, prices). The figures are printed (and
written to ``--out``); docs/reliability.md records them. Exit 1 if any trial failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUP_POINTS = ("group_synced", "send_first", "send_middle", "send_last")


def _helper(*args: str) -> None:
    """``python -m tests.chaos_procs ARGS`` (what reads the store runs outside this
    process, whose children are forked: see ``tests.chaos_procs._start``)."""
    subprocess.run([sys.executable, "-m", "tests.chaos_procs", *args], cwd=ROOT, check=True)


def _points(reference_runs: dict[str, Path], home: Path) -> list[tuple[str, str]]:
    """(strategy, crash spec) of every crash point at three arrivals, and the priced gaps."""
    from workbench.session.crashpoints import POINTS

    out = []
    for point in POINTS:
        if point in GROUP_POINTS:
            out += [("burst", f"{point}:{n}") for n in (1, 4, 8)]
        elif point == "bar":
            out += [("sma", f"bar:{n}") for n in (2, 150, 389)]
        else:
            out += [("sma", f"{point}:{n}") for n in (1, 60, 170)]
    _helper("gaps", str(reference_runs["sma"]), str(home / "gaps.json"))
    out += [("sma", spec) for spec in json.loads((home / "gaps.json").read_text())]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100, help="randomized trials (100)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", default=None, help="write the figures here as JSON")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wb-chaos-"))
    os.environ["WORKBENCH_HOME"] = str(home)
    os.environ.pop("WORKBENCH_TEST_CRASH_AT", None)
    import workbench.brokers.sim
    import workbench.session.runner  # noqa: F401
    from tests import chaos_procs as chaos  # imported once: the sessions are forked

    chaos.chaos_strategy("sma"), chaos.chaos_strategy("burst")

    started = time.monotonic()
    _helper("store", str(home))
    refs, seconds, ref_runs = {}, {}, {}
    for name in ("sma", "burst"):
        refs[name], seconds[name] = chaos.reference_run(home / f"ref-{name}", name, fork=True)
        ref_runs[name] = chaos._the_run(home / f"ref-{name}")
        print(f"reference {name}: {len(refs[name])} orders, {seconds[name]:.1f} s a process",
              flush=True)
    trials = []
    for strategy, spec in _points(ref_runs, home):
        t = chaos.trial(spec, home / f"point-{len(trials)}", refs[strategy], crash_at=spec,
                        strategy=strategy, fork=True)
        if not t.attempts or t.attempts[0] != "killed":
            t.problems.append(f"{spec}: the crash point was not reached")
        trials.append(("point", strategy, t))
        print(f"{strategy} {spec}: {t.attempts} {t.problems or 'ok'}", flush=True)
    rng = random.Random(args.seed)
    for i in range(args.trials):
        strategy = "burst" if i % 5 == 4 else "sma"
        kills = chaos.random_kills(rng, seconds[strategy])
        t = chaos.trial(f"random-{i}", home / f"random-{i}", refs[strategy], kill_after=kills,
                        strategy=strategy, fork=True)
        trials.append(("random", strategy, t))
        print(f"random {i} {strategy} kills at {[round(k, 2) for k in kills]}: "
              f"{t.attempts} {t.problems or 'ok'}", flush=True)
    figures = _figures(trials, refs, time.monotonic() - started)
    print(json.dumps(figures, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1) + "\n")
    return 1 if figures["failed_trials"] else 0


def _figures(trials, refs, elapsed: float) -> dict:
    kills = sum(t.attempts.count("killed") for _, _, t in trials)
    restarts_killed = sum(max(t.attempts.count("killed") - 1, 0) for _, _, t in trials)
    failed = [(kind, s, t.name, t.problems) for kind, s, t in trials if t.problems]

    def count(word):
        return sum(1 for *_, t in trials for p in t.problems if word in p)

    return {
        "reference_orders": {k: len(v) for k, v in refs.items()},
        "crash_point_trials": sum(1 for k, *_ in trials if k == "point"),
        "random_trials": sum(1 for k, *_ in trials if k == "random"),
        "kills": kills, "restarts_killed": restarts_killed,
        "duplicate_orders": count("duplicate"), "unsettled_intents": count("unsettled"),
        "positions_differ": count("positions"), "orders_differ": count("orders differ"),
        "failed_trials": len(failed), "failures": failed[:20],
        "minutes": round(elapsed / 60, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
