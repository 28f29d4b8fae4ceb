"""A command in its own process group, and every process it started ended: none survives.

    proc = start(["python", "-m", "workbench.execution.child", run_dir], log_path)
    ended = end_group(proc, grace=10.0)   # SIGTERM to all, SIGKILL after ``grace``
    ended.signal, ended.members_at_start  # how the leader ended, who was alive

papermill does not forward SIGTERM to its kernel, and a kernel outlives a killed papermill
by about a second. The command runs with ``start_new_session=True`` (its pid is its group
id; the caller's own group is never signalled) and ``os.killpg`` reaches every process of
that group, grandchildren included. But jupyter_client starts each kernel in a session of
its own (``start_new_session=True`` in ``jupyter_client.launcher``), outside papermill's
group, and an orphan is reparented to init: so the command also gets a tag in its
environment (:data:`TAG_ENV`, random per start), which every descendant inherits, kernels
included, and a process whose ``/proc/<pid>/environ`` carries the tag is a member too.
The group is empty when no member is left but zombies (an orphan waiting for init to
reap it runs no code) whose every thread has exited (until then it holds its files and
locks, e.g. the run's journal). Linux only (``/proc``). The waits measure elapsed time with
``time.monotonic`` (never wall time): they are timeouts, not trading time.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError

__all__ = ["TAG_ENV", "Ended", "Group", "GroupSurvived", "end_group", "members", "start"]

TAG_ENV = "WORKBENCH_SUPERVISED"
_STEP = 0.05  # seconds between looks at the group
_KILL_WAIT = 10.0  # seconds a SIGKILLed group may take to disappear before it is an error


class GroupSurvived(WorkbenchError):
    """A process of the group is still alive after SIGKILL (stuck in the kernel, D state)."""


@dataclass(frozen=True, slots=True)
class Group:
    """A started command: its leader (``proc``; ``pgid`` is its pid) and its tag."""

    proc: subprocess.Popen
    tag: str

    @property
    def pgid(self) -> int:
        return self.proc.pid


@dataclass(frozen=True, slots=True)
class Ended:
    """How a group ended: the leader's return code (negative: the signal), whether this
    side had to send SIGTERM / SIGKILL, and the members alive when it began."""

    returncode: int
    terminated: bool
    killed: bool
    members_at_start: tuple[int, ...]

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None


def start(argv: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None,
          cwd: str | Path | None = None) -> Group:
    """Start ``argv`` as the leader of a new process group (and session), tagged, stdin
    closed, stdout and stderr appended to ``log_path``."""
    argv = [str(a) for a in argv]
    if not argv:
        raise WorkbenchError("the supervised command is empty")
    tag = secrets.token_hex(8)
    environ = {**(os.environ if env is None else env), TAG_ENV: tag}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=environ, cwd=cwd)
        except OSError as e:
            raise WorkbenchError(f"cannot start {argv[0]}: {e.strerror or e}") from None
    return Group(proc, tag)


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, pgid)`` of ``pid`` from ``/proc``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # after "pid (comm) "
    return fields[0], int(fields[2])


def _running(pid: int) -> bool:
    """A thread of ``pid`` still runs: a zombie leader whose other threads are still
    exiting (a kernel's threads) keeps its files, and locks, open until they are gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        if text[text.rfind(")") + 2:].split()[0] not in ("Z", "X"):
            return True
    return False


def _tagged(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def members(group: Group, known: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The live processes of the group or carrying its tag, and those of ``known`` (members
    seen before) with a thread still running: a zombie leader's environment reads empty."""
    marker = f"{TAG_ENV}={group.tag}".encode()
    found = [pid for pid in known if _running(pid)]
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is None or not (stat[0] not in ("Z", "X") or _running(pid)):
            continue
        if pid not in found and (stat[1] == group.pgid or _tagged(pid, marker)):
            found.append(pid)
    return tuple(sorted(found))


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=0)
    except subprocess.TimeoutExpired:
        pass


def _wait_empty(group: Group, known: tuple[int, ...], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        _reap(group.proc)
        if not members(group, known):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_STEP)


def _signal(group: Group, known: tuple[int, ...], sig: int) -> None:
    try:
        os.killpg(group.pgid, sig)
    except ProcessLookupError:
        pass
    for pid in members(group, known):  # tagged ones in other groups (a kernel's session)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def end_group(group: Group, grace: float) -> Ended:
    """End every member: nothing to do when none is alive, else SIGTERM, then SIGKILL
    after ``grace`` seconds; GroupSurvived if one is still alive :data:`_KILL_WAIT`
    seconds after SIGKILL. The leader is reaped."""
    _reap(group.proc)
    alive = members(group)
    terminated = killed = False
    if alive:
        terminated = True
        _signal(group, alive, signal.SIGTERM)
        if not _wait_empty(group, alive, grace):
            killed = True
            _signal(group, alive, signal.SIGKILL)
            if not _wait_empty(group, alive, _KILL_WAIT):
                raise GroupSurvived(f"process group {group.pgid}: {list(members(group, alive))} "
                                    f"still alive {_KILL_WAIT:.0f}s after SIGKILL")
    returncode = group.proc.wait()
    return Ended(returncode, terminated, killed, alive)
