"""Which site serves a connection: endpoint, local address, and host name (pure).

Sites share an IP:PORT when their binding host names differ (CONFIG.md). A
listener on ``*`` also serves sites bound to a specific address on the same
port (IIS's "All Unassigned" semantics): such a connection is matched first
against the bindings naming the local address, then against the ``*`` ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ftps7.config.model import Site


@dataclass(frozen=True)
class HostedSite:
    host: str  # lower case; "" = the default site for the endpoint
    site: Site


@dataclass(frozen=True)
class EndpointSites:
    """All the sites reachable through one listening socket."""

    ip: str
    port: int
    implicit: bool
    by_ip: tuple[tuple[str, tuple[HostedSite, ...]], ...]  # binding ip → sites

    def candidates(self, local_ip: str) -> tuple[HostedSite, ...]:
        """Sites a connection to ``local_ip`` may reach, specific bindings first."""
        specific: tuple[HostedSite, ...] = ()
        wildcard: tuple[HostedSite, ...] = ()
        for ip, sites in self.by_ip:
            if ip == local_ip:
                specific = sites
            elif ip == "*":
                wildcard = sites
        return specific + tuple(
            hosted for hosted in wildcard if all(s.host != hosted.host for s in specific)
        )

    def default_site(self, local_ip: str) -> Site | None:
        for hosted in self.candidates(local_ip):
            if hosted.host == "":
                return hosted.site
        return None

    def site_for_host(self, local_ip: str, host: str) -> Site | None:
        host = host.lower().rstrip(".")
        for hosted in self.candidates(local_ip):
            if hosted.host == host:
                return hosted.site
        return None

    def all_sites(self) -> tuple[Site, ...]:
        seen: list[Site] = []
        for _, sites in self.by_ip:
            for hosted in sites:
                if hosted.site not in seen:
                    seen.append(hosted.site)
        return tuple(seen)


def plan_listeners(sites: Sequence[Site]) -> list[EndpointSites]:
    """Group started sites' bindings into listening sockets.

    One socket per (ip, port), except that a port with a ``*`` binding is served
    by that one socket only (binding 0.0.0.0/:: and a specific address on the
    same port would conflict), which then dispatches by local address.
    """
    table: dict[int, dict[str, list[HostedSite]]] = {}
    implicit: dict[int, bool] = {}
    for site in sites:
        if not (site.server_auto_start and site.ftp_server.server_auto_start):
            continue
        for binding in site.bindings:
            by_ip = table.setdefault(binding.port, {})
            by_ip.setdefault(binding.ip, []).append(HostedSite(binding.host, site))
            implicit[binding.port] = implicit.get(binding.port, False) or binding.implicit
    plans: list[EndpointSites] = []
    for port, by_ip in sorted(table.items()):
        frozen = tuple((ip, tuple(hosted)) for ip, hosted in sorted(by_ip.items()))
        if "*" in by_ip:
            plans.append(EndpointSites("*", port, implicit[port], frozen))
        else:
            for ip, hosted in frozen:
                plans.append(EndpointSites(ip, port, implicit[port], ((ip, hosted),)))
    return plans
