"""``workbench data ...``: put bars into the store and see what it holds."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.output import echo, echo_json, echo_table
from workbench.errors import ConfigError, DataError

__all__ = ["data"]

# the choices of alpaca_history.ADJUSTMENTS (not imported here: alpaca-py is slow to load)
ADJUSTMENTS = ("raw", "split", "dividend", "all")
_ADJUSTED = {"raw": "prices as traded, not adjusted", "split": "adjusted for splits",
             "dividend": "adjusted for dividends", "all": "adjusted for splits and dividends"}


def _settings():
    from workbench.config import load_settings

    return load_settings()


def _store():
    from workbench.data.store import Store

    return Store()


def _report(report, as_json: bool, store, extra: dict | None = None) -> None:
    """Print a write report; a write refused for any symbol (a splice) then exits non-zero."""
    if as_json:
        echo_json({**report.to_dict(), **(extra or {}), "store": str(store.root)})
    else:
        echo(report.summary())
        if report.quarantined_total:
            echo("quarantined bars are kept: `workbench data quarantine` lists them with their reason")
        echo(f"store: {store.root}")
    if report.refused:
        raise DataError(f"refused for {', '.join(sorted(report.refused))} (the report above says why); "
                        f"nothing of them was written")


_REPLACE = click.option(
    "--replace", is_flag=True,
    help="Where the new bars of a symbol are another series than its stored bars (other values "
         "at the same times), move the stored series to the store's trash and write the new "
         "one, saying what was replaced. Without it such a symbol is refused (exit 3).")


@click.group()
def data() -> None:
    """Market data: synthesize, import, fetch and list bars in the Parquet store."""


@data.command()
@click.option("--symbols", "-n", "symbols", default="20", show_default=True,
              help="How many synthetic symbols, or a comma-separated list of names.")
@click.option("--days", "-d", default=20, show_default=True, type=click.IntRange(min=1),
              help="Number of trading sessions, ending at --end.")
@click.option("--timeframe", "-t", default="1Min", show_default=True,
              help="Bar timeframe: 1Min, 5Min, 15Min, 1Hour or 1Day.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed (same seed, same bars).")
@click.option("--end", default=None,
              help="Last session date (YYYY-MM-DD); default: the last completed NYSE session.")
@_REPLACE
@click.option("--json", "as_json", is_flag=True, help="Print the write report as JSON.")
def synth(symbols: str, days: int, timeframe: str, seed: int, end: str | None, replace: bool,
          as_json: bool) -> None:
    """Write seeded synthetic bars on the real NYSE calendar into the store.

    Regular-hours bars only, with holidays and early closes; a realistic intraday volume
    shape and occasional gaps. The same seed and arguments always give the same bytes.
    Another seed or --days gives another price path: over stored bars it is refused per
    symbol unless --replace.
    """
    from workbench.data.sources import synth_into_store

    names = _parse_symbols(symbols)
    store = _store()
    report = synth_into_store(store, names, days, timeframe, seed, end,
                              spike_band=_settings().data.spike_band, progress=not as_json,
                              replace=replace)
    _report(report, as_json, store)


@data.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--symbol", "-s", default=None, help="Symbol of the bars (else the file's symbol column).")
@click.option("--timeframe", "-t", required=True, help="Bar timeframe of the file: 1Min ... 1Day.")
@click.option("--tz", default=None,
              help="Time zone of naive timestamps (e.g. America/New_York); naive times are refused without it.")
@click.option("--spike-band", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Quarantine closes further than this fraction from the local median (default from settings: 0.5).")
@_REPLACE
@click.option("--json", "as_json", is_flag=True, help="Print the write report as JSON.")
def import_(file: Path, symbol: str | None, timeframe: str, tz: str | None,
            spike_band: float | None, replace: bool, as_json: bool) -> None:
    """Import OHLCV bars from a CSV or Parquet FILE, validated; bad bars are quarantined.

    Column names are matched case-insensitively (ts/timestamp/time/date, open, high, low,
    close, volume, symbol). Timestamps with an offset are converted to UTC; naive ones
    need --tz.
    """
    from workbench.data.sources import import_into_store

    if not file.exists():
        raise ConfigError(f"no such file: {file}")
    store = _store()
    band = spike_band if spike_band is not None else _settings().data.spike_band
    report = import_into_store(store, file, symbol, timeframe, tz, spike_band=band, replace=replace)
    _report(report, as_json, store)


@data.command()
@click.option("--symbols", "-s", required=True, help="Comma-separated symbols, e.g. AAPL,MSFT.")
@click.option("--start", required=True,
              help="First day (YYYY-MM-DD, a New York day) or a time (no zone: UTC).")
@click.option("--end", default=None,
              help="Last day, inclusive, or a time; default: the last completed NYSE session.")
@click.option("--timeframe", "-t", default="1Min", show_default=True,
              help="Bar timeframe: 1Min, 5Min, 15Min, 1Hour or 1Day.")
@click.option("--adjustment", type=click.Choice(ADJUSTMENTS), default="raw", show_default=True,
              help="Price adjustment: raw (as traded, what the live feed sees), split, dividend "
                   "or all. Recorded with the bars; a symbol is never stored with two.")
@click.option("--spike-band", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Quarantine closes further than this fraction from the local median (default from settings: 0.5).")
@_REPLACE
@click.option("--json", "as_json", is_flag=True, help="Print the write report as JSON.")
def fetch(symbols: str, start: str, end: str | None, timeframe: str, adjustment: str,
          spike_band: float | None, replace: bool, as_json: bool) -> None:
    """Download historical bars from Alpaca into the store, validated; bad bars are quarantined.

    Needs ALPACA_API_KEY and ALPACA_SECRET_KEY in the environment. The feed comes from the
    setting alpaca.feed (iex, free; sip, with a subscription), the server from
    alpaca.data_url (default Alpaca's), the per-request time limit from
    alpaca.request_timeout_s. Prices are raw (as traded) unless --adjustment says otherwise;
    the adjustment is recorded in the store, and fetching a symbol with another adjustment
    than its stored bars is refused. Bars already stored are kept; fetching the same range
    again writes nothing and says so. A progress bar goes to stderr (not with --json).
    """
    from workbench.data.sources import fetch_into_store, last_completed_session

    names = _parse_symbols(symbols)
    if isinstance(names, int):
        raise ConfigError("--symbols: give names, e.g. AAPL,MSFT")
    settings = _settings()
    end = end if end is not None else last_completed_session().strftime("%Y-%m-%d")
    store = _store()
    report = fetch_into_store(store, names, start, end, timeframe, settings=settings,
                              spike_band=spike_band, progress=not as_json, adjustment=adjustment,
                              replace=replace)
    if as_json:
        _report(report, as_json, store, {"adjustment": adjustment})
        return
    echo(f"adjustment: {adjustment} ({_ADJUSTED[adjustment]})")
    _report(report, as_json, store)
    if not report.written and not report.quarantined_total:
        echo(f"nothing new: {report.already_stored} bars fetched were already stored")
    missing = [s for s in names if s not in report.symbols]
    if missing:
        echo(f"no bars from Alpaca for {', '.join(missing)} between {start} and {end} "
             f"(feed {settings.alpaca.feed})")


@data.command("ls")
@click.option("--timeframe", "-t", default=None, help="Only this timeframe.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: a list of {symbol, timeframe, first, last (ISO 8601, New York offset), rows, ...}.")
def ls(timeframe: str | None, as_json: bool) -> None:
    """What the store holds: symbol, timeframe, first and last bar (New York time; a daily
    bar shows as its day), rows, files, quarantined."""
    from workbench.data.timeframe import Timeframe

    store = _store()
    df = store.ls()
    if timeframe is not None:
        df = df[df["timeframe"] == str(Timeframe.parse(timeframe))]
    df = _in_new_york(df, as_json)
    if as_json:
        echo_json(df.to_dict(orient="records"))
        return
    echo_table(df, empty=f"the store at {store.root} is empty; try `workbench data synth`")
    if not df.empty:
        echo(f"{len(df)} series, {int(df['rows'].sum()):,} bars in {store.root}")


@data.command()
@click.option("--symbol", "-s", "symbols", multiple=True, help="Only this symbol (repeatable).")
@click.option("--timeframe", "-t", default=None, help="Only this timeframe.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records.")
def quarantine(symbols: tuple[str, ...], timeframe: str | None, as_json: bool) -> None:
    """List quarantined bars with the reason each was refused."""
    from workbench.data.store import symbol_list
    from workbench.data.timeframe import Timeframe

    names = symbol_list(list(symbols)) if symbols else None  # a bad name is said, not matched
    tf = str(Timeframe.parse(timeframe)) if timeframe is not None else None
    store = _store()
    df = store.quarantine(names, tf)
    if as_json:
        echo_json(df.to_dict(orient="records"))
        return
    echo_table(df, empty="no quarantined bars")
    if not df.empty:
        counts = df["reason"].value_counts()
        echo("by reason: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def _in_new_york(df, iso: bool = False):
    """The listing's first/last bar times in New York (the CLI shows New York time): for
    people the day of a daily bar, else ``YYYY-MM-DD HH:MM`` and the zone's abbreviation;
    ``iso``: ISO 8601 with the New York offset (JSON)."""
    if df.empty:
        return df
    from workbench.times import to_new_york

    def show(ts, timeframe: str) -> str:
        ny = to_new_york(ts)
        if iso:
            return ny.isoformat()
        return f"{ny:%Y-%m-%d}" if timeframe.endswith("Day") else f"{ny:%Y-%m-%d %H:%M %Z}"

    df = df.copy()
    for col in ("first", "last"):
        df[col] = [show(t, tf) for t, tf in zip(df[col], df["timeframe"])]
    return df


@data.command("rm")
@click.argument("symbol")
@click.option("--timeframe", "-t", default=None, help="Only this timeframe (default: every timeframe).")
@click.option("--start", default=None,
              help="Remove from this day (YYYY-MM-DD, a New York trading day) or time (no zone: UTC).")
@click.option("--end", default=None, help="Remove up to this day, inclusive, or time.")
@click.option("--json", "as_json", is_flag=True, help="Print what was moved as JSON.")
def rm(symbol: str, timeframe: str | None, start: str | None, end: str | None, as_json: bool) -> None:
    """Remove SYMBOL's bars (and its quarantined bars) from the store: all of them, one
    timeframe's, or a range with --start/--end.

    Nothing is deleted in place: each affected file is moved under the store's
    trash/<UTC time>/ folder (delete that folder yourself when sure); for a range, the
    bars kept are first written to a new file, as every write is, so a reader running at
    the same time sees the old bars or the new ones, never half. Asks nothing; prints
    what it moved.
    """
    from workbench.data.timeframe import Timeframe

    tf = Timeframe.parse(timeframe) if timeframe is not None else None
    store = _store()
    report = store.remove(symbol.strip().upper(), tf, start, end)
    if as_json:
        echo_json({**report.to_dict(), "store": str(store.root)})
        return
    echo(report.summary())
    for path in report.moved:
        echo(f"moved: {path}")


def _parse_symbols(text: str) -> int | list[str]:
    text = text.strip()
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= 5000:
            raise ConfigError(f"--symbols {n}: choose between 1 and 5000 symbols")
        return n
    names = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not names:
        raise ConfigError("--symbols: give a count or a comma-separated list of names")
    return names
