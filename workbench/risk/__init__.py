"""The risk gateway: pre-trade checks, trading state and the kill-switch table.

Decisions, not exceptions: :meth:`RiskGateway.review` returns :class:`Approved` or
:class:`Denied` for each :class:`~workbench.model.OrderIntent`; :meth:`RiskGateway.on_bar`
evaluates the kill switches on a :class:`RiskContext` snapshot and returns the actions the
session must carry out. The same gateway runs in replay, paper and live. Imports only
``workbench.model`` (values, event names, the ``EventSink`` it journals to), the clock and
``workbench.config`` (:class:`RiskSettings`, the ``[risk]`` settings).
"""

from workbench.config import RiskSettings
from workbench.risk.checks import (
    APPROVED,
    Approved,
    BracketLegs,
    Check,
    Decision,
    Denied,
    KnownPrice,
    NotionalCap,
    PriceBand,
    RiskContext,
    SymbolExposureCap,
    TotalExposureCap,
    default_checks,
    is_reducing,
    reference_price,
    symbol_exposure,
    total_exposure,
)
from workbench.risk.gateway import FLATTEN, FORCE_EXIT, MARKET_TZ, RiskGateway
from workbench.risk.switches import (
    Action,
    Alert,
    BlockEntries,
    Flatten,
    ForceExit,
    KillSwitches,
    SetState,
    SwitchView,
    UnblockEntries,
    count_recent,
)

__all__ = [
    "APPROVED", "FLATTEN", "FORCE_EXIT", "MARKET_TZ", "Action", "Alert", "Approved",
    "BlockEntries", "BracketLegs", "Check", "Decision", "Denied", "Flatten", "ForceExit",
    "KillSwitches", "KnownPrice", "NotionalCap", "PriceBand", "RiskContext", "RiskGateway",
    "RiskSettings", "SetState", "SwitchView", "SymbolExposureCap", "TotalExposureCap",
    "UnblockEntries", "count_recent", "default_checks", "is_reducing", "reference_price",
    "symbol_exposure", "total_exposure",
]
