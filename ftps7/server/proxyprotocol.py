"""``<proxyProtocol>``: connections from trusted proxies start with a PROXY header.

Behind a TCP load balancer every connection comes from the balancer, so
without the header ipSecurity, denyByFailure, the PASV/PORT address checks and
every log would see the balancer instead of the client. `ProxyTrust.wrap`
puts a `ProxyHeaderFactory` in front of a listening factory (control
listeners, explicit and implicit, and passive data ports):

- a connection from an address in ``trustedProxies`` must begin with a v1 or
  v2 header (`core.proxyheader`), within `HEADER_TIMEOUT` seconds; without
  one, or with a broken one, it is closed without a word (a proxy that sends
  none is misconfigured, and anything said would go to the proxy);
- once the header is read, the wrapped factory builds the real protocol for
  the client's address, the TCP connection's ``getPeer`` answers that
  address from then on, and the protocol starts as if it had just been
  accepted (an FTP session greets; an implicit-FTPS layer starts TLS;
  a passive port checks the client address as usual);
- a LOCAL (v2) or UNKNOWN (v1) header, a proxy's health check, keeps the
  proxy's own address;
- connections from any other address are served directly, with no header
  expected: a header from an untrusted peer is just a bad first command.

The address the client connected to (the header's destination) is not used:
the server's own address still chooses the site and is what PASV would
announce; set ``firewallSupport externalIp4Address`` for the balancer's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.core import proxyheader
from ftps7.server.addresses import normalize

log = Logger(observer=logfilter.observer)

#: Seconds a trusted proxy has to send its header: proxies send it at once.
HEADER_TIMEOUT = 10.0


class ProxyTrust:
    """Which peers are proxies, and how long they have to speak first."""

    def __init__(
        self, trusted: Sequence[str], clock: IReactorTime, timeout: float = HEADER_TIMEOUT
    ) -> None:
        self.networks = tuple(ipaddress.ip_network(text, strict=False) for text in trusted)
        self.clock = clock
        self.timeout = timeout

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(normalize(host))
        except ValueError:
            return False
        return any(
            address.version == network.version and address in network
            for network in self.networks
        )

    def wrap(self, factory: Any) -> ProxyHeaderFactory:
        return ProxyHeaderFactory(factory, self)


class ProxyHeaderFactory(Factory):
    """A listening factory's stand-in: trusted peers get a `_HeaderReader` first."""

    noisy = False

    def __init__(self, wrapped: Any, trust: ProxyTrust) -> None:
        self.wrapped = wrapped
        self.trust = trust

    def doStart(self) -> None:
        self.wrapped.doStart()

    def doStop(self) -> None:
        self.wrapped.doStop()

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        host = getattr(addr, "host", "")
        if not self.trust.trusts(host):
            protocol: Protocol | None = self.wrapped.buildProtocol(addr)
            return protocol
        return _HeaderReader(self, addr)


class _HeaderReader(Protocol):
    """Reads the header, then hands the connection to the real protocol."""

    def __init__(self, factory: ProxyHeaderFactory, proxy: IAddress | None) -> None:
        self.factory = factory
        self.proxy = proxy
        self._buffer = b""
        self._timer: Any = None

    def connectionMade(self) -> None:
        self._timer = self.factory.trust.clock.callLater(
            self.factory.trust.timeout, self._refuse, "no PROXY header in time"
        )

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        try:
            header = proxyheader.parse(self._buffer)
        except proxyheader.ProxyHeaderError as failure:
            self._refuse(str(failure))
            return
        if header is not None:
            self._hand_over(header)

    def _hand_over(self, header: proxyheader.ProxyHeader) -> None:
        self._stop_timer()
        transport: Any = self.transport
        rest, self._buffer = self._buffer[header.length :], b""
        peer = self.proxy
        if header.source is not None:
            host, port = header.source
            kind = IPv6Address if ":" in host else IPv4Address
            client = kind("TCP", host, port)
            transport.getPeer = lambda: client
            peer = client
        log.debug(
            "connection from proxy {proxy}: client {client}",
            proxy=getattr(self.proxy, "host", "?"),
            client=getattr(peer, "host", "?"),
        )
        protocol = self.factory.wrapped.buildProtocol(peer)
        if protocol is None:  # refused by the real factory (a passive port's address check)
            transport.loseConnection()
            return
        transport.protocol = protocol
        protocol.makeConnection(transport)
        if rest and transport.connected and not transport.disconnecting:
            protocol.dataReceived(rest)

    def _refuse(self, why: str) -> None:
        self._stop_timer()
        log.warn(
            "connection from trusted proxy {proxy} closed: {why}",
            proxy=getattr(self.proxy, "host", "?"),
            why=why,
        )
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def connectionLost(self, reason: Any = None) -> None:
        self._stop_timer()
