"""The strategy contract: one clear StrategyError for each way of breaking it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.data.synth import synthesize
from workbench.strategy import ShortWarmupWarning


@pytest.fixture(scope="module")
def bars() -> wb.Bars:
    return wb.Bars.from_long(synthesize(3, 1, "5Min", seed=11))


@pytest.fixture(scope="module")
def one(bars) -> wb.Bars:
    return bars.select(bars.symbols[0])


@wb.strategy(warmup=20)
def sma_cross(bars, fast: int = 5, slow: int = 20):
    fast_ma, slow_ma = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
    return wb.Signals(entries=wb.crossed_above(fast_ma, slow_ma),
                      exits=wb.crossed_below(fast_ma, slow_ma))


def returning(make):
    """A strategy whose signals are ``make(bars)``."""
    @wb.strategy
    def strat(bars):
        return make(bars)
    return strat


def test_a_good_strategy(bars):
    sig = sma_cross(bars, fast=3, slow=10)
    assert sig.kind == "signals"
    assert sig.entries.index.equals(bars.index) and sig.entries.columns.equals(bars.close.columns)
    assert sig.entries.dtypes.eq(bool).all() and sig.exits.dtypes.eq(bool).all()
    assert sma_cross.params(fast="7") == {"fast": 7, "slow": 20}  # strings from the command line


def test_unknown_parameter_names_accepted_and_suggests_closest(bars):
    with pytest.raises(wb.StrategyError) as err:
        sma_cross(bars, fsat=3)
    msg = str(err.value)
    assert "unknown parameter 'fsat'" in msg
    assert "fast: int" in msg and "slow: int" in msg
    assert "did you mean fast?" in msg


def test_ill_typed_parameter(bars):
    with pytest.raises(wb.StrategyError, match="parameter fast must be int, got 'ten'"):
        sma_cross(bars, fast="ten")
    with pytest.raises(wb.StrategyError, match="parameter slow must be int, got 2.5"):
        sma_cross(bars, slow=2.5)


def test_parameter_without_default_must_be_given(bars):
    @wb.strategy
    def needs(bars, level: float):
        return wb.Signals(entries=bars.close > level)

    with pytest.raises(wb.StrategyError, match="level has no default"):
        needs(bars)
    assert needs(bars, level=1).entries.shape == bars.shape


def test_misaligned_shifted_index(bars):
    strat = returning(lambda b: wb.Signals(entries=(b.close > 0).shift(1, freq="5min")))
    with pytest.raises(wb.StrategyError, match="Signals.entries is not aligned with the bars: index differs at row 0"):
        strat(bars)


def test_misaligned_missing_column(bars):
    strat = returning(lambda b: wb.Signals(entries=(b.close > 0).iloc[:, 1:]))
    with pytest.raises(wb.StrategyError, match=r"Signals.entries has shape .* the bars"):
        strat(bars)
    renamed = returning(lambda b: wb.Signals(entries=(b.close > 0).set_axis(["X", "Y", "Z"], axis=1)))
    with pytest.raises(wb.StrategyError, match="columns differ from the bars' symbols"):
        renamed(bars)


@pytest.mark.parametrize("dtype", ["boolean", "bool[pyarrow]", "mixed"])
def test_boolean_extension_signals_refused(bars, dtype):
    """Only numpy bool columns are signals: the check reads the values' common dtype first,
    and a nullable or Arrow boolean column (also beside numpy bool ones) must not pass."""
    def odd(b):
        frame = b.close > 0
        if dtype == "mixed":
            frame[frame.columns[1]] = frame[frame.columns[1]].astype("boolean")
            return frame
        return frame.astype(dtype)

    strat = returning(lambda b: wb.Signals(entries=odd(b)))
    with pytest.raises(wb.StrategyError, match="Signals.entries must be boolean, got "):
        strat(bars)


def test_non_boolean_signals(bars):
    strat = returning(lambda b: wb.Signals(entries=b.close.diff(), exits=b.close > 0))
    with pytest.raises(wb.StrategyError, match="Signals.entries must be boolean, got float64"):
        strat(bars)


def test_non_signals_return_value(bars):
    strat = returning(lambda b: b.close > 0)
    with pytest.raises(wb.StrategyError, match="must return wb.Signals, got DataFrame"):
        strat(bars)


def test_weights_and_entries_together(bars):
    strat = returning(lambda b: wb.Signals(entries=b.close > 0, weights=b.close * 0.0))
    with pytest.raises(wb.StrategyError, match="both weights and entries"):
        strat(bars)


def test_strategy_exception_is_named(bars):
    strat = returning(lambda b: 1 / 0)
    with pytest.raises(wb.StrategyError, match="strat raised ZeroDivisionError"):
        strat(bars)


def test_too_little_history_for_warmup(bars):
    short = bars.iloc(slice(0, 20))
    with pytest.raises(wb.StrategyError, match="too little history: 20 bar.*warmup needs 20"):
        sma_cross(short)
    assert sma_cross(bars.iloc(slice(0, 21))).entries.shape == (21, 3)


def _with_only_last(bars: wb.Bars, last: dict[str, int]) -> wb.Bars:
    """``bars`` in which each symbol of ``last`` has only its last N bars (a late listing)."""
    from workbench.data.bars import FIELDS

    frames = {f: getattr(bars, f).copy() for f in FIELDS}
    for symbol, n in last.items():
        for frame in frames.values():
            frame.iloc[: len(frame) - n, frame.columns.get_loc(symbol)] = np.nan
    return wb.Bars(**frames, timeframe=bars.timeframe)


def test_the_history_is_each_symbols_own_bars_not_the_rows(bars):
    """78 rows, but a symbol listed late has 21 bars: with a warmup of 40 its signals are
    all masked, said naming it; when no symbol has more than the warmup, refused (rows
    were counted: 78 > 40 passed silently, and no signal could come out)."""
    a, b, c = bars.symbols
    one_short = _with_only_last(bars, {b: 21})
    with pytest.warns(ShortWarmupWarning) as said:
        sig = wb.strategy(warmup=40)(sma_cross.fn)(one_short)
    [message] = [str(w.message) for w in said]
    assert f"1 of 3 symbols have no more: {b} (21)" in message and "warmup needs 40" in message
    assert not sig.entries[b].any() and not sig.exits[b].any()
    all_short = _with_only_last(bars, {a: 30, b: 21, c: 40})
    with pytest.raises(wb.StrategyError) as e:
        wb.strategy(warmup=40)(sma_cross.fn)(all_short)
    text = str(e.value)
    assert text.startswith("sma_cross: too little history: 40 bar(s) at most per symbol "
                           f"({a} (30), {b} (21), {c} (40)), but warmup needs 40")
    assert "\n" not in text
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every symbol with enough bars: nothing said
        wb.strategy(warmup=40)(sma_cross.fn)(_with_only_last(bars, {b: 41}))


def test_warmup_as_a_function_of_params(bars):
    @wb.strategy(warmup=lambda p: 2 * p["slow"])
    def strat(bars, slow: int = 10):
        return sma_cross.fn(bars, fast=3, slow=slow)

    assert strat.warmup({"slow": 30}) == 60
    strat(bars.iloc(slice(0, 21)))  # default slow=10: warmup 20
    with pytest.raises(wb.StrategyError, match="too little history: 21 bar.*warmup needs 60"):
        strat(bars.iloc(slice(0, 21)), slow=30)


def test_bad_warmup_function(bars):
    strat = wb.strategy(warmup=lambda p: -1)(sma_cross.fn)
    with pytest.raises(wb.StrategyError, match="warmup function returned -1"):
        strat(bars)


def test_a_key_error_in_the_warmup_function_names_the_strategy_and_its_parameters(bars):
    @wb.strategy(warmup=lambda p: 2 * p["slw"])  # a typo of "slow"
    def strat(bars, slow: int = 10):
        return sma_cross.fn(bars, fast=3, slow=slow)

    with pytest.raises(wb.StrategyError, match=r"strat: its warmup function failed: KeyError: "
                                               r"'slw' \(parameters: slow\)"):
        strat(bars)


def test_series_accepted_for_one_symbol(one):
    strat = returning(lambda b: wb.Signals(entries=b.close.iloc[:, 0] > b.close.iloc[:, 0].shift(1)))
    sig = strat(one)
    assert isinstance(sig.entries, pd.DataFrame) and list(sig.entries.columns) == one.symbols
    assert isinstance(sig.exits, pd.DataFrame) and not sig.exits.any().any()  # default exits


def test_series_refused_for_many_symbols(bars):
    strat = returning(lambda b: wb.Signals(entries=b.close.iloc[:, 0] > 0))
    with pytest.raises(wb.StrategyError, match="is a Series but the bars hold 3 symbols"):
        strat(bars)


def test_warmup_rows_are_masked(bars):
    @wb.strategy(warmup=10)
    def always(bars):
        return wb.Signals(entries=bars.close.notna(), exits=bars.close.isna())

    sig = always(bars)
    assert not sig.entries.iloc[:10].any().any()
    assert sig.entries.iloc[10:].equals(bars.close.iloc[10:].notna())


def test_warmup_masks_weights_with_nan(bars):
    @wb.strategy(warmup=5)
    def equal(bars):
        return wb.Signals(weights=bars.close * 0 + 1 / 3)

    w = equal(bars).weights
    assert w.iloc[:5].isna().all().all() and np.allclose(w.iloc[5:].fillna(1 / 3), 1 / 3)
