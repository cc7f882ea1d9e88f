"""Control/data address helpers (pure)."""

from __future__ import annotations

import pytest

from ftps7.server.addresses import family, normalize


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
