"""The supervisor of a session: one process group per attempt, its heartbeat watched, a dead
or hung session killed whole, recorded, alerted and restarted.

    sup = Supervisor(run_dir, argv_command([sys.executable, "-m", "workbench.execution.child",
                                            "{run_dir}"]), lock_path=deployment_lock)
    result = sup.run()          # blocks; sup.stop("close") from another thread or a signal
    result.ok, result.outcome, result.attempts

``run_dir`` is a session run whose manifest is "running" (``RunRecord.create`` or
``workbench.session.start.open_record``); ``command(run_dir, attempt)`` gives the argv
that runs it (a template of strings with ``{run_dir}`` and ``{attempt}`` works too, see
:func:`argv_command`), e.g. ``workbench session NB --replay DAY --run {run_dir}`` today or
the execution child tomorrow: the supervisor does not know what it runs.

1. **One at a time.** ``lock_path`` (a deployment's lock file; default
   ``<run_dir>/supervisor.lock``) is taken with :func:`workbench.fsutil.exclusive_lock`
   without waiting, and the run's journal must be free: otherwise :class:`SupervisorLocked`
   (one line, exit 5) and no process is started.
2. **An attempt** runs the command as the leader of its own process group
   (:mod:`workbench.deploy.procgroup`), stdout and stderr appended to
   ``<run_dir>/session.log``. Every :attr:`SupervisorOptions.poll` seconds the supervisor
   reads the journal's new whole lines from where it stopped
   (:class:`~workbench.journal.tail.JournalTail`: a byte offset, across segment
   rotation, never a half-written line): a ``heartbeat`` written by this attempt proves
   it alive.
   Silence longer than ``start_timeout`` before the first heartbeat or ``heartbeat_timeout``
   after the last one is a hang. (The session writes one every ``heartbeat_every`` bars:
   the timeout must exceed that many bar intervals.)
3. **The end of an attempt** (the process exited, hung, or was asked to stop): every
   process of the group is ended (SIGTERM, SIGKILL after ``grace``; a kernel papermill
   started in its own session too), even after a clean exit. If the session closed its
   record itself (any outcome: ok, halted, interrupted, failed), that is the end. If the
   record is still "running" the session died (killed by a signal, e.g. SIGKILL from the
   OOM killer; exited without finishing; or hung; or a runner such as papermill's wrapper
   closed the record of a session that journaled no ``session_end``: then it is not
   restarted, as a closed record cannot resume): an ``alert`` event is appended to the
   run's journal (the lock is free once the group is gone; stamped with the journal's last
   time so a replay's timeline never jumps, wall time in the payload) and the run is
   **restarted in the same folder**: the session opens its running record, replays the
   journal and reconciles with the broker (``resend=True``: an intent that never reached
   the broker is sent once under its own id) before it trades; a ``reconcile`` event says
   how that went. Restarts are bounded (``max_restarts``) and spaced by an exponential
   backoff (``backoff`` x 2^n, at most ``backoff_max``). When none is left the supervisor
   marks the run failed (``RunRecord.finish``). A failing attempt is not closed at once:
   a closed record cannot be resumed, and resuming the run is what makes the restart
   reconcile its own orders (a new run on the same broker file fails closed whenever the
   dead one had an order in flight).
4. **Graceful stop** (:meth:`Supervisor.stop`, SIGTERM/SIGINT to ``python -m
   workbench.deploy.supervisor``): ``stop`` is written to the run's control channel; the
   session ends after its bar with outcome "interrupted". After ``stop_timeout`` the group
   is killed and the run is marked interrupted with the reason. No restart follows a stop.

Elapsed time (heartbeat silence, timeouts, backoff) is measured with ``time.monotonic``
inside this loop: these are timeouts of the supervisor, not trading time, and nothing here
reads the wall clock except through :mod:`workbench.clock`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field

from workbench.clock import LiveClock, SimClock
from workbench.deploy import procgroup
from workbench.errors import ConfigError, WorkbenchError
from workbench.fsutil import exclusive_lock
from workbench.journal import Journal, JournalLocked
from workbench.journal.reader import read_events
from workbench.journal.tail import JournalTail
from workbench.model import events as ev
from workbench.monitor import monitored
from workbench.runs.records import MANIFEST, OUTCOMES, RunRecord, load_manifest
from workbench.session.control import send
from workbench.values import Number, Value, Whole

__all__ = ["FAILED", "INTERRUPTED", "Attempt", "Command", "SupervisedRun", "Supervisor",
           "SupervisorLocked", "SupervisorOptions", "argv_command"]

FAILED, INTERRUPTED = "failed", "interrupted"  # outcomes the supervisor writes (OUTCOMES)
assert FAILED in OUTCOMES and INTERRUPTED in OUTCOMES
LOG_FILE = "session.log"
LOCK_FILE = "supervisor.lock"

Command = Callable[[Path, int], Sequence[str]]


class SupervisorLocked(WorkbenchError):
    """Another supervisor or session holds this deployment or run: one at a time."""

    exit_code = 5


class SupervisorOptions(Value):
    """Timeouts in seconds, restart budget and backoff (see the module doc)."""

    heartbeat_timeout: Annotated[Number, Field(gt=0)] = 120.0
    start_timeout: Annotated[Number, Field(gt=0)] = 300.0
    grace: Annotated[Number, Field(ge=0)] = 10.0
    stop_timeout: Annotated[Number, Field(gt=0)] = 60.0
    max_restarts: Annotated[Whole, Field(ge=0)] = 3
    backoff: Annotated[Number, Field(ge=0)] = 1.0
    backoff_max: Annotated[Number, Field(ge=0)] = 60.0
    poll: Annotated[Number, Field(gt=0)] = 0.2


@dataclass(frozen=True, slots=True)
class Attempt:
    """One start of the command: its pid, how it ended, why it failed (None: it closed its
    record itself) and the heartbeats it wrote."""

    number: int
    pid: int
    returncode: int
    failure: str | None
    heartbeats: int
    killed: bool


@dataclass(frozen=True, slots=True)
class SupervisedRun:
    """How the supervised run ended: the manifest's status and outcome, every attempt."""

    run_dir: Path
    status: str
    outcome: str | None
    error: str | None
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
    stopped: bool = False

    @property
    def ok(self) -> bool:
        """The session closed its record itself and its process exited 0."""
        last = self.attempts[-1] if self.attempts else None
        return last is not None and last.failure is None and last.returncode == 0

    @property
    def restarts(self) -> int:
        return max(len(self.attempts) - 1, 0)

    def summary(self) -> str:
        return (f"run {self.run_dir.name}: {self.status}/{self.outcome} after "
                f"{len(self.attempts)} attempt(s)" + (f": {self.error}" if self.error else ""))


def argv_command(template: Sequence[str]) -> Command:
    """A command from an argv template: ``{run_dir}`` and ``{attempt}`` are filled in."""
    template = [str(a) for a in template]
    if not template:
        raise ConfigError("the supervised command is empty")
    return lambda run_dir, attempt: [a.format(run_dir=run_dir, attempt=attempt)
                                     for a in template]


def _status(run_dir: Path) -> dict:
    return load_manifest(run_dir)


class Supervisor:
    """Runs one session run under supervision (see the module doc)."""

    def __init__(self, run_dir: str | Path, command: Command | Sequence[str], *,
                 lock_path: str | Path | None = None, options: SupervisorOptions | None = None,
                 env: Mapping[str, str] | None = None, cwd: str | Path | None = None) -> None:
        self.run_dir = Path(run_dir)
        if not (self.run_dir / MANIFEST).is_file():
            raise ConfigError(f"no run record at {self.run_dir}: create the run first")
        self.command = command if callable(command) else argv_command(command)
        self.lock_path = Path(lock_path) if lock_path else self.run_dir / LOCK_FILE
        self.options = options or SupervisorOptions()
        self.env, self.cwd = env, cwd
        self.log_path = self.run_dir / LOG_FILE
        self._stop = threading.Event()
        self._stop_reason = ""

    def stop(self, reason: str = "stop requested") -> None:
        """Ask for a graceful stop (thread- and signal-safe): control channel, then kill."""
        self._stop_reason = self._stop_reason or reason
        self._stop.set()

    # -- the run ----------------------------------------------------------------------
    def run(self) -> SupervisedRun:
        """Supervise until the session closes its record, restarts run out, or a stop."""
        lock = self._lock()
        try:
            return self._supervise()
        finally:
            os.close(lock)

    def _lock(self) -> int:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = exclusive_lock(self.lock_path, wait=False)
        except BlockingIOError:
            raise SupervisorLocked(f"{self.lock_path} is held by another supervisor: one "
                                   "session of a deployment at a time; not started") from None
        try:
            if _status(self.run_dir).get("status") != "running":
                raise ConfigError(f"run {self.run_dir.name} has ended; nothing to supervise")
            Journal.open(self.run_dir, LiveClock()).close()  # free now, or a session runs
        except JournalLocked:
            os.close(fd)
            raise SupervisorLocked(f"run {self.run_dir.name} already has a session (its "
                                   "journal is locked); not started") from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _supervise(self) -> SupervisedRun:
        attempts: list[Attempt] = []
        o = self.options
        while True:
            attempt = self._attempt(len(attempts))
            attempts.append(attempt)
            if attempt.failure is None:
                break
            left = o.max_restarts - (len(attempts) - 1)
            if _status(self.run_dir).get("status") != "running":  # closed: cannot resume
                self._alert(attempt, "gave up")
                break
            if self._stop.is_set():
                self._alert(attempt, "stopped")
                self._close(INTERRUPTED, attempt.failure)
                break
            if left <= 0:
                self._alert(attempt, "gave up")
                self._close(FAILED, f"{attempt.failure}; no restart left after "
                                    f"{len(attempts)} attempt(s)")
                break
            self._alert(attempt, "restart")
            if self._stop.wait(min(o.backoff * 2 ** (len(attempts) - 1), o.backoff_max)):
                self._close(INTERRUPTED, f"{attempt.failure}; stopped before the restart")
                break
        m = _status(self.run_dir)
        return SupervisedRun(self.run_dir, m.get("status"), m.get("outcome"), m.get("error"),
                             tuple(attempts), self._stop.is_set())

    def _attempt(self, number: int) -> Attempt:
        tail = JournalTail.at_end(self.run_dir)  # this attempt's events come after it
        seq = tail.last_seq or 0
        argv = list(self.command(self.run_dir, number))
        with open(self.log_path, "ab") as log:
            log.write(f"--- supervisor: attempt {number}: {' '.join(map(str, argv))}\n".encode())
        group = procgroup.start(argv, self.log_path, env=self.env, cwd=self.cwd)
        try:
            failure, beats = self._watch(group, tail)
        except BaseException:  # the supervisor itself fails: leave no session behind
            procgroup.end_group(group, self.options.grace)
            raise
        ended = procgroup.end_group(group, self.options.grace)
        manifest = _status(self.run_dir)
        if manifest.get("status") == "running":
            failure = failure or _died(ended.returncode)
        elif self._session_ended(seq):
            failure = None  # the session closed its record itself (its end, a stop, SIGTERM)
        else:  # the runner (papermill's wrapper) closed the record of a session that died
            failure = (f"{failure or 'the session died'} (no session_end); its runner closed "
                       f"the run {manifest.get('outcome')}: {manifest.get('error')}")
        return Attempt(number, group.pgid, ended.returncode, failure, beats, ended.killed)

    def _watch(self, group: procgroup.Group, tail: JournalTail) -> tuple[str | None, int]:
        """Until the leader exits (None) or a hang / a stop that timed out (the reason)."""
        o = self.options
        beats, started = 0, time.monotonic()
        last_beat, stop_deadline = started, None
        while group.proc.poll() is None:
            for event in tail.read():  # the whole lines appended since the last poll
                if event.type == ev.HEARTBEAT:
                    beats, last_beat = beats + 1, time.monotonic()
            now = time.monotonic()
            if self._stop.is_set() and stop_deadline is None:
                send(self.run_dir, "stop", reason=self._stop_reason, operator="supervisor")
                stop_deadline = now + o.stop_timeout
            if stop_deadline is not None and now >= stop_deadline:
                return (f"no stop within {o.stop_timeout:g}s of the stop command "
                        f"({self._stop_reason}); process group killed"), beats
            limit = o.heartbeat_timeout if beats else o.start_timeout
            if stop_deadline is None and now - last_beat > limit:
                what = "since the last heartbeat" if beats else "without a first heartbeat"
                return (f"hung: {now - last_beat:.1f}s {what} (limit {limit:g}s); "
                        "process group killed"), beats
            time.sleep(o.poll)
        return None, beats

    # -- records ----------------------------------------------------------------------
    def _session_ended(self, seq: int) -> bool:
        """No session started after ``seq``, or the last one journaled its end."""
        open_session = False
        for event in read_events(self.run_dir, after_seq=seq, warn=False):
            if event.type in (ev.SESSION_START, ev.SESSION_END):
                open_session = event.type == ev.SESSION_START
        return not open_session

    def _alert(self, attempt: Attempt, action: str) -> None:
        """Append an ``alert`` to the run's journal (the session is dead: the lock is free)."""
        last = None
        for event in read_events(self.run_dir, warn=False):
            last = event
        clock = SimClock(last.ts) if last is not None else LiveClock()
        with monitored(Journal.open(self.run_dir, clock), self.run_dir, metrics=False,
                       logs=False, strict=False) as journal:  # to the alert channels too
            journal.append(ev.ALERT, source="supervisor", action=action,
                           message=attempt.failure, attempt=attempt.number, pid=attempt.pid,
                           returncode=attempt.returncode, heartbeats=attempt.heartbeats,
                           wall=LiveClock().now())

    def _close(self, outcome: str, error: str) -> None:
        if _status(self.run_dir).get("status") == "running":
            RunRecord.open(self.run_dir, LiveClock()).finish(outcome, error=error)


def _died(returncode: int) -> str:
    if returncode < 0:
        sig = -returncode
        name = _signal_name(sig)
        hint = " (out of memory? the OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"the session was killed by {name}{hint} without finishing its run"
    return f"the session exited with code {returncode} without finishing its run"


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


# -- python -m workbench.deploy.supervisor ------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workbench.deploy.supervisor",
        usage="%(prog)s RUN_DIR [options] -- COMMAND...",
        description="Run COMMAND for the session run RUN_DIR under supervision ({run_dir} "
                    "and {attempt} in COMMAND are filled in).")
    p.add_argument("run_dir")
    p.add_argument("--lock", default=None, help="The deployment's lock file "
                   "(default RUN_DIR/supervisor.lock).")
    for name, default in SupervisorOptions().model_dump().items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, default=default,
                       type=type(default))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point: one summary line on stdout; an error is one line on stderr."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, command = _parser().parse_args(argv[:cut]), argv[cut + 1:]
    try:
        options = SupervisorOptions(**{k: getattr(args, k)
                                       for k in SupervisorOptions.model_fields})
        sup = Supervisor(args.run_dir, argv_command(command), lock_path=args.lock,
                         options=options)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda n, _f: sup.stop(f"{signal.Signals(n).name} to the "
                                                       "supervisor"))
        result = sup.run()
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
