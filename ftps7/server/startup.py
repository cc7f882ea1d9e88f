"""Start-up work between loading the configuration and listening."""

from __future__ import annotations

from twisted.application import service
from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.config.model import ServerConfig
from ftps7.core.vhosts import plan_listeners
from ftps7.server.listeners import listener_services
from ftps7.server.state import ServerState

log = Logger(observer=logfilter.observer)

def prepare(state: ServerState) -> None:
    """Create the example certificate if asked to, and log configuration warnings."""
    config = state.config
    auto = config.ftps7.certificate_store.auto_create
    if auto:
        from ftps7.tls.certgen import ensure_self_signed

        certificate = ensure_self_signed(state.store, auto)
        state.auto_certificate = certificate
        log.info(
            "using the self-signed certificate {name!r}, thumbprint {thumbprint}",
            name=auto,
            thumbprint=certificate.thumbprint,
        )
    for warning in config.warnings:
        log.warn("configuration: {warning}", warning=warning)
    for warning in _ineffective_settings(config):
        log.warn("configuration: {warning}", warning=warning)
    try:
        from ftps7.config.report import report_warnings

        def lookup(store: str, thumbprint: str) -> str | None:
            found = state.store.find(store, thumbprint)
            return found.describe() if found is not None else None

        from ftps7.tls.vhostcheck import virtual_host_warnings

        warnings = [*report_warnings(config, lookup), *virtual_host_warnings(config, state.store)]
        for warning in warnings:
            log.warn("configuration: {warning}", warning=warning)
    except ImportError:  # pragma: no cover
        pass


def _ineffective_settings(config: ServerConfig) -> list[str]:
    """Settings that load but, as configured, cannot do what they are there for."""
    warnings = []
    proxy = config.ftps7.proxy_protocol
    if proxy.enabled and not proxy.trusted_proxies:
        warnings.append(
            "<proxyProtocol enabled> without trustedProxies: no peer may send a PROXY header"
        )
    return warnings


def build_listeners(state: ServerState) -> list[service.Service]:
    endpoints = plan_listeners(state.config.sites)
    for endpoint in endpoints:
        names = ", ".join(f"{site.name}" for site in endpoint.all_sites())
        log.info(
            "listening on {ip}:{port} ({kind}) for {sites}",
            ip=endpoint.ip,
            port=endpoint.port,
            kind="implicit FTPS" if endpoint.implicit else "FTP/explicit FTPS",
            sites=names,
        )
    return listener_services(state, endpoints)
