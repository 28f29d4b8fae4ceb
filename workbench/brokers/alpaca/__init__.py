"""The Alpaca broker adapter: the ``Broker`` protocol over alpaca-py (paper and live).

``AlpacaBroker`` (:mod:`.broker`) is all a caller needs; the modules beside it hold its
parts: :mod:`.safety` (paper/live agreement), :mod:`.transport` (timeout, rate limiter, no
blind retry), :mod:`.prices` (Alpaca's price grid), :mod:`.translate` (JSON <-> model) and
:mod:`.stream` (trade updates on their own thread). alpaca-py is imported only inside
this package (an import-linter contract); none of its types leaves it.
"""

from __future__ import annotations

from workbench.brokers.alpaca.broker import AlpacaBroker

__all__ = ["AlpacaBroker"]
