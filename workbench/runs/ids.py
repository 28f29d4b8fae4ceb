"""Run ids: sortable, unique, filesystem-safe names for ``runs/<run_id>/``.

``20261121T051200Z-backtest-sma_cross-3f9a1c``: the UTC start time from the clock (so
ids sort by start time to the second), the kind, the sanitized strategy name and a
random suffix. The three separators are the only hyphens: kind and name never hold one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pandas as pd

from workbench.clock import Clock
from workbench.errors import ConfigError
from workbench.secrets import redact

__all__ = ["KINDS", "RunIdParts", "new_run_id", "parse_run_id", "sanitize_name"]

KINDS = ("backtest", "sweep", "walk_forward", "parity", "session", "replay")
_SUFFIX_BYTES = 3  # 6 hex digits
_MAX_NAME = 48
_STAMP = "%Y%m%dT%H%M%SZ"
_ID = re.compile(r"^(\d{8}T\d{6}Z)-([a-z][a-z0-9_]*)-([A-Za-z0-9_]+)-([0-9a-f]+)$")
_issued: set[str] = set()  # ids handed out by this process (a frozen SimClock repeats stamps)


@dataclass(frozen=True, slots=True)
class RunIdParts:
    started: pd.Timestamp
    kind: str
    name: str
    suffix: str


def sanitize_name(name: str, max_len: int = _MAX_NAME) -> str:
    """``name``, secrets masked, reduced to ``[A-Za-z0-9_]`` (other runs become one ``_``)."""
    clean = re.sub(r"[^A-Za-z0-9_]+", "_", redact(str(name))).strip("_")
    return clean[:max_len].rstrip("_") or "unnamed"


def _kind(kind: str) -> str:
    k = str(kind).strip().lower().replace("-", "_")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", k):
        raise ConfigError(f"run kind {kind!r} is not a short lowercase word (e.g. {KINDS})")
    return k


def new_run_id(kind: str, name: str, clock: Clock) -> str:
    """A new run id from ``clock``'s current time, ``kind`` and strategy ``name``."""
    stamp = clock.now().tz_convert("UTC").strftime(_STAMP)
    prefix = f"{stamp}-{_kind(kind)}-{sanitize_name(name)}-"
    if len(_issued) > 100_000:
        _issued.clear()  # RunRecord.create still refuses an existing folder
    while True:
        run_id = prefix + os.urandom(_SUFFIX_BYTES).hex()
        if run_id not in _issued:
            _issued.add(run_id)
            return run_id


def parse_run_id(run_id: str) -> RunIdParts:
    """Split a run id into its parts; ConfigError if it is not one."""
    m = _ID.match(run_id)
    if not m:
        raise ConfigError(f"{run_id!r} is not a run id (like 20261121T051200Z-backtest-name-3f9a1c)")
    stamp, kind, name, suffix = m.groups()
    started = pd.to_datetime(stamp, format=_STAMP, utc=True)
    return RunIdParts(started, kind, name, suffix)
