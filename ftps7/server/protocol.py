"""The FTP control connection: framing, the command gates, replies, timeouts, TLS.

This replaces ``twisted.protocols.ftp.FTP`` (RESEARCH.md §1): it reads UTF-8
lines (with Telnet commands stripped and a bounded length), keeps reading while
a transfer runs so ABOR and STAT work, never answers with a traceback, and
knows about TLS on both channels. The command handlers live in mixins, one per
family (access, security, information, files, transfers); this module only
runs them:

    line ─▶ gates (unknown, commandFiltering, arity, SSL policy, logon)
         ─▶ ftp_<VERB>(argument) ─▶ Reply | None | Deferred | FTPError

Commands run one at a time in order (a client may pipeline); while a transfer
runs, ABOR, STAT and QUIT are answered at once and anything else waits.
"""

from __future__ import annotations

import collections
import contextlib
import socket
from inspect import iscoroutine
from typing import TYPE_CHECKING, Any

from OpenSSL import SSL
from twisted.internet import defer, error
from twisted.internet.interfaces import IDelayedCall, IHandshakeListener, ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ftps7 import logfilter
from ftps7.config.model import ConnectionSettings, SiteFtpServer
from ftps7.core import commands, paths, tlspolicy
from ftps7.core import messages as message_text
from ftps7.core.commands import Arg
from ftps7.core.lines import Line, LineParser, TooLong, split_command
from ftps7.core.replies import FTPError, R, Reply, format_reply, message_reply, render
from ftps7.server import clientcerts, w3clog
from ftps7.server.addresses import is_local, normalize
from ftps7.server.cmd_access import AccessCommands
from ftps7.server.cmd_files import FileCommands
from ftps7.server.cmd_info import InfoCommands
from ftps7.server.cmd_security import SecurityCommands
from ftps7.server.cmd_transfer import TransferCommands
from ftps7.server.session import SessionState, TlsState
from ftps7.tls import session as tls_session

if TYPE_CHECKING:
    from ftps7.config.model import Site
    from ftps7.core.vhosts import EndpointSites
    from ftps7.server.state import ServerState
    from ftps7.tls.contexts import SessionTls

log = Logger(observer=logfilter.observer)

#: Lines a client may pipeline before the server stops reading the control
#: connection until the queue drains (memory stays bounded, the client waits).
MAX_QUEUED_LINES = 256
#: Seconds a connection the server closes may take to go (see FTPSession.close).
CLOSE_WAIT = 3.0
#: Commands whose argument is a path (logged as the absolute path).
PATH_COMMANDS = frozenset(
    {
        "CWD",
        "MKD",
        "RMD",
        "DELE",
        "RNFR",
        "RNTO",
        "SIZE",
        "MDTM",
        "MLST",
        "RETR",
        "STOR",
        "APPE",
        "LIST",
        "NLST",
        "MLSD",
    }
)
#: Commands answered at once while a transfer runs (RFC 959 §4.1.3).
OUT_OF_BAND = frozenset({"ABOR", "STAT", "QUIT"})


@implementer(IHandshakeListener)
class FTPSession(
    Protocol, AccessCommands, SecurityCommands, InfoCommands, FileCommands, TransferCommands
):
    """One client's control connection."""

    def __init__(self, server: ServerState, endpoint: EndpointSites) -> None:
        self.server = server
        self.endpoint = endpoint
        self.implicit = endpoint.implicit
        self.session_id = server.new_session_id()
        self.parser = LineParser()
        self.state = SessionState(site=None)
        self.peer_host = ""
        self.peer_port = 0
        self.local_host = ""
        self.local_port = 0
        # Lines waiting while a command runs, and lines of the current read not
        # yet dispatched (see discard_pipelined). Empty tuples until needed: an
        # idle session should not hold two empty deques (~1.3 KiB).
        self._queue: collections.deque[str] | tuple[()] = ()
        self._batch: collections.deque[Line | TooLong] | tuple[()] = ()
        self._busy = False
        self._reading_paused = False  # flow control of a long pipeline
        self._draining = False  # _next's loop is running (see there)
        self._closing = False
        self._lost = False  # connectionLost has run
        self._ended: defer.Deferred[None] | None = None  # see ended()
        self._idle: IDelayedCall | None = None
        self._handshake_timer: IDelayedCall | None = None
        self._session_tls: SessionTls | None = None
        self.negotiating_certificate: Any = None  # chosen during the control handshake
        self.control_certificate: Any = None  # what the control channel presented
        self.sni_host: str | None = None
        self.client_certificate: Any = None  # validated control-channel client certificate
        self.client_chain: tuple[Any, ...] = ()
        self._counted_site: Site | None = None
        self.last_code = 0
        # When the session was admitted (ControlChannelOpened); None if it was not.
        self._connected_at: float | None = None
        # A command is running that answers at once, and how the connection
        # ended if it closed meanwhile (W3C ControlChannelClosed).
        self._in_command = False
        self._closed_cleanly: bool | None = None
        self._greeted = False
        self.transfer: Any = None  # the running transfer, if any
        self.data: Any = None  # the prepared data channel (PASV listener or PORT target)

    # ------------------------------------------------------------------ site
    @property
    def site(self) -> Site | None:
        return self.state.site

    def set_site(self, site: Site | None) -> bool:
        """Move the session to ``site``; False if the site is full (maxConnections)."""
        if site is self._counted_site:
            self.state.site = site
            return True
        if site is not None and not self.server.connections.acquire(site):
            return False
        if self._counted_site is not None:
            self.server.connections.release(self._counted_site)
        self._counted_site = site
        self.state.site = site
        if site is not None:
            self.parser.max_line = site.ftp_server.command_filtering.max_command_line
        return True

    # ------------------------------------------------------------ connection
    def connectionMade(self) -> None:
        transport: Any = self.transport
        peer = transport.getPeer()
        host = transport.getHost()
        self.peer_host, self.peer_port = normalize(peer.host), peer.port
        self.local_host, self.local_port = normalize(host.host), host.port
        _urgent_data_inline(transport)
        # Replies are small and answer the client's last line: Nagle would hold
        # a 226 that follows a 150 until the client's delayed ACK (~40 ms).
        transport.setTcpNoDelay(True)
        self.server.sessions.add(self)
        log.info(
            "session {session} connected from {peer}:{port} to {local}:{lport}",
            session=self.session_id,
            peer=self.peer_host,
            port=self.peer_port,
            local=self.local_host,
            lport=self.local_port,
        )
        refusal = self.server.admission_refusal(self.peer_host)
        if refusal is not None:
            self._refuse_connection(format_reply(refusal))
            return
        site = self.endpoint.default_site(self.local_host)
        if not self.set_site(site):
            assert site is not None
            if site.ftp_server.connections.reset_on_max_connections:
                # IIS resetOnMaxConnections: drop without a word.
                self._closing = True
                self.transport.abortConnection()  # type: ignore[union-attr]
                return
            self._refuse_connection(self._max_clients_reply(site))
            return
        self._connected_at = self.server.clock.seconds()
        self._control_event("ControlChannelOpened")
        if self.implicit:
            self.state.tls = TlsState.NEGOTIATING
            self.state.pbsz = True
            self.state.prot_private = True
            self._start_handshake_timer()
            # The greeting waits for the handshake (MS-FTPS §3.2.5.1); it is
            # sent from handshakeCompleted so SNI can choose the site first.
        else:
            self.send(self.greeting())
        self.reset_idle()

    def _refuse_connection(self, reply: Reply) -> None:
        self.send(reply)
        self.close()

    def _max_clients_reply(self, site: Site | None) -> Reply:
        text = site.ftp_server.messages.max_clients_message if site is not None else ""
        return message_reply(R.TOO_MANY_CONNECTIONS, self.message_lines(text))

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        # Ended by us (QUIT, a timeout, a refusal) or by the client's FIN: clean.
        clean = self._closing or reason.check(error.ConnectionDone) is not None
        self._closing = True
        self._cancel_timer("_idle")
        self._cancel_timer("_handshake_timer")
        if isinstance(reason.value, SSL.Error):
            log.warn(
                "session {session}: TLS handshake with {peer} failed: {why}",
                session=self.session_id,
                peer=self.peer_host,
                why=_ssl_reason(reason.value),
            )
        if self.transfer is not None:
            self.transfer.abort("control connection closed")
        self.close_data_channel()
        if self._in_command:
            self._closed_cleanly = clean  # logged after the command's own line
        elif self._connected_at is not None:
            self._control_event("ControlChannelClosed", clean=clean)
        self.state.reset_login()
        self.set_site(None)
        self.server.sessions.discard(self)
        log.info(
            "session {session} from {peer} closed (sent {sent} bytes, received {received})",
            session=self.session_id,
            peer=self.peer_host,
            sent=self.state.bytes_sent,
            received=self.state.bytes_received,
        )
        self._lost = True
        self._maybe_ended()

    def ended(self) -> defer.Deferred[None]:
        """Fires once the connection is gone and no command is still running.

        A command outlives its connection when it waits for a thread: an
        upload cut off by the end of the session still discards its
        temporary file through the I/O pool. Shutdown waits for this, so
        the pools stop only after that work is done.
        """
        if self._ended is None:
            self._ended = defer.Deferred()
            self._maybe_ended()
        return self._ended

    def _maybe_ended(self) -> None:
        if self._lost and not self._busy and self._ended is not None and not self._ended.called:
            self._ended.callback(None)

    def shut_down(self) -> None:
        """End the session because the server stops: 421, as RFC 959 says a
        server that must shut down answers, and the running transfer ends
        with the connection."""
        if self._closing:
            return
        self.reply(R.SHUTTING_DOWN)
        self.close()

    # --------------------------------------------------------------- replies
    def send(self, reply: Reply) -> None:
        self.last_code = reply.code
        if self.transport is not None:
            self.transport.write(reply.encode())

    def reply(self, name: R, **arguments: object) -> None:
        self.send(format_reply(name, **arguments))

    def send_lines(self, code: int, lines: list[str]) -> None:
        if self.transport is not None:
            self.transport.write(render(code, lines))

    # ---------------------------------------------------------------- timers
    def _cancel_timer(self, attribute: str) -> None:
        timer = getattr(self, attribute)
        if timer is not None:
            setattr(self, attribute, None)
            if timer.active():
                timer.cancel()

    def reset_idle(self) -> None:
        """(Re)arm the idle timeout: unauthenticated or control-channel, as IIS.

        Runs for every command: an armed timer is moved (``DelayedCall.reset``
        to a later time only updates it) rather than cancelled and replaced.
        """
        if self._closing:
            return  # the timer is close()'s now
        seconds: float = 0
        if self.transfer is None:
            connections = self.connection_settings()
            seconds = (
                connections.control_channel_timeout
                if self.state.logged_in
                else connections.unauthenticated_timeout
            )
        if seconds <= 0:
            self._cancel_timer("_idle")
            return
        timer = self._idle
        if timer is not None and timer.active():
            timer.args = (seconds,)  # type: ignore[attr-defined]
            timer.reset(seconds)
        else:
            self._idle = self.server.clock.callLater(seconds, self._timed_out, seconds)

    def _timed_out(self, seconds: float) -> None:
        self._idle = None
        log.info("session {session}: idle timeout", session=self.session_id)
        self.reply(R.TIMEOUT, seconds=int(seconds))
        self.close()

    def _start_handshake_timer(self) -> None:
        self._cancel_timer("_handshake_timer")
        seconds = self.server.config.ftps7.tls.handshake_timeout
        self._handshake_timer = self.server.clock.callLater(seconds, self._handshake_timed_out)

    def _handshake_timed_out(self) -> None:
        self._handshake_timer = None
        log.warn(
            "session {session}: TLS handshake with {peer} timed out",
            session=self.session_id,
            peer=self.peer_host,
        )
        self.transport.abortConnection()  # type: ignore[union-attr]

    def connection_settings(self) -> ConnectionSettings:
        return self.site_settings().connections

    def close(self) -> None:
        """Close after the replies already written have been sent.

        At most CLOSE_WAIT seconds: a client that reads nothing keeps them
        unsent, and the connection with them (after an idle timeout, for
        ever). The TLS layer does not wait for the client's close_notify
        (`controltls.CloseAfterNotify`).
        """
        if self._closing:
            return
        self._closing = True
        self._cancel_timer("_idle")
        self._idle = self.server.clock.callLater(CLOSE_WAIT, self._close_timed_out)
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _close_timed_out(self) -> None:
        self._idle = None
        log.info("session {session}: the client did not close; dropped", session=self.session_id)
        self.transport.abortConnection()  # type: ignore[union-attr]

    # ------------------------------------------------------------- TLS hooks
    def session_tls(self) -> SessionTls | None:
        """This session's TLS identity (built once; RESEARCH.md §2.5, tls/contexts.py)."""
        if self._session_tls is None:
            self._session_tls = self.server.session_tls(self)
        return self._session_tls

    def tls_handle(self) -> SSL.Connection | None:
        transport = self.transport
        if transport is not None and ISSLTransport.providedBy(transport):
            handle: SSL.Connection = transport.getHandle()  # type: ignore[attr-defined]
            return handle
        return None

    def tls_summary(self) -> str:
        """``TLSv1.3 TLS_AES_256_GCM_SHA384`` for the control connection, or ``no TLS``."""
        connection = self.tls_handle()
        if connection is None or self.state.tls is not TlsState.PROTECTED:
            return "no TLS"
        return f"{tls_session.protocol_version(connection)} {connection.get_cipher_name()}"

    def on_server_name(self, server_name: bytes | None) -> None:
        """SNI on the control connection selects the virtual host (RFC 7151 §4).

        A HOST sent before AUTH has already chosen the site; SNI then only
        picks the certificate of that site.
        """
        if not server_name:
            return
        try:
            host = server_name.decode("ascii").lower().rstrip(".")
        except UnicodeDecodeError:
            return
        self.sni_host = host
        if self.state.host is not None or self.state.logged_in:
            return
        site = self.endpoint.site_for_host(self.local_host, host)
        if site is not None and self.set_site(site):
            self.state.host = host

    def handshakeCompleted(self) -> None:
        self._cancel_timer("_handshake_timer")
        connection = self.tls_handle()
        self.state.tls = TlsState.PROTECTED
        self.control_certificate = self.negotiating_certificate
        if connection is not None:
            bits = tls_session.cipher_bits(connection)
            # Debug only: the logon line names protocol and cipher (a log
            # event costs ~4 % of a logon's CPU; docs/performance.md).
            log.debug(
                "session {session}: TLS {version} {cipher} ({bits} bits) with {peer}",
                session=self.session_id,
                version=tls_session.protocol_version(connection),
                cipher=connection.get_cipher_name(),
                bits=bits,
                peer=self.peer_host,
            )
            if self.site_settings().ssl.ssl128 and (bits or 0) < 128:
                self.reply(R.WEAK_CIPHER)
                self.close()
                return
            pending = clientcerts.validate_control_certificate(self, connection)
            if pending is not None:
                # No command runs until the certificate's verdict is in.
                self._busy = True
                pending.addCallback(self._certificate_checked)
                return
        self._greet_implicit()

    def _certificate_checked(self, accepted: bool) -> None:
        if not accepted or self._closing:
            return
        self._greet_implicit()
        self._busy = False
        self._next()

    def _greet_implicit(self) -> None:
        if self.implicit and not self._greeted:
            self._greeted = True
            self.send(self.greeting())

    # ------------------------------------------------------------------ input
    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        batch = collections.deque(self.parser.feed(data))
        self._batch = batch
        try:
            while batch:
                event = batch.popleft()
                if self._closing:
                    return
                if isinstance(event, Line):
                    self._line(event.text)
                else:
                    self._line_too_long()
        finally:
            self._batch = ()

    def _enqueue(self, text: str) -> None:
        if not isinstance(self._queue, collections.deque):
            self._queue = collections.deque()
        self._queue.append(text)

    def _line_too_long(self) -> None:
        if self._busy:
            self._enqueue("\x00TOO-LONG")
        else:
            self.reply(R.LINE_TOO_LONG)

    def _line(self, text: str) -> None:
        verb, _ = split_command(text)
        if self.transfer is not None and commands.ALIASES.get(verb, verb) in OUT_OF_BAND:
            self._run(text)
            return
        if self._busy:
            if len(self._queue) >= MAX_QUEUED_LINES * 16:
                # Reading pauses at MAX_QUEUED_LINES, so only one enormous read
                # of tiny lines gets here.
                log.warn("session {session}: too many pipelined commands", session=self.session_id)
                self.transport.abortConnection()  # type: ignore[union-attr]
                return
            self._enqueue(text)
            if len(self._queue) >= MAX_QUEUED_LINES and not self._reading_paused:
                # Flow control, not a disconnect: TCP holds the rest of the
                # pipeline until the queue drains (see _next).
                self._reading_paused = True
                self.transport.pauseProducing()  # type: ignore[union-attr]
            return
        self._run(text)

    def discard_pipelined(self) -> bool:
        """Drop every line the client sent ahead (STARTTLS injection defence)."""
        # Lines of the same read as AUTH are still in _batch: they go too.
        had = bool(self._queue or self._batch)
        self._queue = ()
        if self._batch:
            self._batch.clear()  # the deque dataReceived is iterating over
        return self.parser.clear() or had

    def _next(self) -> None:
        """Run queued lines until one is still busy when it returns.

        A command that finishes at once calls this again from inside
        ``_run``; the loop already running picks the next line up instead,
        so thousands of pipelined NOOPs behind a PASS cannot recurse past
        Python's limit (they did: the session hung with a RecursionError).
        """
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue and not self._busy and not self._closing:
                assert isinstance(self._queue, collections.deque)
                text = self._queue.popleft()
                if text == "\x00TOO-LONG":
                    self.reply(R.LINE_TOO_LONG)
                else:
                    self._run(text)
        finally:
            self._draining = False
        if self._reading_paused and len(self._queue) < MAX_QUEUED_LINES // 2:
            self._reading_paused = False
            if not self._closing:
                self.transport.resumeProducing()  # type: ignore[union-attr]

    def _run(self, text: str) -> None:
        verb, argument = split_command(text)
        self.reset_idle()
        started = self.server.clock.seconds()
        sent, received = self.state.bytes_sent, self.state.bytes_received
        try:
            handler = self._gate(verb, argument)
        except FTPError as failure:
            self.send(failure.render())
            self._log_command(verb, argument, started, sent, received)
            return
        name = commands.ALIASES.get(verb, verb)
        out_of_band = self.transfer is not None and name in OUT_OF_BAND
        if not out_of_band:
            self._busy = True
        self._in_command = True  # (a QUIT closes the connection inside it)
        try:
            result = handler(argument)
        except Exception:
            result = defer.fail()
        else:
            if iscoroutine(result):
                result = defer.ensureDeferred(result)
        if not isinstance(result, defer.Deferred):
            # Most commands answer at once: no Deferred and its callback
            # chain (~10 % of a logon's reactor time, docs/performance.md).
            try:
                self._succeeded(result)
            except Exception:
                self._failed(Failure(), verb)
            self._log_command(verb, argument, started, sent, received)
            self._in_command = False
            if self._closed_cleanly is not None and self._connected_at is not None:
                # The command's own line first, as IIS writes them.
                self._control_event("ControlChannelClosed", clean=self._closed_cleanly)
            if not out_of_band:
                # (The idle timer was just moved, at the start of this command.)
                self._busy = False
                if self._lost:
                    self._maybe_ended()
                    return
                self._next()
            return
        self._in_command = False
        result.addCallbacks(self._succeeded, self._failed, errbackArgs=(verb,))
        result.addBoth(lambda _: self._log_command(verb, argument, started, sent, received))
        if not out_of_band:
            result.addBoth(self._done)

    def _log_command(
        self, verb: str, argument: str, started: float, sent: int, received: int
    ) -> None:
        """One W3C log line per command (``logFile``), never with a password."""
        site = self.state.site
        if site is None or not self.server.site_logs.logs:
            return
        name = commands.ALIASES.get(verb, verb)
        uri = "-"
        if name == "PASS":
            uri = "***"
        elif argument and name in PATH_COMMANDS:
            try:
                uri = paths.resolve(self.state.cwd, argument)
            except paths.PathError:
                uri = "-"
        elif argument and name != "PASS":
            uri = argument[:200]
        self.server.site_logs.write(
            site,
            w3clog.Entry(
                client_ip=self.peer_host,
                client_port=self.peer_port,
                user=self._log_user(),
                server_ip=self.local_host,
                server_port=self.local_port,
                method=_printable(verb),
                uri=uri,
                status=self.last_code,
                session=str(self.session_id),
                full_path=uri if name in PATH_COMMANDS else "-",
                host=self.state.host or "-",
                bytes_sent=self.state.bytes_sent - sent,
                bytes_received=self.state.bytes_received - received,
                time_taken_ms=int((self.server.clock.seconds() - started) * 1000),
            ),
        )

    def _control_event(self, event: str, *, clean: bool = True) -> None:
        assert self._connected_at is not None
        self.log_channel_event(
            self.state.site,
            event,
            peer_port=self.peer_port,
            local_port=self.local_port,
            since=self._connected_at,
            win32_status=0 if clean else w3clog.CHANNEL_NOT_CLEAN,
        )

    def _log_user(self) -> str:
        identity = self.state.identity
        return identity.name if identity else (self.state.pending_user or "-")

    def log_channel_event(
        self,
        site: Site | None,
        event: str,
        *,
        peer_port: int,
        local_port: int,
        since: float,
        win32_status: int = 0,
    ) -> None:
        """IIS's W3C lines for the channels themselves: ``ControlChannelOpened``,
        ``ControlChannelClosed``, ``DataChannelOpened``, ``DataChannelClosed``.

        No FTP status (``-``); the ports are the channel's own (a data
        channel's ``s-port`` is its passive or active port); ``time-taken``
        is how long the channel was open; a channel that did not end cleanly
        has win32 status 64 (ERROR_NETNAME_DELETED), as IIS writes it.
        """
        if site is None or not self.server.site_logs.logs:
            return
        self.server.site_logs.write(
            site,
            w3clog.Entry(
                client_ip=self.peer_host,
                client_port=peer_port,
                user=self._log_user(),
                server_ip=self.local_host,
                server_port=local_port,
                method=event,
                uri="-",
                status=None,
                session=str(self.session_id),
                host=self.state.host or "-",
                time_taken_ms=int((self.server.clock.seconds() - since) * 1000),
                win32_status=win32_status,
            ),
        )

    def _done(self, _: object) -> None:
        self._busy = False
        if self._lost:
            self._maybe_ended()
            return
        self.reset_idle()
        self._next()

    def _succeeded(self, result: object) -> None:
        if isinstance(result, Reply):
            self.send(result)
        elif isinstance(result, R):
            self.reply(result)

    def _failed(self, failure: Failure, verb: str) -> None:
        if failure.check(FTPError):
            ftp_error: FTPError = failure.value
            self.send(ftp_error.render())
            return
        if failure.check(defer.CancelledError):
            return
        log.failure(
            "session {session}: internal error running {verb}",
            failure,
            session=self.session_id,
            verb=verb,
        )
        self.reply(R.LOCAL_ERROR)

    def _gate(self, verb: str, argument: str) -> Any:
        """Run the gates of the command table; return the handler or raise FTPError."""
        spec = commands.lookup(verb)
        if spec is None or not verb.isascii() or not verb.isalpha():
            raise FTPError(R.UNKNOWN_COMMAND, command=_printable(verb))
        name = spec.name
        ftp_server = self.site_settings()
        if not ftp_server.command_filtering.is_allowed(verb) or (
            name != verb and not ftp_server.command_filtering.is_allowed(name)
        ):
            raise FTPError(R.COMMAND_FILTERED)
        if spec.arg is Arg.REQUIRED and not argument.strip():
            raise FTPError(R.SYNTAX_ERROR)
        policy_settings = ftp_server
        if name == "USER":
            # USER host|user names the site whose policy applies; with no site
            # known at all, the handler's "use HOST" reply is the useful one.
            target = self.user_target_site(argument)
            if target is None and self.state.site is None:
                return self.ftp_USER
            if target is not None:
                policy_settings = target.ftp_server
        refusal = tlspolicy.control_refusal(
            policy_settings.ssl.control_channel_policy, name, self.state.protected
        )
        if refusal is not None and not (
            # After a permitted CCC the clear channel is allowed by the policy.
            self.state.tls is TlsState.CLEARED and name not in tlspolicy.CREDENTIAL_COMMANDS
        ):
            raise FTPError(refusal)
        if spec.login and not self.state.logged_in:
            raise FTPError(R.NOT_LOGGED_IN)
        handler = getattr(self, "ftp_" + name)
        return handler

    # --------------------------------------------------------------- messages
    def site_settings(self) -> SiteFtpServer:
        """The selected site's settings, or siteDefaults before a site is known."""
        site = self.state.site
        return site.ftp_server if site is not None else self.server.config.site_defaults

    def greeting(self) -> Reply:
        messages = self.site_settings().messages
        lines: list[str] = []
        if not messages.suppress_default_banner:
            lines.append(self.server.banner)
        lines.extend(self.message_lines(messages.banner_message))
        return message_reply(R.GREETING, lines, text=self.server.banner)

    def detailed_errors(self) -> bool:
        """IIS ``allowLocalDetailedErrors``: the detail lines of an error reply
        (what failed on the server) go only to clients on this machine."""
        return self.site_settings().messages.allow_local_detailed_errors and is_local(
            self.peer_host, self.local_host
        )

    def message_lines(self, text: str) -> list[str]:
        if not text:
            return []
        if self.site_settings().messages.expand_variables:
            text = message_text.expand(text, self.message_variables())
        return message_text.split_lines(text)

    def message_variables(self) -> dict[str, str]:
        identity = self.state.identity
        return {
            "UserName": identity.name if identity else (self.state.pending_user or ""),
            "SiteName": self.state.site.name if self.state.site else "",
            "SessionID": str(self.session_id),
            "BytesSent": str(self.state.bytes_sent),
            "BytesReceived": str(self.state.bytes_received),
        }


def _urgent_data_inline(transport: Any) -> None:
    """Keep TCP urgent data in the command stream (``SO_OOBINLINE``, as vsftpd does).

    RFC 959 §4.1.3 has clients send ``IAC IP`` then ``IAC DM`` as urgent data
    before ABOR, and Python's ftplib sends all of ``ABOR\\r\\n`` with MSG_OOB.
    Without this option Linux takes the last urgent byte out of the stream: the
    DM (leaving a lone IAC that swallows the "A" of ABOR) or the LF (so the
    ABOR line never ends and the client waits forever).
    """
    for candidate in (transport, getattr(transport, "transport", None)):
        sock = getattr(candidate, "socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
            return


def _printable(verb: str) -> str:
    if verb.isascii() and verb.isprintable():  # every real command: no per-character pass
        return verb[:40]
    text = "".join(ch if ch.isprintable() and ord(ch) < 0xD800 else "?" for ch in verb)
    return text[:40]


def _ssl_reason(value: BaseException) -> str:
    try:
        return "; ".join(":".join(str(part) for part in item) for item in value.args[0])
    except (IndexError, TypeError):
        return str(value)
