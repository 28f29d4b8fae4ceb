"""Deployments: a notebook promoted through the gates, its sessions supervised and scheduled.

Promotion gates, the registry of deployments, the supervisor that runs a session's notebook
in its own process group and watches its heartbeat, and the schedule on the exchange
calendar. Importing this package imports none of its modules.
"""
