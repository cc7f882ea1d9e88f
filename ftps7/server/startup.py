"""Start-up work between loading the configuration and listening."""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.config.model import ServerConfig
from ftps7.core.vhosts import plan_listeners
from ftps7.server.listeners import ListenerSet
from ftps7.server.state import ServerState
from ftps7.tls.store import CertificateStore

log = Logger(observer=logfilter.observer)


def configuration_report(config: ServerConfig, store: CertificateStore) -> tuple[Any, list[str]]:
    """The example certificate and every warning about ``config`` (blocking I/O).

    The certificate named by ``<certificateStore autoCreate>`` (None without
    one) is made if it is missing; the warnings are the loader's, the
    ineffective settings and what the store says about the thumbprints.
    Start-up calls this before the reactor runs, a reload in a pool thread.
    """
    auto = example_certificate(config, store)
    warnings = [*config.warnings, *_ineffective_settings(config)]
    try:
        from ftps7.config.report import report_warnings

        def lookup(store_name: str, thumbprint: str) -> str | None:
            found = store.find(store_name, thumbprint)
            return found.describe() if found is not None else None

        from ftps7.tls.vhostcheck import virtual_host_warnings

        warnings += [*report_warnings(config, lookup), *virtual_host_warnings(config, store)]
    except ImportError:  # pragma: no cover
        pass
    return auto, warnings


def example_certificate(config: ServerConfig, store: CertificateStore) -> Any:
    """The certificate ``<certificateStore autoCreate>`` names, made if it is missing
    (race-safe between workers); None without one."""
    name = config.ftps7.certificate_store.auto_create
    if not name:
        return None
    from ftps7.tls.certgen import ensure_self_signed

    return ensure_self_signed(store, name)


def prepare(state: ServerState) -> None:
    """Create the example certificate if asked to, and log configuration warnings."""
    auto, warnings = configuration_report(state.config, state.store)
    if auto is not None:
        state.auto_certificate = auto
        log.info(
            "using the self-signed certificate {name!r}, thumbprint {thumbprint}",
            name=state.config.ftps7.certificate_store.auto_create,
            thumbprint=auto.thumbprint,
        )
    for warning in warnings:
        log.warn("configuration: {warning}", warning=warning)


def _ineffective_settings(config: ServerConfig) -> list[str]:
    """Settings that load but, as configured, cannot do what they are there for."""
    warnings = []
    proxy = config.ftps7.proxy_protocol
    if proxy.enabled and not proxy.trusted_proxies:
        warnings.append(
            "<proxyProtocol enabled> without trustedProxies: no peer may send a PROXY header"
        )
    return warnings


def build_listeners(state: ServerState) -> ListenerSet:
    """The listening sockets of the configuration (opened when the service starts)."""
    listeners = ListenerSet(state)
    listeners.update(plan_listeners(state.config.sites))
    return listeners
