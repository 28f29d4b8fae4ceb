"""Notebook runs: papermill executes a strategy notebook in a mode, and the run is recorded.

The very notebook a researcher backtested is what runs, with its parameters, as a backtest,
a sweep, a parity check or a paper/live session. ``hashing`` names a notebook's code (the
hash promotion gates and deployments key on). Importing this package imports nothing else.
"""
