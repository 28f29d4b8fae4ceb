"""Risk settings: every threshold of the kill-switch table and the pre-trade caps.

Defaults are the table of ``ARCHITECTURE.md``. Fractions and money are ``Decimal``
(converted once, here, from whatever the TOML or environment gave); durations are seconds
with :class:`pandas.Timedelta` accessors for the code that compares times.

    from workbench.risk import RiskSettings
    settings = RiskSettings(max_order_notional=25_000, daily_loss_halt="0.04")

Comparisons are strict, as in the table: a daily loss of exactly 3% does not trigger,
3.01% does.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["RiskSettings"]

_FRACTION = {"gt": 0, "lt": 1}


class RiskSettings(BaseModel):
    """Thresholds of the risk gateway (``[risk]`` in ``workbench.toml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- daily loss, against start-of-day equity --------------------------------------
    daily_loss_reduce: Decimal = Field(
        Decimal("0.03"), **_FRACTION,
        description="daily loss fraction above which only reducing orders pass (REDUCING)")
    daily_loss_halt: Decimal = Field(
        Decimal("0.05"), **_FRACTION,
        description="daily loss fraction above which every position is flattened and "
                    "trading HALTED for the day")
    # -- one position -----------------------------------------------------------------
    position_loss_exit: Decimal = Field(
        Decimal("0.05"), **_FRACTION,
        description="unrealized loss of one position, as a fraction of its average price, "
                    "that forces its exit")
    # -- order rate -------------------------------------------------------------------
    max_orders: int = Field(
        50, ge=1, description="more orders than this within order_window_s: HALTED until "
                              "an operator resumes")
    order_window_s: float = Field(300.0, gt=0)
    # -- connectivity and data freshness ----------------------------------------------
    disconnect_grace_s: float = Field(
        30.0, gt=0, description="feed or broker disconnected longer than this: no new "
                                "entries, alert")
    stale_bar_intervals: float = Field(
        2.0, gt=0, description="last bar older than this many bar intervals: no new "
                               "entries, alert")
    # -- decision latency -------------------------------------------------------------
    latency_budget_ms: float = Field(
        250.0, gt=0, description="bar arrival to orders sent; over it: alert")
    latency_breaches_to_block: int = Field(
        3, ge=1, description="this many consecutive decisions over budget block new entries")
    # -- unexpected exceptions --------------------------------------------------------
    max_exceptions: int = Field(
        3, ge=0, description="more than this within exception_window_s: HALTED")
    exception_window_s: float = Field(60.0, gt=0)
    # -- pre-trade caps (USD) ---------------------------------------------------------
    max_order_notional: Decimal = Field(
        Decimal(100_000), gt=0, description="per order that adds exposure")
    max_symbol_exposure: Decimal = Field(
        Decimal(100_000), gt=0, description="worst-case gross, per symbol, open orders included")
    max_total_exposure: Decimal = Field(
        Decimal(500_000), gt=0, description="worst-case gross, all symbols, open orders included")
    max_gross_leverage: Decimal = Field(
        Decimal(1), gt=0,
        description="total gross exposure may not exceed this multiple of current equity")
    price_band: Decimal = Field(
        Decimal("0.05"), **_FRACTION,
        description="max |limit or stop price / last trade - 1|")

    @model_validator(mode="after")
    def _ordered(self) -> RiskSettings:
        if self.daily_loss_halt <= self.daily_loss_reduce:
            raise ValueError(
                f"daily_loss_halt ({self.daily_loss_halt}) must be above daily_loss_reduce "
                f"({self.daily_loss_reduce})")
        return self

    # -- durations as Timedelta -------------------------------------------------------
    @property
    def order_window(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.order_window_s)

    @property
    def disconnect_grace(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.disconnect_grace_s)

    @property
    def exception_window(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.exception_window_s)
