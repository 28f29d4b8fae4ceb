"""``python -m tests.live_session_procs URL``: a paper session on ``--broker alpaca`` against
the fake Alpaca at URL (tests/test_live_session.py's strategy and sizing, keys from the
environment), in its own process: what the restart test SIGKILLs at a crash point
(``WORKBENCH_TEST_CRASH_AT``) and restarts in the same run."""

from __future__ import annotations

import json
import sys

from tests.test_live_session import alpaca_session


def main() -> None:
    result = alpaca_session(sys.argv[1])
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    main()
