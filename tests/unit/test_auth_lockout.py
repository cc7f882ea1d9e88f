"""Failed-logon lockout (denyByFailure) with a fake clock."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from ftps7.auth.lockout import FailureTracker, address_key


@pytest.fixture
def clock():
    return Clock()


def tracker(clock, **kwargs):
    options = {"max_failure": 3, "entry_expiration": 30.0}
    options.update(kwargs)
    return FailureTracker(clock, **options)


def test_locks_at_max_failure(clock):
    failures = tracker(clock)
    assert failures.record_failure("192.0.2.1") is False
    assert failures.record_failure("192.0.2.1") is False
    assert not failures.is_locked("192.0.2.1")
    assert failures.record_failure("192.0.2.1") is True
    assert failures.is_locked("192.0.2.1")
    assert not failures.is_locked("192.0.2.2")


def test_lock_expires(clock):
    failures = tracker(clock)
    for _ in range(3):
        failures.record_failure("192.0.2.1")
    clock.advance(29.9)
    assert failures.is_locked("192.0.2.1")
    clock.advance(0.1)
    assert not failures.is_locked("192.0.2.1")
    # The failures that caused it have aged out too: one more does not relock.
    assert failures.record_failure("192.0.2.1") is False
    assert len(failures) == 1


def test_only_failures_within_the_window_count(clock):
    failures = tracker(clock)
    failures.record_failure("192.0.2.1")
    failures.record_failure("192.0.2.1")
    clock.advance(30)
    assert failures.record_failure("192.0.2.1") is False
    clock.advance(10)
    assert failures.record_failure("192.0.2.1") is False
    assert failures.record_failure("192.0.2.1") is True


def test_logging_only_never_denies(clock):
    failures = tracker(clock, logging_only=True)
    for _ in range(10):
        assert failures.record_failure("192.0.2.1") is False
    assert not failures.is_locked("192.0.2.1")


def test_success_does_not_reset_by_default(clock):
    failures = tracker(clock)
    failures.record_failure("192.0.2.1")
    failures.record_failure("192.0.2.1")
    failures.record_success("192.0.2.1")
    assert failures.record_failure("192.0.2.1") is True


def test_success_resets_when_asked(clock):
    failures = tracker(clock, reset_on_success=True)
    failures.record_failure("192.0.2.1")
    failures.record_failure("192.0.2.1")
    failures.record_success("192.0.2.1")
    assert failures.record_failure("192.0.2.1") is False


def test_success_never_lifts_a_lock(clock):
    failures = tracker(clock, reset_on_success=True)
    for _ in range(3):
        failures.record_failure("192.0.2.1")
    failures.record_success("192.0.2.1")
    assert failures.is_locked("192.0.2.1")


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4(clock):
    failures = tracker(clock)
    failures.record_failure("2001:db8:1:2::1")
    failures.record_failure("2001:db8:1:2::abcd")
    assert failures.record_failure("[2001:db8:1:2:ffff::9]") is True
    assert not failures.is_locked("2001:db8:1:3::1")
    failures.record_failure("::ffff:192.0.2.7")
    failures.record_failure("192.0.2.7")
    assert failures.record_failure("::FFFF:192.0.2.7") is True
    assert failures.is_locked("192.0.2.7")


def test_address_key():
    assert address_key("2001:db8::1") == "2001:db8::/64"
    assert address_key("2001:db8::1", ipv6_prefix=128) == "2001:db8::1"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("::ffff:10.1.2.3") == "10.1.2.3"
    assert address_key("not-an-ip") == "not-an-ip"


def test_memory_is_bounded(clock):
    failures = tracker(clock, max_entries=2)
    failures.record_failure("192.0.2.1")
    failures.record_failure("192.0.2.2")
    failures.record_failure("192.0.2.3")
    assert len(failures) == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"max_failure": 0}, {"entry_expiration": 0}, {"ipv6_prefix": 0}, {"ipv6_prefix": 129}],
)
def test_bad_parameters(clock, kwargs):
    with pytest.raises(ValueError):
        tracker(clock, **kwargs)
