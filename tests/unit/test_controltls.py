"""The control connections' TLS layer (`ftps7.server.controltls`), on real loopback sockets.

Each test builds Twisted's own TCP transport (``tcp.Server``) around the
accepted end of a real 127.0.0.1 connection, registered with a
``MemoryReactor`` instead of a running one: what the transport would leave for
the next poll stays visible (``getWriters``), and what ``send_now`` sent is on
the client's socket.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from OpenSSL import SSL
from twisted.internet import tcp
from twisted.internet.interfaces import IHandshakeListener, ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor
from zope.interface import implementer

from ftps7.config.model import TlsSettings
from ftps7.server.controltls import ControlTls, send_now, start_tls
from ftps7.tls.contexts import ServerConnectionCreator, SessionTls, TlsContextFactory
from ftps7.tls.store import StoredCertificate
from tests.pki import client_context, make_pki


@implementer(IHandshakeListener)
class _Recorder(Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.handshakes = 0

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def handshakeCompleted(self) -> None:
        self.handshakes += 1


@pytest.fixture
def pair() -> Iterator[tuple[tcp.Server, socket.socket, MemoryReactor]]:
    """(server transport, client socket, the transport's reactor)."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    accepted, address = listener.accept()
    listener.close()
    accepted.setblocking(False)
    reactor = MemoryReactor()
    server = tcp.Server(accepted, _Recorder(), address, None, 1, reactor)  # type: ignore[arg-type]
    server.protocol.makeConnection(server)
    yield server, client, reactor
    client.close()
    accepted.close()


def _received(client: socket.socket, size: int) -> bytes:
    """What has arrived so far, without waiting."""
    client.setblocking(False)
    try:
        return client.recv(size)
    except BlockingIOError:
        return b""
    finally:
        client.settimeout(5)


def test_a_reply_leaves_before_the_next_poll(pair: Any) -> None:
    server, client, reactor = pair
    send_now(server, b"220 ready\r\n")
    # Blocking, with the socket's timeout: queued bytes would never come (no reactor runs).
    assert client.recv(100) == b"220 ready\r\n"
    assert server not in reactor.getWriters()
    assert not server.dataBuffer and not server._tempDataBuffer


def test_what_the_socket_does_not_take_waits_and_keeps_its_place(pair: Any) -> None:
    server, client, reactor = pair
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(range(256)) * 16384  # 4 MiB: more than both socket buffers hold
    send_now(server, big)
    assert server in reactor.getWriters()  # the rest waits for the next poll
    send_now(server, b"tail")  # queued behind it, not sent ahead
    received = bytearray()
    while len(received) < len(big) + 4:  # the reactor's part: write when writable
        queued = bool(server.dataBuffer or server._tempDataBuffer)
        readable, writable, _ = select.select([client], [server.socket] if queued else [], [], 10)
        assert readable or writable, "stalled"
        if writable:
            server.doWrite()
        if readable:
            received += client.recv(1 << 20)
    assert bytes(received) == big + b"tail"


def test_nothing_is_sent_ahead_of_a_close(pair: Any) -> None:
    server, client, reactor = pair
    server.loseConnection()
    send_now(server, b"late")
    assert _received(client, 100) == b""  # Twisted's path: written before the close


def _read(server: tcp.Server) -> None:
    """The reactor's read poll: wait until the client's bytes are there, then read.

    Loopback delivery is fast but not synchronous: reading right after the
    client's ``sendall`` can find nothing yet.
    """
    readable, _, _ = select.select([server.socket], [], [], 5)
    assert readable, "the client's bytes never arrived"
    server.doRead()


def _session_tls() -> SessionTls:
    pki = make_pki()
    certificate = StoredCertificate.build(
        name="ftp",
        path="/nonexistent/ftp.pem",
        leaf=pki.server.cert,
        chain=[pki.intermediate.cert],
        private_key=pki.server.key,
    )
    context = TlsContextFactory(TlsSettings()).new_context(
        certificate, ssl128=False, request_client_cert=False, client_ca_names=()
    )
    return SessionTls(context, b"session-1")


def _plaintext(tls: SSL.Connection, client: socket.socket) -> bytes:
    """The next application data (after the session tickets TLS 1.3 sends first)."""
    while True:
        try:
            return tls.recv(100)
        except SSL.WantReadError:
            tls.bio_write(client.recv(65536))  # the socket's timeout ends a wait for nothing


def test_start_tls_handshakes_without_waiting_for_polls(pair: Any) -> None:
    """Every server flight of the handshake and the reply after it leave at once."""
    server, client, reactor = pair
    session = server.protocol
    start_tls(server, ServerConnectionCreator(_session_tls()))
    assert isinstance(server.protocol, ControlTls)
    assert ISSLTransport.providedBy(server) and server.TLS
    tls = SSL.Connection(client_context(), None)
    tls.set_connect_state()
    for _ in range(20):
        try:
            tls.do_handshake()
            break
        except SSL.WantReadError:
            pass
        client.sendall(tls.bio_read(65536))
        _read(server)  # the server's TLS layer answers ...
        tls.bio_write(client.recv(65536))  # ... and its answer is already here
    else:
        raise AssertionError("no handshake")
    client.sendall(tls.bio_read(65536))  # the client's Finished
    _read(server)
    assert session.handshakes == 1
    server.write(b"331 Password required\r\n")  # through ControlTls, no aggregation
    assert _plaintext(tls, client) == b"331 Password required\r\n"
    assert server not in reactor.getWriters()
    tls.send(b"PASS x\r\n")
    client.sendall(tls.bio_read(65536))
    _read(server)
    assert session.received == b"PASS x\r\n"
