"""Transfer parameters, data-channel set-up and the transfers themselves.

A transfer command runs as a coroutine: open the file (550 before anything
else), get the data connection (passive: already accepted or awaited; active:
connect now), check the data-channel policy (RFC 4217 §10.2: here, not at
PASV/PORT), send 150, wait for the data TLS handshake and its checks (session
reuse, 522), move the bytes, and answer 226 only when the data connection
ended cleanly (a TLS close_notify for PROT P uploads). Anything else is 426
and the upload is discarded (``fileHandling``). ABOR answers 426 + 226 at once
and aborts the data connection; the coroutine then only cleans up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, error, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from ftps7 import logfilter
from ftps7.config.model import ConnectionSettings, ShowFlags
from ftps7.core import listing, paths, tlspolicy
from ftps7.core.bandwidth import Bandwidth
from ftps7.core.replies import FTPError, R, Reply, format_reply, framed_reply
from ftps7.server import addresses, w3clog
from ftps7.server.datachannel import DataConnection, PassiveListener, connect_active
from ftps7.server.shell import os_error_reply
from ftps7.server.transfers import FileReceiver, FileSender

if TYPE_CHECKING:
    from ftps7.server.protocol import FTPSession
    from ftps7.server.shell import Listing
    from ftps7.server.threadrecv import ThreadedReceiver
    from ftps7.server.threadsend import ThreadedSender

log = Logger(observer=logfilter.observer)

#: How often the minBytesPerSecond rule is checked when dataChannelTimeout is 0
#: (otherwise every dataChannelTimeout): IIS's default data channel timeout.
RATE_WINDOW = 30.0


def list_arguments(argument: str) -> str:
    """Drop ``ls``-style options (``LIST -la dir``) that clients send by habit."""
    words = argument.strip()
    while words.startswith("-"):
        _, _, words = words.partition(" ")
        words = words.lstrip()
    return words


class ActiveTarget:
    """Where PORT/EPRT asked the server to connect."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def close(self) -> None:
        pass


class Transfer:
    """The one running transfer of a session."""

    def __init__(self, session: FTPSession, command: str, path: str) -> None:
        self.session = session
        self.command = command
        self.path = path
        self.connection: DataConnection | None = None
        self.aborted = False
        self.replied = False  # the final reply was already sent (by ABOR)
        self.pending: defer.Deferred[Any] | None = None
        self.sender: FileSender | ThreadedSender | None = None
        self.receiver: FileReceiver | ThreadedReceiver | None = None
        self._watchdog: Any = None

    @property
    def count(self) -> int:
        if self.sender is not None:
            return self.sender.bytes_sent
        if self.receiver is not None:
            return self.receiver.bytes_received
        return 0

    @property
    def throttled(self) -> float:
        """Seconds this transfer has waited for the site's maxBandwidth."""
        mover = self.sender if self.sender is not None else self.receiver
        return mover.throttled if mover is not None else 0.0

    def describe(self) -> str:
        return f"{self.command} {self.path}: {self.count} bytes transferred"

    def abort(self, why: str) -> None:
        if self.aborted:
            return
        self.aborted = True
        log.info(
            "session {session}: {command} {path} aborted ({why})",
            session=self.session.session_id,
            command=self.command,
            path=self.path,
            why=why,
        )
        if self.connection is not None:
            self.connection.abort()
        if self.pending is not None and not self.pending.called:
            self.pending.cancel()

    def watch(self, connections: ConnectionSettings) -> None:
        """Abort a transfer that stalls or crawls.

        Every ``dataChannelTimeout`` seconds (`RATE_WINDOW` when that is 0):
        no byte moved since the last check is a data channel timeout (so a
        stall ends between one and two timeouts after the last byte), and
        fewer than ``minBytesPerSecond`` times the window since the last check
        is a transfer too slow to keep (IIS's rule: a client that holds a data
        connection open with a trickle costs a slot and a thread as much as
        a fast one). 0 turns either check off.
        """
        timeout = connections.data_channel_timeout
        min_rate = connections.min_bytes_per_second
        window = timeout if timeout > 0 else (RATE_WINDOW if min_rate > 0 else 0)
        if window <= 0:
            return
        previous: int | None = None  # the count at the last check (None: no check yet)
        previous_throttled = 0.0

        def check() -> None:
            nonlocal previous, previous_throttled
            if self.aborted:
                return
            count, throttled = self.count, self.throttled
            stalled = count == previous and throttled == previous_throttled
            if timeout > 0 and stalled:
                self.abort("data channel timeout")
                return
            moved = count - (previous or 0)
            # Time spent waiting for the site's own maxBandwidth is not the client's.
            own = window - (throttled - previous_throttled)
            if own > 0 and moved < min_rate * own:
                self.abort(f"below minBytesPerSecond: {moved} bytes in {window:g} s")
                return
            previous, previous_throttled = count, throttled
            self._watchdog = self.session.server.clock.callLater(window, check)

        self._watchdog = self.session.server.clock.callLater(window, check)

    def stop_watching(self) -> None:
        if self._watchdog is not None and self._watchdog.active():
            self._watchdog.cancel()


class TransferCommands:
    def bandwidth(self: FTPSession) -> Bandwidth | None:
        """The logged-on site's maxBandwidth bucket, if the site has a cap."""
        site = self.state.site
        return self.server.bandwidths.get(site.name) if site is not None else None

    # ------------------------------------------------------------ parameters
    def ftp_TYPE(self: FTPSession, argument: str) -> Reply:
        words = argument.upper().split()
        if not words:
            raise FTPError(R.SYNTAX_ERROR)
        kind = words[0]
        if kind == "A" and (len(words) == 1 or words[1:] == ["N"]):
            self.state.params.type_ascii = True
            return format_reply(R.TYPE_SET, type="A")
        if kind == "I" and len(words) == 1 or kind == "L" and words[1:] == ["8"]:
            self.state.params.type_ascii = False
            return format_reply(R.TYPE_SET, type="I")
        raise FTPError(R.PARAMETER_NOT_IMPLEMENTED)

    def ftp_MODE(self: FTPSession, argument: str) -> R:
        if argument.strip().upper() != "S":
            raise FTPError(R.PARAMETER_NOT_IMPLEMENTED)
        return R.MODE_SET

    def ftp_STRU(self: FTPSession, argument: str) -> R:
        if argument.strip().upper() != "F":
            raise FTPError(R.PARAMETER_NOT_IMPLEMENTED)
        return R.STRU_SET

    def ftp_ALLO(self: FTPSession, argument: str) -> R:
        return R.ALLO_OK

    def ftp_REST(self: FTPSession, argument: str) -> Reply:
        text = argument.strip()
        if not text.isdigit() or len(text) > 19:
            raise FTPError(R.INVALID_RESTART if text.lstrip("-").isdigit() else R.SYNTAX_ERROR)
        self.state.params.rest = int(text)
        return format_reply(R.RESTARTING, offset=int(text))

    # ------------------------------------------------------------ data setup
    def close_data_channel(self: FTPSession) -> None:
        data, self.data = self.data, None
        if data is not None:
            data.close()

    def _passive(self: FTPSession) -> int:
        self.close_data_channel()
        settings = self.site_settings()
        expected = (
            self.peer_host if settings.data_channel_security.match_client_address_for_pasv else None
        )

        def refused(peer: str) -> None:
            log.warn(
                "session {session}: refused data connection from {other} (client is {peer})",
                session=self.session_id,
                other=peer,
                peer=self.peer_host,
            )

        listener = PassiveListener(
            self.server.reactor, expected, refused, proxy_trust=self.server.proxy_trust
        )
        low, high = self.server.passive_range()
        try:
            port = listener.listen(self.local_host, low, high)
        except error.CannotListenError:
            log.error("session {session}: no passive port available", session=self.session_id)
            raise FTPError(R.CANT_OPEN_DATA) from None
        # No errback here: _open_data awaits this same Deferred, and one that
        # turned its timeout into None made every transfer after an unused
        # PASV fail with a traceback (451) instead of 425. A listener closed
        # unused handles its own failure (PassiveListener.close).
        listener.accepted.addCallback(self._data_accepted)
        self.data = listener
        timeout = settings.connections.data_channel_timeout
        if timeout > 0:
            timer = self.server.clock.callLater(timeout, self._passive_expired, listener)
            listener.accepted.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])
        return port

    def _passive_expired(self: FTPSession, listener: PassiveListener) -> None:
        if listener.connection is None:
            listener.stop()

    def _data_accepted(self: FTPSession, connection: DataConnection) -> DataConnection:
        """Start data TLS at once if PROT P is in force (curl handshakes before LIST)."""
        self._log_data_channel(connection)
        self.setup_data_tls(connection)
        return connection

    def _log_data_channel(self: FTPSession, connection: DataConnection) -> None:
        """W3C ``DataChannelOpened`` now and ``DataChannelClosed`` when it closes."""
        if not self.server.site_logs.logs:
            return
        transport: Any = connection.transport
        peer_port, local_port = transport.getPeer().port, transport.getHost().port
        site, opened = self.state.site, self.server.clock.seconds()
        self.log_channel_event(
            site, "DataChannelOpened", peer_port=peer_port, local_port=local_port, since=opened
        )

        def closed(_: object) -> None:
            self.log_channel_event(
                site,
                "DataChannelClosed",
                peer_port=peer_port,
                local_port=local_port,
                since=opened,
                win32_status=0 if connection.clean_close else w3clog.CHANNEL_NOT_CLEAN,
            )

        connection.closed.addCallback(closed)

    def setup_data_tls(self: FTPSession, connection: DataConnection) -> None:
        if self.state.prot_private:
            from ftps7.tls.contexts import ServerConnectionCreator

            session_tls = self.session_tls()
            assert session_tls is not None  # PROT P exists only after a handshake
            connection.start_tls(ServerConnectionCreator(session_tls))
        else:
            connection.mark_clear()

    def ftp_PASV(self: FTPSession, argument: str) -> Reply:
        if self.state.params.epsv_all:
            raise FTPError(R.EPSV_ALL_ACTIVE, command="PASV")
        if addresses.family(self.local_host) != 1:
            raise FTPError(R.PASV_IPV6)
        port = self._passive()
        host = self.site_settings().firewall_support.external_ip4_address or self.local_host
        return format_reply(R.PASV, numbers=addresses.pasv_numbers(host, port))

    def ftp_EPSV(self: FTPSession, argument: str) -> Reply:
        value = argument.strip().upper()
        local_family = addresses.family(self.local_host)
        if value == "ALL":
            self.state.params.epsv_all = True
            return format_reply(R.EPSV_ALL_OK)
        if value and value not in ("1", "2"):
            raise FTPError(R.EPRT_PROTOCOL, families=str(local_family))
        if value and int(value) != local_family:
            raise FTPError(R.EPRT_PROTOCOL, families=str(local_family))
        port = self._passive()
        return format_reply(R.EPSV, port=port)

    def _active(self: FTPSession, host: str, port: int, command: str) -> Reply:
        if self.state.params.epsv_all:
            raise FTPError(R.EPSV_ALL_ACTIVE, command=command)
        settings = self.site_settings()
        if port < 1024 or (
            settings.data_channel_security.match_client_address_for_port
            and addresses.normalize(host) != self.peer_host
        ):
            log.warn(
                "session {session}: refused {command} to {host}:{port} (client is {peer})",
                session=self.session_id,
                command=command,
                host=host,
                port=port,
                peer=self.peer_host,
            )
            raise FTPError(R.PORT_DENIED)
        self.close_data_channel()
        self.data = ActiveTarget(addresses.normalize(host), port)
        return format_reply(R.PORT_OK, command=command)

    def ftp_PORT(self: FTPSession, argument: str) -> Reply:
        host, port = addresses.parse_port(argument)
        if addresses.family(self.local_host) != 1:
            raise FTPError(R.EPRT_PROTOCOL, families="2")
        return self._active(host, port, "PORT")

    def ftp_EPRT(self: FTPSession, argument: str) -> Reply:
        family, host, port = addresses.parse_eprt(argument)
        local_family = addresses.family(self.local_host)
        if family != local_family:
            raise FTPError(R.EPRT_PROTOCOL, families=str(local_family))
        return self._active(host, port, "EPRT")

    # ------------------------------------------------------------ transfers
    def _check_transfer_allowed(self: FTPSession) -> None:
        policy = self.site_settings().ssl.data_channel_policy
        refusal = tlspolicy.data_refusal(policy, self.state.prot_private)
        if refusal is not None:
            raise FTPError(refusal)
        if self.data is None:
            raise FTPError(R.CANT_OPEN_DATA)

    async def _open_data(self: FTPSession, transfer: Transfer) -> DataConnection:
        """The TCP data connection for this transfer (425 if there is none)."""
        data, self.data = self.data, None
        timeout = self.site_settings().connections.data_channel_timeout or 30.0
        if isinstance(data, PassiveListener):
            try:
                pending = data.accepted
                if not pending.called:
                    pending.addTimeout(timeout, self.server.clock)
                transfer.pending = pending
                connection: DataConnection = await pending
            except Exception:  # noqa: BLE001 - any failure to connect is a 425
                data.close()
                raise FTPError(R.CANT_OPEN_DATA) from None
            finally:
                transfer.pending = None
            expected_tls = self.state.prot_private
            if connection.tls != expected_tls:
                # PROT changed after the connection was set up (RFC 4217 §10.2).
                connection.abort()
                raise FTPError(R.PROT_CHANGED)
            return connection
        assert isinstance(data, ActiveTarget)
        try:
            d = connect_active(
                self.server.reactor,
                self.server.clock,
                data.host,
                data.port,
                self.local_host,
                timeout,
            )
            transfer.pending = d
            connection = await d
        except Exception:  # noqa: BLE001
            raise FTPError(R.CANT_OPEN_DATA) from None
        finally:
            transfer.pending = None
        self._log_data_channel(connection)
        self.setup_data_tls(connection)
        return connection

    async def _secure(self: FTPSession, transfer: Transfer, connection: DataConnection) -> None:
        """Wait for the data handshake and apply the data-channel TLS checks (522)."""
        transfer.connection = connection
        if not connection.tls:
            return
        timeout = self.server.config.ftps7.tls.handshake_timeout
        try:
            pending = connection.secured
            if not pending.called:
                pending.addTimeout(timeout, self.server.clock)
            transfer.pending = pending
            await pending
        except Exception:  # noqa: BLE001 - handshake failure or timeout
            connection.abort()
            if transfer.aborted:
                raise
            log.warn(
                "session {session}: data TLS handshake with {peer} failed",
                session=self.session_id,
                peer=self.peer_host,
            )
            raise FTPError(R.DATA_TLS_FAILED) from None
        finally:
            transfer.pending = None
        refusal = self.server.data_tls_refusal(self, connection)
        if refusal is not None:
            connection.abort()
            raise FTPError(refusal)
        # This may have resumed inside Twisted's handshake callback, whose TLS
        # layer still reads from the connection after it returns: a transfer
        # thread may take the TLS object over only afterwards.
        await task.deferLater(self.server.clock, 0, lambda: None)
        if transfer.aborted:
            raise error.ConnectionLost("transfer aborted")

    def _start(self: FTPSession, command: str, path: str, body: Callable[[Transfer], Any]) -> Any:
        """Run a transfer coroutine as the session's one transfer."""
        if self.transfer is not None:
            raise FTPError(R.TRANSFER_BUSY)
        self._check_transfer_allowed()
        transfer = Transfer(self, command, path)
        self.transfer = transfer
        self.reset_idle()  # the idle timer pauses while a transfer runs

        async def run() -> Reply | None:
            try:
                reply: Reply = await body(transfer)
            except FTPError as failure:
                reply = failure.render()
            except Exception as exc:  # noqa: BLE001
                if transfer.aborted:
                    reply = format_reply(R.TRANSFER_ABORTED)
                else:
                    log.failure(
                        "session {session}: {command} failed",
                        Failure(exc),
                        session=self.session_id,
                        command=command,
                    )
                    reply = format_reply(R.LOCAL_ERROR)
            finally:
                transfer.stop_watching()
                if transfer.throttled:
                    log.info(
                        "session {session}: {command} {path} waited {seconds:.1f} s"
                        " for the site's maxBandwidth",
                        session=self.session_id,
                        command=command,
                        path=path,
                        seconds=transfer.throttled,
                    )
                if self.transfer is transfer:
                    self.transfer = None
                if transfer.connection is not None:
                    transfer.connection.abort()
            if transfer.replied:
                return None
            return reply

        return defer.ensureDeferred(run())

    def _opening(self: FTPSession, connection: DataConnection, detail: str = "") -> None:
        mode = "ASCII" if self.state.params.type_ascii else "BINARY"
        suffix = f" for {detail}" if detail else ""
        self.reply(R.OPENING_DATA, mode=mode, suffix=suffix)

    async def _finish_send(
        self: FTPSession, transfer: Transfer, connection: DataConnection
    ) -> Reply:
        """Close after a download/listing; the 226 waits until our last bytes are out.

        Not for the client's own close (server/controltls.CloseAfterNotify).
        A client that stops reading is cut off after dataChannelTimeout.
        """
        transport: Any = connection.transport
        if not connection.is_closed:
            # The file's last partial segment and our close_notify would wait
            # for the client's (delayed) ACK of the previous segment: Nagle.
            # Cost curl ~13 ms per small file.
            transport.setTcpNoDelay(True)
        transport.loseConnection()
        if not connection.is_closed:
            pending = connection.closed
            pending.addTimeout(
                self.site_settings().connections.data_channel_timeout or 30.0, self.server.clock
            )
            transfer.pending = pending
            try:
                await pending
            except Exception:  # noqa: BLE001 - the client stopped reading
                connection.abort()
                return format_reply(R.TRANSFER_ABORTED)  # so it did not get it all
            finally:
                transfer.pending = None
        if transfer.aborted:
            return format_reply(R.TRANSFER_ABORTED)
        return format_reply(R.TRANSFER_COMPLETE)

    def ftp_RETR(self: FTPSession, argument: str) -> Any:
        path = self.path_argument(argument)
        offset, self.state.params.rest = self.state.params.rest, 0

        async def body(transfer: Transfer) -> Reply:
            handle, size = await self.state.shell.open_for_reading(path, offset)
            try:
                connection = await self._open_data(transfer)
                self._opening(connection, f"{paths.basename(path)}({size} bytes)")
                await self._secure(transfer, connection)
                sender = self.server.file_sender(
                    handle,
                    connection,
                    ascii=self.state.params.type_ascii,
                    timeout=self.site_settings().connections.data_channel_timeout,
                    bandwidth=self.bandwidth(),
                    size=size - offset,
                )
                transfer.sender = sender
                log.debug(
                    "session {session}: RETR {path} sent by {sender}",
                    session=self.session_id,
                    path=path,
                    sender="a transfer thread" if sender.threaded else "the reactor",
                )
                transfer.watch(self.site_settings().connections)
                transfer.pending = sender.done
                try:
                    await sender.start()
                except Exception:  # noqa: BLE001
                    self.state.bytes_sent += sender.bytes_sent
                    return format_reply(R.TRANSFER_ABORTED)
                finally:
                    transfer.pending = None
                self.state.bytes_sent += sender.bytes_sent
                return await self._finish_send(transfer, connection)
            finally:
                await self.server.run_io(handle.close)

        return self._start("RETR", path, body)

    def _upload(
        self: FTPSession,
        command: str,
        path: str,
        *,
        append: bool,
        offset: int,
        unique_name: str | None = None,
    ) -> Any:
        async def body(transfer: Transfer) -> Reply:
            target = await self.state.shell.open_for_writing(
                path, append=append, offset=offset, unique=unique_name is not None
            )
            try:
                connection = await self._open_data(transfer)
                if unique_name is not None:
                    self.reply(R.OPENING_DATA_UNIQUE, file=unique_name)
                else:
                    self._opening(connection, paths.basename(path))
                await self._secure(transfer, connection)
                receiver = self.server.file_receiver(
                    target,
                    connection,
                    ascii=self.state.params.type_ascii,
                    timeout=self.site_settings().connections.data_channel_timeout,
                    bandwidth=self.bandwidth(),
                )
                transfer.receiver = receiver
                log.debug(
                    "session {session}: {command} {path} received by {receiver}",
                    session=self.session_id,
                    command=command,
                    path=path,
                    receiver="a transfer thread" if receiver.threaded else "the reactor",
                )
                transfer.watch(self.site_settings().connections)
                # requestFiltering maxAllowedContentLength bounds the size of
                # the resulting file (offset included, for REST and APPE).
                limit = self.server.config.server.request_filtering.max_allowed_content_length
                start = offset + (target.initial_size if append else 0)
                await receiver.receive(connection, limit - start)
                too_large = receiver.too_large
                if too_large:
                    await receiver.finish()
                    await self.server.run_io(target.discard)
                    self.state.bytes_received += receiver.bytes_received
                    log.warn(
                        "session {session}: {command} {path} exceeded maxAllowedContentLength "
                        "({limit} bytes); discarded",
                        session=self.session_id,
                        command=command,
                        path=path,
                        limit=limit,
                    )
                    return format_reply(R.FILE_TOO_LARGE)
                try:
                    await receiver.finish()
                except Exception as exc:  # noqa: BLE001 - a write failed
                    self.state.bytes_received += receiver.bytes_received
                    await self.server.run_io(target.discard)
                    if isinstance(exc, OSError):
                        return os_error_reply(exc).render()
                    return format_reply(R.LOCAL_ERROR)
                self.state.bytes_received += receiver.bytes_received
                if transfer.aborted or not connection.clean_close:
                    kept = await self.server.run_io(target.discard)
                    log.warn(
                        "session {session}: {command} {path} ended without a clean close "
                        "after {count} bytes; upload {fate}",
                        session=self.session_id,
                        command=command,
                        path=path,
                        count=receiver.bytes_received,
                        fate="kept (keepPartialUploads)" if kept else "discarded",
                    )
                    if connection.tls:
                        return format_reply(R.DATA_CLOSED_UNCLEAN)
                    return format_reply(R.TRANSFER_ABORTED)
                await self.server.run_io(target.commit)
                if unique_name is not None:
                    return format_reply(R.TRANSFER_COMPLETE_UNIQUE, file=unique_name)
                return format_reply(R.TRANSFER_COMPLETE)
            finally:
                await self.server.run_io(target.discard)

        return self._start(command, path, body)

    def ftp_STOR(self: FTPSession, argument: str) -> Any:
        path = self.path_argument(argument)
        offset, self.state.params.rest = self.state.params.rest, 0
        return self._upload("STOR", path, append=False, offset=offset)

    def ftp_APPE(self: FTPSession, argument: str) -> Any:
        path = self.path_argument(argument)
        # RFC 3659 §5.4: APPE after REST behaves like STOR at that offset.
        offset, self.state.params.rest = self.state.params.rest, 0
        return self._upload("APPE", path, append=not offset, offset=offset)

    def ftp_STOU(self: FTPSession, argument: str) -> Any:
        self.state.params.rest = 0
        hint = paths.basename(self.path_argument(argument)) if argument.strip() else None
        self._check_transfer_allowed()

        def chosen(name: str) -> Any:
            path = paths.join(self.state.cwd, name)
            return self._upload("STOU", path, append=False, offset=0, unique_name=name)

        return self.state.shell.unique_name(self.state.cwd, hint).addCallback(chosen)

    # ------------------------------------------------------------- listings
    def listing_lines(self: FTPSession, kind: str, path: str) -> defer.Deferred[list[str]]:
        """The lines of a LIST, NLST or MLSD of ``path``.

        A directory is read and formatted in one I/O pool job (10,000 entries
        must not stall the reactor) by the batch formatters of
        :mod:`ftps7.core.listing`.
        """
        shell = self.state.shell
        flags = self.site_settings().directory_browse.show_flags
        facts = set(self.state.mlst_facts)
        now = self.server.clock.seconds()
        authorizer = self.server.authorizer

        def mlsd(result: Listing) -> list[str]:
            cdir = listing.mlsx_line(
                replace(result.directory, name="."),
                facts,
                self.perm_for(path, True),
                type_override="cdir",
            )
            names, stats = result.names, result.stats
            # Without locations below this directory every entry on disk has
            # the same rules: one perm fact per kind. Virtual directories (and
            # every entry, with locations below) get their own.
            uniform = not authorizer.has_rules_below(
                shell.site_name, shell.namespace.to_site_path(path)
            )
            own = result.virtual_names if uniform else frozenset(names)
            sample = next((name for name in names if name not in own), None)
            file_perm = dir_perm = ""
            if sample is not None:
                file_perm = self.perm_for(paths.join(path, sample), False)
                dir_perm = self.perm_for(paths.join(path, sample), True)
            perms: dict[str, str] = {}
            if own:
                for name, st in zip(names, stats, strict=True):
                    if name in own:
                        is_dir = listing.entry_from_stat(name, st).is_dir
                        perms[name] = self.perm_for(paths.join(path, name), is_dir)
            lines = listing.batch_mlsd_lines(
                names,
                stats,
                facts,
                file_perm=file_perm,
                dir_perm=dir_perm,
                perms=perms,
                uniques=result.uniques,
            )
            lines.insert(0, cdir)
            return lines

        def format_listing() -> list[str]:
            if kind == "NLST":
                return listing.nlst_lines(shell.read_names(path))
            result = shell.read_directory(path)
            if kind == "MLSD":
                return mlsd(result)
            names, stats = result.names, result.stats
            if result.virtual_names and not flags & ShowFlags.DISPLAY_VIRTUAL_DIRECTORIES:
                # IIS lists only what is on disk unless asked to add virtual
                # directories (MLSD and NLST always show them).
                kept = [i for i, name in enumerate(names) if name not in result.virtual_names]
                names, stats = [names[i] for i in kept], [stats[i] for i in kept]
            return listing.batch_list_lines(names, stats, flags, now=now)

        def single(entry: listing.Entry) -> list[str]:
            name = paths.basename(path)
            if kind == "NLST":
                return [name]
            if kind == "MLSD":
                raise FTPError(R.MLSD_NOT_A_DIRECTORY)
            return listing.list_lines([replace(entry, name=name)], flags, now=now)

        def got_entry(entry: listing.Entry) -> Any:
            if entry.is_dir:
                return self.server.run_io(format_listing)
            return single(entry)

        return shell.stat(path).addCallback(got_entry)

    def _listing(self: FTPSession, kind: str, argument: str) -> Any:
        path = self.path_argument(list_arguments(argument) if kind != "MLSD" else argument)
        self.state.params.rest = 0  # REST applies to the next RETR/STOR only

        async def body(transfer: Transfer) -> Reply:
            lines = await self.listing_lines(kind, path)
            connection = await self._open_data(transfer)
            # Encoded (and the lines freed) in the pool while the client does
            # its data handshake.
            encoded = self.server.run_io(listing.listing_payload, lines)
            del lines
            self._opening(connection)
            await self._secure(transfer, connection)
            payload: bytes = await encoded
            connection.transport.write(payload)  # type: ignore[union-attr]
            bandwidth = self.bandwidth()
            if bandwidth is not None:
                # Sent in one piece; the site's next transfers pay the debt off.
                bandwidth.charge(len(payload))
            self.state.bytes_sent += len(payload)
            reply = await self._finish_send(transfer, connection)
            if (
                kind == "LIST"
                and reply.code == 226
                and self.site_settings().directory_browse.show_flags
                & ShowFlags.DISPLAY_AVAILABLE_BYTES
            ):
                free = await self.state.shell.free_bytes(path)
                return framed_reply(
                    R.TRANSFER_COMPLETE, before=(listing.available_bytes_text(free),)
                )
            return reply

        return self._start(kind, path, body)

    def ftp_LIST(self: FTPSession, argument: str) -> Any:
        return self._listing("LIST", argument)

    def ftp_NLST(self: FTPSession, argument: str) -> Any:
        return self._listing("NLST", argument)

    def ftp_MLSD(self: FTPSession, argument: str) -> Any:
        return self._listing("MLSD", argument)

    # ---------------------------------------------------------------- abort
    def ftp_ABOR(self: FTPSession, argument: str) -> Reply:
        transfer = self.transfer
        if transfer is None:
            self.close_data_channel()
            return format_reply(R.ABOR_NO_TRANSFER)
        transfer.replied = True
        transfer.abort("ABOR")
        self.send(format_reply(R.TRANSFER_ABORTED))
        return format_reply(R.ABOR_OK)
