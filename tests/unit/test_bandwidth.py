"""The site bandwidth cap's token bucket (`ftps7.core.bandwidth`), on a fake clock."""

from __future__ import annotations

import pytest

from ftps7.core.bandwidth import BURST, MIN_CHUNK, Bandwidth


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _move(bucket: Bandwidth, clock: _Clock, chunk: int, seconds: float) -> int:
    """A transfer that moves ``chunk`` bytes, waits as told, for ``seconds``: bytes moved."""
    moved = 0
    end = clock.now + seconds
    while clock.now < end:
        moved += chunk
        clock.now += bucket.charge(chunk)
    return moved


def test_a_burst_then_the_rate() -> None:
    clock = _Clock()
    bucket = Bandwidth(100_000, clock)
    assert bucket.charge(int(100_000 * BURST)) == 0  # the bucket starts full
    assert bucket.charge(50_000) == pytest.approx(0.5)  # then 50 kB is half a second of debt


def test_over_time_the_site_moves_no_more_than_the_cap() -> None:
    clock = _Clock()
    bucket = Bandwidth(1_000_000, clock)
    moved = _move(bucket, clock, 64 * 1024, 60)
    assert 60 * 1_000_000 <= moved <= 60 * 1_000_000 + 1_000_000 * BURST + 2 * 64 * 1024


def test_transfers_share_the_cap() -> None:
    clock = _Clock()
    bucket = Bandwidth(1_000_000, clock)
    # Two transfers taking turns: each waits what the shared bucket says.
    moved = [0, 0]
    ready = [clock.now, clock.now]
    while clock.now < 1060:
        index = 0 if ready[0] <= ready[1] else 1
        clock.now = max(clock.now, ready[index])
        moved[index] += 100_000
        ready[index] = clock.now + bucket.charge(100_000)
    assert sum(moved) <= 60 * 1_000_000 + 1_000_000 * BURST + 2 * 100_000
    assert abs(moved[0] - moved[1]) <= 200_000  # and neither starves


def test_an_idle_site_saves_up_one_burst_only() -> None:
    clock = _Clock()
    bucket = Bandwidth(1_000_000, clock)
    clock.now += 3600
    assert bucket.charge(int(1_000_000 * BURST)) == 0
    assert bucket.charge(1_000) > 0


def test_chunks_are_small_enough_for_a_smooth_low_cap() -> None:
    assert Bandwidth(10_000).chunk(1 << 20) == MIN_CHUNK
    assert Bandwidth(8_000_000).chunk(1 << 20) == 1_000_000
    assert Bandwidth(4_000_000_000).chunk(1 << 20) == 1 << 20


def test_a_cap_is_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Bandwidth(0)
