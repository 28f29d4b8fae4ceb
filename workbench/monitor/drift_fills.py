"""Drift per fill: a session's fills against the backtest's of the same day.

Each fill (the executions of one symbol, side and bar added up, on each side) is matched to the
backtest's fill of the same symbol, bar and side; the reference price it met is the
backtest's price without the cost model's slippage, so its slippage in basis points, the
excess over the model's and the dollars the difference cost are exact. Unmatched: "extra"
(the session's only) and "missed" (the backtest's only). Used by
:mod:`workbench.monitor.drift`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

__all__ = ["FillDrift", "backtest_fills", "fill_drift", "session_fills"]


@dataclass(frozen=True)
class FillDrift:
    """One fill of the session (or a missed one of the backtest), against the model."""

    symbol: str
    side: str
    time: str
    status: str  # matched | extra (session only) | missed (backtest only)
    quantity: float | None  # the session's
    price: float | None  # the session's fill price
    fee: float | None
    backtest_quantity: float | None
    backtest_price: float | None
    backtest_fee: float | None
    reference: float | None  # the price the fill met (before slippage)
    slippage_bps: float | None  # the session's, against the reference, against the trader
    model_bps: float  # the cost model's
    excess_bps: float | None  # slippage_bps - model_bps
    cost: float | None  # dollars against the trader vs the backtest's price and fee
    why: str | None = None  # a missed fill: the risk gateway's refusal at that bar, if any



def backtest_fills(result) -> list[dict]:
    """The backtest's fills (its simulation's, exact prices and fees), those of one symbol,
    side and bar added up (a reversal's exit and entry are one)."""
    f = result.simulation.fills
    symbols, index = result.symbols, result.index
    out: dict[tuple, list] = {}
    for c, i, side, q, p, fee in zip(f["col"], f["idx"], f["side"], f["size"], f["price"],
                                     f["fees"], strict=True):
        key = (str(symbols[int(c)]), "buy" if int(side) > 0 else "sell", index[int(i)])
        acc = out.setdefault(key, [0.0, 0.0, 0.0])
        acc[0] += float(q)
        acc[1] += float(q) * float(p)
        acc[2] += float(fee)
    return [{"symbol": k[0], "side": k[1], "time": k[2], "quantity": q,
             "price": n / q, "fee": fee} for k, (q, n, fee) in out.items() if q]


def session_fills(payloads: list[dict]) -> list[dict]:
    out: dict[tuple, dict] = {}  # the executions of one symbol, side and bar add up
    for p in payloads:
        key = (p["symbol"], str(p["side"]).lower(), pd.Timestamp(p["time"]))
        qty, price, fee = Decimal(str(p["quantity"])), Decimal(str(p["price"])), Decimal(str(p["fee"]))
        f = out.setdefault(key, {"symbol": key[0], "side": key[1], "time": key[2],
                                 "q": Decimal(0), "notional": Decimal(0), "fee": Decimal(0)})
        f["q"] += qty
        f["notional"] += qty * price
        f["fee"] += fee
    return [{"symbol": f["symbol"], "side": f["side"], "time": f["time"],
             "quantity": float(f["q"]), "price": float(f["notional"] / f["q"]),
             "fee": float(f["fee"])} for f in out.values() if f["q"]]


def fill_drift(session: list[dict], backtest: list[dict], costs,
               refused: dict[tuple, str] | None = None) -> list[FillDrift]:
    """``refused``: (symbol, time) -> the risk gateway's refusal of an order at that time; a
    missed fill is explained by the symbol's last refusal since its previous backtest fill
    (the fill may come bars after the refusal when the symbol has no bar in between)."""
    model = float(costs.slippage_bps)
    pool = {(f["symbol"], f["side"], f["time"]): f for f in backtest}
    out = []
    for s in sorted(session, key=lambda f: (f["time"], f["symbol"])):
        b = pool.pop((s["symbol"], s["side"], s["time"]), None)
        sign = 1 if s["side"] == "buy" else -1
        if b is None:
            out.append(FillDrift(s["symbol"], s["side"], s["time"].isoformat(), "extra",
                                 s["quantity"], s["price"], s["fee"], None, None, None, None,
                                 None, model, None, None))
            continue
        reference = b["price"] / (1 + sign * costs.slippage)
        slip = sign * (s["price"] / reference - 1) * 1e4
        cost = sign * (s["price"] - b["price"]) * s["quantity"] + (s["fee"] - b["fee"]
                                                                  * s["quantity"] / b["quantity"])
        out.append(FillDrift(s["symbol"], s["side"], s["time"].isoformat(), "matched",
                             s["quantity"], s["price"], s["fee"], b["quantity"], b["price"],
                             b["fee"], reference, round(slip, 6), model,
                             round(slip - model, 6), round(cost, 6)))
    for b in sorted(pool.values(), key=lambda f: (f["time"], f["symbol"])):
        out.append(FillDrift(b["symbol"], b["side"], b["time"].isoformat(), "missed", None,
                             None, None, b["quantity"], b["price"], b["fee"], None, None,
                             model, None, None, _why(b, backtest, refused or {})))
    return out


def _why(missed: dict, backtest: list[dict], refused: dict[tuple, str]) -> str | None:
    symbol, at = missed["symbol"], missed["time"]
    since = max((f["time"] for f in backtest if f["symbol"] == symbol and f["time"] < at),
                default=None)
    found = [(t, why) for (s, t), why in refused.items()
             if s == symbol and t <= at and (since is None or t > since)]
    return max(found)[1] if found else None
