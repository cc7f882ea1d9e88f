"""The TLS layer of data connections: Twisted's, but TLS 1.3 tickets wait for our first write.

After every TLS 1.3 handshake OpenSSL queues ``NewSessionTicket`` messages for
the client, and Twisted's TLS layer sends them at once. A data connection's
tickets are useless to the client (it resumes the *control* connection's
session on every data connection), and on an upload they are harmful: a
client that only sends (lftp with GnuTLS) never reads them, so when it closes
its socket Linux finds unread bytes, answers with a reset instead of a FIN,
and throws away whatever the client had not sent yet, the end of the file and
its close_notify. About one lftp upload in four failed that way (``426``).
OpenSSL's cure, ``SSL_set_num_tickets(ssl, 0)``, is not bound by pyOpenSSL.

`DataTls` therefore holds everything OpenSSL writes after a TLS 1.3 handshake
in OpenSSL's own outgoing memory BIO until the server itself has something
to send: the first bytes of a download or listing (the tickets go first, so
the record order is what OpenSSL made), or our close_notify at the end of an
upload, when the client has sent everything and the reset can no longer cost
a byte. A pool thread that takes the connection over (`handover`) reads the
same BIO, so it sends the tickets before its first record, and an upload
thread leaves them there. RFC 8446 allows the delay: tickets may come at any
time after the handshake, and a KeyUpdate reply only has to come before our
next application data, which an upload never has.

TLS 1.2 is left alone: its last handshake flight comes from the server
(ChangeCipherSpec and Finished) and the client needs it, and ftps7 issues no
TLS 1.2 tickets (``OP_NO_TICKET``).
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet._newtls import _BypassTLS
from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.protocol import Protocol
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory

from ftps7.server.controltls import CloseAfterNotify, insert_server_tls


class DataTls(CloseAfterNotify, BufferingTLSTransport):
    """Twisted's buffered TLS layer that keeps a TLS 1.3 handshake's after-flight back.

    ``_released`` turns true with the first application write and with the
    start of a TLS shutdown (ours, or the answer to the client's); until
    then, once the handshake is done, ``_flushSendBIO`` leaves the bytes in
    the BIO.
    """

    _released = False

    def _holding(self) -> bool:
        return (
            self._handshakeDone
            and not self._released
            and self._tlsConnection.get_protocol_version() == SSL.TLS1_3_VERSION
        )

    def makeConnection(self, transport: Any) -> None:
        # TLSMemoryBIOProtocol.makeConnection without declaring each of the
        # TCP transport's interfaces on this layer, one directlyProvides call
        # each (2.7 % of the reactor's time for a small download). Nothing
        # looks at them: the data connection's transport stays the TCP
        # connection, which insert_server_tls marks ISSLTransport.
        assert not self._connectWrapped  # inserted under a running protocol
        self._tlsConnection = self.factory._creatorCallable(self)
        self._appSendBuffer = []
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        self._checkHandshakeStatus()

    def _flushSendBIO(self) -> None:
        if self._holding():
            return
        super()._flushSendBIO()

    def _write(self, data: bytes) -> None:
        self._released = True
        super()._write(data)

    def _shutdownTLS(self) -> None:
        self._released = True
        super()._shutdownTLS()

    def _tlsShutdownFinished(self, reason: Any) -> None:
        self._released = True
        super()._tlsShutdownFinished(reason)


class DataTlsFactory(TLSMemoryBIOFactory):
    """``TLSMemoryBIOFactory`` making `DataTls` layers."""

    protocol = DataTls


def start_tls(connection: Any, creator: IOpenSSLServerConnectionCreator) -> None:
    """Put a server-side `DataTls` layer on a TCP connection, accepted or connected.

    Always the server of the handshake, whatever way the TCP connection was
    made; the layer's own encrypted bytes reach the socket through
    ``_BypassTLS``, as in ``twisted.internet._newtls.startTLS``.
    """
    insert_server_tls(connection, DataTlsFactory, creator, _BypassTLS(FileDescriptor, connection))
