"""Voilà dashboards: the server (`workbench dashboard`) and the pages' helpers.

A dashboard reads the catalog and the run records; it never talks to a broker. The only
thing it writes is an operator command (halt/resume) to a session's control channel
(:mod:`workbench.session.control`). Nothing heavy is imported here: the server
(:mod:`workbench.dashboards.server`, Voilà) and the monitor's modules are imported by name.
"""
