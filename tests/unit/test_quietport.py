"""QuietPort: a real listening socket, accepted connections, and no log lines."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher

from ftps7.server.quietport import listen_quietly


class Accepting(ServerFactory):
    noisy = False

    def __init__(self) -> None:
        self.built: list[Protocol] = []

    def buildProtocol(self, addr: Any) -> Protocol:
        protocol = Protocol()
        self.built.append(protocol)
        return protocol


def test_it_listens_accepts_and_closes_without_logging() -> None:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    reactor = MemoryReactorClock()
    factory = Accepting()
    try:
        port = listen_quietly(reactor, 0, factory, 5, "127.0.0.1")
        number = port.getHost().port  # type: ignore[attr-defined]
        assert number > 0
        assert port in reactor.readers  # type: ignore[operator]
        client = socket.create_connection(("127.0.0.1", number), timeout=5)
        port.doRead()  # type: ignore[attr-defined]  # the reactor's poll: accept
        assert len(factory.built) == 1
        assert factory.built[0].transport.getPeer().port == client.getsockname()[1]  # type: ignore[union-attr]
        port.stopListening()
        reactor.advance(0)
        client.close()
        factory.built[0].transport.loseConnection()  # type: ignore[union-attr]
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert [event.get("log_format", event.get("format")) for event in events] == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", number), timeout=5)


def test_a_port_in_use_is_cannot_listen() -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    number = taken.getsockname()[1]
    try:
        with pytest.raises(CannotListenError):
            listen_quietly(MemoryReactorClock(), number, Accepting(), 5, "127.0.0.1")
    finally:
        taken.close()
