"""Alert delivery off the trading path: a bounded queue and one worker thread.

``Delivery(urls).send(alert)`` only puts the alert in the queue (never blocks: a full
queue drops it, counted and logged; the alert is in the journal already). The worker
sends each alert through apprise to every channel (Telegram, Discord, Slack, e-mail,
``json://``/``form://`` webhooks, ... configured by URL; one apprise cannot use is a
``ConfigError`` at the start), each with ``timeout_s`` to connect
and to read, so a slow or failing channel delays only the alerts behind it, never a
decision; after a failure the next attempt waits (1 s, doubling to 60 s; close() ends the
wait), so a dead channel costs the session no CPU. apprise and its channels are loaded when the delivery starts (the session's
start), never in the middle of a session.

Channel URLs can hold tokens: they are masked in every log line (:func:`workbench.log.mask`)
and a channel is named by apprise's privacy form (``json://1.2.3.4/...``) only.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from workbench.errors import ConfigError
from workbench.log import get_logger, mask
from workbench.monitor.alerts import Alert

__all__ = ["Delivery"]

_TYPES = {"info": "info", "warning": "warning", "error": "failure", "critical": "failure"}
_STOP = object()
_WEBHOOKS = ("json", "jsons", "form", "forms", "xml", "xmls")  # host: a plain address
_log = get_logger("monitor.delivery")
BACKOFF_S, BACKOFF_MAX_S = 1.0, 60.0  # waits before a failed channel is tried again


def _secret_parts(url: str) -> list[str]:
    """The parts of a channel URL that can be a secret (user, password, path, query)."""
    parts = urlsplit(url)
    found = [url, parts.password or "", parts.username or "", parts.query]
    found += [p for p in parts.path.split("/") if len(p) >= 8]
    if parts.scheme not in _WEBHOOKS:
        found.append(parts.netloc)  # tgram://TOKEN/..., discord://ID/TOKEN, ...
    return [f for f in found if f] + [quote(f, safe="") for f in found if f]


class Delivery:
    """Alerts to ``urls`` (apprise URLs) on a worker thread; ``on_result(alert, ok)`` is
    called by the worker after each alert (metrics)."""

    def __init__(self, urls: list[str], *, timeout_s: float = 5.0, maxsize: int = 1000,
                 on_result: Callable[[Alert, bool], None] | None = None) -> None:
        for url in urls:
            mask(*_secret_parts(url))
        self.urls, self.timeout_s = list(urls), timeout_s
        self.on_result = on_result or (lambda alert, ok: None)
        self.sent = self.failed = self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._notifier = self._apprise()  # here, at the start: never mid-session on the GIL
        self._down = self._abandon = False
        self._backoff = 0.0  # seconds the worker waits before trying a down channel again
        self._closing = threading.Event()  # ends a wait: close() drains at once
        self._thread = threading.Thread(target=self._work, name="workbench-alerts",
                                        daemon=True)
        self._thread.start()

    def send(self, alert: Alert) -> bool:
        """Queue ``alert``; False when the queue is full (the alert is dropped, logged)."""
        try:
            self._queue.put_nowait(alert)
            return True
        except queue.Full:
            self.dropped += 1
            _log.error("alert_dropped", reason="delivery queue full", title=alert.title,
                       queued=self._queue.qsize())
            return False

    def close(self, drain_s: float = 5.0) -> int:
        """Stop after the queued alerts, waiting at most ``drain_s``; the number of alerts
        not delivered (dropped after the one being sent; said in a log line)."""
        deadline = time.monotonic() + drain_s
        try:
            self._queue.put(_STOP, timeout=max(drain_s, 0.01))
        except queue.Full:
            pass
        self._closing.set()
        self._thread.join(max(deadline - time.monotonic(), 0))
        if not self._thread.is_alive():
            return 0
        self._abandon = True  # the worker stops after the alert it is sending
        left = max(self._queue.qsize() - 1, 0) + 1
        _log.warning("alerts_undelivered", left=left, drain_s=drain_s,
                     reason="the channels did not answer in time; the alerts are in the "
                            "journal")
        return left

    # -- the worker -----------------------------------------------------------------
    def _work(self) -> None:
        notifier = self._notifier
        while True:
            alert = self._queue.get()
            if alert is _STOP or self._abandon:
                return
            if self._backoff:  # a channel that failed is tried again only after a wait
                self._closing.wait(self._backoff)  # (alerts queue up, in the journal)
            try:
                ok = bool(notifier.notify(title=f"[{alert.severity}] {alert.title}",
                                          body=alert.text, notify_type=_TYPES[alert.severity]))
            except Exception as e:  # noqa: BLE001 - a channel failing never leaves this thread
                ok = False
                _log.error("alert_delivery_error", error=f"{type(e).__name__}: {e}")
            if ok:
                self.sent += 1
                if self._down:
                    _log.warning("alert_channel_back", failed_so_far=self.failed)
            else:
                self.failed += 1  # said once per outage (each alert is in the journal)
                (_log.info if self._down else _log.warning)(
                    "alert_not_delivered", title=alert.title, severity=alert.severity,
                    channels=self._names(notifier))
            self._down = not ok
            # a dead channel fails at once: tried for every alert, the worker would compete
            # with the decisions for the GIL (measured: p50 decision latency 1.76x)
            self._backoff = 0.0 if ok else min(max(self._backoff * 2, BACKOFF_S), BACKOFF_MAX_S)
            self.on_result(alert, ok)

    def _apprise(self):
        import logging
        import warnings

        # apprise 2.2's plugins (loaded by the first ``add``) import imghdr, deprecated
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import apprise

            logging.getLogger("apprise").setLevel(logging.ERROR)  # our own line says it once
            notifier = apprise.Apprise()
            for i, url in enumerate(self.urls):
                sep = "&" if "?" in url else "?"
                if not notifier.add(f"{url}{sep}cto={self.timeout_s:g}&rto={self.timeout_s:g}"):
                    raise ConfigError(f"monitor.alert_urls[{i}] ({_privacy(url)}): not an "
                                      "alert channel apprise can use (see its URL forms)")
        return notifier

    @staticmethod
    def _names(notifier) -> list[str]:
        if notifier is None:
            return []
        return [s.url(privacy=True) for s in notifier]


def _privacy(url: str) -> str:
    """``scheme://host/...`` for a webhook, ``scheme://...`` otherwise (the host part of a
    ``tgram://`` or ``discord://`` URL is a token)."""
    parts = urlsplit(url)
    host = parts.hostname if parts.scheme in _WEBHOOKS else None
    return f"{parts.scheme}://{host or '...'}/..."
