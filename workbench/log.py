"""Structured logs: one JSON object per line on stderr and in the running session's own
file, with secrets redacted.

``get_logger("data.store").info("bars_written", symbol="AAPL", rows=390)`` writes
``{"timestamp": "...Z", "level": "info", "component": "data.store", "event":
"bars_written", "symbol": "AAPL", "rows": 390}``. While a run's log is open
(:func:`open_run_log`, a session opens its own) every line also carries ``run_id`` and goes
to ``runs/<id>/logs/session.jsonl`` (rotated past ``max_bytes``: ``session.jsonl.1`` ...)
at the run's level, whatever stderr's level is. The standard library's records (apprise,
papermill, ...) are routed the same way, as JSON lines.

Redaction: every rendered line passes :func:`workbench.secrets.redact` (secret values of
the environment) and masks the values given to :func:`mask` (an alert channel's URL, its
token). Nothing is written before that.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import structlog

from workbench.secrets import MASK, redact

__all__ = ["RunLog", "configure", "get_logger", "mask", "open_run_log"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40,
           "critical": 50, "fatal": 50, "msg": 20}
_FIRST = ("timestamp", "level", "component", "event", "run_id")
_configured = False
_stderr_level = logging.WARNING
_console = False
_runs: list[RunLog] = []  # the open run logs, innermost last (a process runs one session)
_masks: set[str] = set()
_guard = threading.Lock()


def mask(*values: str) -> None:
    """Mask ``values`` (at least 4 characters) in every line logged from now on."""
    with _guard:
        _masks.update(v for v in values if v and len(v) >= 4)


def _clean(text: str) -> str:
    text = redact(text)
    for value in sorted(_masks, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


class RunLog:
    """A run's JSON-lines file, rotated at ``max_bytes`` keeping ``backups`` old files."""

    def __init__(self, path: Path, run_id: str, level: str = "INFO",
                 max_bytes: int = 10 * 2**20, backups: int = 5) -> None:
        self.path, self.run_id = Path(path), run_id
        self.level = logging.getLevelName(level.upper())
        self.max_bytes, self.backups = max_bytes, backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def write(self, line: str) -> None:
        data = (line + "\n").encode()
        with self._lock:
            if self._fd < 0:
                return
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            os.write(self._fd, data)
            self._size += len(data)

    def _rotate(self) -> None:
        os.close(self._fd)
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = 0

    def close(self) -> None:
        with _guard:
            if self in _runs:
                _runs.remove(self)
        _set_root_level()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def open_run_log(run_dir: str | Path, run_id: str, level: str = "INFO",
                 max_bytes: int = 10 * 2**20, backups: int = 5) -> RunLog:
    """Start ``run_dir/logs/session.jsonl``: every line logged until ``close()`` goes there
    too (at ``level`` and above) with ``run_id``."""
    if not _configured:
        configure()
    run = RunLog(Path(run_dir) / "logs" / "session.jsonl", run_id, level, max_bytes, backups)
    with _guard:
        _runs.append(run)
    _set_root_level()
    return run


def _route(level: int, event: dict[str, Any]) -> None:
    """Write one event (plain values) to stderr and the open run's file, by their levels."""
    run = _runs[-1] if _runs else None
    to_file = run is not None and level >= run.level
    if level < _stderr_level and not to_file:
        return
    if run is not None:
        event.setdefault("run_id", run.run_id)
    event = {k: event.pop(k) for k in _FIRST if k in event} | event
    line = _clean(json.dumps(event, default=str, ensure_ascii=False))
    if to_file:
        run.write(line)
    if level >= _stderr_level:
        if _console:
            fields = " ".join(f"{k}={v}" for k, v in event.items()
                              if k not in ("timestamp", "level", "component", "event"))
            line = _clean(f"{event.get('timestamp', '')} [{event.get('level', '')}] "
                          f"{event.get('component', '')}: {event.get('event', '')} {fields}")
        print(line, file=sys.stderr, flush=True)


def _lowest() -> int:
    return min([_stderr_level, *(r.level for r in _runs)])


def _drop_below(_logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    if _LEVELS.get(name, 20) < _lowest():
        raise structlog.DropEvent
    return event


class _Sink:
    """structlog's logger: each method is a level; the event arrives as keywords."""

    def __getattr__(self, name: str):
        level = _LEVELS.get(name)
        if level is None:
            raise AttributeError(name)
        return lambda **event: _route(level, event)


class _RootHandler(logging.Handler):
    """The standard library's records as the same JSON lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = {"timestamp": _utc(record.created), "level": record.levelname.lower(),
                     "component": record.name, "event": record.getMessage()}
            if record.exc_info:
                event["exception"] = logging.Formatter().formatException(record.exc_info)
            _route(record.levelno, event)
        except Exception:  # noqa: BLE001 - a log line never breaks the caller
            self.handleError(record)


def _utc(created: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(created, dt.UTC).isoformat().replace("+00:00", "Z")


def _set_root_level() -> None:
    logging.getLogger().setLevel(_lowest())


def configure(level: str = "WARNING", fmt: str = "json") -> None:
    """Set up structlog (and the standard library's root logger) once per process; ``level``
    is stderr's (a run's file has its own)."""
    global _configured, _stderr_level, _console
    _stderr_level = logging.getLevelName(level.upper())
    _console = fmt != "json"
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            _drop_below,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=lambda *_args: _Sink(),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    if not any(isinstance(h, _RootHandler) for h in root.handlers):
        root.addHandler(_RootHandler())
    _set_root_level()
    _configured = True


def get_logger(component: str) -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        configure()
    return structlog.get_logger().bind(component=component)
