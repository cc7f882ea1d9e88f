"""CCC: take TLS off an explicit control connection, keep the TCP connection.

Twisted has no public way to stop TLS on a connection (RESEARCH.md §2.6), so
this module does it with Twisted's and pyOpenSSL's internals, in one place,
with tests that fail loudly if those internals change:

1. flush the TLS layer's write aggregator if it has one (Twisted's does and
   still holds the 200 reply; ftps7's `controltls.ControlTls` writes at once),
   then ``SSL_shutdown`` and push the close_notify out through the BIO;
2. put the TCP transport back into plaintext mode (``TLS = False``, drop the
   ISSLTransport methods);
3. route incoming bytes through a shim that skips the TLS records the client
   still sends (its close_notify, which in TLS 1.3 looks like application data
   on the outside) and hands the first plaintext byte onwards to the FTP
   protocol. A plaintext FTP command can never begin with a TLS record type
   byte (0x14–0x17), so the boundary is unambiguous.
"""

from __future__ import annotations

import contextlib
from typing import Any

from OpenSSL import SSL
from twisted.internet import error
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import noLongerProvides

_RECORD_TYPES = frozenset({0x14, 0x15, 0x16, 0x17})


class _SkipTlsRecords(Protocol):
    """Swallows whole TLS records until plaintext arrives, then steps aside."""

    def __init__(self, tcp: Any, ftp: Protocol) -> None:
        self.tcp = tcp
        self.ftp = ftp
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer:
            if self.buffer[0] not in _RECORD_TYPES:
                rest, self.buffer = self.buffer, b""
                self.tcp.protocol = self.ftp
                self.ftp.dataReceived(rest)
                return
            if len(self.buffer) < 5:
                return
            if self.buffer[1] != 0x03:
                # Not TLS after all; let the FTP parser answer it.
                rest, self.buffer = self.buffer, b""
                self.tcp.protocol = self.ftp
                self.ftp.dataReceived(rest)
                return
            length = int.from_bytes(self.buffer[3:5], "big")
            if len(self.buffer) < 5 + length:
                return
            self.buffer = self.buffer[5 + length :]

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.ftp.connectionLost(reason)


def clear_control_channel(tcp: Any, ftp: Protocol) -> None:
    """Send close_notify on ``tcp`` and continue the connection in plaintext."""
    tls = tcp.protocol
    aggregator = getattr(tls, "_aggregator", None)
    if aggregator is not None:
        aggregator.close()
    connection: SSL.Connection = tls._tlsConnection
    with contextlib.suppress(SSL.Error):
        connection.shutdown()
    tls._flushSendBIO()
    tls._lostTLSConnection = True
    tcp.TLS = False
    for name in ("getHandle", "getPeerCertificate"):
        tcp.__dict__.pop(name, None)
    noLongerProvides(tcp, ISSLTransport)
    tcp.protocol = _SkipTlsRecords(tcp, ftp)
