"""Research jobs run from a notebook's strategy: a recorded backtest or sweep.

``backtest`` (``run_backtest``: inputs prepared from the notebook and the store, a run record
with stats, trades and equity) and ``sweep`` (``run_sweep``: the grid, table, heatmap and
best combination in a record). The command line (``workbench backtest|sweep``) and the demo
call them. Importing this package imports neither.
"""
