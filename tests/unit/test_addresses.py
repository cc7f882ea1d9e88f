"""Control/data address helpers (pure)."""

from __future__ import annotations

import pytest

from ftps7.server.addresses import family, is_local, normalize


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # a dual-stack listener's IPv4 client
        ("::FFFF:C000:0207", "192.0.2.7"),
        ("::1", "::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_normalize(given: str, expected: str) -> None:
    assert normalize(given) == expected
    assert normalize(given) == expected  # and again, from the cache


def test_family_follows_the_normalized_address() -> None:
    assert family("::ffff:10.0.0.1") == 1
    assert family("10.0.0.1") == 1
    assert family("::1") == 2


def test_local_clients_are_loopback_or_the_servers_own_address() -> None:
    assert is_local("127.0.0.1", "127.0.0.1")
    assert is_local("127.0.0.9", "192.0.2.1")  # any loopback address
    assert is_local("::1", "2001:db8::1")
    assert is_local("192.0.2.1", "192.0.2.1")  # the server's own address
    assert not is_local("192.0.2.7", "192.0.2.1")
    assert not is_local("2001:db8::7", "2001:db8::1")
    assert not is_local("not an address", "192.0.2.1")
