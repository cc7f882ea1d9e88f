"""Listening sockets: one per distinct endpoint, implicit TLS wrapped from byte one."""

from __future__ import annotations

import socket
from typing import Any

from OpenSSL import SSL
from twisted.application import internet, service
from twisted.internet import defer
from twisted.internet.interfaces import IAddress, IOpenSSLServerConnectionCreator
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from ftps7 import logfilter
from ftps7.core.vhosts import EndpointSites
from ftps7.server.controltls import ControlTlsFactory
from ftps7.server.protocol import FTPSession
from ftps7.server.state import ServerState
from ftps7.server.workers import ReusePortServer

log = Logger(observer=logfilter.observer)


class FTPFactory(Factory):
    """Builds sessions for one listening endpoint."""

    noisy = False

    def __init__(self, state: ServerState, endpoint: EndpointSites) -> None:
        self.state = state
        self.endpoint = endpoint

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        return FTPSession(self.state, self.endpoint)


@implementer(IOpenSSLServerConnectionCreator)
class ImplicitCreator:
    """Implicit FTPS: the session sets up its TLS identity as soon as it exists.

    ``TLSMemoryBIOProtocol`` asks for the SSL connection in ``makeConnection``,
    after the wrapped FTP session was built, so the session's own
    ``SessionTls`` (RESEARCH.md §2.5) is used from the first byte.
    """

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        session: FTPSession = tlsProtocol.wrappedProtocol
        session_tls = session.session_tls()
        if session_tls is None:
            # No usable certificate: the handshake fails and is logged.
            connection = SSL.Connection(SSL.Context(SSL.TLS_SERVER_METHOD), None)
            connection.set_app_data(tlsProtocol)
            return connection
        return session_tls.new_connection(tlsProtocol)


def _interfaces(ip: str) -> list[str]:
    if ip != "*":
        return [ip]
    if socket.has_ipv6:
        try:
            probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            probe.close()
            return ["::"]  # dual stack: IPv4 clients arrive as ::ffff:a.b.c.d
        except OSError:
            pass
    return ["0.0.0.0"]  # noqa: S104 - "*" in a binding means every address


EndpointKey = tuple[str, int, bool]


def endpoint_key(endpoint: EndpointSites) -> EndpointKey:
    """What identifies a listening socket: a reload keeps it while this stays the same."""
    return (endpoint.ip, endpoint.port, endpoint.implicit)


class ListenerSet(service.MultiService):
    """The listening sockets of the configuration's endpoints.

    Built at start-up from the configuration's plan (``vhosts.plan_listeners``);
    a reload hands it the new plan (`update`): a socket whose endpoint is still
    planned stays open and its factory serves new connections with the new
    sites, a socket no longer planned closes (its sessions go on), a new one
    opens. Sockets close before new ones open, so an endpoint that switches
    between implicit and explicit FTPS can keep its port.
    """

    def __init__(self, state: ServerState) -> None:
        super().__init__()
        self.state = state
        self._open: dict[EndpointKey, tuple[FTPFactory, list[service.Service]]] = {}

    def update(self, endpoints: list[EndpointSites]) -> defer.Deferred[list[str]]:
        """Listen on ``endpoints``; fires with a line for each socket that could not be opened.

        At start-up (before the service runs) nothing is opened here: the
        services start with the application, and a socket that cannot be
        bound stops start-up as it should.
        """
        planned = {endpoint_key(endpoint): endpoint for endpoint in endpoints}
        closing: list[defer.Deferred[Any]] = []
        for key in [key for key in self._open if key not in planned]:
            _, services = self._open.pop(key)
            log.info("no longer listening on {ip}:{port}", ip=key[0], port=key[1])
            closing.extend(defer.maybeDeferred(self.removeService, each) for each in services)
        for key, endpoint in planned.items():
            if key in self._open:
                self._open[key][0].endpoint = endpoint
        added = [endpoint for key, endpoint in planned.items() if key not in self._open]

        def open_added(_: object) -> list[str]:
            return [problem for endpoint in added for problem in self._add(endpoint)]

        return defer.DeferredList(closing, consumeErrors=True).addCallback(open_added)

    def _add(self, endpoint: EndpointSites) -> list[str]:
        names = ", ".join(site.name for site in endpoint.all_sites())
        log.info(
            "listening on {ip}:{port} ({kind}) for {sites}",
            ip=endpoint.ip,
            port=endpoint.port,
            kind="implicit FTPS" if endpoint.implicit else "FTP/explicit FTPS",
            sites=names,
        )
        factory = FTPFactory(self.state, endpoint)
        services = listener_services(self.state, factory)
        problems: list[str] = []
        started: list[service.Service] = []
        for each in services:
            try:
                each.setServiceParent(self)  # starts it when the set is running
            except Exception as error:  # noqa: BLE001 - a reload reports, start-up fails
                problem = f"cannot listen on {each.name}: {error}"
                log.error("{problem}", problem=problem)
                problems.append(problem)
                self.removeService(each)
            else:
                started.append(each)
        if started:
            self._open[endpoint_key(endpoint)] = (factory, started)
        return problems


def listener_services(state: ServerState, ftp_factory: FTPFactory) -> list[service.Service]:
    """The listening services of one endpoint (one per interface of ``*``)."""
    endpoint = ftp_factory.endpoint
    factory: Any = ftp_factory
    if endpoint.implicit:
        factory = ControlTlsFactory(ImplicitCreator(), False, factory)
        factory.noisy = False
    if state.proxy_trust is not None:  # the header comes first, before any TLS
        factory = state.proxy_trust.wrap(factory)
    backlog = max(
        (site.ftp_server.connections.server_listen_backlog for site in endpoint.all_sites()),
        default=60,
    )
    services: list[service.Service] = []
    for interface in _interfaces(endpoint.ip):
        listener: service.Service
        if state.config.ftps7.process.workers > 1:
            listener = ReusePortServer(interface, endpoint.port, factory, backlog)
        else:
            listener = internet.TCPServer(
                endpoint.port, factory, backlog=backlog, interface=interface
            )
        listener.setName(f"ftp {interface}:{endpoint.port}")
        services.append(listener)
    return services
