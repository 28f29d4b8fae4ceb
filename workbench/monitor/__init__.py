"""Operations: alerts, metrics, a session's structured log and drift (issue 14).

- :mod:`workbench.monitor.watch`: ``monitored(journal, run_dir)``, the session's journal
  watched (the one hook of a session);
- :mod:`workbench.monitor.alerts`: which events are alerts, and their text;
- :mod:`workbench.monitor.throttle`: de-duplication and the rate limit;
- :mod:`workbench.monitor.delivery`: apprise on a worker thread, off the trading path;
- :mod:`workbench.monitor.metrics`: the Prometheus endpoint of a session;
- :mod:`workbench.monitor.drift` (with ``drift_replay``, ``drift_compare``, ``drift_fills``,
  ``drift_hook``): a session's day replayed through the backtest and compared, once it has
  ended (the report) or as it runs (the drift page); imported by no session module (it
  loads the backtester), only by ``wb.run``, ``workbench drift``, the supervisor and the
  drift page.

See ``docs/monitoring.md``.
"""

from workbench.monitor.watch import Monitor, MonitoredJournal, monitored

__all__ = ["Monitor", "MonitoredJournal", "monitored"]
