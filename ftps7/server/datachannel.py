"""Data connections: passive listeners, active connects, and the connection itself.

Replaces Twisted's ``DTP``/``DTPFactory`` (RESEARCH.md §1.5): those accept the
first connection from anyone (``peerCheck = False``), PORT to any host and port,
and report a transfer done whatever way the connection closed. Here:

- a passive listener accepts only the control connection's client address
  (``matchClientAddressForPasv``), closes anything else at once and keeps
  waiting for the real client, and stops listening after the first good one;
- an active connection goes only to the control client (``matchClientAddressForPort``)
  and never to a port below 1024 (RFC 2577 bounce attacks), from the control
  connection's local address;
- TLS on a data connection is always the server side of the handshake, whatever
  the TCP direction, made by the session's own ``SessionTls`` (RESEARCH.md §2.2, §2.5);
- the connection records *how* it closed so uploads can tell a clean end
  (FIN, or TLS close_notify) from a truncation.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

from OpenSSL import SSL
from twisted.internet import defer, error
from twisted.internet.interfaces import (
    IAddress,
    IHandshakeListener,
    IListeningPort,
    IOpenSSLServerConnectionCreator,
    IReactorTCP,
    IReactorTime,
)
from twisted.internet.protocol import ClientFactory, Protocol, ServerFactory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ftps7 import logfilter
from ftps7.server import datatls
from ftps7.server.addresses import normalize
from ftps7.server.proxyprotocol import ProxyTrust
from ftps7.server.quietport import listen_quietly
from ftps7.tls.session import preserve_session

log = Logger(observer=logfilter.observer)


@implementer(IHandshakeListener)
class DataConnection(Protocol):
    """One TCP (optionally TLS) data connection.

    ``connected`` fires at TCP connect; ``secured`` fires when the TLS
    handshake completes (or at once for clear connections); ``closed`` fires
    with the close reason (a Failure) when the connection is gone.
    Received bytes go to ``sink`` once one is attached; until then they are
    held (a client may start an upload before the server is ready).
    """

    def __init__(self) -> None:
        self.connected_d: defer.Deferred[DataConnection] = defer.Deferred()
        self.secured: defer.Deferred[None] = defer.Deferred()
        self.closed: defer.Deferred[None] = defer.Deferred()
        self.tls = False
        self.handshake_done = False
        self.is_closed = False
        self.close_reason: Failure | None = None
        self.sink: Callable[[bytes], None] | None = None
        self._held: list[bytes] = []
        self._held_size = 0
        self.bytes_received = 0
        self.on_activity: Callable[[], None] | None = None
        # A ThreadedTransfer (server/handover.py) while a pool thread owns the socket.
        self.lent_to: Any = None
        # Set by a threaded upload, which sees the close_notify Twisted never will.
        self.ended_cleanly: bool | None = None

    # -- TCP events
    def connectionMade(self) -> None:
        # A larger write buffer than Twisted's 64 KiB: a 256 KiB file chunk no
        # longer pauses and resumes the producer (two epoll calls) every time.
        transport: Any = self.transport
        transport.bufferSize = 1 << 20
        self.connected_d.callback(self)

    def start_tls(self, creator: IOpenSSLServerConnectionCreator) -> None:
        """Become the TLS server on this connection (passive or active alike)."""
        self.tls = True
        # Active-mode connections too (a tcp.Client would default to the client
        # side); TLS 1.3 tickets wait for our first write (`datatls`).
        datatls.start_tls(self.transport, creator)

    def mark_clear(self) -> None:
        if not self.secured.called:
            self.secured.callback(None)

    def handshakeCompleted(self) -> None:
        self.handshake_done = True
        if not self.secured.called:
            self.secured.callback(None)

    def dataReceived(self, data: bytes) -> None:
        self.bytes_received += len(data)
        if self.on_activity is not None:
            self.on_activity()
        if self.sink is not None:
            self.sink(data)
            return
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size > 1 << 20:
            transport: Any = self.transport
            transport.pauseProducing()

    def attach_sink(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        held, self._held = self._held, []
        self._held_size = 0
        for chunk in held:
            sink(chunk)
        if not self.is_closed:
            transport: Any = self.transport
            transport.resumeProducing()

    def take_held(self) -> list[bytes]:
        """Hand over the bytes received before the upload began (a threaded receiver)."""
        held, self._held = self._held, []
        self._held_size = 0
        return held

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.is_closed = True
        self.close_reason = reason
        if self.handshake_done and not reason.check(SSL.Error):
            # An aborted TLS 1.2 data connection would otherwise evict the
            # control session from the cache and break every later resumption.
            with contextlib.suppress(Exception):
                preserve_session(self.tls_connection())
        if not self.connected_d.called:
            self.connected_d.errback(reason)
        if not self.secured.called:
            self.secured.errback(reason)
            self.secured.addErrback(lambda _: None)
        self.closed.callback(None)  # the reason is in close_reason

    # -- helpers
    @property
    def clean_close(self) -> bool:
        """FIN on a clear connection, close_notify on a TLS one (RESEARCH.md §2.2)."""
        if self.ended_cleanly is not None:
            return self.ended_cleanly
        return (
            self.close_reason is not None
            and self.close_reason.check(error.ConnectionDone) is not None
        )

    def peer_host(self) -> str:
        return normalize(self.transport.getPeer().host)  # type: ignore[union-attr]

    def abort(self) -> None:
        if self.lent_to is not None:
            # A pool thread owns the socket: it stops at once and closes the
            # connection when it has handed it back to the reactor.
            self.lent_to.cancel()
            return
        if not self.is_closed and self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def tls_connection(self) -> Any:
        """The pyOpenSSL ``Connection`` of a TLS data connection."""
        return self.transport.getHandle()  # type: ignore[union-attr]


class _PassiveFactory(ServerFactory):
    noisy = False

    def __init__(self, listener: PassiveListener) -> None:
        self.listener = listener

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        return self.listener._accept(addr)


class PassiveListener:
    """A PASV/EPSV port waiting for the session's client."""

    def __init__(
        self,
        reactor: IReactorTCP,
        expected_peer: str | None,
        on_refused: Callable[[str], None] | None = None,
        proxy_trust: ProxyTrust | None = None,
    ) -> None:
        self.reactor = reactor
        self.expected_peer = expected_peer
        self.on_refused = on_refused
        # <proxyProtocol>: a data connection from a trusted proxy names the
        # client in its header, and that is the address checked.
        self.proxy_trust = proxy_trust
        self.port: IListeningPort | None = None
        self.connection: DataConnection | None = None
        self.accepted: defer.Deferred[DataConnection] = defer.Deferred()

    def listen(self, interface: str, low: int, high: int, backlog: int = 5) -> int:
        """Bind a port in ``[low, high]`` (0 = any) and return its number.

        The range is tried from a random starting point so ports are not
        predictable, and wraps around once.
        """
        factory: Any = _PassiveFactory(self)
        if self.proxy_trust is not None:
            factory = self.proxy_trust.wrap(factory)
        if low == 0 or high == 0:
            candidates = [0]
        else:
            span = high - low + 1
            start = random.randrange(span)  # noqa: S311 - not a secret, only spreading
            candidates = [low + (start + offset) % span for offset in range(span)]
        for number in candidates:
            try:
                self.port = listen_quietly(self.reactor, number, factory, backlog, interface)
            except error.CannotListenError:
                continue
            return int(self.port.getHost().port)  # type: ignore[attr-defined]
        raise error.CannotListenError(interface, high, OSError("passive port range exhausted"))

    def _accept(self, addr: IAddress | None) -> DataConnection | None:
        if self.connection is not None:
            return None
        peer = normalize(getattr(addr, "host", ""))
        if self.expected_peer is not None and peer != self.expected_peer:
            if self.on_refused is not None:
                self.on_refused(peer)
            return None
        self.connection = DataConnection()
        self.connection.connected_d.chainDeferred(self.accepted)
        self.stop()
        return self.connection

    def stop(self) -> None:
        if self.port is not None:
            port, self.port = self.port, None
            port.stopListening()

    def close(self) -> None:
        """Stop listening and drop any connection not yet used."""
        self.stop()
        if not self.accepted.called:
            self.accepted.errback(error.ConnectionLost("passive listener closed"))
            self.accepted.addErrback(lambda _: None)
        if self.connection is not None:
            self.connection.abort()


class _ActiveFactory(ClientFactory):
    noisy = False

    def __init__(self) -> None:
        self.connection = DataConnection()
        self.result: defer.Deferred[DataConnection] = defer.Deferred()
        self.connection.connected_d.addCallbacks(self._ok, lambda _: None)

    def _ok(self, connection: DataConnection) -> DataConnection:
        if not self.result.called:
            self.result.callback(connection)
        return connection

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        return self.connection

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        if not self.result.called:
            self.result.errback(reason)


def connect_active(
    reactor: IReactorTCP,
    clock: IReactorTime,
    host: str,
    port: int,
    bind_host: str | None,
    timeout: float,
) -> defer.Deferred[DataConnection]:
    """Open an active-mode (PORT/EPRT) data connection to the client."""
    factory = _ActiveFactory()
    bind = (bind_host, 0) if bind_host else None
    reactor.connectTCP(host, port, factory, timeout=timeout, bindAddress=bind)
    return factory.result
