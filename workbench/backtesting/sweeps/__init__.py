"""Parameter sweeps: a grid of combinations scored over chunks of columns.

    grid = wb.sweep(sma_cross, bars, fast=range(5, 30, 5), slow=range(10, 70, 5))

``runner`` (``sweep``: the entry point), ``grid`` (the combinations, checked by the
strategy's schema, and the text constraint), ``chunks`` (memory-budgeted tiles of symbols
x combinations), ``worker`` (one chunk's work), ``pools`` (threads, processes or Dask),
``book`` (per-combination book metrics), ``result`` (``SweepResult``: table, heatmap, best
with DSR and PBO). Importing this package imports none of them.
"""
