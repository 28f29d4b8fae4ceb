"""A session's Prometheus metrics, computed from its journal's events and served on
127.0.0.1 (prometheus-client; its own registry per session, so sessions never mix).

=========================================  =============================================
metric                                     from
=========================================  =============================================
``workbench_decision_latency_seconds``     histogram, one observation per bar: the bar's
                                           arrival to its orders sent (``equity`` event)
``workbench_bars_processed_total``         ``bar`` events
``workbench_bars_late_total``              the live feed's late bars (``feed`` bar_late)
``workbench_orders{status}``               the session's orders by their last status
``workbench_feed_source{source}``          1 for the feed's source now: ``replay``,
                                           ``stream`` or ``polling``
``workbench_heartbeat_age_seconds``        wall seconds since the last ``heartbeat``
``workbench_equity_usd``,                  the account at the last bar; exposure: the
``workbench_pnl_usd``,                     positions' net market value (equity - cash),
``workbench_exposure_usd``                 ``workbench_positions`` how many are open
``workbench_trading_state{...}``           active, reducing or halted (an Enum)
``workbench_alerts_total{severity,         alerts by what became of them (sent, duplicate,
outcome}``                                 rate_limited, below_level, delivered, failed)
``workbench_session_info``                 run id, strategy, mode
=========================================  =============================================
"""

from __future__ import annotations

import math
import time
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info
from prometheus_client.exposition import start_http_server

from workbench.model import events as ev

__all__ = ["LATENCY_BUCKETS", "SessionMetrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SOURCES = ("replay", "stream", "polling")


class SessionMetrics:
    """The metrics of one session; ``on(type, payload)`` for each journaled event,
    ``serve(port)`` to start the endpoint (``port``/``url`` then set), ``close()``."""

    def __init__(self, run_id: str = "", mode: str = "paper") -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("workbench_decision_latency_seconds",
                                 "a bar's arrival to its orders sent", buckets=LATENCY_BUCKETS,
                                 registry=r)
        self.bars = Counter("workbench_bars_processed", "bars the session decided on",
                            registry=r)
        self.late = Counter("workbench_bars_late", "bars the live feed got after their "
                            "minute was decided (reported, not applied)", registry=r)
        self.orders = Gauge("workbench_orders", "the session's orders by their last status",
                            ["status"], registry=r)
        self.source = Gauge("workbench_feed_source", "1 for the feed's source now",
                            ["source"], registry=r)
        self.heartbeat_age = Gauge("workbench_heartbeat_age_seconds",
                                   "wall seconds since the session's last heartbeat",
                                   registry=r)
        self.equity = Gauge("workbench_equity_usd", "account equity at the last bar",
                            registry=r)
        self.pnl = Gauge("workbench_pnl_usd", "equity - start-of-session equity", registry=r)
        self.exposure = Gauge("workbench_exposure_usd", "net market value of the positions "
                              "(equity - cash)", registry=r)
        self.positions = Gauge("workbench_positions", "open positions", registry=r)
        self.state = Enum("workbench_trading_state", "the risk gateway's trading state",
                          states=["active", "reducing", "halted"], registry=r)
        self.alerts = Counter("workbench_alerts", "alerts by severity and what became of them",
                              ["severity", "outcome"], registry=r)
        self.info = Info("workbench_session", "the session", registry=r)
        self.info.info({"run_id": run_id, "mode": mode, "strategy": ""})
        self._run_id, self._mode = run_id, mode
        self._status: dict[str, str] = {}  # client order id -> its last status
        self._positions: dict[str, bool] = {}  # symbol -> open
        self._open = 0  # how many of them are open (kept as events move them: O(1) each)
        self._by_status: dict[str, object] = {}  # status -> its labelled child of ``orders``
        self._beat: float | None = None
        self.heartbeat_age.set_function(
            lambda: math.nan if self._beat is None else time.monotonic() - self._beat)
        self.set_source("replay")
        self.server = None
        self.port: int | None = None

    # -- events -----------------------------------------------------------------------
    def on(self, kind: str, payload: dict) -> None:
        if kind == ev.BAR:
            self.bars.inc()
        elif kind == ev.EQUITY:
            if payload.get("latency_ms") is not None:
                self.latency.observe(float(payload["latency_ms"]) / 1e3)
            equity, cash = Decimal(str(payload["equity"])), Decimal(str(payload["cash"]))
            self.equity.set(float(equity))
            self.exposure.set(float(equity - cash))
            self.pnl.set(float(payload.get("pnl", 0)))
        elif kind in (ev.INTENT, ev.BROKER_REPLY, ev.ORDER_UPDATE, ev.ORDER_UNKNOWN):
            self._order(kind, payload)
        elif kind == ev.POSITION:
            is_open = Decimal(str(payload["quantity"])) != 0
            was_open = self._positions.get(payload["symbol"], False)
            self._positions[payload["symbol"]] = is_open
            if is_open != was_open:
                self._open += 1 if is_open else -1
            self.positions.set(self._open)
        elif kind == ev.HEARTBEAT:
            self._beat = time.monotonic()
        elif kind == ev.STATE:
            self.state.state(str(payload.get("state", "active")))
        elif kind == ev.SESSION_START:
            self.info.info({"run_id": self._run_id, "mode": self._mode,
                            "strategy": str(payload.get("strategy", ""))})
            if payload.get("feed") == "alpaca":
                self.set_source("stream")
        elif kind == "feed":
            if payload.get("kind") == "bar_late":
                self.late.inc()
            elif payload.get("kind") == "feed_source":
                self.set_source("stream" if payload.get("source") == "stream" else "polling")

    def _order(self, kind: str, p: dict) -> None:
        cid = p.get("client_order_id")
        if not cid:
            return
        if kind == ev.INTENT:
            status = "new"
        elif kind == ev.ORDER_UNKNOWN:
            status = "unknown"
        else:
            status = str(p.get("status") or p.get("outcome") or "")
        if not status:
            return
        old = self._status.get(cid)
        if old == status:
            return
        if old is not None:
            self._orders(old).dec()
        self._status[cid] = status
        self._orders(status).inc()

    def _orders(self, status: str):
        """The ``orders`` gauge of ``status`` (prometheus-client's ``labels`` looked up once
        per status: it validates and locks on every call)."""
        child = self._by_status.get(status)
        if child is None:
            child = self._by_status[status] = self.orders.labels(status)
        return child

    def set_source(self, source: str) -> None:
        for s in _SOURCES:
            self.source.labels(s).set(1 if s == source else 0)

    def alert(self, severity: str, outcome: str) -> None:
        self.alerts.labels(severity, outcome).inc()

    # -- the endpoint -------------------------------------------------------------------
    def serve(self, port: int = 0) -> int:
        """Serve ``/metrics`` on 127.0.0.1 (``port`` 0: a free one); the port."""
        self.server, _thread = start_http_server(port, addr="127.0.0.1",
                                                 registry=self.registry)
        self.port = self.server.server_port
        return self.port

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}/metrics" if self.port else None

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
