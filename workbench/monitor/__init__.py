"""Operations: alerts, metrics and a session's structured log (issue 14).

- :mod:`workbench.monitor.watch`: ``monitored(journal, run_dir)``, the session's journal
  watched (the one hook of a session);
- :mod:`workbench.monitor.alerts`: which events are alerts, and their text;
- :mod:`workbench.monitor.throttle`: de-duplication and the rate limit;
- :mod:`workbench.monitor.delivery`: apprise on a worker thread, off the trading path;
- :mod:`workbench.monitor.metrics`: the Prometheus endpoint of a session.

See ``docs/monitoring.md``.
"""

from workbench.monitor.watch import Monitor, MonitoredJournal, monitored

__all__ = ["Monitor", "MonitoredJournal", "monitored"]
