"""SIGHUP (``systemctl reload ftps7``): apply a changed configuration without a restart.

IIS applies a change to applicationHost.config while it runs; a restart of
ftps7 closes every session, and an administrator renewing a certificate or
granting a folder should not have to do that. On SIGHUP the file is read and
checked in a pool thread (with the certificate store, for the same warnings
as at start-up); then, on the reactor:

- a file with errors changes nothing: every error is logged, with its line,
  and the running configuration stays;
- otherwise new connections and new logons use the new configuration, and
  sessions already connected keep what they hold (their site, and once
  logged on their authorization rules);
- listening sockets follow the bindings (``ListenerSet.update``);
- the few settings that need a restart keep their running values
  (``config/reload.py``), each named in a warning.

With ``workers``, worker 0 checks the file and then passes the signal on, so
an invalid file is reported once and the workers reload only a valid one.
A signal that arrives during a reload starts one more reload afterwards (the
file may have changed again meanwhile).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.auth.directory import DirectoryError
from ftps7.config import ConfigErrors, load_config
from ftps7.config.model import ServerConfig
from ftps7.config.reload import applicable, restart_only_changes
from ftps7.core.vhosts import plan_listeners
from ftps7.server.listeners import ListenerSet
from ftps7.server.startup import configuration_report
from ftps7.server.state import ServerState

log = Logger(observer=logfilter.observer)


class Reloader(service.Service):
    """Reloads the configuration file on SIGHUP (and when `reload` is called)."""

    def __init__(
        self,
        state: ServerState,
        listeners: ListenerSet,
        *,
        signal_workers: Callable[[int], None] | None = None,
    ) -> None:
        self.state = state
        self.listeners = listeners
        self.signal_workers = signal_workers
        self._previous_handler: Any = None
        self._running: defer.Deferred[bool] | None = None
        self._again = False

    @property
    def path(self) -> str:
        return self.state.config.path

    def startService(self) -> None:
        super().startService()
        self._previous_handler = signal.signal(signal.SIGHUP, self._on_signal)

    def stopService(self) -> Any:
        super().stopService()
        signal.signal(signal.SIGHUP, self._previous_handler or signal.SIG_DFL)

    def _on_signal(self, signum: int, frame: object) -> None:
        # A signal handler runs between two bytecodes of whatever the main
        # thread was doing: only hand the work to the reactor.
        self.state.reactor.callFromThread(self.reload)

    def reload(self) -> defer.Deferred[bool]:
        """Reload now; fires with whether a configuration was applied."""
        if self._running is not None:
            self._again = True
            return self._running
        self._running = defer.ensureDeferred(self._reload_until_settled())
        return self._running

    async def _reload_until_settled(self) -> bool:
        try:
            while True:
                self._again = False
                applied = await self._reload_once()
                if not self._again:
                    return applied
        finally:
            self._running = None

    async def _reload_once(self) -> bool:
        state = self.state
        path = self.path
        log.info("reloading the configuration {path}", path=path)
        try:
            loaded, auto, warnings = await deferToThreadPool(
                state.reactor, state.io_pool, _load, path, state.worker == 0
            )
            running = state.config
            state.reconfigure(applicable(running, loaded))  # all or nothing
        except ConfigErrors as errors:
            count = len(errors.errors)
            log.error(
                "configuration reload refused (worker {worker}): {count}, the running "
                "configuration stays:\n{errors}",
                worker=state.worker,
                count=f"{count} error" if count == 1 else f"{count} errors",
                errors=str(errors),
            )
            return False
        except DirectoryError as error:
            log.error(
                "configuration reload refused (worker {worker}): <activeDirectory>: {error}",
                worker=state.worker,
                error=str(error),
            )
            return False
        except Exception:  # noqa: BLE001 - a reload must never end the server
            log.failure(
                "configuration reload refused (worker {worker}): unexpected error",
                worker=state.worker,
            )
            return False
        state.auto_certificate = auto
        if state.worker == 0:  # the others have the same file
            for setting in restart_only_changes(running, loaded):
                log.warn(
                    "configuration reload: {setting} takes effect at the next restart; "
                    "the running value stays",
                    setting=setting,
                )
            for warning in warnings:
                log.warn("configuration: {warning}", warning=warning)
        problems = await self.listeners.update(plan_listeners(state.config.sites))
        if self.signal_workers is not None:
            self.signal_workers(signal.SIGHUP)
        log.info(
            "configuration reloaded from {path} (worker {worker}): new sessions use it, "
            "sessions already running ({count}) keep theirs{problems}",
            path=path,
            worker=state.worker,
            count=len(state.sessions),
            problems=f"; {len(problems)} listeners could not be opened" if problems else "",
        )
        return True


def _load(path: str, report: bool) -> tuple[ServerConfig, Any, list[str]]:
    """In a pool thread: the file, its example certificate and its warnings."""
    from ftps7.tls.store import CertificateStore

    config = load_config(path)
    store = CertificateStore(config.ftps7.certificate_store.path)
    auto, warnings = configuration_report(config, store)
    return config, auto, warnings if report else []
