"""Reading the PROXY protocol header (HAProxy, versions 1 and 2): bytes in, addresses out.

A load balancer in TCP mode hides the client: every connection seems to come
from the balancer. With ``send-proxy`` (v1, text) or ``send-proxy-v2``
(binary) it starts each connection with a header naming the real client and
the address the client connected to. This module only parses; which peers may
send a header, and what the server does with it, is `server.proxyprotocol`'s.

The rules kept here, from the protocol's specification:

- v1: ``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n``, at most 107 bytes,
  single spaces, addresses of the named family, decimal ports 0-65535;
  ``PROXY UNKNOWN ...\\r\\n`` means "use the connection's own addresses".
- v2: a 12-byte signature, version 2, command LOCAL (a health check: the
  connection's own addresses) or PROXY, then the address block of the stated
  length; TCP over IPv4 or IPv6 carries addresses, UNSPEC and UNIX sockets mean
  the connection's own; UDP is refused (FTP is TCP). Type-length-value
  extensions after the addresses are skipped.
- Anything else is an error: a trusted proxy that sends no header, or a broken
  one, is misconfigured, and guessing would put the wrong address in every
  log and every address check.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

V1_PREFIX = b"PROXY "
#: The longest v1 header the specification allows, CRLF included.
V1_MAX = 107
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16


class ProxyHeaderError(ValueError):
    """The bytes are not a PROXY protocol header."""


@dataclass(frozen=True)
class ProxyHeader:
    """A parsed header.

    ``source`` and ``destination`` are ``(host, port)``, or None when the header
    says to use the connection's own addresses (v1 UNKNOWN, v2 LOCAL, UNSPEC,
    UNIX). ``length`` is how many bytes of the stream the header took.
    """

    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    length: int


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None if more bytes are needed.

    Raises `ProxyHeaderError` as soon as the bytes cannot be the start of a header.
    """
    if data[: len(V2_SIGNATURE)] == V2_SIGNATURE[: len(data)]:
        return _parse_v2(data) if len(data) >= V2_FIXED else None
    if data[: len(V1_PREFIX)] == V1_PREFIX[: len(data)]:
        return _parse_v1(data) if len(data) > len(V1_PREFIX) else None
    raise ProxyHeaderError("no PROXY protocol header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX or b"\n" in data[:V1_MAX]:
            raise ProxyHeaderError("PROXY v1 header without CRLF within 107 bytes")
        return None
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError("PROXY v1 header is not ASCII") from None
    fields = line.split(" ")
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return ProxyHeader(None, None, end + 2)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"bad PROXY v1 header {line[:60]!r}")
    version = 4 if fields[1] == "TCP4" else 6
    source = (_v1_address(fields[2], version), _v1_port(fields[4]))
    destination = (_v1_address(fields[3], version), _v1_port(fields[5]))
    return ProxyHeader(source, destination, end + 2)


def _v1_address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError(f"bad address {text[:45]!r} in a PROXY v1 header") from None
    if address.version != version:
        raise ProxyHeaderError(f"{text!r} is not an IPv{version} address")
    return str(address)


def _v1_port(text: str) -> int:
    leading_zero = len(text) > 1 and text[0] == "0"
    if not text.isascii() or not text.isdigit() or len(text) > 5 or leading_zero:
        raise ProxyHeaderError(f"bad port {text[:8]!r} in a PROXY v1 header")
    port = int(text)
    if port > 65535:
        raise ProxyHeaderError(f"bad port {text!r} in a PROXY v1 header")
    return port


def _parse_v2(data: bytes) -> ProxyHeader | None:
    version_command, family = data[12], data[13]
    if version_command >> 4 != 2:
        raise ProxyHeaderError(f"PROXY v2 header of version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise ProxyHeaderError(f"PROXY v2 header with command {command}")
    length = V2_FIXED + int.from_bytes(data[14:16], "big")
    if len(data) < length:
        return None
    block = data[V2_FIXED:length]
    if command == 0:  # LOCAL: the proxy's own connection (a health check)
        return ProxyHeader(None, None, length)
    if family == 0x11:  # TCP over IPv4
        if len(block) < 12:
            raise ProxyHeaderError("PROXY v2 IPv4 address block too short")
        source = (str(ipaddress.IPv4Address(block[0:4])), int.from_bytes(block[8:10], "big"))
        destination = (str(ipaddress.IPv4Address(block[4:8])), int.from_bytes(block[10:12], "big"))
        return ProxyHeader(source, destination, length)
    if family == 0x21:  # TCP over IPv6
        if len(block) < 36:
            raise ProxyHeaderError("PROXY v2 IPv6 address block too short")
        source = (str(ipaddress.IPv6Address(block[0:16])), int.from_bytes(block[32:34], "big"))
        destination = (
            str(ipaddress.IPv6Address(block[16:32])),
            int.from_bytes(block[34:36], "big"),
        )
        return ProxyHeader(source, destination, length)
    if family in (0x00, 0x31):  # UNSPEC, or a UNIX stream socket: nothing usable
        return ProxyHeader(None, None, length)
    raise ProxyHeaderError(f"PROXY v2 header for address family/protocol 0x{family:02x}")
