"""The transfer watchdog: dataChannelTimeout and minBytesPerSecond, on a fake clock."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet.task import Clock

from ftps7.config.model import ConnectionSettings
from ftps7.server.cmd_transfer import RATE_WINDOW, Transfer


class _Counter:
    """Stands for a sender: the watchdog reads only ``bytes_sent``."""

    def __init__(self) -> None:
        self.bytes_sent = 0
        self.throttled = 0.0  # seconds waited for the site's maxBandwidth


def _transfer(clock: Clock) -> tuple[Transfer, _Counter]:
    session: Any = SimpleNamespace(server=SimpleNamespace(clock=clock), session_id=1)
    transfer = Transfer(session, "RETR", "/f")
    counter = _Counter()
    transfer.sender = counter  # type: ignore[assignment]
    return transfer, counter


def _run(clock: Clock, transfer: Transfer, counter: _Counter, rate: int, seconds: int) -> None:
    """Move ``rate`` bytes every second for ``seconds`` seconds (or until aborted)."""
    for _ in range(seconds):
        if transfer.aborted:
            return
        counter.bytes_sent += rate
        clock.advance(1)


def test_a_fast_transfer_is_never_ended() -> None:
    clock = Clock()
    transfer, counter = _transfer(clock)
    transfer.watch(ConnectionSettings(data_channel_timeout=5, min_bytes_per_second=240))
    _run(clock, transfer, counter, 10_000, 60)
    assert not transfer.aborted
    transfer.stop_watching()
    assert not clock.getDelayedCalls()


def test_a_trickle_is_ended_at_the_end_of_the_first_window() -> None:
    clock = Clock()
    transfer, counter = _transfer(clock)
    transfer.watch(ConnectionSettings(data_channel_timeout=5, min_bytes_per_second=240))
    _run(clock, transfer, counter, 239, 60)  # moving, but under 240 bytes per second
    assert transfer.aborted
    assert clock.seconds() == 5


def test_the_rate_is_judged_per_window_not_on_average() -> None:
    """A fast start does not buy a trickle afterwards."""
    clock = Clock()
    transfer, counter = _transfer(clock)
    transfer.watch(ConnectionSettings(data_channel_timeout=5, min_bytes_per_second=240))
    _run(clock, transfer, counter, 1_000_000, 10)
    _run(clock, transfer, counter, 100, 60)
    assert transfer.aborted
    assert clock.seconds() == 15


def test_a_stall_is_a_timeout_between_one_and_two_windows() -> None:
    clock = Clock()
    transfer, counter = _transfer(clock)
    transfer.watch(ConnectionSettings(data_channel_timeout=5, min_bytes_per_second=0))
    _run(clock, transfer, counter, 1, 7)  # a crawl is fine with minBytesPerSecond 0 ...
    assert not transfer.aborted
    _run(clock, transfer, counter, 0, 60)  # ... a stop is not
    assert transfer.aborted
    assert 7 + 5 <= clock.seconds() <= 7 + 10


def test_zero_turns_both_checks_off() -> None:
    clock = Clock()
    transfer, _ = _transfer(clock)
    transfer.watch(ConnectionSettings(data_channel_timeout=0, min_bytes_per_second=0))
    assert not clock.getDelayedCalls()


def test_without_a_timeout_the_rate_is_checked_every_rate_window() -> None:
    clock = Clock()
    transfer, counter = _transfer(clock)
    transfer.watch(ConnectionSettings(data_channel_timeout=0, min_bytes_per_second=240))
    _run(clock, transfer, counter, 0, 600)
    assert transfer.aborted
    assert clock.seconds() == RATE_WINDOW


def test_time_spent_waiting_for_the_sites_own_cap_is_not_the_clients() -> None:
    clock = Clock()
    transfer, counter = _transfer(clock)
    transfer.watch(ConnectionSettings(data_channel_timeout=5, min_bytes_per_second=240))
    for _ in range(60):  # 4 of every 5 seconds waiting for maxBandwidth, 200 bytes a second
        counter.bytes_sent += 200  # under 240 a second, but 1,000 per second of its own
        counter.throttled += 0.8
        clock.advance(1)
    assert not transfer.aborted
    for _ in range(20):  # a whole window of waiting, not a byte: not a stall either
        counter.throttled += 1
        clock.advance(1)
    assert not transfer.aborted
    _run(clock, transfer, counter, 100, 60)  # unthrottled, and slow: the client's fault
    assert transfer.aborted
