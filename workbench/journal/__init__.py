"""The journal of a run: append-only events, one writer, replay.

    from workbench.journal import Journal, FILL, replay
    from workbench.journal.catalog import catalog

    with Journal.open(record.path, clock) as journal:
        journal.append_durable(INTENT, intent)          # before the broker call
        journal.append(INTENT, a); journal.append(INTENT, b); journal.sync()  # a group
        journal.append(FILL, fill)
    result = replay(record.path)                        # events + report (torn tail?)
    wb.catalog().sql("SELECT * FROM orders").df()

The event names are :mod:`workbench.model.events`' (re-exported here). The catalog
(DuckDB views over every run) is :mod:`workbench.journal.catalog`, imported on its own so
that writing a journal never loads DuckDB.
"""

from workbench.journal.events import (
    Event,
    JournalCorrupt,
    JournalDiskFull,
    JournalError,
    JournalLocked,
    UnverifiedJournalWarning,
    to_model,
)
from workbench.journal.reader import (
    ReadReport,
    ReplayResult,
    TornTail,
    TornTailWarning,
    read_events,
    replay,
)
from workbench.journal.writer import Journal
from workbench.model.events import (
    ACCOUNT_SNAPSHOT,
    ALERT,
    BAR,
    BROKER_REPLY,
    BROKER_REQUEST,
    COMMAND,
    CONFIG,
    EQUITY,
    ERROR,
    EVENT_TYPES,
    FILL,
    HEARTBEAT,
    INTENT,
    LEGACY_ALIASES,
    ORDER_EVENT_TYPES,
    ORDER_LEG,
    ORDER_SETTLED,
    ORDER_UNKNOWN,
    ORDER_UPDATE,
    POSITION,
    RECONCILE,
    RISK_DECISION,
    SESSION_END,
    SESSION_START,
    SIGNAL,
    STATE,
    UNMATCHED_UPDATE,
)

__all__ = [
    # the event names, as model.events defines them
    "ACCOUNT_SNAPSHOT", "ALERT", "BAR", "BROKER_REPLY", "BROKER_REQUEST", "COMMAND", "CONFIG",
    "EQUITY", "ERROR", "EVENT_TYPES", "FILL", "HEARTBEAT", "INTENT", "LEGACY_ALIASES",
    "ORDER_EVENT_TYPES", "ORDER_LEG", "ORDER_SETTLED", "ORDER_UNKNOWN", "ORDER_UPDATE",
    "POSITION", "RECONCILE", "RISK_DECISION", "SESSION_END", "SESSION_START", "SIGNAL", "STATE",
    "UNMATCHED_UPDATE",
    # the journal's own
    "Event", "Journal", "JournalCorrupt", "JournalDiskFull", "JournalError", "JournalLocked",
    "ReadReport", "ReplayResult", "TornTail", "TornTailWarning", "UnverifiedJournalWarning",
    "read_events", "replay", "to_model",
]  # grouped, not sorted
