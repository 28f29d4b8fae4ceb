"""How a session ends: its figures journaled (``session_end``), written to
``results/session.json`` and the manifest, and returned as a :class:`SessionResult`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from workbench.engine.engine import LatencyStats
from workbench.model import events as ev
from workbench.model.enums import OrderStatus, TimeInForce

__all__ = ["SessionResult", "close_failed", "finish", "latency_ms", "unfilled_at_close"]


@dataclass(frozen=True)
class SessionResult:
    """How a session ended and where its record is."""

    run_id: str
    path: str
    outcome: str  # succeeded | interrupted | halted | failed
    message: str
    bars: int
    orders: int
    fills: int
    cash: str
    equity: str
    pnl: str
    state: str
    positions: dict
    broker_path: str
    latency_ms: dict  # count, p50, p99, max: a bar's arrival to its orders sent (this run)

    def to_dict(self) -> dict:
        return asdict(self)



def finish(session, outcome: str, message: str, broker_path, expire: bool):
    if expire:
        if hasattr(session.broker, "expire"):  # a real broker expires DAY orders itself
            session.broker.expire()
        session.manager.process_updates()
        unfilled = unfilled_at_close(session.manager.book)
        if unfilled:  # what the backtest may have filled later: never silent
            session.journal.append(ev.ALERT, source="session", level="warning",
                                   message=unfilled, at=session.engine.clock.now().isoformat())
            message = f"{message}; {unfilled}"
    session.heartbeat()
    if getattr(session, "undecided", None):  # bars not decided (a late start) or decided
        # without bars that came after (a live feed's bar_late)
        message = f"{message}; {'; '.join(session.undecided)}"
    positions = {s: f"{p.quantity:f}" for s, p in session.manager.positions().items()}
    equity = session.equity()
    summary = {"outcome": outcome, "message": message, "bars": session.bars,
               "orders": session.orders, "fills": len(session.manager.book.executions),
               "cash": f"{session.manager.cash:f}", "equity": f"{equity:f}",
               "pnl": f"{equity - session.start_equity:f}", "state": str(session.risk.state),
               "positions": positions, "broker_path": str(broker_path),
               "latency_ms": latency_ms(session.latency)}
    session.journal.append(ev.SESSION_END, **summary)
    session.journal.sync()
    session.record.write_json("session", summary)  # its figures, for whoever ran it
    session.record.finish(outcome, error=None if outcome == "succeeded" else message,
                          extra={**summary, "trading": session.trading})
    return SessionResult(run_id=session.record.run_id, path=str(session.record.path), **summary)


#: the reasons of protective orders (stops, take-profits), left out of unfilled_at_close
_PROTECTION = frozenset({"stop_loss", "take_profit"})


def unfilled_at_close(book) -> str:
    """The orders of ``book`` (bracket legs and protective stops aside) the close left
    unfilled, in one line ("" if none): expired with quantity left, or DAY orders still
    open (a real broker expires them after the close). A DAY order the market never
    filled (a symbol without a bar at its open, a limit never reached) is a trade the
    session did not make; its backtest may fill it at the next bar, so the end says which."""
    ended, still = [], []
    for cid, order in book.orders.items():
        if cid in book.parents or order.remaining <= 0 or order.intent.reason in _PROTECTION:
            continue  # a stop not triggered is not a trade missed
        if order.status is OrderStatus.EXPIRED:
            ended.append(order)
        elif not order.status.is_terminal and order.intent.time_in_force is TimeInForce.DAY:
            still.append(order)
    parts = []
    if ended:
        parts.append(f"{len(ended)} order(s) expired unfilled at the close, trades the "
                     f"session did not make: {_listed(ended)}")
    if still:
        parts.append(f"{len(still)} DAY order(s) still open at the end, left to the broker's "
                     f"expiry after the close: {_listed(still)}")
    return "; ".join(parts)


def _listed(orders) -> str:
    return ", ".join(f"{o.intent.symbol} {o.intent.side.value} {o.remaining:f}"
                     f"{' of ' + format(o.intent.quantity, 'f') if o.filled_quantity else ''} "
                     f"({o.client_order_id})" for o in orders)


def latency_ms(stats: LatencyStats) -> dict:
    s = stats.summary()
    return {"count": s["count"], **{k: round(s[f"{k}_ms"], 3) if s["count"] else None
                                    for k in ("p50", "p99", "max")}}


def close_failed(record, error: BaseException) -> None:
    """The record closed as failed when the journal cannot be (disk full); when the disk
    takes no manifest either, it stays "running" and ``workbench status`` shows the run
    died (no process holds it): a restart with ``run_dir`` goes on from the journal."""
    try:
        record.finish("failed", error=f"{type(error).__name__}: {error}")
    except OSError:
        pass
