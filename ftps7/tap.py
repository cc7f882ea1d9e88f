"""``twistd ftps7``: command-line options and the service tree (wiring only).

The configuration is loaded and checked in ``postOptions`` so a bad file stops
``twistd`` with every error listed and a non-zero status before anything
listens. ``--auth`` (twisted.cred.strcred) adds third-party password checkers,
tried after the local accounts for sites with basicAuthentication.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from twisted.application import service
from twisted.cred import credentials, strcred
from twisted.logger import Logger, LogLevel
from twisted.python import usage
from twisted.python.threadpool import ThreadPool

from ftps7 import logfilter

#: Not filtered by --log-level: tests, the bench and supervisors wait for "ftps7 ready".
log = Logger()


class Options(usage.Options, strcred.AuthOptionMixin):
    synopsis = "--config PATH [--log-level LEVEL] [--auth TYPE:ARGS ...]"
    longdesc = (
        "An FTPS server with the security model of IIS FTP 7.5. The configuration file "
        "is an IIS-style applicationHost.config (see docs/configuration.md)."
    )
    supportedInterfaces = (credentials.IUsernamePassword,)
    optParameters = [
        [
            "config",
            "c",
            None,
            "The configuration file (default: $FTPS7_CONFIG, then /etc/ftps7/ftps7.config).",
        ],
        [
            "log-level",
            None,
            "info",
            "The lowest level of ftps7's events written to the log: "
            + ", ".join(logfilter.LEVEL_NAMES)
            + " (the start-up line saying the server is ready is always written).",
        ],
    ]

    def postOptions(self) -> None:
        from ftps7.cli import default_config_path
        from ftps7.config import ConfigErrors, load_config

        level = self["log-level"]
        if level not in logfilter.LEVEL_NAMES:
            raise usage.UsageError(
                f"--log-level {level!r}: use one of {', '.join(logfilter.LEVEL_NAMES)}"
            )
        self["log-level"] = LogLevel.levelWithName(level)
        path = self["config"] or default_config_path()
        try:
            self["loaded"] = load_config(path)
        except ConfigErrors as errors:
            # SystemExit rather than UsageError: twistd would bury the errors
            # under its whole usage text.
            raise SystemExit(
                f"ftps7: the configuration is not valid ({len(errors.errors)} errors):\n{errors}"
            ) from None
        except OSError as exc:
            raise SystemExit(f"ftps7: cannot read the configuration {path}: {exc}") from None


class ThreadPoolService(service.Service):
    """Starts and stops a thread pool with the application."""

    def __init__(self, pool: ThreadPool, before_stop: Any = None) -> None:
        self.pool = pool
        self.before_stop = before_stop

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> Any:
        super().stopService()
        if self.before_stop is not None:
            self.before_stop()  # e.g. end downloads that would keep a thread busy
        self.pool.stop()


def makeService(options: Options) -> service.MultiService:
    from twisted.internet import reactor

    from ftps7.config.reload import restart_only_text, with_restart_only
    from ftps7.server.handover import cancel_threaded_transfers
    from ftps7.server.monitor import CertificateMonitor
    from ftps7.server.reload import Reloader
    from ftps7.server.shutdown import InOrder, SessionsEnding
    from ftps7.server.startup import build_listeners, example_certificate, prepare
    from ftps7.server.state import ServerState
    from ftps7.server.workers import (
        WorkerSupervisor,
        running_restart_only,
        worker_argv,
        worker_index,
    )

    config = options["loaded"]
    logfilter.observer.set_level(options["log-level"])
    worker = worker_index()
    inherited = running_restart_only()
    if inherited:  # a worker (re)started by worker 0 runs as the others do
        config = with_restart_only(config, inherited)
    top = InOrder()  # see server/shutdown.py
    io_pool = ThreadPool(minthreads=2, maxthreads=16, name="ftps7-io")
    auth_pool = ThreadPool(minthreads=1, maxthreads=4, name="ftps7-auth")
    ThreadPoolService(io_pool).setServiceParent(top)
    ThreadPoolService(auth_pool).setServiceParent(top)
    # One thread per running download (server/handover.py); more downloads than
    # threads run on the reactor path.
    transfer_pool = None
    threads = config.ftps7.process.transfer_threads
    if threads:
        transfer_pool = ThreadPool(minthreads=0, maxthreads=threads, name="ftps7-transfer")
        ThreadPoolService(transfer_pool, before_stop=cancel_threaded_transfers).setServiceParent(
            top
        )
    # Always there (a reload may add <activeDirectory>); no thread until it is used.
    directory_pool = ThreadPool(minthreads=0, maxthreads=8, name="ftps7-directory")
    ThreadPoolService(directory_pool).setServiceParent(top)
    state = ServerState(
        config,
        reactor,
        io_pool=io_pool,
        auth_pool=auth_pool,
        directory_pool=directory_pool,
        transfer_pool=transfer_pool,
        worker=worker,
        extra_checkers=options.get("credCheckers", []),
    )
    if worker == 0:
        prepare(state)  # certificate creation and warnings happen once
    else:
        # Workers 1..N-1 use the example certificate worker 0 made (or make it).
        state.auto_certificate = example_certificate(state.config, state.store)
    supervisor = None
    if config.ftps7.process.workers > 1 and worker == 0:
        supervisor = WorkerSupervisor(
            config.ftps7.process.workers, worker_argv(), restart_only_text(config)
        )
        supervisor.setServiceParent(top)
    # Stopped after the listeners and before the pools (children stop in reverse).
    SessionsEnding(state).setServiceParent(top)
    CertificateMonitor(state).setServiceParent(top)
    listeners = build_listeners(state)
    listeners.setServiceParent(top)
    signal_workers = supervisor.signal_workers if supervisor is not None else None
    Reloader(state, listeners, signal_workers=signal_workers).setServiceParent(top)
    # Services start in the reactor's "before startup" phase, so by the time this
    # runs every listener is bound: tests and supervisors can wait for this line.
    if config.ftps7.process.workers > 1:
        low, high = state.passive_range()
        if low:
            log.info(
                "worker {worker} of {workers} owns passive ports {low}-{high}",
                worker=worker,
                workers=config.ftps7.process.workers,
                low=low,
                high=high,
            )
    reactor.callWhenRunning(_ready, worker)
    return top


#: How long a thread may hold the GIL while another waits for it (Python's
#: default: 5 ms). A pool thread that formats a 10,000-entry listing in Python
#: made the reactor, and so every other session, wait up to that long per turn:
#: another session's NOOP took up to 6-9 ms during an MLSD, 2-5 ms at 1 ms. The
#: session rate, downloads and uploads did not change (docs/performance.md).
GIL_SWITCH_INTERVAL = 0.001


def _ready(worker: int) -> None:
    _tune_interpreter()
    log.info("ftps7 ready (worker {worker})", worker=worker)


def _tune_interpreter() -> None:
    """Process-wide settings for a long-running server, once start-up is done."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    # What start-up built (configuration, Twisted, OpenSSL bindings: ~50,000
    # objects) lives as long as the process: moved out of the collector's
    # reach, a full collection no longer scans it with the GIL held (~40 ms
    # during which no session is served).
    gc.freeze()
