"""``twistd ftps7`` wiring that is not covered by running a server."""

from __future__ import annotations

import gc
import sys

from ftps7 import tap


def test_the_reactor_waits_at_most_a_millisecond_for_the_gil() -> None:
    before = sys.getswitchinterval()
    try:
        tap._tune_interpreter()
        assert sys.getswitchinterval() == tap.GIL_SWITCH_INTERVAL == 0.001
        assert gc.get_freeze_count() > 0  # start-up's objects out of the collector's reach
    finally:
        sys.setswitchinterval(before)
        gc.unfreeze()
