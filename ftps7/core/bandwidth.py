"""A site's bandwidth cap (``connections maxBandwidth``): one token bucket for all its transfers.

Every transfer of the site, whichever thread moves it (a transfer thread or
the reactor), charges the bytes it has just moved and is told how long to
wait before it moves more. The bucket refills at the cap's rate and holds at
most `BURST` seconds of it, so a site that was idle may send a short burst,
and over any longer stretch the site moves no more than the cap. Bytes are
charged *after* they moved (a debt, not a reservation), so a transfer never
has to split a chunk it already holds; the next wait pays the debt off.

Thread-safe: transfer threads and the reactor charge the same bucket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Seconds of the rate the bucket can hold: the largest burst after a pause.
BURST = 0.1
#: The smallest chunk a throttled transfer moves at a time, and the largest
#: fraction of a second's worth: small chunks keep a low cap smooth (and the
#: minBytesPerSecond windows fair) without a system call per few bytes.
MIN_CHUNK = 16 * 1024
CHUNKS_PER_SECOND = 8


class Bandwidth:
    """A token bucket of ``rate`` bytes per second, shared by a site's transfers."""

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("a bandwidth cap is a positive number of bytes per second")
        self.rate = rate
        self._clock = clock
        self._capacity = rate * BURST
        self._level = self._capacity
        self._last = clock()
        self._lock = threading.Lock()

    def chunk(self, largest: int) -> int:
        """How many bytes a transfer should move at a time under this cap (≤ ``largest``)."""
        return min(largest, max(MIN_CHUNK, self.rate // CHUNKS_PER_SECOND))

    def charge(self, count: int) -> float:
        """Record ``count`` bytes just moved; return the seconds to wait before moving more."""
        with self._lock:
            now = self._clock()
            self._level = min(self._capacity, self._level + (now - self._last) * self.rate)
            self._last = now
            self._level -= count
            level = self._level
        return 0.0 if level >= 0 else -level / self.rate
