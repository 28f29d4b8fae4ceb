"""Checked values (``workbench.values``): one base, one translation of bad values to
``ConfigError``; the cost model, the simulation options, the sizing and the session options."""

from __future__ import annotations

import dataclasses
import math
import pickle
from decimal import Decimal

import numpy as np
import pytest

from workbench.backtesting.simulation import SimOptions
from workbench.errors import ConfigError
from workbench.model.costs import CostModel
from workbench.session.options import SessionOptions
from workbench.session.trader import Sizing


@pytest.mark.parametrize("value", [
    CostModel(fees_bps=1.0, fee_per_share=0.005, slippage_bps=2.0),
    SimOptions(fill="close", direction="longshort", sl_stop=0.05, periods_per_year=252),
    Sizing(size=0.5, shares="whole", costs=CostModel(fees_bps=1.0), accounts="per_symbol"),
    SessionOptions(speed=600.0, heartbeat_every=5, sizing=Sizing(size=0.2)),
])
def test_values_are_frozen_hashable_equal_by_fields_and_picklable(value):
    again = pickle.loads(pickle.dumps(value))
    assert again == value and hash(again) == hash(value) and {value: 1}[again] == 1
    assert type(value)(**dict(value)) == value  # equal by field values
    name = next(iter(type(value).model_fields))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, getattr(value, name))


def test_numbers_become_plain_floats_and_booleans_are_refused():
    costs = CostModel(fees_bps=np.int64(1), fee_per_share=np.float32(0.5), slippage_bps=2)
    assert all(type(v) is float for v in costs.describe().values())
    assert CostModel(1.0, 0.5, 2.0) == costs  # positional, in field order, as before
    assert SimOptions(cash=5).cash == 5.0 and type(SimOptions(cash=5).cash) is float
    with pytest.raises(ConfigError, match="fees_bps must be a number, got True"):
        CostModel(fees_bps=True)
    with pytest.raises(ConfigError, match="heartbeat_every must be a whole number, got True"):
        SessionOptions(heartbeat_every=True)
    with pytest.raises(ConfigError, match="cash must be a number, got '5'"):
        SimOptions(cash="5")


def test_bad_values_name_the_field_the_rule_and_the_value():
    with pytest.raises(ConfigError, match=r"^fill must be one of 'next_open', 'close', got 'x'$"):
        SimOptions(fill="x")
    with pytest.raises(ConfigError, match=r"size \(fraction of cash per entry\) must be > 0 "
                                          r"and <= 1, got 1.5"):
        SimOptions(size=1.5)
    with pytest.raises(ConfigError, match="slippage_bps must be >= 0 and < 10000, got 10000.0"):
        CostModel(slippage_bps=10_000.0)
    with pytest.raises(ConfigError, match="tp_stop must be a finite number, got inf"):
        SimOptions(tp_stop=math.inf)
    with pytest.raises(ConfigError, match="cash must be > 0, got -1; direction must be one of "
                                          "'long', 'longshort', got 'short'"):
        SimOptions(cash=-1, direction="short")
    with pytest.raises(ConfigError, match="accounts must be one of 'shared', 'per_symbol'"):
        Sizing(accounts="pooled")
    with pytest.raises(ConfigError, match="cash must be > 0, got"):
        Sizing(cash=Decimal(0))
    with pytest.raises(ConfigError, match="speed must be 'max' or > 0, got 0"):
        SessionOptions(speed=0)
    with pytest.raises(ConfigError, match="speed must be 'max' or a number, got 'fast'"):
        SessionOptions(speed="fast")
    with pytest.raises(ConfigError, match="history_days must be >= 0, got -1"):
        SessionOptions(history_days=-1)


def test_an_unknown_field_names_the_closest_one_and_positional_values_are_counted():
    with pytest.raises(ConfigError, match=r"CostModel has no field 'fee_bps' \(did you mean "
                                          r"fees_bps\?\)"):
        CostModel(fee_bps=1.0)
    with pytest.raises(ConfigError, match=r"fields: fees_bps, fee_per_share, slippage_bps"):
        CostModel(zzz=1.0)
    with pytest.raises(ConfigError, match="at most 3 positional values"):
        CostModel(1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ConfigError, match="fees_bps given twice"):
        CostModel(1.0, fees_bps=2.0)
    with pytest.raises(ConfigError, match="fees_bps"):
        CostModel.model_validate({"fees_bps": -1})


def test_describe_is_unchanged():
    assert CostModel().describe() == {"fees_bps": 0.0, "fee_per_share": 0.0, "slippage_bps": 2.0}
    assert SimOptions().describe() == {
        "fill": "next_open", "shares": "fractional", "cash": 100_000.0, "size": 1.0,
        "direction": "long", "sl_stop": None, "tp_stop": None, "sl_trail": False,
        "stops_per_bar": None, "periods_per_year": None}
