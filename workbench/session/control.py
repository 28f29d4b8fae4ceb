"""The control channel of a session: operator commands as files, never broker calls.

    send(run_dir, "halt", reason="manual check", operator="ana")   # workbench halt RUN
    channel = ControlChannel(run_dir)                                # in the session
    for command in channel.poll(): ...                               # every bar

A command is one small JSON file ``runs/<run_id>/control/<stamp>-<pid>-<n>.json``
(``{"command": "halt"|"resume"|"stop", "reason": ..., "operator": ..., "sent_at": ...}``),
written to a temporary name and renamed, so the session sees a whole file or none. The
session reads the files in name order (the stamp is the sender's wall time in
nanoseconds), carries them out, and moves each to ``control/done/``: a command is
carried out once, even across a restart. Writers are the CLI and the dashboard; the one
reader is the session that holds the run's journal. :func:`send` writes only into a run's
folder (one holding a run record); ``workbench halt``/``resume`` also refuse any folder
outside the runs folder (:func:`inside_runs`) and a run no process holds
(:func:`workbench.runs.status.liveness`: a ``running`` manifest of a process that died is
not a session that will read a command).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from workbench import paths
from workbench.errors import ConfigError
from workbench.fsutil import atomic_write

__all__ = ["COMMANDS", "CONTROL_DIR", "Command", "ControlChannel", "inside_runs", "send"]

CONTROL_DIR = "control"
COMMANDS = ("halt", "resume", "stop")
_counter = itertools.count()


@dataclass(frozen=True, slots=True)
class Command:
    """One operator command read from the channel."""

    command: str
    reason: str = ""
    operator: str = "operator"
    sent_at: str | None = None
    name: str = ""  # the file it came from


def _folder(run_dir) -> Path:
    return Path(getattr(run_dir, "path", run_dir)) / CONTROL_DIR


def send(run_dir, command: str, *, reason: str = "", operator: str | None = None) -> Path:
    """Write ``command`` to the run's control channel; the file written."""
    if command not in COMMANDS:
        raise ConfigError(f"unknown command {command!r}; one of {COMMANDS}")
    folder = _folder(run_dir)
    if not folder.parent.is_dir():
        raise ConfigError(f"no run folder at {folder.parent}")
    if not (folder.parent / "manifest.json").is_file():  # `resume /etc` once made /etc/control
        raise ConfigError(f"{command}: {folder.parent} holds no run record; nothing sent")
    folder.mkdir(exist_ok=True)
    stamp = time.time_ns()  # a file name ordering, not trading time
    path = folder / f"{stamp:020d}-{os.getpid()}-{next(_counter)}.json"
    body = {"command": command, "reason": reason or f"{command} requested",
            "operator": operator or os.environ.get("USER", "operator"),
            "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp / 1e9))}
    atomic_write(path, lambda p: p.write_text(json.dumps(body) + "\n"))
    return path


def running_session(run_dir, command: str) -> Path:
    """``run_dir`` if it is a session record that is running and alive (a process holds
    its locks: :func:`workbench.runs.status.liveness`, not the manifest alone); else a
    one-line refusal: a command no session will read must not look delivered. The one
    check of `workbench halt`/`resume` and the monitor's buttons."""
    from workbench.clock import LiveClock
    from workbench.runs.records import load_manifest
    from workbench.runs.status import liveness

    path = Path(run_dir)
    manifest = load_manifest(path)
    kind, status = manifest.get("kind"), manifest.get("status")
    if kind != "session" or status != "running":
        what = f"a {kind} record" if kind != "session" else f"a session that is {status}"
        raise ConfigError(f"{command}: {path.name} is {what}, not a running session; "
                          "nothing sent")
    if liveness(path, status, LiveClock().now()) == "died":
        raise ConfigError(f"{command}: {path.name} says running but no process holds it: the "
                          "session died, no one would read the command; nothing sent")
    return path


def inside_runs(run_dir, command: str = "control") -> Path:
    """``run_dir`` resolved, if it is a folder directly inside the runs folder; else a
    one-line :class:`ConfigError` (a command is never written anywhere else)."""
    root = paths.runs_dir().resolve()
    path = Path(getattr(run_dir, "path", run_dir)).resolve()
    if path.parent != root:
        raise ConfigError(f"{command}: {path} is not a run folder of {root}; nothing sent "
                          f"(commands go only to runs under the runs folder)")
    return path


class ControlChannel:
    """The session's end of the channel: new commands, each returned once."""

    def __init__(self, run_dir) -> None:
        self.folder = _folder(run_dir)
        self.done = self.folder / "done"

    def poll(self) -> list[Command]:
        """Commands written since the last poll, oldest first (moved to ``done/``)."""
        if not self.folder.is_dir():
            return []
        names = sorted(p.name for p in self.folder.iterdir()
                       if p.suffix == ".json" and not p.name.startswith("."))
        out = []
        for name in names:
            command = self._read(self.folder / name)
            self.done.mkdir(exist_ok=True)
            os.replace(self.folder / name, self.done / name)
            if command is not None:
                out.append(command)
        return out

    @staticmethod
    def _read(path: Path) -> Command | None:
        try:
            body = json.loads(path.read_text())
            if body.get("command") not in COMMANDS:
                return None
            return Command(body["command"], str(body.get("reason", "")),
                           str(body.get("operator", "operator")), body.get("sent_at"), path.name)
        except (OSError, ValueError, AttributeError):
            return None
