"""The trading session: one run of a strategy against a broker, bar by bar.

    from workbench.session.runner import run_session
    result = run_session(sma_cross, {"fast": 10}, replay_date="2026-11-20", speed="max")

``runner`` (the loop: broker -> orders -> risk -> engine -> trader), ``trader`` (signals
become intents: ``Trader`` and ``Sizing``), ``start`` (locks, journal replay, reconcile
with the broker, fail closed), ``identity`` (a restart keeps the run's identity),
``rebuild`` (what a restart rebuilds to decide as the uncrashed run), ``options`` (the session's checked settings), ``control``
(the operator's halt/resume/stop channel), ``pacing`` (replay speed), ``crashpoints``
(test-only kill points), ``demo`` (the demo's replayed session). Importing this package
imports none of them; the order path never loads the backtester, numba or vectorbt.
"""
