"""Address helpers for the control and data channels (pure)."""

from __future__ import annotations

import functools
import ipaddress

from ftps7.core.replies import FTPError, R


@functools.lru_cache(maxsize=4096)
def normalize(host: str) -> str:
    """The canonical text of an address; IPv4-mapped IPv6 becomes plain IPv4.

    A dual-stack listener reports IPv4 clients as ``::ffff:a.b.c.d``; comparisons
    between control and data peers must not be fooled by that. Cached: every
    connection asks for both its ends, and ``ipaddress`` parsing costs ~5 µs.
    """
    host = host.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def is_local(peer: str, local: str) -> bool:
    """Is the client on this machine: a loopback address, or the address it reached us on?

    IIS's notion of a "local" client for ``allowLocalDetailedErrors``.
    """
    if peer == local:
        return True
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def family(host: str) -> int:
    """RFC 2428 network protocol number: 1 for IPv4, 2 for IPv6."""
    return 2 if ":" in normalize(host) else 1


def parse_port(argument: str) -> tuple[str, int]:
    """``PORT h1,h2,h3,h4,p1,p2`` → ``("h1.h2.h3.h4", port)`` or 501."""
    parts = argument.strip().split(",")
    if len(parts) != 6:
        raise FTPError(R.SYNTAX_ERROR)
    try:
        numbers = [int(part.strip()) for part in parts]
    except ValueError:
        raise FTPError(R.SYNTAX_ERROR) from None
    if any(not 0 <= number <= 255 for number in numbers):
        raise FTPError(R.SYNTAX_ERROR)
    host = ".".join(str(number) for number in numbers[:4])
    return host, numbers[4] * 256 + numbers[5]


def parse_eprt(argument: str) -> tuple[int, str, int]:
    """``EPRT |af|addr|port|`` (RFC 2428 §2) → ``(af, addr, port)`` or 501/522."""
    argument = argument.strip()
    if len(argument) < 7:
        raise FTPError(R.SYNTAX_ERROR)
    delimiter = argument[0]
    if ord(delimiter) < 33 or ord(delimiter) > 126:
        raise FTPError(R.SYNTAX_ERROR)
    fields = argument.split(delimiter)
    if len(fields) != 5 or fields[0] or fields[4]:
        raise FTPError(R.SYNTAX_ERROR)
    af_text, host, port_text = fields[1], fields[2], fields[3]
    if af_text not in ("1", "2"):
        raise FTPError(R.EPRT_PROTOCOL, families="1,2")
    try:
        port = int(port_text)
        address = ipaddress.ip_address(host)
    except ValueError:
        raise FTPError(R.SYNTAX_ERROR) from None
    if not 0 < port < 65536 or address.version != (4 if af_text == "1" else 6):
        raise FTPError(R.SYNTAX_ERROR)
    return int(af_text), normalize(host), port


def pasv_numbers(host: str, port: int) -> str:
    return ",".join(host.split(".") + [str(port >> 8), str(port & 0xFF)])
