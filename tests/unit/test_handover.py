"""The Twisted internals a transfer thread relies on when it takes a data connection over.

`ftps7.server.handover` reads and empties Twisted's unsent TCP buffer and
checks that Twisted's TLS layer holds no application bytes. Those are private
attributes: if a Twisted upgrade renames them, these tests fail instead of a
transfer silently losing bytes.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet import abstract, task
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.protocols import tls

from ftps7.server.handover import _take_twisted_buffer
from ftps7.tls.contexts import ServerConnectionCreator, SessionTls


class _FakeSocketTransport(abstract.FileDescriptor):
    """A FileDescriptor whose buffer is filled but never written out."""

    def startWriting(self) -> None:
        pass  # no reactor: keep what is written in the buffer

    def writeSomeData(self, data: Any) -> int:
        return 0


def test_twisted_tcp_buffer_attributes_are_taken_in_order() -> None:
    transport = _FakeSocketTransport()
    transport.connected = True
    transport.dataBuffer = b"xxfirst "  # as after a partial send ...
    transport.offset = 2  # ... of which two bytes went out
    transport.write(b"second ")  # later writes wait in the temporary list
    transport.write(b"third")
    assert _take_twisted_buffer(transport) == b"first second third"
    assert transport.dataBuffer == b""
    assert transport.offset == 0
    assert transport._tempDataBuffer == []
    assert transport._tempDataLen == 0


def test_twisted_tls_layer_still_has_the_buffers_handover_checks() -> None:
    creator = ServerConnectionCreator(SessionTls(SSL.Context(SSL.TLS_SERVER_METHOD), b"s"))
    factory = tls.TLSMemoryBIOFactory(creator, False, Factory.forProtocol(Protocol))
    protocol = factory.buildProtocol(None)
    assert isinstance(protocol, tls.TLSMemoryBIOProtocol)
    protocol.makeConnection(StringTransport())
    assert protocol._appSendBuffer == []
    assert isinstance(protocol._aggregator, tls._AggregateSmallWrites)
    aggregator = tls._AggregateSmallWrites(lambda data: None, task.Clock())
    aggregator.write(b"x")
    assert aggregator._buffer == [b"x"]
