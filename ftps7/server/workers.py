"""``<ftps7><process workers="N">``: N server processes sharing the listening sockets.

Python runs one thread of Python code at a time, and TLS record processing is
CPU-bound, so one process uses one core. With ``workers`` > 1 the twistd
process started by the administrator (worker 0) starts N−1 more copies of
itself and supervises them:

- every worker binds the same listening addresses with ``SO_REUSEPORT``, so the
  kernel spreads new connections across them;
- worker *i* owns the *i*-th slice of the passive port range, so a data
  connection always reaches the process that owns the FTP session (with no
  range configured the kernel's ephemeral ports are already per process);
- a worker that dies is restarted after a short delay; stopping worker 0 stops
  them all.

What each process keeps in memory is per worker: ``maxConnections`` counts,
the credentials cache and the ``denyByFailure`` counters apply within one
worker (docs/configuration.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from twisted.application import service
from twisted.internet import defer, protocol
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger

from ftps7 import logfilter

log = Logger(observer=logfilter.observer)

WORKER_ENV = "FTPS7_WORKER"
#: Worker 0's restart-only settings (``config.reload.restart_only_text``).
RESTART_ONLY_ENV = "FTPS7_RESTART_ONLY"
RESTART_DELAY = 1.0


def running_restart_only() -> str | None:
    """The restart-only settings worker 0 runs with, in a worker it started."""
    return os.environ.get(RESTART_ONLY_ENV) if worker_index() > 0 else None


def worker_index() -> int:
    """0 for the process the administrator started, else the worker's number."""
    try:
        return int(os.environ.get(WORKER_ENV, "0"))
    except ValueError:
        return 0


def port_slice(low: int, high: int, workers: int, index: int) -> tuple[int, int]:
    """The part of ``[low, high]`` worker ``index`` listens on (0, 0 = any port)."""
    if workers <= 1 or low == 0 or high == 0:
        return low, high
    span = high - low + 1
    size = span // workers
    start = low + index * size
    end = high if index == workers - 1 else start + size - 1
    return start, end


class ReusePortServer(service.Service):
    """A listening socket bound with SO_REUSEPORT and handed to the reactor."""

    def __init__(self, interface: str, port: int, factory: Any, backlog: int) -> None:
        self.interface = interface
        self.port = port
        self.factory = factory
        self.backlog = backlog
        self.listening: IListeningPort | None = None

    def startService(self) -> None:
        from twisted.internet import reactor

        super().startService()
        family = socket.AF_INET6 if ":" in self.interface else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and self.interface == "::":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((self.interface, self.port))
            sock.listen(self.backlog)
            sock.setblocking(False)
            self.listening = reactor.adoptStreamPort(  # type: ignore[attr-defined]
                sock.fileno(), family, self.factory
            )
        finally:
            sock.close()  # the reactor holds its own duplicate

    def stopService(self) -> Any:
        super().stopService()
        if self.listening is not None:
            listening, self.listening = self.listening, None
            return listening.stopListening()
        return None


class _WorkerProtocol(protocol.ProcessProtocol):
    def __init__(self, supervisor: WorkerSupervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.gone: defer.Deferred[None] = defer.Deferred()

    def processEnded(self, reason: Any) -> None:
        self.gone.callback(None)
        self.supervisor.ended(self.index, reason)


class WorkerSupervisor(service.Service):
    """Worker 0 starts workers 1..N-1 and restarts any that die."""

    def __init__(self, workers: int, argv: Sequence[str], restart_only: str = "") -> None:
        self.workers = workers
        self.argv = list(argv)
        self.restart_only = restart_only
        self.processes: dict[int, Any] = {}
        self.protocols: dict[int, _WorkerProtocol] = {}
        self.stopping = False

    def startService(self) -> None:
        super().startService()
        for index in range(1, self.workers):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        from twisted.internet import reactor

        env = dict(os.environ, **{WORKER_ENV: str(index)})
        if self.restart_only:
            env[RESTART_ONLY_ENV] = self.restart_only
        self.protocols[index] = _WorkerProtocol(self, index)
        self.processes[index] = reactor.spawnProcess(
            self.protocols[index],
            sys.executable,
            [sys.executable, *self.argv],
            env=env,
            childFDs={0: "w", 1: 1, 2: 2},
        )
        log.info("started worker {index} (pid {pid})", index=index, pid=self.processes[index].pid)

    def ended(self, index: int, reason: Any) -> None:
        self.processes.pop(index, None)
        self.protocols.pop(index, None)
        if self.stopping:
            return
        from twisted.internet import reactor

        log.error(
            "worker {index} ended ({reason}); restarting it",
            index=index,
            reason=reason.getErrorMessage(),
        )
        reactor.callLater(RESTART_DELAY, self._respawn, index)

    def _respawn(self, index: int) -> None:
        if not self.stopping and index not in self.processes:
            self._spawn(index)

    def signal_workers(self, signum: int) -> None:
        """Send ``signum`` to every running worker (a reload passes SIGHUP on)."""
        for process in list(self.processes.values()):
            with contextlib.suppress(ProcessExitedAlready):
                process.signalProcess(signum)

    def stopService(self) -> Any:
        super().stopService()
        self.stopping = True
        waiting = [worker.gone for worker in self.protocols.values()]
        for process in list(self.processes.values()):
            with contextlib.suppress(ProcessExitedAlready):
                process.signalProcess(signal.SIGTERM)
        # Worker 0 exits only after the others have (they finish their sessions' I/O).
        return defer.DeferredList(waiting)


def worker_argv() -> list[str]:
    """The command line that starts this same server as another worker.

    ``python -c`` with twistd's entry point and the original arguments; workers
    always run in the foreground and without a pid file (worker 0 owns both).
    """
    args = list(sys.argv[1:])
    cleaned: list[str] = [
        "-c",
        "from twisted.scripts.twistd import run; run()",
        "--nodaemon",
        "--pidfile=",
    ]
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg in ("-n", "--nodaemon"):
            continue
        if arg in ("--pidfile",):
            skip_next = True
            continue
        if arg.startswith("--pidfile="):
            continue
        cleaned.append(arg)
    return cleaned
