"""The data connections' TLS layer (`ftps7.server.datatls`), on real loopback sockets.

Twisted's TCP transport (``tcp.Server``) around the accepted end of a real
127.0.0.1 connection, registered with a ``MemoryReactor``: nothing runs but
what the test calls, so "nothing has arrived" is a fact, not a wait. The
client is a pyOpenSSL connection on memory BIOs over the other end.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from OpenSSL import SSL
from twisted.internet import tcp
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import MemoryReactor

from ftps7.server.datatls import DataTls, start_tls
from ftps7.tls.contexts import ServerConnectionCreator
from tests.pki import client_context
from tests.unit.test_controltls import _read, _Recorder, _session_tls


@pytest.fixture
def pair() -> Iterator[tuple[tcp.Server, socket.socket]]:
    """(server transport with a DataTls layer, client socket)."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    accepted, address = listener.accept()
    listener.close()
    accepted.setblocking(False)
    server = tcp.Server(accepted, _Recorder(), address, None, 1, MemoryReactor())  # type: ignore[arg-type]
    server.protocol.makeConnection(server)
    start_tls(server, ServerConnectionCreator(_session_tls()))
    yield server, client
    client.close()
    accepted.close()


def _arrived(client: socket.socket) -> bytes:
    """What has arrived so far, without waiting."""
    client.setblocking(False)
    try:
        return client.recv(65536)
    except BlockingIOError:
        return b""
    finally:
        client.settimeout(5)


def _pump(server: tcp.Server) -> None:
    """Let the server transport send what it queued (the reactor's write poll)."""
    while server.dataBuffer or server._tempDataBuffer:
        server.doWrite()


def _handshake(server: tcp.Server, client: socket.socket, tls: SSL.Connection) -> None:
    tls.set_connect_state()
    for _ in range(20):
        try:
            tls.do_handshake()
            break
        except SSL.WantReadError:
            pass
        client.sendall(tls.bio_read(65536))
        _read(server)
        _pump(server)
        tls.bio_write(client.recv(65536))
    else:
        raise AssertionError("no handshake")
    try:
        finished = tls.bio_read(65536)  # TLS 1.3: the client's Finished, still to send
    except SSL.WantReadError:
        return  # TLS 1.2: the client spoke last before the server's Finished
    client.sendall(finished)
    _read(server)
    _pump(server)


def _read_plain(tls: SSL.Connection, client: socket.socket) -> bytes:
    while True:
        try:
            return tls.recv(65536)
        except SSL.WantReadError:
            tls.bio_write(client.recv(65536))


def test_the_layer_is_a_server_side_ssl_transport(pair: Any) -> None:
    server, _ = pair
    assert isinstance(server.protocol, DataTls)
    assert ISSLTransport.providedBy(server) and server.TLS


def test_tls13_tickets_wait_for_the_first_download_bytes_and_go_first(pair: Any) -> None:
    server, client = pair
    tls = SSL.Connection(client_context(min_version=SSL.TLS1_3_VERSION), None)
    _handshake(server, client, tls)
    assert server.protocol.wrappedProtocol.handshakes == 1
    assert _arrived(client) == b""  # the NewSessionTickets are held
    server.write(b"x" * 100_000)  # a download's first chunk
    server.protocol._aggregator.flush()
    _pump(server)
    got = b""
    while len(got) < 100_000:
        got += _read_plain(tls, client)  # tickets first, then the records: in order
    assert got == b"x" * 100_000


def test_an_upload_sees_nothing_from_the_server_until_its_close_notify(pair: Any) -> None:
    server, client = pair
    tls = SSL.Connection(client_context(min_version=SSL.TLS1_3_VERSION), None)
    _handshake(server, client, tls)
    payload = bytes(range(256)) * 256
    tls.sendall(payload)
    client.sendall(tls.bio_read(1 << 20))
    while len(server.protocol.wrappedProtocol.received) < len(payload):
        _read(server)
        _pump(server)
    assert server.protocol.wrappedProtocol.received == payload
    assert _arrived(client) == b""  # a client closing now would lose nothing
    tls.shutdown()  # our close_notify ...
    client.sendall(tls.bio_read(65536))
    _read(server)  # ... answered with the held tickets and the server's close_notify
    _pump(server)
    with pytest.raises(SSL.ZeroReturnError):
        _read_plain(tls, client)


def test_tls12_handshakes_complete_without_a_server_write(pair: Any) -> None:
    """TLS 1.2's last flight is the server's Finished: it must not be held."""
    server, client = pair
    tls = SSL.Connection(client_context(max_version=SSL.TLS1_2_VERSION), None)
    _handshake(server, client, tls)  # the client's do_handshake returned: it has it
    assert tls.get_protocol_version_name() == "TLSv1.2"
    assert server.protocol.wrappedProtocol.handshakes == 1
