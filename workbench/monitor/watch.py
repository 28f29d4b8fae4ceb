"""A session's journal, watched: alerts, metrics and the run's log from its events.

    journal = monitored(open_journal(record, clock), record.path)   # the session's journal

:func:`monitored` returns the journal wrapped (:class:`MonitoredJournal`: every method is
the journal's); each event appended is written first, then shown to the :class:`Monitor`
on the same thread, which only computes (metrics, alert rules, the throttle) and queues:
sending is the delivery thread's (:mod:`workbench.monitor.delivery`), so a slow or dead
channel never delays a decision. A failure of the monitor is logged, never raised into
the session.

With alert channels configured (``[monitor] alert_urls``) every alert the rules find is
journaled (an ``alert`` event, ``source`` "monitor", ``delivery``: send, duplicate,
rate_limited, below_level) before it is queued, whether or not it is ever delivered; the
alerts the session journals itself (risk gateway, supervisor, broker) are delivered under
the same rules. Without channels nothing is sent and no ``alert`` event is added.

The metrics endpoint (``[monitor] metrics``, default on) serves on 127.0.0.1, a free port
by default; ``runs/<id>/metrics.json`` records it (url, port, pid, ``serving``) and, while
the session runs, ``<home>/monitor/targets/<run_id>.json`` lists it for Prometheus's
``file_sd_configs`` (removed at the end). The run's log: ``runs/<id>/logs/session.jsonl``
(:func:`workbench.log.open_run_log`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.config import Settings, load_settings
from workbench.errors import ConfigError
from workbench.fsutil import atomic_write
from workbench.log import get_logger, open_run_log
from workbench.model import events as ev
from workbench.monitor.alerts import Alert, AlertRules
from workbench.monitor.delivery import Delivery
from workbench.monitor.metrics import SessionMetrics
from workbench.monitor.throttle import Throttle

__all__ = ["METRICS_FILE", "Monitor", "MonitoredJournal", "monitored", "targets_dir"]

METRICS_FILE = "metrics.json"
_log = get_logger("monitor")


class Monitor:
    """Metrics and alerts of one run's events (see the module doc)."""

    def __init__(self, journal, run_dir: Path, run_id: str, settings: Settings, *,
                 metrics: bool = True, mode: str = "paper") -> None:
        m = settings.monitor
        self.journal, self.run_dir, self.run_id, self.settings = journal, run_dir, run_id, m
        self.mode = mode
        self.metrics = SessionMetrics(run_id, mode) if metrics and m.metrics else None
        urls = [u.get_secret_value() for u in m.alert_urls]
        self.rules = AlertRules() if urls else None
        self.throttle = Throttle(m.dedupe_s, m.max_alerts_per_minute, m.alert_level)
        self.delivery = (Delivery(urls, timeout_s=m.alert_timeout_s, maxsize=m.alert_queue,
                                  on_result=self._delivered) if urls else None)
        self.failures = 0
        if self.metrics is not None:
            try:
                self.metrics.serve(m.metrics_port)
            except OSError as e:
                if self.delivery is not None:
                    self.delivery.close(0)
                raise ConfigError(f"monitor.metrics_port={m.metrics_port}: cannot serve "
                                  f"metrics on 127.0.0.1 ({e})") from None
            self._target(active=True)
            _log.info("metrics_served", url=self.metrics.url)

    # -- events ---------------------------------------------------------------------
    def observe(self, event) -> None:
        try:
            if self.metrics is not None:
                self.metrics.on(event.type, event.payload)
            if self.rules is not None:
                at = event.ts.isoformat()
                for alert in self.rules.on(event.type, event.payload, at):
                    self._handle(alert, event.ts.timestamp())
        except Exception as e:  # noqa: BLE001 - never into the session: said, counted
            self.failures += 1
            _log.error("monitor_failed", event_type=event.type,
                       error=f"{type(e).__name__}: {e}")

    def _handle(self, alert: Alert, now: float) -> None:
        decision, alert = self.throttle.admit(alert, now)
        if decision == "send" and (held := self.throttle.overflow(alert.at)) is not None:
            self._record(held, "send")
        self._record(alert, decision)

    def _record(self, alert: Alert, decision: str) -> None:
        if not alert.journaled:  # journaled before it is queued: kept whatever happens next
            self.journal.append(ev.ALERT, source="monitor", level=alert.severity,
                                kind=alert.kind, title=alert.title, message=alert.text,
                                key=alert.key, delivery=decision, at=alert.at)
        _log.info("alert", severity=alert.severity, kind=alert.kind, title=alert.title,
                  delivery=decision)
        if self.metrics is not None:
            self.metrics.alert(alert.severity, decision)
        if decision == "send" and self.delivery is not None:
            self.delivery.send(alert)

    def _delivered(self, alert: Alert, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.alert(alert.severity, "delivered" if ok else "failed")

    # -- the end --------------------------------------------------------------------
    def close(self) -> None:
        try:
            if self.rules is not None and (held := self.throttle.overflow("end")) is not None:
                self._record(held, "send")
        except Exception as e:  # noqa: BLE001 - the end goes on: delivery, endpoint, log
            _log.error("monitor_failed", at="close", error=f"{type(e).__name__}: {e}")
        if self.delivery is not None:
            self.delivery.close(self.settings.drain_s)
        if self.metrics is not None:
            self.metrics.close()
            try:
                self._target(active=False)
            except OSError as e:  # a full disk: the session's own error is the one to say
                _log.error("monitor_failed", at="close", error=f"{type(e).__name__}: {e}")

    def _target(self, active: bool) -> None:
        """The endpoint in the run record (``runs/<id>/metrics.json``: url, port, pid,
        serving) and, while it serves, as a Prometheus file_sd target in
        ``<home>/monitor/targets/<run_id>.json`` (removed at the end)."""
        if self.metrics is None or self.metrics.port is None:
            return
        port = self.metrics.port
        record = {"run_id": self.run_id, "url": self.metrics.url, "port": port,
                  "pid": os.getpid(), "serving": active}
        atomic_write(self.run_dir / METRICS_FILE,
                     lambda p: p.write_text(json.dumps(record, indent=1) + "\n"), overwrite=True)
        target = targets_dir() / f"{self.run_id}.json"
        if active:
            target.parent.mkdir(parents=True, exist_ok=True)
            body = [{"targets": [f"127.0.0.1:{port}"],
                     "labels": {"run_id": self.run_id, "mode": self.mode}}]
            atomic_write(target, lambda p: p.write_text(json.dumps(body) + "\n"),
                         overwrite=True)
        else:
            target.unlink(missing_ok=True)


def targets_dir() -> Path:
    """Where running sessions list their metrics endpoints for Prometheus (file_sd)."""
    return paths.home() / "monitor" / "targets"


class MonitoredJournal:
    """The journal, each appended event also shown to a :class:`Monitor`; ``close()``
    closes the monitor (overflow alert, delivery drained, endpoint stopped), the run's log,
    then the journal."""

    def __init__(self, journal, monitor: Monitor, run_log=None) -> None:
        self._journal, self.monitor, self._run_log = journal, monitor, run_log

    def append(self, kind: str, obj: Any = None, /, **fields: Any):
        event = self._journal.append(kind, obj, **fields)
        self.monitor.observe(event)
        return event

    def append_durable(self, kind: str, obj: Any = None, /, **fields: Any):
        event = self._journal.append_durable(kind, obj, **fields)
        self.monitor.observe(event)
        return event

    def close(self) -> None:
        try:
            self.monitor.close()
        finally:
            if self._run_log is not None:
                self._run_log.close()
            self._journal.close()

    def __getattr__(self, name: str):
        return getattr(self._journal, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MonitoredJournal({self._journal!r})"


def monitored(journal, run_dir, run_id: str | None = None, *, mode: str = "paper",
              metrics: bool = True, logs: bool = True, settings: Settings | None = None,
              strict: bool = True):
    """``journal`` watched by a :class:`Monitor` of ``run_dir``'s run (its log opened
    unless ``logs=False``; its metrics served unless ``metrics=False``). A monitor that
    cannot start (a bad channel URL, a taken port) raises, the journal closed; with
    ``strict=False`` (the supervisor, journaling an alert about a dead session) it is
    logged and the journal is returned unwatched, so the alert is journaled anyway."""
    run_dir = Path(run_dir)
    run_id = run_id or run_dir.name
    run_log = None
    try:
        settings = settings or load_settings()
        if logs:
            run_log = open_run_log(run_dir, run_id, settings.log.run_level,
                                   settings.log.run_max_bytes, settings.log.run_backups)
        monitor = Monitor(journal, run_dir, run_id, settings, metrics=metrics, mode=mode)
    except BaseException as e:
        if run_log is not None:
            run_log.close()
        if not strict and isinstance(e, Exception):
            _log.error("monitor_unavailable", run_id=run_id, error=f"{type(e).__name__}: {e}")
            return journal
        journal.close()  # the caller never got it back
        raise
    return MonitoredJournal(journal, monitor, run_log)
