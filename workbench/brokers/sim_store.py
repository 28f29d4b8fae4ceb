"""The simulated broker's persisted state: one SQLite file in WAL mode.

Orders, fills, positions, cash and the update stream live in the file, and every change
of the broker is one ``BEGIN IMMEDIATE`` transaction, so a process killed at any point
leaves the broker exactly as it was after its last acknowledged call, and several
``SimBroker`` objects (or processes) opened on one file see one broker. WAL mode lets
readers run while a writer writes. ``synchronous=NORMAL`` survives the death of any
process (what the crash tests do); ``durable=True`` (``FULL``) also survives power loss.

Checkpoints (the WAL's pages copied into the database file, with an fsync of each: several
milliseconds, up to tens on a busy disk) run by default inside the commit that fills the
WAL past SQLite's 1,000 pages. With ``checkpoint="manual"`` no commit runs one and the owner
calls :meth:`SimStore.checkpoint` when waiting costs nothing (the session: after a bar's
orders are sent, every few bars); what is committed, and how it survives, is the same
either way.

Decimals are stored as text, times as ISO-8601 UTC text: nothing is rounded by SQLite.

The update stream: every update is a row of ``updates`` (its payload JSON). The updates this
object itself committed are also kept, as the payloads written, until read: when they are
exactly the rows after the reader's cursor (no other connection wrote any in between, the
file's last row is the last of them) :meth:`SimStore.updates_after` hands them over
without reading them back, with the order and fill objects the writer held (an order's
"accepted" update: the order its submit returned; a fill's: the fill itself) instead of
parsing them from the payload; otherwise it reads the rows. The same updates either way.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pandas as pd

from workbench.brokers.base import BrokerOrder, BrokerUpdate
from workbench.brokers.sim_rules import position_after
from workbench.model import Fill, OrderStatus, OrderType, Position, Side, TimeInForce

__all__ = ["ORDER_FIELDS", "SimStore", "fill_from_row", "order_from_row", "stored_time"]

ORDER_FIELDS = ("client_order_id", "broker_order_id", "symbol", "side", "quantity",
                "order_type", "limit_price", "stop_price", "take_profit", "stop_loss",
                "time_in_force", "parent_id", "leg", "status", "filled_quantity",
                "average_price", "not_before", "active_from", "reason", "created_at",
                "updated_at", "notional")
FILL_FIELDS = ("execution_id", "client_order_id", "symbol", "side", "quantity", "price",
               "fee", "time")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS orders (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f + (" TEXT UNIQUE NOT NULL" if f == "client_order_id" else " TEXT")
               for f in ORDER_FIELDS)});
CREATE INDEX IF NOT EXISTS orders_status ON orders (status);
CREATE INDEX IF NOT EXISTS orders_parent ON orders (parent_id);
CREATE TABLE IF NOT EXISTS fills (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f + (" TEXT UNIQUE NOT NULL" if f == "execution_id" else " TEXT")
               for f in FILL_FIELDS)});
CREATE INDEX IF NOT EXISTS fills_order ON fills (client_order_id);
CREATE TABLE IF NOT EXISTS positions (symbol TEXT PRIMARY KEY, quantity TEXT, average_price TEXT);
CREATE TABLE IF NOT EXISTS updates (seq INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT);
"""
_INSERT_ORDER = (f"INSERT INTO orders ({', '.join(ORDER_FIELDS)}) "
                 f"VALUES ({', '.join('?' * len(ORDER_FIELDS))})")
_INSERT_FILL = (f"INSERT INTO fills ({', '.join(FILL_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(FILL_FIELDS))})")
_OPEN = tuple(s.value for s in OrderStatus if not s.is_terminal)
_KEPT = 100_000  # updates kept unread at most (a broker object whose updates nobody reads)


def _dec(v) -> Decimal | None:
    return None if v is None else Decimal(v)


def _ts(v) -> pd.Timestamp | None:
    return None if v is None else stored_time(v)


@functools.lru_cache(maxsize=4096)
def stored_time(v: str) -> pd.Timestamp:
    """A stored time (remembered: the orders and updates of a bar share a few)."""
    return pd.Timestamp(v)


def text(v) -> str | None:
    """A value as stored: Decimal and enums as their text, times as ISO UTC."""
    if v is None or type(v) is str:  # most values are text already (rows read back)
        return v
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


def _texts(row: dict, names: tuple[str, ...]) -> dict:
    """``row``'s ``names`` as stored (:func:`text`; most are text already: not called)."""
    return {f: v if (v := row.get(f)) is None or type(v) is str else text(v) for f in names}


def order_from_row(row: dict, legs: tuple[BrokerOrder, ...] = ()) -> BrokerOrder:
    return BrokerOrder(
        client_order_id=row["client_order_id"], broker_order_id=row["broker_order_id"],
        symbol=row["symbol"], side=Side(row["side"]), quantity=Decimal(row["quantity"]),
        order_type=OrderType(row["order_type"]), status=OrderStatus(row["status"]),
        filled_quantity=Decimal(row["filled_quantity"]),
        average_price=_dec(row["average_price"]), limit_price=_dec(row["limit_price"]),
        stop_price=_dec(row["stop_price"]), take_profit=_dec(row["take_profit"]),
        stop_loss=_dec(row["stop_loss"]), time_in_force=TimeInForce(row["time_in_force"]),
        parent_id=row["parent_id"], leg=row["leg"], legs=legs, reason=row["reason"],
        created_at=_ts(row["created_at"]), updated_at=_ts(row["updated_at"]))


def fill_from_row(row: dict) -> Fill:
    return Fill(execution_id=row["execution_id"], client_order_id=row["client_order_id"],
                symbol=row["symbol"], side=Side(row["side"]), quantity=Decimal(row["quantity"]),
                price=Decimal(row["price"]), fee=Decimal(row["fee"]), time=_ts(row["time"]))


class SimStore:
    """Typed access to the broker file. Writes happen inside :meth:`write`."""

    def __init__(self, path: str | Path, *, durable: bool = False,
                 checkpoint: str = "auto") -> None:
        if checkpoint not in ("auto", "manual"):
            raise ValueError(f"checkpoint must be 'auto' or 'manual', not {checkpoint!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        # updates of the open transaction, and this object's updates not yet read:
        # (seq, payload, the order and the fill it was written from, if held)
        self._written: list[tuple[int, dict, BrokerOrder | None, Fill | None]] = []
        self._committed: list[tuple[int, dict, BrokerOrder | None, Fill | None]] = []
        self._commits = 0  # transactions committed since the last checkpoint()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        if checkpoint == "manual":  # this connection's commits never checkpoint
            self._db.execute("PRAGMA wal_autocheckpoint=0")
        with self.write():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            columns = {r["name"] for r in self._db.execute("PRAGMA table_info(orders)")}
            if "notional" not in columns:  # a file from before notional orders
                self._db.execute("ALTER TABLE orders ADD COLUMN notional TEXT")

    def close(self) -> None:
        self._db.close()

    def checkpoint(self, min_commits: int = 0) -> tuple[int, int]:
        """Copy the WAL's committed pages into the database file (a passive checkpoint:
        never waits for readers or writers), if this object committed at least
        ``min_commits`` transactions since its last one; ``(pages in the WAL, pages
        copied)``, ``(0, 0)`` when it did not run."""
        with self._lock:
            if self._commits < min_commits:
                return 0, 0
            _, log, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self._commits = 0
        return log, copied

    @contextmanager
    def write(self) -> Iterator[None]:
        """One transaction holding the file's write lock; rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._written = []
            try:
                yield
            except BaseException:
                self._written = []
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._commits += 1
            if len(self._committed) > _KEPT:  # nobody reads them: read back if ever
                self._committed = []
            self._committed += self._written
            self._written = []

    def _rows(self, sql: str, args=()) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

    # -- meta -----------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (key, text(value)))

    # -- orders ---------------------------------------------------------------------------
    def insert_order(self, row: dict) -> dict:
        """Store an order; its fields as stored (text, as :meth:`order` reads them)."""
        values = [text(row.get(f)) for f in ORDER_FIELDS]
        self._db.execute(_INSERT_ORDER, values)
        return dict(zip(ORDER_FIELDS, values, strict=True))

    def next_order_seq(self) -> int:
        rows = self._rows("SELECT seq FROM sqlite_sequence WHERE name = 'orders'")
        return (rows[0]["seq"] if rows else 0) + 1

    def update_order(self, client_order_id: str, **fields) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE orders SET {sets} WHERE client_order_id = ?",
                         [text(v) for v in fields.values()] + [client_order_id])

    def order(self, client_order_id: str) -> dict | None:
        rows = self._rows("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        return rows[0] if rows else None

    def children(self, parent_id: str) -> list[dict]:
        return self._rows("SELECT * FROM orders WHERE parent_id = ? ORDER BY seq", (parent_id,))

    def all_orders(self) -> list[dict]:
        return self._rows("SELECT * FROM orders ORDER BY seq")

    def open_orders(self) -> list[dict]:
        marks = ", ".join("?" * len(_OPEN))
        return self._rows(f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY seq", _OPEN)

    # -- fills and positions --------------------------------------------------------------
    def insert_fill(self, fill: Fill) -> dict:
        """Store a fill; its fields as stored (text)."""
        values = {f: text(getattr(fill, f)) for f in FILL_FIELDS}
        self._db.execute(_INSERT_FILL, list(values.values()))
        return values

    def next_fill_seq(self) -> int:
        rows = self._rows("SELECT seq FROM sqlite_sequence WHERE name = 'fills'")
        return (rows[0]["seq"] if rows else 0) + 1

    def fills(self, client_order_id: str | None = None) -> list[Fill]:
        if client_order_id is None:
            rows = self._rows("SELECT * FROM fills ORDER BY seq")
        else:
            rows = self._rows("SELECT * FROM fills WHERE client_order_id = ? ORDER BY seq",
                              (client_order_id,))
        return [fill_from_row(r) for r in rows]

    def position(self, symbol: str) -> Position | None:
        rows = self._rows("SELECT * FROM positions WHERE symbol = ?", (symbol,))
        if not rows:
            return None
        return Position(symbol, Decimal(rows[0]["quantity"]), Decimal(rows[0]["average_price"]))

    def set_position(self, position: Position) -> None:
        self._db.execute("INSERT OR REPLACE INTO positions VALUES (?, ?, ?)",
                         (position.symbol, text(position.quantity), text(position.average_price)))

    def positions(self) -> dict[str, Position]:
        rows = self._rows("SELECT * FROM positions ORDER BY symbol")
        out = {r["symbol"]: Position(r["symbol"], Decimal(r["quantity"]),
                                     Decimal(r["average_price"])) for r in rows}
        return {s: p for s, p in out.items() if p.quantity != 0}

    def record_fill(self, row: dict, fill: Fill, cash: Decimal) -> Decimal:
        """Book ``fill`` of order ``row`` (updated in place): the fill, the position, the
        order's filled quantity, average price and status, the update; the cash after it,
        from ``cash`` before it (the caller writes it: ``set_meta("cash", ...)``, in the
        same transaction)."""
        stored = self.insert_fill(fill)  # its fields as text once: the row, the update
        self.set_position(position_after(self.position(fill.symbol), fill))
        cash = cash - fill.side.sign * fill.quantity * fill.price - fill.fee
        done, avg = Decimal(row["filled_quantity"]), Decimal(row["average_price"] or 0)
        filled = done + fill.quantity
        status = OrderStatus.FILLED if filled == Decimal(row["quantity"]) \
            else OrderStatus.PARTIALLY_FILLED
        at = stored["time"]
        row.update(filled_quantity=str(filled), status=status.value, updated_at=at,
                   average_price=str((avg * done + fill.price * fill.quantity) / filled))
        self.update_order(row["client_order_id"], filled_quantity=row["filled_quantity"],
                          status=row["status"], average_price=row["average_price"],
                          updated_at=at)
        event = "fill" if status is OrderStatus.FILLED else "partial_fill"
        self.add_update(event, row, fill, at, fill_row=stored)
        return cash

    # -- the update stream ----------------------------------------------------------------
    def add_update(self, event: str, order_row: dict, fill: Fill | None, time,
                   order: BrokerOrder | None = None, fill_row: dict | None = None) -> None:
        """Append an update: ``order_row`` the order after it (``order``: the same, parsed,
        if the caller holds it: ``order_from_row(order_row)`` exactly, legs aside);
        ``fill_row``: ``fill``'s fields as stored, if the caller has them."""
        if fill is not None and fill_row is None:
            fill_row = {f: text(getattr(fill, f)) for f in FILL_FIELDS}
        payload = {"event": event, "time": text(time),
                   "order": _texts(order_row, ORDER_FIELDS), "fill": fill_row}
        seq = self._db.execute("INSERT INTO updates (payload) VALUES (?)",
                               (json.dumps(payload),)).lastrowid
        if self._db.in_transaction:  # kept once committed (write())
            self._written.append((seq, payload, order, fill))

    def last_update(self) -> int:
        rows = self._rows("SELECT COALESCE(MAX(seq), 0) AS seq FROM updates")
        return rows[0]["seq"]

    def updates_after(self, seq: int) -> list[BrokerUpdate]:
        """The updates after ``seq``, oldest first (see the module doc)."""
        with self._lock:
            kept = [u for u in self._committed if u[0] > seq]
            self._committed = []
            if not kept or kept[0][0] != seq + 1 or kept[-1][0] - seq != len(kept) \
                    or self.last_update() != kept[-1][0]:
                kept = [(r["seq"], json.loads(r["payload"]), None, None) for r in self._rows(
                    "SELECT seq, payload FROM updates WHERE seq > ? ORDER BY seq", (seq,))]
        return [BrokerUpdate(p["event"], order_from_row(p["order"]) if order is None else order,
                             fill if fill is not None
                             else fill_from_row(p["fill"]) if p["fill"] else None,
                             _ts(p["time"]), n)
                for n, p, order, fill in kept]
