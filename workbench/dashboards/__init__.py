"""Voilà pages' helpers (``notebooks/dashboards/``): they read the catalog and run records;
the only thing a dashboard may write is an operator command to the control channel."""
