"""Warnings about certificates and virtual hosts that would break real clients.

IIS gets this wrong (seeds/ftp75-host-header-and-ssl.txt): its control channel
uses the global certificate and the data channel the site's, so FileZilla
refuses the transfer. ftps7 always presents the control channel's certificate
on the data channel, but some configurations still leave a client with a
certificate that does not name the host it asked for. `ftps7 config check`
and the server's start-up log name them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ftps7.config.model import ServerConfig, Site
from ftps7.core.vhosts import plan_listeners
from ftps7.tls.store import CertificateStore


def _certificate(store: CertificateStore, config: ServerConfig, site: Site | None) -> Any:
    ssl = site.ftp_server.ssl if site is not None else config.site_defaults.ssl
    if not ssl.server_cert_hash:
        return None
    return store.find(ssl.server_cert_store_name, ssl.server_cert_hash)


def _covers(names: tuple[str, ...], host: str) -> bool:
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def virtual_host_warnings(config: ServerConfig, store: CertificateStore) -> list[str]:
    warnings: list[str] = []
    for endpoint in plan_listeners(config.sites):
        where = f"{endpoint.ip}:{endpoint.port}"
        hosted = [h for _, sites in endpoint.by_ip for h in sites]
        thumbprints = {}
        for entry in hosted:
            certificate = _certificate(store, config, entry.site)
            if certificate is not None:
                thumbprints[entry.site.name] = certificate.thumbprint
            named = entry.host and not _is_ip(entry.host)
            if named and certificate is not None and not _covers(certificate.dns_names, entry.host):
                warnings.append(
                    f"site {entry.site.name!r} is bound to host {entry.host!r} on {where}, "
                    f"but its certificate {certificate.thumbprint} names "
                    f"{', '.join(certificate.dns_names) or 'no DNS name'}: clients that "
                    "verify the host name will refuse it"
                )
        if len(set(thumbprints.values())) > 1:
            default = endpoint.default_site(endpoint.ip) if endpoint.ip != "*" else None
            if default is None:
                default = next((h.site for h in hosted if h.host == ""), None)
            fallback = f"site {default.name!r}'s" if default else "the first site's"
            if endpoint.implicit:
                warnings.append(
                    f"implicit FTPS endpoint {where} serves sites with different certificates: "
                    "only clients that send SNI get their site's certificate; others get "
                    f"{fallback} (HOST cannot come before the TLS handshake on implicit FTPS)"
                )
            else:
                warnings.append(
                    f"endpoint {where} serves sites with different certificates: clients "
                    "that choose their site with USER host|user after AUTH (without HOST "
                    f"before AUTH, or SNI) keep {fallback} certificate for the whole session"
                )
    return warnings
