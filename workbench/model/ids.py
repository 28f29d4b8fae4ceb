"""Deterministic client order ids: the same intent always gets the same id.

``<run>-<strategy>-<symbol>-<bar time>-<leg>``, squeezed into Alpaca's 48-character limit
by hashing the run and strategy parts. The id is what makes a resend after a crash a
duplicate the broker refuses, rather than a second order.
"""

from __future__ import annotations

import hashlib
import re

from workbench.times import to_utc

__all__ = ["MAX_LEN", "client_order_id", "parse_client_order_id"]

MAX_LEN = 48
_SAFE = re.compile(r"[^A-Za-z0-9.]")


def client_order_id(run_id: str, strategy: str, symbol: str, bar_time, leg: str = "entry") -> str:
    """The id of the order for one (run, strategy, symbol, bar, leg)."""
    ts = to_utc(bar_time)
    scope = hashlib.sha256(f"{run_id}|{strategy}".encode()).hexdigest()[:10]
    sym = _SAFE.sub("", symbol)[:8]
    leg = _SAFE.sub("", leg)[:6]
    out = f"wb-{scope}-{sym}-{ts:%Y%m%dT%H%M%S}-{leg}"
    assert len(out) <= MAX_LEN, out
    return out


def parse_client_order_id(cid: str) -> dict[str, str] | None:
    """The parts of an id made by :func:`client_order_id`, or None for any other id."""
    m = re.fullmatch(r"wb-([0-9a-f]{10})-([A-Za-z0-9.]{1,8})-(\d{8}T\d{6})-([A-Za-z0-9.]{1,6})", cid)
    if not m:
        return None
    return {"scope": m.group(1), "symbol": m.group(2), "bar_time": m.group(3), "leg": m.group(4)}
