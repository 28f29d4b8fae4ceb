"""The compiled simulation imports vectorbt's kernels without vectorbt's package imports
(``workbench.lazy.vectorbt_kernels``), and a later ``import vectorbt`` is still vectorbt."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _python(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


_BACKTEST = """
    import numpy as np, pandas as pd
    import workbench as wb
    idx = pd.bdate_range("2024-01-02", periods=300, tz="America/New_York")
    rng = np.random.default_rng(3)
    close = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (300, 3)), axis=0)),
                         index=idx, columns=["A", "B", "C"])
    bars = wb.data.Bars.from_wide(close, open=close.shift(1).fillna(close), high=close * 1.01,
                                   low=close * 0.99, volume=close * 0 + 1e5)

    @wb.strategy
    def cross(bars, fast: int = 5, slow: int = 20):
        f, s = wb.ta.SMA(bars.close, fast), wb.ta.SMA(bars.close, slow)
        return wb.Signals(entries=wb.crossed_above(f, s), exits=wb.crossed_below(f, s))

    stats = wb.backtest(cross, bars, fees_bps=5, slippage_bps=2).stats()
    figures = {k: float(v) for k, v in stats.items() if not isinstance(v, (str, pd.Timestamp))}
"""


def test_the_kernels_leave_vectorbt_pending_and_an_import_completes_it():
    out = _python("""
        import json, sys, warnings
        warnings.filterwarnings("error", "registration of accessor")
        import pandas as pd
        import workbench.backtesting.vbt_core as core
        from workbench.lazy import vectorbt_pending
        seen = {"pending": vectorbt_pending(),
                "scipy.stats": "scipy.stats" in sys.modules,
                "indicators": "vectorbt.indicators" in sys.modules}
        import vectorbt as vbt
        s = pd.Series([1.0, 2.0, 3.0, 2.0, 4.0])
        pf = vbt.Portfolio.from_signals(s, s > 1.5, s < 2.5)
        seen |= {"after": vectorbt_pending(), "total_return": float(pf.total_return()),
                 "same_nb": vbt.portfolio.nb is core.vnb,
                 "same_enum": vbt.portfolio.enums.Direction is core.Direction,
                 "ma": vbt.MA.run(s, 2).ma.tolist()[1:],
                 "accessor": s.vbt.rolling_mean(2).tolist()[1:]}
        print(json.dumps(seen))
    """)
    assert out["pending"] == ["vectorbt", "vectorbt.portfolio", "vectorbt.generic",
                              "vectorbt.returns", "vectorbt.utils"]
    assert not out["scipy.stats"] and not out["indicators"]  # vectorbt's package imports: not run
    assert out["after"] == []
    assert out["same_nb"] and out["same_enum"]  # one module of each name
    assert out["total_return"] == pytest.approx(1 / 3)
    assert out["ma"] == [1.5, 2.5, 2.5, 3.0] == out["accessor"]


def test_pandas_vbt_accessor_alone_completes_vectorbt():
    out = _python("""
        import json, sys, warnings
        warnings.filterwarnings("error", "registration of accessor")
        import pandas as pd
        import workbench.backtesting.vbt_core
        from workbench.lazy import vectorbt_pending
        s = pd.Series([1.0, 3.0, 2.0])
        print(json.dumps({"mean": s.vbt.rolling_mean(2).tolist()[1:],
                          "vectorbt": vectorbt_pending(),
                          "accessor": type(pd.Series.vbt).__module__}))
    """)
    assert out["mean"] == [2.0, 2.5]
    assert out["vectorbt"] == [] and out["accessor"].startswith("vectorbt")


def test_a_backtest_is_the_same_with_vectorbt_imported_first_or_pending():
    pending = _python(_BACKTEST + """
    import json, sys
    from workbench.lazy import vectorbt_pending
    assert vectorbt_pending()
    print(json.dumps(figures))
    """)
    ordinary = _python("import vectorbt\n" + textwrap.dedent(_BACKTEST) + """
import json, sys
from workbench.lazy import vectorbt_pending
assert not vectorbt_pending()
print(json.dumps(figures))
""")
    assert pending == ordinary
    assert pending["trades"] > 0
