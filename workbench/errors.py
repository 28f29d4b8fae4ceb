"""Errors named for what the operator must do about them.

Every error the workbench raises on purpose derives from :class:`WorkbenchError`; the
command line prints its message on one line and exits with its ``exit_code``.
Third-party exceptions are translated at the boundary (``raise ... from e``).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "StrategyError",
    "WorkbenchError",
]


class WorkbenchError(Exception):
    """Base of every deliberate workbench error."""

    exit_code = 1


class ConfigError(WorkbenchError):
    """The configuration or the command line is wrong: fix the input and run again."""

    exit_code = 2


class DataError(WorkbenchError):
    """Market data is missing, malformed or inconsistent."""

    exit_code = 3


class StrategyError(WorkbenchError):
    """A strategy is wrong: bad parameters, bad signals, too little history."""

    exit_code = 4
