"""Passive ports that listen without writing to the server log.

Twisted's ``tcp.Port`` logs ``<factory> starting on N`` when it starts
listening and ``(TCP Port N Closed)`` when it stops, unconditionally (a
factory's ``noisy`` only silences the factory's own lines). A listening
socket that lives for the one data connection of a PASV or EPSV made these
two info lines per transfer and listing: most of a busy server's log, and
two log events of twistd's observer each time.

`QuietPort` is ``tcp.Port`` without the two lines. `startListening` is
Twisted's (26.10) minus the ``log.msg`` call and the pre-existing socket
case, which passive ports do not use; tests/unit/test_quietport.py checks
it against a real reactor.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort


class QuietPort(tcp.Port):
    """``tcp.Port`` that logs neither its start nor its close."""

    def startListening(self) -> None:
        tcp._reservedFD.reserve()
        skt: socket.socket | None = None
        try:
            skt = self.createInternetSocket()
            if self.addressFamily == socket.AF_INET6:
                address: Any = tcp._resolveIPv6(self.interface, self.port)
            else:
                address = (self.interface, self.port)
            skt.bind(address)
        except OSError as error:
            if skt is not None:
                skt.close()
            raise CannotListenError(self.interface, self.port, error) from error
        skt.listen(self.backlog)
        self._realPortNumber = skt.getsockname()[1]
        self.factory.doStart()  # type: ignore[union-attr]  # (as in Twisted)
        self.connected = True
        self.socket = skt
        self.fileno = self.socket.fileno  # type: ignore[method-assign]
        self.numberAccepts = 100
        self.startReading()

    def _logConnectionLostMsg(self) -> None:
        pass


def listen_quietly(
    reactor: Any, port: int, factory: Any, backlog: int, interface: str
) -> IListeningPort:
    """``reactor.listenTCP`` with a `QuietPort`."""
    listening = QuietPort(port, factory, backlog, interface, reactor)
    listening.startListening()
    return listening
