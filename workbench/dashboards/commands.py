"""The one thing a dashboard writes: an operator command (halt/resume) to a running session's
control channel (:mod:`workbench.session.control`, what `workbench halt` writes too); the
session carries it out at its next bar. A record that is not a running session is refused
with nothing written: a command no session will read must not look delivered."""

from __future__ import annotations

import getpass
from pathlib import Path

from workbench.errors import ConfigError
from workbench.runs.records import load_manifest
from workbench.session.control import send

__all__ = ["OPERATOR_COMMANDS", "send_command"]

OPERATOR_COMMANDS = ("halt", "resume")


def _operator() -> str:
    try:
        return f"{getpass.getuser()} (monitor)"
    except (OSError, KeyError):
        return "monitor"


def send_command(run_path: str | Path, command: str, reason: str = "") -> Path:
    """Write ``command`` to the session at ``run_path``; the command file written."""
    if command not in OPERATOR_COMMANDS:
        raise ConfigError(f"unknown command {command!r}: the monitor sends {OPERATOR_COMMANDS}")
    path = Path(run_path)
    manifest = load_manifest(path)
    kind, status = manifest.get("kind"), manifest.get("status")
    if kind != "session" or status != "running":
        what = f"a {kind} record" if kind != "session" else f"a session that is {status}"
        raise ConfigError(f"{command}: {path.name} is {what}, not a running session; "
                          "nothing sent")
    return send(path, command, reason=reason or f"{command} from the monitor",
                operator=_operator())
