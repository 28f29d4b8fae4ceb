"""The catalog: an in-memory DuckDB connection with views over every run in ``runs/``.

``catalog()`` never opens a database file and never takes a lock: it reads the run
manifests and the journal segments as plain files, so any number of dashboards and
notebooks can query while a session writes. Views are lazy: each query reads the files
as they are at that moment (new runs and events appear without reconnecting); pass
``snapshot=True`` to read the journals once into tables (a consistent, fast snapshot).

Only whole lines are visible. Each segment is read as bytes (``read_blob``) and split
on newlines in SQL; the part after the last newline (a line being written, or torn by a
crash) is dropped, and so is any line that is not valid JSON: exactly the Python
reader's rule; a line whose checksum (``sum``, :mod:`workbench.journal.events`) does
not match is dropped too. ``read_ndjson`` was not used: with ``ignore_errors`` it yields a
torn line as a row of nulls and parses a whole-looking last line that has no newline yet.
A segment that is not UTF-8 (disk damage; the writer only writes ASCII) is read line by
line through DuckDB's escaped text of its bytes: only its damaged lines are dropped.

What is dropped is never silent: the ``damage`` view lists, per run, every line that is
not a valid event (``segment``, ``line``, ``reason``: not UTF-8, checksum mismatch, not a
valid event, no checksum after checksummed ones), every run of missing events (a seq gap
beyond the damaged lines, or a journal not starting at 1: ``line`` is the event after
the gap) and every missing segment (``line`` null). A missing *last* segment leaves no
trace in the journal and is not seen.

The views of one type (fills, positions, ...) pick their lines by the envelope's first
bytes (``{"type":"fill",``) before parsing any JSON (and checking any checksum). On 1.2 M
events (220 MB, 2 cores): ``events`` 0.3-0.7 s a full scan, ``fills`` 0.2 s, ``orders``
0.5 s; ``read_ndjson`` would take about 0.25 s for the full scan.

Views (columns in :data:`VIEWS`): ``runs`` (manifests), ``events``, ``orders`` (latest
state per ``(run_id, client_order_id)``), ``fills``, ``positions`` (latest per
``(run_id, symbol)``, flat ones included), ``equity``, ``damage`` (above);
``_journal_lines`` holds the raw whole lines. Quantities and prices are
``DECIMAL(38, 10)``, times ``TIMESTAMPTZ`` (UTC).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from workbench import paths
from workbench.journal.events import LINE_PREFIX, SUM_SUFFIX
from workbench.model import events as ev
from workbench.model.codec import field_names
from workbench.model.outcomes import LEGACY_OUTCOMES
from workbench.model.types import Fill, Position

__all__ = ["VIEWS", "catalog"]

VIEWS = {
    "runs": ("run_id", "kind", "mode", "strategy", "status", "outcome", "started_at",
             "ended_at", "timeframe", "symbols_count", "git_commit", "error", "notebook",
             "notebook_hash", "params", "path"),
    "events": ("run_id", "seq", "ts", "type", "payload"),
    "orders": ("run_id", "client_order_id", "symbol", "side", "order_type", "qty",
               "limit_price", "stop_price", "status", "filled_qty", "avg_price",
               "broker_order_id", "created", "updated", "last_seq", "events"),
    "fills": ("run_id", "seq", "ts", "time", "execution_id", "client_order_id", "symbol",
              "side", "qty", "price", "fee"),
    "positions": ("run_id", "symbol", "qty", "avg_price", "ts", "seq"),
    "equity": ("run_id", "seq", "ts", "equity", "cash"),
    "damage": ("run_id", "segment", "line", "reason"),
}

_ENVELOPE = '{"type":"VARCHAR","seq":"VARCHAR","ts":"VARCHAR","payload":"JSON"}'
_DEC = "DECIMAL(38, 10)"
# the order events, and the old spellings of them that journals written before the names
# were unified still hold (read as the type they stand for)
_ORDER_ALIASES = tuple(old for old, new in ev.LEGACY_ALIASES.items()
                       if new in ev.ORDER_EVENT_TYPES)
_ORDER_TYPES = (*ev.ORDER_EVENT_TYPES, *_ORDER_ALIASES)
_STATUS_OF_TYPE = {ev.INTENT: "new", ev.ORDER_UNKNOWN: "unknown"}
_STATUS_OF_TYPE.update({old: _STATUS_OF_TYPE[ev.canonical_type(old)] for old in _ORDER_ALIASES
                        if ev.canonical_type(old) in _STATUS_OF_TYPE})

# output column -> (JSON paths tried in order, SQL type or None for text)
_ORDER_FIELDS = {
    "client_order_id": (("$.client_order_id", "$.intent.client_order_id"), None),
    "symbol": (("$.symbol", "$.intent.symbol"), None),
    "side": (("$.side", "$.intent.side"), None),
    "order_type": (("$.order_type", "$.intent.order_type"), None),
    "qty": (("$.quantity", "$.intent.quantity"), _DEC),
    "limit_price": (("$.limit_price", "$.intent.limit_price"), _DEC),
    "stop_price": (("$.stop_price", "$.intent.stop_price"), _DEC),
    "status": (("$.status",), None),
    "filled_qty": (("$.filled_quantity",), _DEC),
    "avg_price": (("$.average_price",), _DEC),
    "broker_order_id": (("$.broker_order_id",), None),
}


def _model(cls: type, columns: dict[str, tuple[str, str | None]]) -> dict:
    """Columns of a model's payload (column -> (field, SQL type)), each field looked up
    under its old names first (journals written before the shapes were unified), then
    today's: :func:`workbench.model.codec.field_names`."""
    return {column: (tuple(f"$.{n}" for n in field_names(cls, field)), sql_type)
            for column, (field, sql_type) in columns.items()}


_FILL_FIELDS = _model(Fill, {
    "time": ("time", "TIMESTAMPTZ"), "execution_id": ("execution_id", None),
    "client_order_id": ("client_order_id", None), "symbol": ("symbol", None),
    "side": ("side", None), "qty": ("quantity", _DEC), "price": ("price", _DEC),
    "fee": ("fee", _DEC),
})
_POSITION_FIELDS = _model(Position, {"symbol": ("symbol", None), "qty": ("quantity", _DEC),
                                     "avg_price": ("average_price", _DEC)})
_EQUITY_FIELDS = {"equity": (("$.equity",), _DEC), "cash": (("$.cash",), _DEC)}
_RUN_FIELDS = {
    "run_id": (("$.run_id",), None), "kind": (("$.kind",), None), "mode": (("$.mode",), None),
    "strategy": (("$.strategy",), None), "status": (("$.status",), None),
    "outcome": (("$.outcome",), None), "started_at": (("$.started_at",), "TIMESTAMPTZ"),
    "ended_at": (("$.ended_at",), "TIMESTAMPTZ"),
    "timeframe": (("$.data_range.timeframe",), None),
    "symbols_count": (("$.data_range.symbols_count",), "BIGINT"),
    "git_commit": (("$.git_commit",), None), "error": (("$.error",), None),
    "notebook": (("$.notebook.path",), None), "notebook_hash": (("$.notebook.hash",), None),
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _columns(source: str, fields: dict) -> tuple[dict[str, str], str]:
    """SQL expressions for ``fields`` of the JSON ``source``, all from one parse ``_f``."""
    flat = [p for tried, _ in fields.values() for p in tried]
    exprs, i = {}, 1
    for name, (tried, sql_type) in fields.items():
        parts = [f"_f[{i + k}]" for k in range(len(tried))]
        value = parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
        exprs[name] = f"TRY_CAST({value} AS {sql_type})" if sql_type else value
        i += len(tried)
    return exprs, f"json_extract_string({source}, [{', '.join(map(_quote, flat))}]) AS _f"


def _select(exprs: dict[str, str]) -> str:
    return ", ".join(f"{expr} AS {name}" for name, expr in exprs.items())


def _types(kinds: tuple[str, ...]) -> str:
    return ", ".join(map(_quote, kinds))


def _parsed(kinds: tuple[str, ...] = ()) -> str:
    """The events in ``_journal_lines`` (only those of ``kinds`` if given), parsed.

    Lines are picked by their first bytes (``{"type":"fill",``: the writer puts the type
    first) before any JSON is parsed; the CASE keeps DuckDB from running the costlier
    ``json_valid`` on every line first. (A filter on a parsed field instead would be
    pushed below the projection and parse each line twice.)
    """
    prefixes = [LINE_PREFIX % k for k in kinds] or ['{"type":']
    pick = " OR ".join(f"starts_with(line, {_quote(p)})" for p in prefixes)
    return f"""SELECT run_id, TRY_CAST(e.seq AS BIGINT) AS seq,
                   TRY_CAST(e.ts AS TIMESTAMPTZ) AS ts, e.type AS type, e.payload AS payload
            FROM (SELECT run_id, from_json(line, {_quote(_ENVELOPE)}) AS e
                  FROM _journal_lines
                  WHERE CASE WHEN {pick} THEN json_valid(line) AND {_VERIFIED} ELSE false END)"""


def _events_of(kinds: tuple[str, ...], snapshot: bool) -> str:
    """A subquery of the events of ``kinds``."""
    if snapshot:
        return f"(SELECT * FROM events WHERE type IN ({', '.join(map(_quote, kinds))}))"
    return f"({_parsed(kinds)})"


def _typed(kinds: tuple[str, ...], fields: dict, snapshot: bool) -> str:
    exprs, f = _columns("payload", fields)
    return (f"SELECT run_id, seq, ts, {_select(exprs)} "
            f"FROM (SELECT *, {f} FROM {_events_of(kinds, snapshot)})")


# A segment that is not UTF-8 (disk damage: the writer writes ASCII only) is read through
# DuckDB's text form of a BLOB, where every byte but printable ASCII is an escape \xNN
# (a quote, an apostrophe and a backslash too): split on the newline's escape, a line is
# unescaped back when those three are its only escapes, else it is damage ("not UTF-8").
_ESCAPED = ("\\x22", '"'), ("\\x27", "'"), ("\\x5C", "\\")


def _unescaped(expr: str, keep: bool) -> str:
    for code, char in _ESCAPED:
        expr = f"replace({expr}, {_quote(code)}, {_quote(char if keep else '')})"
    return expr


# the line's checksum (workbench.journal.events.line_checksum): has one / it matches (the
# lines checked are ASCII: a byte length is a character count)
_HAS_SUM = (f"(strlen(line) >= {SUM_SUFFIX} AND substr(line, strlen(line) - "
            f"{SUM_SUFFIX - 1}, 8) = ',\"sum\":\"' AND ends_with(line, '\"}}'))")
_SUM_OK = (f"(left(sha256(substr(line, 1, strlen(line) - {SUM_SUFFIX})), 8) = "
           "substr(line, strlen(line) - 9, 8))")
_VERIFIED = f"(CASE WHEN {_HAS_SUM} THEN {_SUM_OK} ELSE true END)"


def _journal_sql(root: Path, table: str) -> list[str]:
    segments = _quote(f"{root}/*/events/*.jsonl")
    names = ("regexp_extract(filename, '([^/]+)/events/[0-9]+[.]jsonl$', 1) AS run_id, "
             "regexp_extract(filename, '([0-9]+[.]jsonl)$', 1) AS segment")
    lines = ("unnest(range(1, len(parts))) AS line_no, unnest(parts[1:len(parts) - 1]) AS")
    return [
        # UTF-8 segments (every sound one) as they are; the others through their escaped text
        f"""CREATE VIEW _all_lines AS
            WITH blobs AS (SELECT filename, content, try(decode(content)) AS text
                           FROM read_blob({segments}))
            SELECT run_id, segment, line_no, line, false AS not_utf8
            FROM (SELECT run_id, segment, {lines} line
                  FROM (SELECT {names}, string_split(text, chr(10)) AS parts
                        FROM blobs WHERE text IS NOT NULL))
            UNION ALL
            SELECT run_id, segment, line_no, {_unescaped("raw", True)} AS line,
                   contains({_unescaped("raw", False)}, '\\x') AS not_utf8
            FROM (SELECT run_id, segment, {lines} raw
                  FROM (SELECT {names},
                               string_split(CAST(content AS VARCHAR), '\\x0A') AS parts
                        FROM blobs WHERE text IS NULL))""",
        """CREATE VIEW _journal_lines AS
            SELECT run_id, line FROM _all_lines WHERE NOT not_utf8""",
        f"CREATE {table} events AS {_parsed()}",
        _DAMAGE_SQL,
    ]


# every line that is not a valid event, every event missing, every segment missing
_DAMAGE_SQL = f"""CREATE VIEW damage AS
WITH l AS (
    SELECT run_id, segment, line_no, not_utf8, line,
           NOT not_utf8 AND {_HAS_SUM} AS has_sum,
           NOT not_utf8 AND json_valid(line) AS valid,
           CASE WHEN NOT not_utf8 AND json_valid(line)
                THEN TRY_CAST(json_extract_string(line, '$.seq') AS BIGINT) END AS seq
    FROM _all_lines),
c AS (
    SELECT *, CASE WHEN has_sum THEN {_SUM_OK} END AS sum_ok,
           min(seq) FILTER (WHERE has_sum) OVER (PARTITION BY run_id) AS verified_from
    FROM l),
bad AS (
    SELECT run_id, segment, line_no, seq, CASE
        WHEN not_utf8 THEN 'not UTF-8 (a damaged byte)'
        WHEN has_sum AND NOT sum_ok THEN 'checksum mismatch (changed after it was written)'
        WHEN NOT valid OR seq IS NULL THEN 'not a valid event'
        WHEN NOT has_sum AND seq > verified_from
            THEN 'no checksum, though the events before it have one'
        END AS reason
    FROM c),
s AS (  -- the events, each with the one before it and the damaged lines between them
    SELECT run_id, segment, line_no, seq, lag(seq) OVER w AS prev,
           damaged - coalesce(lag(damaged) OVER w, 0) AS between
    FROM (SELECT *, count(reason) OVER (PARTITION BY run_id ORDER BY segment, line_no)
                    AS damaged FROM bad)
    WHERE reason IS NULL
    WINDOW w AS (PARTITION BY run_id ORDER BY segment, line_no)),
gaps AS (  -- events missing beyond the damaged lines (listed already)
    SELECT run_id, segment, line_no AS line, CASE
        WHEN seq > coalesce(prev, 0) + 1 + between
            THEN 'events ' || (coalesce(prev, 0) + 1) || '..' || (seq - 1) || ' missing'
        WHEN seq <= prev THEN 'seq ' || seq || ' after ' || prev
        END AS reason
    FROM s),
numbered AS (
    SELECT run_id, CAST(split_part(segment, '.', 1) AS BIGINT) AS n
    FROM (SELECT DISTINCT run_id, segment FROM _all_lines)),
holes AS (
    SELECT run_id, lpad(CAST(k AS VARCHAR), 6, '0') || '.jsonl' AS segment,
           CAST(NULL AS BIGINT) AS line, 'segment missing' AS reason
    FROM (SELECT run_id, unnest(range(1, max(n))) AS k, list(n) AS have
          FROM numbered GROUP BY run_id)
    WHERE NOT list_contains(have, k))
SELECT run_id, segment, line, reason FROM (
    SELECT run_id, segment, line_no AS line, reason FROM bad WHERE reason IS NOT NULL
    UNION ALL SELECT * FROM gaps WHERE reason IS NOT NULL
    UNION ALL SELECT * FROM holes)
ORDER BY run_id, segment, line NULLS FIRST"""


def _runs_sql(root: Path, table: str) -> str:
    exprs, f = _columns("m", _RUN_FIELDS)
    exprs["run_id"] = (f"coalesce({exprs['run_id']}, "
                       "regexp_extract(filename, '([^/]+)/manifest[.]json$', 1))")
    legacy = " ".join(f"WHEN {_quote(k)} THEN {_quote(v)}" for k, v in LEGACY_OUTCOMES.items())
    exprs["outcome"] = f"CASE {exprs['outcome']} {legacy} ELSE {exprs['outcome']} END"
    exprs["params"] = "json_extract(m, '$.params')"
    exprs["path"] = "regexp_replace(filename, '/manifest[.]json$', '')"
    return f"""CREATE {table} runs AS
        SELECT {_select(exprs)}
        FROM (SELECT filename, m, {f}
              FROM (SELECT filename, try(decode(content)) AS m
                    FROM read_blob({_quote(f"{root}/*/manifest.json")}))
              WHERE json_valid(m))"""


def _orders_sql(snapshot: bool) -> list[str]:
    """``orders``: the latest non-null value of each field over the order's events; the
    filled quantity is the larger of the last one reported and the sum of its fills (both
    only grow), the average price from whichever of the two that is."""
    exprs, f = _columns("payload", _ORDER_FIELDS)
    implied = " ".join(f"WHEN {_quote(k)} THEN {_quote(v)}" for k, v in _STATUS_OF_TYPE.items())
    exprs["status"] = f"coalesce({exprs['status']}, CASE type {implied} END)"
    last = ", ".join(f"arg_max({c}, seq) FILTER (WHERE {c} IS NOT NULL) AS {c}"
                     for c in _ORDER_FIELDS if c != "client_order_id")
    return [
        f"""CREATE VIEW _order_events AS
            SELECT run_id, seq, ts, type, {_select(exprs)}
            FROM (SELECT *, {f} FROM {_events_of(_ORDER_TYPES, snapshot)})""",
        f"""CREATE VIEW orders AS
            WITH o AS (
                SELECT run_id, client_order_id, {last}, min(ts) AS created, max(ts) AS updated,
                       max(seq) AS last_seq, count(*) AS events
                FROM _order_events WHERE client_order_id IS NOT NULL
                GROUP BY run_id, client_order_id),
            f AS (
                SELECT run_id, client_order_id, sum(qty) AS fill_qty,
                       CAST(sum(qty * price) / sum(qty) AS {_DEC}) AS fill_avg
                FROM fills GROUP BY run_id, client_order_id HAVING sum(qty) > 0)
            SELECT {", ".join(VIEWS["orders"])} FROM (
                SELECT o.* EXCLUDE (filled_qty, avg_price),
                       greatest(coalesce(o.filled_qty, 0), coalesce(f.fill_qty, 0)) AS filled_qty,
                       CASE WHEN f.fill_qty >= coalesce(o.filled_qty, 0) THEN f.fill_avg
                            ELSE o.avg_price END AS avg_price
                FROM o LEFT JOIN f USING (run_id, client_order_id))""",
    ]


def _statements(root: Path, snapshot: bool) -> list[str]:
    table = "TABLE" if snapshot else "VIEW"
    return [
        "SET TimeZone = 'UTC'",
        *_journal_sql(root, table),
        _runs_sql(root, table),
        f"CREATE VIEW fills AS {_typed((ev.FILL,), _FILL_FIELDS, snapshot)}",
        *_orders_sql(snapshot),
        f"""CREATE VIEW positions AS
            SELECT run_id, symbol, qty, avg_price, ts, seq
            FROM ({_typed((ev.POSITION,), _POSITION_FIELDS, snapshot)})
            WHERE symbol IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY run_id, symbol ORDER BY seq DESC) = 1""",
        f"CREATE VIEW equity AS {_typed((ev.EQUITY,), _EQUITY_FIELDS, snapshot)}",
    ]


def catalog(root: str | Path | None = None, *, snapshot: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the catalog views over ``root`` (default ``runs/``).

    Keep the connection and query it again to see new events; it holds no file open
    between queries. ``snapshot=True`` reads ``runs`` and ``events`` once, into tables.
    """
    base = Path(root) if root is not None else paths.runs_dir()
    con = duckdb.connect(":memory:")
    try:
        for sql in _statements(base.expanduser().resolve(), snapshot):
            con.execute(sql)
    except BaseException:
        con.close()
        raise
    return con
