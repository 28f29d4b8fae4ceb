"""Command-line inputs that name a day or a file, checked before anything starts: a hostile
value (a date beyond pandas' range, a folder where a file is expected, a file of another
kind) is one ``ConfigError`` line naming the option, never an unexpected exception."""

from __future__ import annotations

from pathlib import Path

from workbench.errors import ConfigError

__all__ = ["broker_path", "replay_day"]

_SQLITE = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def replay_day(text: str, option: str = "--replay") -> str:
    """A session day (``YYYY-MM-DD``) from ``text``, by the one date rule
    (:func:`workbench.times.bound`): unreadable or beyond pandas' range is refused."""
    import pandas as pd

    from workbench.times import bound

    try:
        bound(text, option, error=ValueError)  # readable, and inside pandas' range
        return str(pd.Timestamp(str(text).strip()).date())
    except (ValueError, TypeError, OverflowError, NotImplementedError):
        raise ConfigError(f"{option}: a day like 2026-11-20, got {text!r}") from None


def broker_path(text: str, option: str = "--broker-path") -> str:
    """A broker state file (SQLite) that exists, or a new one in an existing folder, as an
    absolute path; a folder, a missing folder or another kind of file is refused."""
    if not str(text).strip():
        raise ConfigError(f"{option}: empty; give the broker's state file")
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        raise ConfigError(f"{option} {text}: is a folder; give the broker's state file")
    if not path.parent.is_dir():
        raise ConfigError(f"{option} {text}: no folder {path.parent}")
    if path.exists():
        try:
            with open(path, "rb") as f:
                head = f.read(len(_SQLITE))
        except OSError as e:
            raise ConfigError(f"{option} {text}: cannot read it ({e.strerror})") from None
        if head and head != _SQLITE:
            raise ConfigError(f"{option} {text}: not a broker state file (SQLite)")
    return str(path)
