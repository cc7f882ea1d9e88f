"""PROXY protocol headers (`ftps7.core.proxyheader`) and who may send them."""

from __future__ import annotations

import struct

import pytest
from twisted.internet.task import Clock

from ftps7.core.proxyheader import V2_SIGNATURE, ProxyHeader, ProxyHeaderError, parse
from ftps7.server.proxyprotocol import ProxyTrust

# ------------------------------------------------------------------ version 1


def test_v1_tcp4() -> None:
    data = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\nUSER x\r\n"
    assert parse(data) == ProxyHeader(("192.0.2.7", 40000), ("198.51.100.1", 21), 44)


def test_v1_tcp6() -> None:
    header = parse(b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n")
    assert header is not None
    assert header.source == ("2001:db8::7", 65535) and header.destination == ("2001:db8::1", 0)


def test_v1_unknown_keeps_the_connections_own_addresses() -> None:
    assert parse(b"PROXY UNKNOWN\r\n") == ProxyHeader(None, None, 15)
    assert parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n") == ProxyHeader(None, None, 35)


@pytest.mark.parametrize(
    "partial", [b"", b"P", b"PROXY", b"PROXY ", b"PROXY TCP4 192.0.2.7 198.51.1"]
)
def test_v1_needs_more(partial: bytes) -> None:
    assert parse(partial) is None


@pytest.mark.parametrize(
    "data",
    [
        b"USER anonymous\r\n",  # a client talking FTP to the proxy port
        b"\x16\x03\x01\x02\x00",  # a TLS ClientHello
        b"proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",
        b"PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n",
        b"PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n",
        b"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",  # not IPv4
        b"PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n",  # not IPv6
        b"PROXY TCP4 192.0.2.300 198.51.100.1 1 2\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 021 2\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 -1 2\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 \xd9\xa1 2\r\n",  # an Arabic-Indic digit
        b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",  # LF alone
        b"PROXY " + b"X" * 120,  # no CRLF within 107 bytes
    ],
)
def test_v1_refuses(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


# ------------------------------------------------------------------ version 2


def _v2(command: int, family: int, block: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(block)) + block


def test_v2_tcp4_with_extensions_skipped() -> None:
    block = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + struct.pack("!HH", 40000, 990)
    tlv = b"\x05\x00\x03abc"  # a unique-ID extension
    data = _v2(1, 0x11, block + tlv) + b"\x16\x03\x01"
    assert parse(data) == ProxyHeader(("192.0.2.7", 40000), ("198.51.100.1", 990), 16 + 12 + 6)


def test_v2_tcp6() -> None:
    source = bytes.fromhex("20010db8000000000000000000000007")
    destination = bytes.fromhex("20010db8000000000000000000000001")
    header = parse(_v2(1, 0x21, source + destination + struct.pack("!HH", 1, 2)))
    assert header == ProxyHeader(("2001:db8::7", 1), ("2001:db8::1", 2), 16 + 36)


@pytest.mark.parametrize(
    ("command", "family"), [(0, 0x11), (0, 0x00), (1, 0x00), (1, 0x31)], ids=str
)
def test_v2_local_unspec_and_unix_keep_the_connections_own_addresses(
    command: int, family: int
) -> None:
    data = _v2(command, family, bytes(12))
    assert parse(data) == ProxyHeader(None, None, 28)


def test_v2_needs_more() -> None:
    data = _v2(1, 0x11, bytes(12))
    for cut in (1, 11, 12, 15, 16, 27):
        assert parse(data[:cut]) is None, cut


@pytest.mark.parametrize(
    "data",
    [
        V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12),  # version 1 in a v2 frame
        _v2(2, 0x11, bytes(12)),  # command 2
        _v2(1, 0x12, bytes(12)),  # UDP over IPv4: FTP is TCP
        _v2(1, 0x11, bytes(11)),  # an IPv4 block too short
        _v2(1, 0x21, bytes(35)),  # an IPv6 block too short
        V2_SIGNATURE[:11] + b"X",
    ],
)
def test_v2_refuses(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


# ---------------------------------------------------------------- who is trusted


def test_trust_by_address_and_network_across_families() -> None:
    trust = ProxyTrust(("127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32"), Clock())
    assert trust.trusts("127.0.0.1")
    assert trust.trusts("::ffff:10.1.2.3")  # a dual-stack listener's IPv4 client
    assert trust.trusts("2001:db8::5")
    assert not trust.trusts("127.0.0.2")
    assert not trust.trusts("::1")
    assert not trust.trusts("not an address")
    assert not ProxyTrust((), Clock()).trusts("127.0.0.1")
