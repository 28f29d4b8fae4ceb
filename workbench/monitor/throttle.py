"""De-duplication and rate limiting: an incident sends one alert, not a hundred.

Time is the session's (the journal's clock: a replay's bar times), so a replay throttles
as the live day would. :meth:`Throttle.admit` says what becomes of an alert:

- ``below_level``: under the delivery level (``[monitor] alert_level``);
- ``duplicate``: its key was sent less than ``dedupe_s`` ago: counted, and the next alert
  of that key sent says how many were held back;
- ``rate_limited``: ``max_per_minute`` alerts already sent in the last minute: counted, and
  the next alert sent is preceded by one alert saying how many were held back
  (:meth:`Throttle.overflow`, also asked at the session's end);
- ``send``.
"""

from __future__ import annotations

import collections
from dataclasses import replace

from workbench.monitor.alerts import SEVERITIES, Alert

__all__ = ["Throttle"]


class Throttle:
    def __init__(self, dedupe_s: float = 900.0, max_per_minute: int = 20,
                 level: str = "info") -> None:
        self.dedupe_s, self.max_per_minute = dedupe_s, max_per_minute
        self.level = SEVERITIES.index(level)
        self._sent: dict[str, float] = {}  # key -> time last sent
        self._held: collections.Counter = collections.Counter()  # key -> duplicates held
        self._window: collections.deque = collections.deque()  # times of the last minute's sends
        self._dropped: list[Alert] = []  # rate limited since the last send

    def admit(self, alert: Alert, now: float) -> tuple[str, Alert]:
        """(decision, the alert to send: the text says how many duplicates were held)."""
        if alert.rank < self.level:
            return "below_level", alert
        last = self._sent.get(alert.key)
        if last is not None and now - last < self.dedupe_s:
            self._held[alert.key] += 1
            return "duplicate", alert
        while self._window and now - self._window[0] >= 60.0:
            self._window.popleft()
        if len(self._window) >= self.max_per_minute:
            self._dropped.append(alert)
            return "rate_limited", alert
        self._window.append(now)
        self._sent[alert.key] = now
        held = self._held.pop(alert.key, 0)
        if held:
            alert = replace(alert, text=f"{alert.text} ({held} more like it held back)")
        return "send", alert

    def overflow(self, at: str) -> Alert | None:
        """One alert for the alerts held back by the rate limit since the last one sent
        (None: none); sent outside the limit."""
        if not self._dropped:
            return None
        dropped, self._dropped = self._dropped, []
        worst = max(dropped, key=lambda a: a.rank)
        kinds = collections.Counter(a.kind for a in dropped)
        text = (f"{len(dropped)} alert(s) held back by the rate limit "
                f"({self.max_per_minute} a minute): "
                + ", ".join(f"{n} {k}" for k, n in kinds.most_common())
                + f"; the worst: {worst.title}: {worst.text}; all are in the journal")
        return Alert(worst.severity, "rate_limit", f"{len(dropped)} alert(s) held back",
                     text, f"overflow:{at}", at)
