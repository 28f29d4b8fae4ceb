"""``AlpacaBroker``: the ``Broker`` protocol over alpaca-py's ``TradingClient`` and
``TradingStream`` (paper or live).

    broker = AlpacaBroker("paper")               # credentials and URLs from workbench.config
    broker.submit(intent)                        # -> BrokerOrder, or a broker error
    for update in broker.updates(): ...          # trade updates (non-blocking)
    broker.connected                             # the trade-updates stream is up
    broker.close()

Pieces (each module's doc says more): :mod:`.safety` (mode, keys, URL and account agree,
checked in ``__init__`` before anything is sent), :mod:`.transport` (timeout, the
account's rate limiter, 429/5xx raised before alpaca-py can retry: an order is sent once
per ``submit``), :mod:`.prices` (Alpaca's grid, applied in ``submit``), :mod:`.translate`
(raw JSON in and out, legs named ``<id>.sl`` / ``<id>.tp``), :mod:`.stream` (trade
updates on their own thread and loop, de-duplicated, a 406 backed off >= 90 s),
:mod:`.history` (the order history since a time, ``orders``: for reconciliation).
Errors: translated by :mod:`.errors` (its doc has the table), messages redacted.

Events: ``on_event(name, fields)`` (also kept in ``events`` and logged) reports
``throttled`` (the limiter made a request wait), ``rate_limited`` (the server said 429),
``price_rounded``, ``stream_connected``, ``stream_disconnected``, ``stream_closed``,
``stream_failed`` and ``stream_slot_taken`` (a 406: alert). Stream events are reported
from the stream's thread. ``ack_window`` (how long a lost submit may still surface) is
``max(30 s, 3 x timeout)``.

Fills after a restart come from ``GET /v2/account/activities/FILL`` (alpaca-py 0.44 has no
method for it; the client's public ``get`` sends it). The execution id of an activity is
its ``execution_id`` when the answer has one, else the part of its ``id`` after ``::``;
that this equals the trade update's ``execution_id`` on the real API is an assumption
the fake confirms only for itself.
"""

from __future__ import annotations

import collections
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Self

import pandas as pd

with warnings.catch_warnings():  # alpaca.trading imports websockets.legacy, which warns
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import QueryOrderStatus
    from alpaca.trading.requests import GetOrderByIdRequest, GetOrdersRequest

from workbench.brokers.alpaca import safety
from workbench.brokers.alpaca.errors import one_line, translate
from workbench.brokers.alpaca.history import order_history
from workbench.brokers.alpaca.prices import PriceError, order_prices
from workbench.brokers.alpaca.stream import MIN_SLOT_BACKOFF_S, TradeUpdates
from workbench.brokers.alpaca.translate import (
    Labels,
    decimal,
    fill_activities,
    fill_from_activity,
    order_request,
    position,
    update_from,
)
from workbench.brokers.alpaca.transport import GuardedAdapter, RateLimiter, limiter_for
from workbench.brokers.base import (
    BrokerOrder,
    BrokerUpdate,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TemporaryBrokerError,
)
from workbench.config import Credentials, Settings, load_settings
from workbench.errors import ConfigError
from workbench.log import get_logger
from workbench.model import Account, Fill, OrderIntent, Position
from workbench.secrets import SECRET_ENV_VARS, redact
from workbench.times import to_utc

__all__ = ["ALERT_EVENTS", "AlpacaBroker"]

_log = get_logger("brokers.alpaca")
_EVENTS = {"new": "accepted", "pending_new": "accepted", "accepted": "accepted",
           "replaced": "canceled"}
_LEG_SUFFIXES = (".sl", ".tp")
#: the events an operator must hear of (a session journals them as warning alerts)
ALERT_EVENTS = {"rate_limited", "stream_slot_taken", "stream_disconnected", "stream_failed",
           "update_malformed"}


class AlpacaBroker:
    """The ``Broker`` protocol on an Alpaca account (see the module doc).

    ``mode``: ``"paper"`` or ``"live"`` (default: from ``settings.alpaca.paper``).
    ``url``: the trading REST base URL (default ``settings.alpaca.trading_url``, else
    Alpaca's for the mode); ``stream_url``: the trade-updates websocket (default: derived
    from an overridden ``url`` as ``ws://host:port/stream``, else Alpaca's).
    ``timeout``: seconds per request (default ``settings.alpaca.request_timeout_s``).
    ``limiter``: the rate limiter (default: the process-wide one of this account's key).
    Raises ``ConfigError`` (credentials missing or refused, paper/live disagreement) or
    ``TemporaryBrokerError`` (the account could not be read) before anything is sent.
    ``stream=False`` opens no trade-updates stream (``updates()`` then yields nothing and
    ``connected`` is False). ``stream_sleep`` / ``slot_backoff``: the stream's wait after
    a 406 (injectable for tests)."""

    def __init__(self, mode: str | None = None, *, settings: Settings | None = None,
                 credentials: Credentials | None = None, url: str | None = None,
                 stream_url: str | None = None, stream: bool = True,
                 timeout: float | None = None, limiter: RateLimiter | None = None,
                 on_event: Callable[[str, dict], None] | None = None,
                 stream_sleep: Callable[[float], object] | None = None,
                 slot_backoff: float = MIN_SLOT_BACKOFF_S) -> None:
        settings = settings or load_settings()
        credentials = credentials or settings.credentials
        if not credentials.present:
            raise ConfigError("Alpaca credentials missing: set "
                              f"{' and '.join(SECRET_ENV_VARS)} in the environment")
        self.mode = mode or ("paper" if settings.alpaca.paper else "live")
        key = credentials.api_key.get_secret_value()
        secret = credentials.secret_key.get_secret_value()
        override = (url or settings.alpaca.trading_url or "").rstrip("/") or None
        self.url = override or (safety.PAPER_URL if self.mode == "paper" else safety.LIVE_URL)
        safety.check_setup(self.mode, settings.alpaca.paper, key, self.url)
        self.timeout = float(timeout if timeout is not None else settings.alpaca.request_timeout_s)
        self.ack_window = pd.Timedelta(seconds=max(30.0, 3 * self.timeout))
        self.events: collections.deque = collections.deque(maxlen=1000)
        self._on_event = on_event
        self._last_throttle_log = 0.0
        self.limiter = limiter or limiter_for(key)
        self.limiter.on_throttle.append(self._throttled)
        self._client = TradingClient(key, secret, paper=self.mode == "paper", raw_data=True,
                                     url_override=override)
        adapter = GuardedAdapter(self.timeout, self.limiter)
        self._client._session.mount("https://", adapter)  # see transport's doc: the one seam
        self._client._session.mount("http://", adapter)
        self._labels = Labels()
        self._pending: list[dict] = []  # stream messages not yet translated (a lookup failed)
        self._sequence = 0
        self._stream: TradeUpdates | None = None
        try:
            try:
                raw = self._call("read the account", self._client.get_account, write=False)
            except TemporaryBrokerError as e:
                if getattr(e, "http_status", None) not in (401, 403):
                    raise
                raise ConfigError(f"Alpaca credentials refused ({e}); check "
                                  f"{' and '.join(SECRET_ENV_VARS)} and the mode") from None
            self.account_number = str(raw.get("account_number") or "")
            safety.check_account(self.mode, self.account_number)
        except Exception:
            self.close()
            raise
        if stream:
            if stream_url is None and override is not None:
                stream_url = override.replace("https://", "wss://").replace("http://", "ws://") \
                    + "/stream"
            self._stream = TradeUpdates(key, secret, paper=self.mode == "paper", url=stream_url,
                                        on_event=self._event, sleep=stream_sleep,
                                        slot_backoff=slot_backoff)
            self._stream.start()

    # -- life cycle, state ----------------------------------------------------------------
    def close(self) -> None:
        """Stop the stream and release the HTTP session (the limiter stays with the account)."""
        if self._stream is not None:
            self._stream.close()
        if self._throttled in self.limiter.on_throttle:
            self.limiter.on_throttle.remove(self._throttled)
        self._client._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """The trade-updates stream is authorized and listening (the session's
        broker-disconnected kill switch reads this)."""
        return self._stream is not None and self._stream.connected

    @property
    def stream(self) -> TradeUpdates | None:  # its counters: attempts, duplicates, backoffs
        return self._stream

    def _event(self, name: str, fields: dict) -> None:
        fields = {k: (redact(v) if isinstance(v, str) else v) for k, v in fields.items()}
        self.events.append((pd.Timestamp.now(tz="UTC"), name, fields))
        if name in ALERT_EVENTS:
            _log.warning(name, **fields)
        else:
            _log.info(name, **fields)
        if self._on_event is not None:
            self._on_event(name, fields)

    def _throttled(self, wait: float) -> None:
        now = time.monotonic()
        if now - self._last_throttle_log >= 10.0:  # one line per 10 s, each event kept
            self._last_throttle_log = now
            _log.warning("throttled", wait_s=round(wait, 3),
                         note="client-side limiter holds requests under 200/min")
        self.events.append((pd.Timestamp.now(tz="UTC"), "throttled", {"wait_s": wait}))
        if self._on_event is not None:
            self._on_event("throttled", {"wait_s": wait})

    # -- errors ---------------------------------------------------------------------------
    def _call(self, what: str, fn, *args, write: bool):
        """``fn(*args)`` with every failure translated (:func:`.errors.translate`)."""
        try:
            return fn(*args)
        except Exception as e:
            error = translate(e, what, write, self.timeout)
            if error is e:
                raise
            if isinstance(error, RateLimited):
                self._event("rate_limited", {"what": what, "retry_after_s": error.retry_after})
        raise error from None

    # -- orders ---------------------------------------------------------------------------
    def submit(self, intent: OrderIntent) -> BrokerOrder:
        cid = intent.client_order_id
        try:
            prices = order_prices(intent)
        except PriceError as e:
            raise OrderRejected(f"order {cid} not sent: {e}", str(e)) from None
        asked = {"limit_price": intent.limit_price, "stop_price": intent.stop_price,
                 "take_profit": intent.take_profit, "stop_loss": intent.stop_loss}
        moved = {k: f"{asked[k]} -> {v}" for k, v in prices.items()
                 if v is not None and v != asked[k]}
        if moved:
            self._event("price_rounded", {"client_order_id": cid, **moved})
        try:
            request = order_request(intent, prices)
        except ValueError as e:  # alpaca-py's request model refused it: nothing was sent
            raise OrderRejected(f"order {cid} not sent: {one_line(str(e))}",
                                one_line(str(e))) from None
        raw = self._call(f"submit order {cid}", self._client.submit_order, request, write=True)
        return self._learn(raw, "submit", write=True)

    def _learn(self, raw: dict, what: str, write: bool) -> BrokerOrder:
        try:
            return self._labels.learn(raw)
        except (ValueError, KeyError, TypeError) as e:
            msg = redact(f"{what}: malformed order from Alpaca: {type(e).__name__}: {e}")
            raise (OutcomeUnknown(msg) if write else TemporaryBrokerError(msg)) from None

    def _tree(self, client_order_id: str) -> BrokerOrder | None:
        """The order tree whose Alpaca client id is ``client_order_id`` (legs nested)."""
        try:
            raw = self._call(f"look up order {client_order_id}",
                             self._client.get_order_by_client_id, client_order_id, write=False)
        except OrderNotFound:
            return None
        if str(raw.get("order_class") or "simple") not in ("simple", "") and not raw.get("legs"):
            raw = self._call(f"look up order {client_order_id}", self._client.get_order_by_id,
                             str(raw["id"]), GetOrderByIdRequest(nested=True), write=False)
        return self._learn(raw, f"look up order {client_order_id}", write=False)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        base = client_order_id
        if client_order_id.endswith(_LEG_SUFFIXES):
            base = client_order_id[:-3]
        tree = self._tree(base)
        if tree is None:
            return None
        return next((o for o in (tree, *tree.legs) if o.client_order_id == client_order_id),
                    None)

    def cancel(self, client_order_id: str) -> None:
        order = self.get_order(client_order_id)
        if order is None:
            raise OrderNotFound(f"cancel {client_order_id}: no such order at Alpaca")
        if not order.is_open:
            raise OrderRejected(f"cancel {client_order_id}: the order is {order.status}, not "
                                f"open", "not open")
        target = order.broker_order_id
        if order.legs and order.order_type.value == "oco":  # ours is Alpaca's leg: cancel its parent
            target = order.legs[0].broker_order_id
        try:
            self._call(f"cancel order {client_order_id}", self._client.cancel_order_by_id,
                       target, write=True)
        except OrderNotFound:
            raise OrderNotFound(f"cancel {client_order_id}: no such order at Alpaca") from None

    def open_orders(self) -> list[BrokerOrder]:
        """Listed flat: with ``nested=true`` the open legs of a filled entry are missing.
        Legs of parents never seen are named after a nested lookup of recent orders."""
        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=False, limit=500)
        raws = self._call("list open orders", self._client.get_orders, request, write=False)
        unknown = sorted({str(r.get("symbol")) for r in raws if self._labels.label(r) is None
                          and str(r.get("order_class") or "simple") not in ("simple", "")})
        if unknown:
            self._learn_recent(symbols=unknown)
        out = []
        for raw in raws:
            if self._labels.label(raw) is None:
                self._learn(raw, "list open orders", write=False)
            try:
                order = self._labels.order(raw)
            except (ValueError, KeyError, TypeError) as e:
                raise TemporaryBrokerError(f"list open orders: malformed order: {e}") from None
            if order.is_open:
                out.append(order)
        return out

    def orders(self, since: pd.Timestamp | None = None) -> list[BrokerOrder]:
        return order_history(lambda q: self._call("list orders", self._client.get_orders,
                                                  GetOrdersRequest(**q), write=False),
                             lambda raw: self._learn(raw, "list orders", write=False), since)

    def positions(self) -> dict[str, Position]:
        raws = self._call("list positions", self._client.get_all_positions, write=False)
        try:
            found = [position(r) for r in raws]
        except (ValueError, KeyError, TypeError) as e:
            raise TemporaryBrokerError(f"list positions: malformed answer: {e}") from None
        return {p.symbol: p for p in found if p.quantity != 0}

    def account(self) -> Account:
        raw = self._call("read the account", self._client.get_account, write=False)
        cash = decimal(raw.get("cash"))
        if cash is None:
            raise TemporaryBrokerError("read the account: the answer has no cash")
        return Account(cash, self.positions())

    # -- fills ----------------------------------------------------------------------------
    def fills(self, client_order_id: str | None = None,
              since: pd.Timestamp | None = None) -> list[Fill]:
        want = None
        if client_order_id is not None:
            order = self.get_order(client_order_id)
            if order is None:
                return []
            want = order.broker_order_id
        acts = self._activities(since)
        if want is not None:
            acts = [a for a in acts if str(a.get("order_id")) == want]
        unknown = {str(a.get("order_id")) for a in acts
                   if self._labels.label({"id": a.get("order_id")}) is None}
        if unknown:
            self._learn_recent(since)
        out = []
        for act in acts:
            label = self._labels.label({"id": act.get("order_id")})
            if label is None:
                raw = self._call("look up a filled order", self._client.get_order_by_id,
                                 str(act.get("order_id")), write=False)
                self._learn(raw, "look up a filled order", write=False)
                label = self._labels.label(raw)
            try:
                out.append(fill_from_activity(act, label.client_order_id))
            except (ValueError, KeyError, TypeError) as e:
                raise TemporaryBrokerError(f"list fills: malformed activity: {e}") from None
        if since is not None:
            out = [f for f in out if f.time >= to_utc(since)]
        out.sort(key=lambda f: f.time)
        return out

    def _activities(self, since) -> list[dict]:
        return fill_activities(lambda params: self._call(
            "list fills", self._client.get, "/account/activities/FILL", params, write=False),
            since)

    def _learn_recent(self, since=None, symbols: list[str] | None = None) -> None:
        """Learn the labels of recent order trees (legs whose parent we never saw)."""
        kw: dict = {"status": QueryOrderStatus.ALL, "nested": True, "limit": 500}
        if since is not None:
            kw["after"] = to_utc(since).floor("us").to_pydatetime() - pd.Timedelta(days=1).to_pytimedelta()
        if symbols:
            kw["symbols"] = symbols
        for raw in self._call("list orders", self._client.get_orders, GetOrdersRequest(**kw),
                              write=False):
            self._learn(raw, "list orders", write=False)

    # -- the stream -----------------------------------------------------------------------
    def updates(self) -> Iterator[BrokerUpdate]:
        """Trade updates in arrival order. One that names an order this adapter cannot
        label yet (a leg of a parent never seen) waits, with those after it, until a
        lookup succeeds; a malformed one is dropped with an ``update_malformed`` alert
        (reconciliation then finds what it said)."""
        if self._stream is None:
            return
        self._pending += self._stream.drain()
        while self._pending:
            data = self._pending[0]
            raw = data.get("order") or {}
            if self._labels.label(raw) is None and not raw.get("legs") \
                    and str(raw.get("order_class") or "simple") not in ("simple", ""):
                try:  # a leg (or a parent without its legs) never seen: learn its tree
                    self._learn_recent(symbols=[str(raw["symbol"])] if raw.get("symbol") else None)
                except TemporaryBrokerError:
                    return  # the rest waits for the next call
            self._pending.pop(0)
            try:
                self._sequence += 1
                yield update_from(data, self._labels, _EVENTS, self._sequence)
            except (ValueError, KeyError, TypeError) as e:
                self._event("update_malformed", {"update": str(data.get("event")),
                                                 "error": f"{type(e).__name__}: {e}"})
