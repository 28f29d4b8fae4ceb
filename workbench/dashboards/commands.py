"""The one thing a dashboard writes: an operator command (halt/resume) to a running session's
control channel (:mod:`workbench.session.control`, what `workbench halt` writes too); the
session carries it out at its next bar. A record that is not a running session is refused
with nothing written: a command no session will read must not look delivered."""

from __future__ import annotations

import getpass
from pathlib import Path

from workbench.errors import ConfigError
from workbench.session.control import running_session, send

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
    path = running_session(run_path, command)  # alive, by its locks: as `workbench halt`
    return send(path, command, reason=reason or f"{command} from the monitor",
                operator=_operator())
