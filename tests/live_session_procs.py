"""``python -m tests.live_session_procs URL [TIMEFRAME]``: a paper session on ``--broker
alpaca`` against the fake Alpaca at URL (tests/test_live_session.py's strategy and sizing,
keys from the environment), or with TIMEFRAME a simulated-broker session on that timeframe
(tests/test_live_session_timeframes.py's), in its own process: what the restart tests
SIGKILL at a crash point (``WORKBENCH_TEST_CRASH_AT``) and restart in the same run."""

from __future__ import annotations

import json
import sys

from tests.test_live_session import alpaca_session


def main() -> None:
    if len(sys.argv) > 2:
        from tests.test_live_session_timeframes import timeframe_session

        result = timeframe_session(sys.argv[1], sys.argv[2])
    else:
        result = alpaca_session(sys.argv[1])
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    main()
