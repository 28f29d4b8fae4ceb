"""Progress bars by destination (workbench.progress): a log gets a plain line every few
seconds (first and last included), never hundreds of carriage-return redraws; a terminal
gets tqdm's redrawn bar."""

from __future__ import annotations

import io

from workbench import progress
from workbench.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_not_redraws():
    log = io.StringIO()
    assert sum(progress_bar(range(10_000), desc="work", unit="item", file=log)) == 49_995_000
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3, lines  # a fast loop: its first and last lines only
    assert lines[-1].startswith("work: 100%") and "10000/10000" in lines[-1]


def test_a_log_line_every_few_seconds(monkeypatch):
    import time

    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.05)  # "a few seconds", scaled down
    log = io.StringIO()
    with progress_bar(total=60, desc="slow", file=log) as bar:
        for _ in range(60):
            time.sleep(0.01)  # >= 0.6 s in all: at least a dozen intervals
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert 3 <= len(lines) < 40, lines  # some lines, fewer than the 60 updates


def test_a_terminal_gets_the_redrawn_bar():
    tty = _Terminal()
    for _ in progress_bar(range(100), desc="work", file=tty):
        pass
    assert "\r" in tty.getvalue()


def test_disabled_gives_the_iterable_back():
    items = [1, 2, 3]
    assert progress_bar(items, disable=True) is items
