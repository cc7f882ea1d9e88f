"""The credentials cache: hits, expiry by the clock, binding to the stored hash."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from ftps7.auth.cache import CredentialsCache

HASH_A = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
HASH_B = "$argon2id$v=19$m=8,t=1,p=1$b3RoZXJzYWx0$aGFzaGhhc2hoYXNo"


@pytest.fixture
def clock():
    return Clock()


def test_hit_after_put(clock):
    cache = CredentialsCache(clock, 60)
    assert not cache.get("alice", HASH_A, b"pw")
    cache.put("alice", HASH_A, b"pw")
    assert cache.get("alice", HASH_A, b"pw")
    assert cache.get("alice", HASH_A, "pw")  # str and bytes are the same password


def test_wrong_password_or_name_misses(clock):
    cache = CredentialsCache(clock, 60)
    cache.put("alice", HASH_A, b"pw")
    assert not cache.get("alice", HASH_A, b"pw2")
    assert not cache.get("alice", HASH_A, b"")
    assert not cache.get("bob", HASH_A, b"pw")


def test_changed_stored_hash_is_never_accepted(clock):
    """A new password (or a recreated account) has a new salted hash."""
    cache = CredentialsCache(clock, 60)
    cache.put("alice", HASH_A, b"pw")
    assert not cache.get("alice", HASH_B, b"pw")


def test_entries_expire_by_the_clock(clock):
    cache = CredentialsCache(clock, 60)
    cache.put("alice", HASH_A, b"pw")
    clock.advance(59.9)
    assert cache.get("alice", HASH_A, b"pw")
    clock.advance(0.1)
    assert not cache.get("alice", HASH_A, b"pw")
    assert len(cache) == 0


def test_a_hit_does_not_extend_the_life(clock):
    cache = CredentialsCache(clock, 10)
    cache.put("alice", HASH_A, b"pw")
    clock.advance(9)
    assert cache.get("alice", HASH_A, b"pw")
    clock.advance(1)
    assert not cache.get("alice", HASH_A, b"pw")


def test_zero_interval_disables(clock):
    cache = CredentialsCache(clock, 0)
    assert not cache.enabled
    cache.put("alice", HASH_A, b"pw")
    assert not cache.get("alice", HASH_A, b"pw")
    assert len(cache) == 0


def test_size_is_bounded_least_recently_used_first(clock):
    cache = CredentialsCache(clock, 60, max_entries=2)
    cache.put("a", HASH_A, b"1")
    cache.put("b", HASH_A, b"2")
    assert cache.get("a", HASH_A, b"1")  # a is now the most recently used
    cache.put("c", HASH_A, b"3")
    assert len(cache) == 2
    assert not cache.get("b", HASH_A, b"2")
    assert cache.get("a", HASH_A, b"1")
    assert cache.get("c", HASH_A, b"3")


def test_password_is_not_kept(clock):
    cache = CredentialsCache(clock, 60)
    password = b"very-distinctive-password"
    cache.put("alice", HASH_A, password)
    for digest, _expires in cache._entries.values():
        assert password not in digest
    assert password not in repr(vars(cache)).encode()


def test_keys_differ_between_caches(clock):
    """The HMAC key is per process (per cache): digests are not portable."""
    one, two = CredentialsCache(clock, 60), CredentialsCache(clock, 60)
    one.put("alice", HASH_A, b"pw")
    two.put("alice", HASH_A, b"pw")
    assert one._entries["alice"][0] != two._entries["alice"][0]


def test_forget_and_clear(clock):
    cache = CredentialsCache(clock, 60)
    cache.put("alice", HASH_A, b"pw")
    cache.put("bob", HASH_A, b"pw")
    cache.forget("alice")
    assert not cache.get("alice", HASH_A, b"pw")
    cache.clear()
    assert not cache.get("bob", HASH_A, b"pw")
