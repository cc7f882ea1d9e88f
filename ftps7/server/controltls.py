"""The TLS layer of control connections: Twisted's, without what costs a short session.

A control connection writes one small reply per command and then waits for the
next command. Twisted's TLS layer is built for the opposite (many small writes
to merge), and for a session of six commands it did three things a control
connection does not need; the first two cost ~10 % of the session's CPU
(docs/performance.md, fourth round):

- ``BufferingTLSTransport``, what ``startTLS`` and ``TLSMemoryBIOFactory``
  use, holds every write until the next reactor turn (a ``DelayedCall`` per
  reply) to merge it with later ones; there are none.
- The TCP transport then does not send either: it registers for writability
  (an ``epoll_ctl``), sends on the next poll, and unregisters (another).
  `_SendNow` sends at once when nothing is queued, and queues as before when
  the socket takes less than everything.
- ``TLSMemoryBIOProtocol.makeConnection`` declares each interface of the TCP
  transport on itself in its own ``directlyProvides`` call (ten per AUTH,
  each replacing the previous, so only the last one stayed). After AUTH the
  FTP session's transport is still the TCP connection, which ``start_tls``
  marks ``ISSLTransport``; nothing looks at the TLS layer's own interfaces,
  and `ControlTls` declares none (implicit FTPS keeps ``ProtocolWrapper``'s
  declaration: there the TLS layer is the session's transport).

What OpenSSL sees, the bytes on the wire and their order are unchanged. Data
connections keep Twisted's layer: bulk transfers are what it is built for.

This relies on Twisted internals in the way ``twisted.internet._newtls`` uses
them (the ``TLS`` flag and ``protocol`` of a TCP connection, the write buffer
of a ``FileDescriptor``); tests/unit/test_controltls.py and every TLS test of
the integration suite run through it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from zope.interface import directlyProvides


def send_now(connection: Any, data: bytes) -> None:
    """``FileDescriptor.write`` on ``connection``, but try the socket first.

    Only when nothing is queued (order) and nothing is closing or producing;
    whatever the socket does not take, and every error, takes Twisted's path,
    which queues and reports errors on the next poll as usual.
    """
    if (
        data
        and connection.connected
        and not connection.disconnecting
        and not connection._writeDisconnected
        and connection.producer is None
        and not connection.dataBuffer
        and not connection._tempDataBuffer
    ):
        try:
            sent = connection.socket.send(data)
        except OSError:  # EAGAIN, or an error the next poll will report
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    FileDescriptor.write(connection, data)


class _SendNow:
    """The TCP connection as the TLS layer's transport: its own writes skip TLS.

    Like Twisted's ``_BypassTLS``: the TLS layer's encrypted bytes, its close
    and its producer calls go straight to the ``FileDescriptor`` level of the
    connection (whose own methods would route them back into TLS after
    ``start_tls``); everything else is the connection's.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def write(self, data: bytes) -> None:
        send_now(self._connection, data)

    def writeSequence(self, data: Any) -> None:
        send_now(self._connection, b"".join(data))

    def loseConnection(self) -> None:
        FileDescriptor.loseConnection(self._connection)

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        FileDescriptor.registerProducer(self._connection, producer, streaming)

    def unregisterProducer(self) -> None:
        FileDescriptor.unregisterProducer(self._connection)


class CloseAfterNotify:
    """A TLS layer that closes the socket once its close_notify is out.

    Twisted's layer keeps the connection open until the peer answers our
    close_notify with its own. RFC 8446 §6.1 lets the side that closes
    first skip that wait, and vsftpd and IIS close at once too. Waiting cost
    a control connection its session for as long as a client did not answer
    (for ever, for a hung client or one holding its maxConnections slot on
    purpose), and every download one more round trip before its 226: the
    client's close had to reach the server first, and a client that reads
    the 226 before it closes the data connection stalled until
    dataChannelTimeout. (CCC is not a close: it shuts TLS down on its own,
    server/ccc.py.)
    """

    transport: Any
    _lostTLSConnection: bool

    def _shutdownTLS(self) -> None:
        super()._shutdownTLS()  # type: ignore[misc]
        # Nothing more is read from the peer, so the connection's end is the
        # socket's (ConnectionDone once our bytes are out, as for a close
        # the client answered), not "EOF without close_notify".
        self._lostTLSConnection = True
        if self.transport is not None:
            self.transport.loseConnection()


class ControlTls(CloseAfterNotify, TLSMemoryBIOProtocol):
    """``TLSMemoryBIOProtocol`` with unbuffered writes, sent at once (`_SendNow`)."""

    def makeConnection(self, transport: Any) -> None:
        # TLSMemoryBIOProtocol.makeConnection, with the TCP connection wrapped
        # for send_now and, under start_tls, no interface declarations.
        self._tlsConnection = self.factory._creatorCallable(self)
        self._appSendBuffer = []
        raw = _SendNow(transport)
        if self._connectWrapped:  # implicit FTPS: this also connects the FTP session
            ProtocolWrapper.makeConnection(self, raw)
        else:
            Protocol.makeConnection(self, raw)
            self.factory.registerProtocol(self)
        self._checkHandshakeStatus()


class ControlTlsFactory(TLSMemoryBIOFactory):
    """``TLSMemoryBIOFactory`` for control connections (implicit FTPS listeners)."""

    protocol = ControlTls


def insert_server_tls(
    connection: Any,
    factory_class: type[TLSMemoryBIOFactory],
    creator: IOpenSSLServerConnectionCreator,
    transport: Any,
) -> None:
    """Put a server-side TLS layer of ``factory_class`` on a TCP connection.

    What ``twisted.internet._newtls.startTLS`` does, with our protocol class:
    the TLS protocol goes between the TCP connection and its protocol, the
    connection's writes and producers go through it from now on (``TLS``),
    it provides ``ISSLTransport``, and the TLS layer itself writes to
    ``transport`` (the connection, or a wrapper that bypasses the layer).
    """
    producer, streaming = connection.producer, connection.streamingProducer
    if producer is not None:
        connection.unregisterProducer()
    factory = factory_class(creator, False, None)  # type: ignore[arg-type]  # as _newtls does
    tls = factory.protocol(factory, connection.protocol, False)
    connection.protocol = tls
    connection.getHandle = tls.getHandle
    connection.getPeerCertificate = tls.getPeerCertificate
    directlyProvides(connection, ISSLTransport)
    connection.TLS = True
    tls.makeConnection(transport)
    if producer is not None:
        connection.registerProducer(producer, streaming)


def start_tls(connection: Any, creator: IOpenSSLServerConnectionCreator) -> None:
    """``connection.startTLS(creator)`` (server side) with a `ControlTls` layer.

    `ControlTls.makeConnection` wraps the connection itself (`_SendNow`).
    """
    insert_server_tls(connection, ControlTlsFactory, creator, connection)
