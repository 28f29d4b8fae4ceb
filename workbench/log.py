"""Structured logs: one JSON object per line on stderr, with secrets redacted.

``get_logger("data.store").info("bars_written", symbol="AAPL", rows=390)`` writes
``{"component": "data.store", "event": "bars_written", "symbol": "AAPL", ...}``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from workbench.secrets import redact

__all__ = ["configure", "get_logger"]

_configured = False


def _redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    return {k: redact(v) if isinstance(v, str) else v for k, v in event.items()}


class _StderrLogger:
    """Writes each rendered line to whatever ``sys.stderr`` is at that moment."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _StderrHandler(logging.StreamHandler):
    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str = "WARNING", fmt: str = "json") -> None:
    """Set up structlog (and the standard library's root logger) once per process."""
    global _configured
    renderer = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=lambda *_args: _StderrLogger(),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    if not any(isinstance(h.formatter, _RedactingFormatter) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())
    _configured = True


def get_logger(component: str) -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        configure()
    return structlog.get_logger().bind(component=component)
