"""What a configuration reload may change in a running server (pure).

A reload (SIGHUP, ``systemctl reload ftps7``) applies a new configuration to
new sessions without closing the running ones. Almost everything can change
that way, listening sockets included. Two settings cannot, because they shape
the processes and the sockets themselves rather than what a session does:

- ``<ftps7><process>``: the number of worker processes and of transfer
  threads are fixed when the processes start;
- ``<ftps7><proxyProtocol>``: it decides how a listening socket's connections
  are read from their first byte, and running listeners and passive ports
  were built around it.

A reload that changes them keeps their running values (and says so), like
PostgreSQL does for its settings that need a restart; the rest of the file is
applied. This module decides which settings those are and builds the
configuration that is actually applied.
"""

from __future__ import annotations

import dataclasses
import json

from ftps7.config.model import ProcessSettings, ProxyProtocolSettings, ServerConfig

__all__ = ["applicable", "restart_only_changes", "restart_only_text", "with_restart_only"]


def restart_only_changes(running: ServerConfig, loaded: ServerConfig) -> tuple[str, ...]:
    """The settings that differ between ``running`` and ``loaded`` but need a restart.

    Each is named as the file names it, with the running and the new value.
    """
    changes: list[str] = []
    old_process, new_process = running.ftps7.process, loaded.ftps7.process
    if old_process.workers != new_process.workers:
        changes.append(f"<ftps7><process workers> ({old_process.workers} -> {new_process.workers})")
    if old_process.transfer_threads != new_process.transfer_threads:
        changes.append(
            "<ftps7><process transferThreads> "
            f"({old_process.transfer_threads} -> {new_process.transfer_threads})"
        )
    old_proxy, new_proxy = running.ftps7.proxy_protocol, loaded.ftps7.proxy_protocol
    if old_proxy.enabled != new_proxy.enabled:
        changes.append(
            f"<ftps7><proxyProtocol enabled> ({_bool(old_proxy.enabled)} -> "
            f"{_bool(new_proxy.enabled)})"
        )
    if old_proxy.trusted_proxies != new_proxy.trusted_proxies:
        changes.append(
            f"<ftps7><proxyProtocol trustedProxies> ({_list(old_proxy.trusted_proxies)} -> "
            f"{_list(new_proxy.trusted_proxies)})"
        )
    return tuple(changes)


def applicable(running: ServerConfig, loaded: ServerConfig) -> ServerConfig:
    """``loaded`` with the restart-only settings of ``running``: what a reload applies."""
    return _keeping(loaded, running.ftps7.process, running.ftps7.proxy_protocol)


def restart_only_text(config: ServerConfig) -> str:
    """``config``'s restart-only settings as text, for a worker process to start with.

    Worker 0 passes its own in the environment of every worker it starts: a
    worker that is restarted after the file changed must still run with the
    same worker count (its slice of the passive ports depends on it) and
    PROXY settings as the running processes, not with what the file says now.
    """
    return json.dumps(
        {
            "process": dataclasses.asdict(config.ftps7.process),
            "proxy_protocol": dataclasses.asdict(config.ftps7.proxy_protocol),
        }
    )


def with_restart_only(config: ServerConfig, text: str) -> ServerConfig:
    """``config`` with the restart-only settings of `restart_only_text`."""
    data = json.loads(text)
    proxy = data["proxy_protocol"]
    return _keeping(
        config,
        ProcessSettings(**data["process"]),
        ProxyProtocolSettings(
            enabled=bool(proxy["enabled"]), trusted_proxies=tuple(proxy["trusted_proxies"])
        ),
    )


def _keeping(
    config: ServerConfig, process: ProcessSettings, proxy_protocol: ProxyProtocolSettings
) -> ServerConfig:
    """``config`` with these restart-only settings."""
    ftps7 = dataclasses.replace(config.ftps7, process=process, proxy_protocol=proxy_protocol)
    return dataclasses.replace(config, ftps7=ftps7)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _list(values: tuple[str, ...]) -> str:
    return '"' + ", ".join(values) + '"'
