"""Stopping the server: sessions told and ended, their work done, then the rest.

On SIGTERM (``systemctl stop``) twistd stops the application's services and
then drops whatever connections remain. Dropped that way, a client saw its
connection reset with no reply, an upload cut off mid-way left its
temporary file behind (the I/O pool that discards it had already stopped),
and the W3C line ``ControlChannelClosed`` of every such session was lost
(the site logs were already closed).

So the services stop one after another (`InOrder`), and the session step
(`SessionsEnding`) runs before the thread pools stop: every session gets
``421 Service shutting down`` (RFC 959's reply for a server that must shut
down) and is closed, which ends its transfer; then the step waits, at most
`GRACE` seconds, until each session's connection is gone and its last
command has finished. Only then are the log files and directory
connections closed and the pools stopped.
"""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from ftps7 import logfilter

log = Logger(observer=logfilter.observer)

#: Seconds shutdown waits for sessions to end after their 421. Sessions end
#: within milliseconds, a client that reads nothing within CLOSE_WAIT
#: (server/protocol.py); a command waiting on a slow LDAP server may take
#: longer, and twistd cuts off what is left.
GRACE = 5.0


class InOrder(service.MultiService):
    """A MultiService that stops its children one at a time, last added first.

    Twisted's MultiService starts every child's stop at once; here a child
    whose stop returns a Deferred holds the next one back.
    """

    def stopService(self) -> Any:
        service.Service.stopService(self)
        return defer.ensureDeferred(self._stop_children())

    async def _stop_children(self) -> None:
        for child in reversed(list(self)):
            try:
                await defer.maybeDeferred(child.stopService)
            except Exception:  # noqa: BLE001 - the others must still stop
                log.failure("stopping {service} failed", service=child)


class SessionsEnding(service.Service):
    """Ends every session at shutdown, then closes what the state holds open."""

    def __init__(self, state: Any, grace: float = GRACE) -> None:
        self.state = state
        self.grace = grace

    def stopService(self) -> Any:
        super().stopService()
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        sessions = list(self.state.sessions)
        for session in sessions:
            session.shut_down()
        if sessions:
            log.info("ending {count} sessions", count=len(sessions))
            ended = defer.DeferredList(
                [session.ended() for session in sessions], consumeErrors=True
            )
            try:
                await ended.addTimeout(self.grace, self.state.clock)
            except defer.TimeoutError:
                # twistd drops what is left.
                log.warn("sessions still open {seconds} s after shutdown began", seconds=self.grace)
        if self.state.directory is not None:
            self.state.directory.close()
        self.state.site_logs.close()
