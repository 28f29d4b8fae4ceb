"""Drift at a session's end: measured, recorded, alerted; off the decision path.

    report = after_session(record.path, strategy)   # wb.run(mode="paper") calls it

Runs once the session has ended and closed its journal (never while it decides):
:func:`~workbench.monitor.drift.measure_drift`, ``results/drift.json``
(:func:`~workbench.monitor.drift.write_drift`) with the thresholds of the session's
deployment (its ``drift_limits``, set from ``[gates]`` when promoted; a session of no
deployment: ``[gates]``), and, from "warn" up, an ``alert`` event
(``source`` "drift") journaled in the run through the monitor, so it is delivered to the
alert channels under the same rules as the session's own. A measurement that fails is
said (printed, an error alert journaled) and leaves no drift.json: the ``drift`` gate then
counts the session as unmeasured, never as within tolerance.
"""

from __future__ import annotations

from pathlib import Path

from workbench.fsutil import read_json
from workbench.monitor.drift import DriftReport, checked_limits, measure_drift, write_drift

__all__ = ["after_session", "alert", "deployment_of", "session_limits"]

_SEVERITY = {"warn": "warning", "block": "error", "halt": "critical"}


def alert(run_dir: str | Path, level: str, message: str) -> None:
    """Journal a drift alert in the (ended) run, delivered by its monitor."""
    from workbench.clock import LiveClock, SimClock
    from workbench.journal import Journal
    from workbench.journal.reader import read_events
    from workbench.model import events as ev
    from workbench.monitor.watch import monitored

    last = None
    for event in read_events(run_dir, warn=False):
        last = event
    clock = SimClock(last.ts) if last is not None else LiveClock()  # the session's time
    try:
        journal = monitored(Journal.open(run_dir, clock), run_dir, metrics=False,
                            logs=False, strict=False)
    except Exception as e:  # noqa: BLE001 - e.g. the journal held by another writer: said
        print(f"WARNING: drift alert not journaled ({type(e).__name__}: {e}): {message}")
        return
    try:
        journal.append(ev.ALERT, source="drift", level=level, message=message,
                       at=clock.now().isoformat(), wall=LiveClock().now())
        journal.sync()
    finally:
        journal.close()


def deployment_of(run_dir: str | Path) -> str | None:
    """The id of the deployment whose session ``run_dir`` is, None if none: its
    ``settings.json`` names the deployment's account, ``deployments/<id>/broker.sqlite``."""
    from workbench.paths import deployments_dir

    settings = read_json(Path(run_dir) / "results" / "settings.json") or {}
    broker = (settings.get("settings") or {}).get("broker_path")
    if not broker:
        return None
    folder = Path(broker).resolve().parent
    return folder.name if folder.parent == deployments_dir().resolve() else None


def session_limits(run_dir: str | Path) -> dict[str, float] | None:
    """The drift thresholds of the session's deployment (None: ``[gates]``)."""
    from workbench.paths import deployments_dir

    dep = deployment_of(run_dir)
    if dep is None:
        return None
    limits = (read_json(deployments_dir() / f"{dep}.json") or {}).get("drift_limits")
    return checked_limits(limits, f"deployment {dep}") if limits else None


def after_session(run_dir: str | Path, strategy, *, store=None,
                  limits: dict[str, float] | None = None) -> DriftReport | None:
    """Measure, record and alert the drift of the session in ``run_dir`` (module doc);
    ``limits``: default the session's deployment's, else ``[gates]``."""
    try:
        limits = limits or session_limits(run_dir)
        report = measure_drift(run_dir, strategy, store=store, limits=limits)
    except Exception as e:  # noqa: BLE001 - said, never silent: the gate counts it unmeasured
        message = f"drift not measured: {type(e).__name__}: {e}"
        print(f"WARNING: {message}")
        alert(run_dir, "error", message)
        return None
    path = write_drift(run_dir, report)
    for line in report.lines():
        print(line)
    print(f"drift: {path}")
    if report.level != "ok":
        what = {"warn": "warning", "block": "promotion to live blocked",
                "halt": "the deployment halts"}[report.level]
        alert(run_dir, _SEVERITY[report.level],
              f"drift {report.level} ({what}): P&L {report.pnl_difference} vs the replayed "
              f"backtest ({report.pnl_fraction:.3%} of capital), {report.missed} missed, "
              f"{report.extra} extra trade(s), signals {report.signal_agreement:.2%} agree")
    return report
