"""``workbench fake-alpaca``: serve the loopback fake Alpaca server over a stored day.

The fake (``workbench.testing.alpaca``) is a test tool; this command is the one place the
product's command line serves it, for trying a paper session offline (pyproject's import
contract names the exception).
"""

from __future__ import annotations

import time

import click

from workbench.cli.output import echo
from workbench.errors import ConfigError

__all__ = ["fake_alpaca"]


def _speed(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    from workbench.session.pacing import MAX_SPEED, MIN_SPEED

    if not MIN_SPEED <= value <= MAX_SPEED:
        raise ConfigError(f"--speed must be a number > 0 (times real time, from {MIN_SPEED:g} "
                          f"to {MAX_SPEED:,}), got {text!r}")
    return value


def _day(text: str) -> str:
    from workbench.cli.inputs import replay_day

    return replay_day(text)


def _symbols(text: str | None) -> list[str] | None:
    if text is None:
        return None
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise ConfigError("--symbols names no symbol")
    return list(dict.fromkeys(symbols))


@click.command("fake-alpaca")
@click.option("--replay", "day", required=True, metavar="DATE",
              help="The session date to replay from the store (YYYY-MM-DD).")
@click.option("--speed", default="1", show_default=True, metavar="N",
              help="The fake's clock runs N x real time.")
@click.option("--symbols", default=None, metavar="A,B",
              help="The stored symbols to replay (default: every stored one).")
@click.option("--start", default=None, metavar="HH:MM", help="Replay from this New York time.")
@click.option("--end", default=None, metavar="HH:MM",
              help="Replay up to (not including) this New York time.")
@click.option("--port", default=0, type=click.IntRange(0, 65535), show_default=True,
              help="The port on 127.0.0.1 (0: a free one).")
@click.option("--key", default="fake-key", show_default=True, help="The API key the fake accepts.")
@click.option("--secret", default="fake-secret", show_default=True,
              help="The secret the fake accepts.")
@click.option("--cash", default=100_000.0, show_default=True, type=float,
              help="The fake account's starting cash.")
@click.option("--linger", default=30.0, show_default=True, type=click.FloatRange(min=0),
              metavar="SECONDS", help="Keep serving this long (real seconds) after the replay "
              "ends, its clock at the close, so a session sees the market close.")
@click.option("--wait-for-client", is_flag=True, help="Hold the replay (its clock a minute "
              "before the first bar) until the first request, e.g. a session reading the "
              "clock, so a slow start misses nothing (at most 600 s).")
def fake_alpaca(day, speed, symbols, start, end, port, key, secret, cash, linger,
                wait_for_client) -> None:
    """Serve a fake Alpaca (trading and market-data REST, both websockets) on 127.0.0.1,
    replaying DATE's stored 1-minute bars at N x real time.

    The fake's clock starts a minute before the first bar; each minute's bars are streamed
    when that minute closes on it and orders fill against them by the simulated broker's
    rules. Point alpaca-py (or a workbench session) at the printed URLs with the printed key
    and secret. It stops --linger seconds after the replay ends (after the close or --end) or on
    Ctrl-C.
    Nothing here reaches the real Alpaca.
    """
    from workbench.data.store import Store
    from workbench.testing.alpaca import FakeAlpaca

    rate = _speed(speed)
    day = _day(day)
    fake = FakeAlpaca(key=key, secret=secret, replay=day, speed=rate, store=Store(),
                      symbols=_symbols(symbols), start=start, end=end, cash=cash, port=port,
                      idle_timeout=365 * 24 * 3600.0,  # the replay's end stops it
                      paused=wait_for_client)
    fake.start()
    try:
        try:
            echo(f"REST:           {fake.url}")
            echo(f"trading stream: {fake.stream_url}")
            echo(f"data stream:    {fake.data_stream_url('iex')}")
            echo(f"key: {key}  secret: {secret}")
            if wait_for_client:
                echo("waiting for the first request to start the replay")
                given_up = time.monotonic() + 600  # no client in 10 min: stop, not linger
                while not fake.requests and fake.stopped_reason is None:
                    if time.monotonic() > given_up:
                        raise ConfigError("--wait-for-client: no request in 600 s; stopping")
                    time.sleep(0.01)
                fake.play()
            echo(f"replaying {day} at {rate:g}x; Ctrl-C stops")
            while not fake.done and fake.stopped_reason is None:
                time.sleep(0.1)
            if fake.done:
                fake.wait_until_done(0)  # raises if the replay failed
                until = time.monotonic() + linger  # clients see the close, then it stops
                while time.monotonic() < until and fake.stopped_reason is None:
                    time.sleep(0.1)
        except KeyboardInterrupt:
            echo("interrupted: stopping")
            return
        echo(f"replay done: {len(fake.served)} bars served, {len(fake.orders)} orders, "
             f"{len(fake.fills)} fills")
    finally:
        fake.stop()
