"""Kill -9 chaos for the replayed session: a restarted run must place the uncrashed run's
orders, order by order (issue 12).

:func:`session` (``STRATEGY DAY RUNS_ROOT [RUN_DIR]``), in a forked child of the test or
bench process (:class:`_Forked`; also ``python -m tests.chaos_procs session ...``):
``run_session`` of STRATEGY (``sma``: sma_cross with :data:`PARAMS`; ``burst``: every symbol enters and
exits on the same bars, groups of six intents, for the group-commit crash points) on DAY
(1Min, one shared account: pending buys reserve cash) with its record under RUNS_ROOT (a
new run, or RUN_DIR restarted). What a trial kills:
with ``WORKBENCH_TEST_CRASH_AT`` (a named crash point) or by SIGKILL at a random moment.

:func:`make_store` writes the chaos data: synthetic minutes in which some symbols miss
about a quarter of their bars (so an order can stay pending over minutes with no bar of
its symbol, the case of issue 12). :func:`broker_orders` is what is compared with the
reference: each broker order's client id (without the run's hash part, which differs
from run to run), side, quantity, type and prices. :func:`check_run` says every way a run
differs from the reference or from its own broker (duplicates, unsettled intents,
positions).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-11-20"
SYMBOLS = 6
PARAMS = {"fast": 4, "slow": 12}
DROP = 0.25


def chaos_strategy(name: str = "sma"):
    """The strategy and its parameters: ``sma`` or ``burst`` (see the module doc)."""
    from tests.notebook_strategies import strategy_of
    from tests.session_procs import burst

    if name == "burst":
        return burst, {}
    return strategy_of(ROOT / "notebooks" / "strategies" / "sma_cross.ipynb"), PARAMS


def make_store(home: Path, day: str = DAY, seed: int = 11) -> None:
    """Three days of synthetic minutes of ``SYMBOLS`` symbols, every other symbol missing
    ``DROP`` of its bars (a fixed random choice)."""
    import numpy as np

    from workbench.data.store import Store
    from workbench.data.synth import synthesize

    bars = synthesize(SYMBOLS, 3, "1Min", seed, day)
    names = sorted(bars["symbol"].unique())
    sparse = set(names[::2])
    rng = np.random.default_rng(seed)
    keep = ~(bars["symbol"].isin(sparse).to_numpy() & (rng.random(len(bars)) < DROP))
    Store(home / "data").write(bars.loc[keep].reset_index(drop=True), "1Min", source="synth")


def session(strategy: str, day: str, runs_root: str, run_dir: str = "") -> None:
    from workbench.session.runner import run_session

    function, params = chaos_strategy(strategy)
    result = run_session(function, params, replay_date=day, timeframe="1Min",
                         runs_root=runs_root, run_dir=run_dir or None, accounts="shared")
    print(json.dumps(result.to_dict()))


def broker_orders(run: Path) -> list[tuple]:
    """The broker's orders of the run, comparable across runs: (symbol, bar time, leg) of
    the client id, side, quantity, type, limit/stop prices; sorted."""
    from workbench.brokers.sim import SimBroker
    from workbench.model import parse_client_order_id

    broker = SimBroker(run / "broker.sqlite")
    try:
        out = []
        for o in broker.orders():
            parts = parse_client_order_id(o.client_order_id) or {"id": o.client_order_id}
            key = tuple(v for k, v in sorted(parts.items()) if k != "scope")
            out.append((key, str(o.side), str(o.quantity), str(o.order_type),
                        str(o.limit_price), str(o.stop_price), str(o.stop_loss),
                        str(o.take_profit)))
        return sorted(out)
    finally:
        broker.close()


def check_run(run: Path, reference: list[tuple]) -> list[str]:
    """Every problem of a finished run: not succeeded, a duplicate broker order, an
    intent without its broker order (unsettled) or an order without its intent, journal
    positions other than the broker's, orders other than the reference's."""
    from collections import Counter

    from workbench.brokers.sim import SimBroker
    from workbench.journal import replay
    from workbench.model import events as ev
    from workbench.orders import rebuild

    problems = []
    manifest = json.loads((run / "manifest.json").read_text())
    if manifest.get("status") != "finished" or manifest.get("outcome") != "succeeded":
        problems.append(f"run {manifest.get('status')}/{manifest.get('outcome')}: "
                        f"{manifest.get('error')}")
    events = replay(run).events
    intents = {e.payload["client_order_id"] for e in events if e.type == ev.INTENT}
    broker = SimBroker(run / "broker.sqlite")
    try:
        ids = Counter(o.client_order_id for o in broker.orders() if o.parent_id is None)
        held = {s: p.quantity for s, p in broker.positions().items() if p.quantity}
    finally:
        broker.close()
    twice = sorted(c for c, n in ids.items() if n > 1)
    if twice:
        problems.append(f"duplicate broker orders: {twice}")
    if intents - set(ids):
        problems.append(f"unsettled intents (no broker order): {sorted(intents - set(ids))}")
    if set(ids) - intents:
        problems.append(f"broker orders without an intent: {sorted(set(ids) - intents)}")
    book = rebuild(events)
    journal = {s: p.quantity for s, p in book.ledger.open_positions().items()}
    if journal != held:
        problems.append(f"positions: journal {journal} vs broker {held}")
    got = broker_orders(run)
    if got != reference:
        extra = [o for o in got if o not in reference][:3]
        missing = [o for o in reference if o not in got][:3]
        problems.append(f"orders differ from the reference ({len(got)} vs {len(reference)}):"
                        f" extra {extra}, missing {missing}")
    return problems


def priced_gaps(run: Path, day: str = DAY) -> list[str]:
    """Crash points (``bar:k``) after which the reference sized an entry on that bar while
    a buy was pending on a symbol with no bar at that minute: the restart resumes on a
    bar that does not price the pending buy (issue 12, ``fill:37``)."""
    import pandas as pd

    from workbench.data.store import Store
    from workbench.journal import replay
    from workbench.model import events as ev

    close = Store().load(None, "1Min", start=day, end=day).close
    out, bars, pending, at = [], 0, {}, None
    for e in replay(run).events:
        p = e.payload
        if e.type == ev.BAR:
            bars, at = bars + 1, pd.Timestamp(p["bar_time"])
        elif e.type == ev.INTENT and p.get("side") == "buy":
            if p["client_order_id"].endswith("-entry") and any(
                    s != p["symbol"] and close.at[at, s] != close.at[at, s]
                    for s in pending.values()):
                out.append(f"bar:{bars}")
            pending[p["client_order_id"]] = p["symbol"]
        elif e.type == ev.ORDER_UPDATE and p.get("status") in ("filled", "canceled",
                                                               "expired", "rejected"):
            pending.pop(p.get("client_order_id"), None)
    return list(dict.fromkeys(out))


class _Forked:
    """A session in a forked child of this process (the imports are paid once, in the
    parent: a fresh interpreter costs seconds on a loaded machine): ``wait``,
    ``send_signal`` and ``returncode`` as ``subprocess.Popen``'s (-9: killed)."""

    def __init__(self, strategy: str, day: str, runs_root: Path, run: Path | None,
                 env: dict) -> None:
        import tempfile

        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by output()
            prefix="chaos-", suffix=".log", delete=False)
        self.returncode = None
        self.pid = os.fork()
        if self.pid == 0:  # the child: the session, then out without the parent's exit
            code = 1
            try:
                os.dup2(self.log.fileno(), 1)
                os.dup2(self.log.fileno(), 2)
                os.environ.clear()
                os.environ.update(env)
                session(strategy, day, str(runs_root), str(run) if run else "")
                code = 0
            except BaseException:  # noqa: BLE001 - reported on stderr, the exit code says it
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = (-os.WTERMSIG(status) if os.WIFSIGNALED(status)
                                   else os.WEXITSTATUS(status))
                break
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("chaos session", timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def output(self) -> str:
        """What the child printed (its stdout and stderr), the log removed."""
        self.log.close()
        text = Path(self.log.name).read_text(errors="replace")
        os.unlink(self.log.name)
        return text


class _Process(subprocess.Popen):
    """A session in a fresh interpreter (what a process that may hold thread pools, a
    test run's, must start: a forked child of it could deadlock on their locks)."""

    def __init__(self, strategy: str, day: str, runs_root: Path, run: Path | None,
                 env: dict) -> None:
        args = [sys.executable, "-m", "tests.chaos_procs", "session", strategy, day,
                str(runs_root)]
        super().__init__(args + ([str(run)] if run else []), cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        text = self.stdout.read()
        self.stdout.close()
        return text


def _start(strategy: str, day: str, runs_root: Path, run: Path | None, env: dict,
           fork: bool = False):
    """The session's process: forked from this one (``fork``: only from a process that
    has not read the store, whose pyarrow/DuckDB threads a child would inherit the locks
    of) or a fresh interpreter."""
    return (_Forked if fork else _Process)(strategy, day, runs_root, run, env)


def _the_run(runs_root: Path) -> Path | None:
    found = [p for p in runs_root.iterdir() if (p / "manifest.json").exists()] \
        if runs_root.exists() else []
    return found[0] if found else None


@dataclass
class Trial:
    """One trial's story: each attempt's end (``killed`` / ``crashed at`` / exit code)."""

    name: str
    attempts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    run: str = ""


def trial(name: str, runs_root: Path, reference: list[tuple], *, crash_at: str | None = None,
          kill_after: list[float] = (), strategy: str = "sma", day: str = DAY,
          timeout: float = 300, fork: bool = False) -> Trial:
    """A run started with ``crash_at`` (a crash point) or killed after the first of
    ``kill_after`` seconds, each restart killed after the next one, then restarted until
    it ends by itself; checked against ``reference``."""
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_TEST_CRASH_AT"}
    out, run = Trial(name), None
    kills = list(kill_after)
    first = True
    while True:
        extra = {"WORKBENCH_TEST_CRASH_AT": crash_at} if first and crash_at else {}
        proc = _start(strategy, day, runs_root, run, {**env, **extra}, fork)
        delay = kills.pop(0) if kills else None
        try:
            proc.wait(timeout=delay if delay is not None else timeout)
        except subprocess.TimeoutExpired:
            if delay is None:
                proc.kill()
                proc.wait()
                out.problems.append(f"attempt {len(out.attempts) + 1} hung")
                return out
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        stderr = proc.output()
        code = proc.returncode
        out.attempts.append("killed" if code == -signal.SIGKILL else f"exit {code}")
        first = False
        run = run or _the_run(runs_root)
        manifest = json.loads((run / "manifest.json").read_text()) if run else {}
        if manifest.get("status") == "finished":
            break
        if code not in (0, -signal.SIGKILL):
            out.problems.append(f"attempt {len(out.attempts)}: exit {code}: "
                                f"{stderr.strip().splitlines()[-1:] }")
            return out
        if len(out.attempts) > 12:
            out.problems.append("more than 12 attempts")
            return out
    out.run = str(run)
    out.problems += check_run(run, reference)
    return out


def reference_run(runs_root: Path, strategy: str = "sma", day: str = DAY,
                  fork: bool = False) -> tuple[list[tuple], float]:
    """The uncrashed run's broker orders, and how long its process took (s)."""
    started = time.monotonic()
    proc = _start(strategy, day, runs_root, None, {k: v for k, v in os.environ.items()
                                                   if k != "WORKBENCH_TEST_CRASH_AT"}, fork)
    proc.wait(timeout=600)
    err = proc.output()
    if proc.returncode != 0:
        raise RuntimeError(f"the reference run failed: {err[-2000:]}")
    return broker_orders(_the_run(runs_root)), time.monotonic() - started


def random_kills(rng: random.Random, seconds: float, most: int = 3) -> list[float]:
    """1..``most`` kill delays, each uniform over an uncrashed process's time."""
    return [rng.uniform(0.05, seconds) for _ in range(rng.randint(1, most))]


def _gaps(run: str, out: str) -> None:
    Path(out).write_text(json.dumps(priced_gaps(Path(run))))


if __name__ == "__main__":
    {"session": session, "store": lambda home: make_store(Path(home)),
     "gaps": _gaps}[sys.argv[1]](*sys.argv[2:])
