"""Listening sockets: one per distinct endpoint, implicit TLS wrapped from byte one."""

from __future__ import annotations

import socket
from typing import Any

from OpenSSL import SSL
from twisted.application import internet, service
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


def listener_services(state: ServerState, endpoints: list[EndpointSites]) -> list[service.Service]:
    services: list[service.Service] = []
    for endpoint in endpoints:
        factory: Any = FTPFactory(state, endpoint)
        if endpoint.implicit:
            factory = ControlTlsFactory(ImplicitCreator(), False, factory)
            factory.noisy = False
        if state.proxy_trust is not None:  # the header comes first, before any TLS
            factory = state.proxy_trust.wrap(factory)
        backlog = max(
            (site.ftp_server.connections.server_listen_backlog for site in endpoint.all_sites()),
            default=60,
        )
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
