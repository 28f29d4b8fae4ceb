"""The live engine: bars one timestamp at a time, the backtested strategy, the last row.

    from workbench.engine import Engine, ReplayFeed, check_parity

    engine = Engine(sma_cross, symbols, params={"fast": 10}, on_decision=print)
    engine.run(ReplayFeed.from_store(days=1, timeframe="1Min"))
    engine.latency.summary()                      # p50/p99 decision latency, ms

    check_parity(sma_cross, bars).ok              # engine == vectorized backtest, every signal

See :mod:`workbench.engine.engine` for the window length and why parity is exact.
"""

from workbench.engine.engine import (
    DEFAULT_MARGIN,
    Decision,
    DecisionHandler,
    Engine,
    LatencyStats,
)
from workbench.engine.feed import BarRow, Feed, ReplayFeed, bar_close, load_sessions
from workbench.engine.parity import ParityError, ParityMismatch, ParityReport, check_parity
from workbench.engine.window import RollingWindow

__all__ = [
    "DEFAULT_MARGIN",
    "BarRow",
    "Decision",
    "DecisionHandler",
    "Engine",
    "Feed",
    "LatencyStats",
    "ParityError",
    "ParityMismatch",
    "ParityReport",
    "ReplayFeed",
    "RollingWindow",
    "bar_close",
    "check_parity",
    "load_sessions",
]
