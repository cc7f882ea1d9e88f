"""Downloads sent by one pool thread instead of the reactor.

The reactor path (``transfers.FileSender``) moves every 256 KiB chunk through
the thread pool, Twisted's TLS protocol (``SSL_write`` into a memory BIO, a
copy out of it per 32 KiB) and the transport's write buffer (another copy):
about 1.1 CPU-seconds per GiB. A thread that owns the data connection for the
length of the transfer does the same work in a tight loop, with the GIL
released in every read, encrypt and send: about 0.4-0.6 CPU-seconds per GiB
(docs/performance.md). Clear (PROT C) binary downloads use ``sendfile``.

While the thread owns the connection the reactor does not watch the socket
(neither reading nor writing) and nothing else may touch the TLS object; a
cancel (ABOR, data channel timeout, session end) only sets a flag and shuts the
socket down, which ends a blocked send at once. The connection is handed back
to the reactor, non-blocking again, before the result is reported, so the
usual close (TLS close_notify, 226 only after a clean close) follows.

Anything the handover cannot take over safely (a connection with bytes still
buffered by Twisted's TLS layer, a busy pool) falls back to the reactor path:
the caller asks ``ThreadedSender.usable`` first.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import weakref
from typing import Any

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib
from twisted.internet import defer, error
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ftps7.server.transfers import CHUNK, Readable, to_ascii

# Encrypting 1 MiB per SSL_write/send round halves the per-chunk overhead of
# 256 KiB at no cost in latency (one round is well under a millisecond).
BULK_CHUNK = 4 * CHUNK
# Ciphertext of BULK_CHUNK bytes: 64 TLS records of at most 16 KiB + 22 bytes
# (TLS 1.3 AEAD) or + 29 (TLS 1.2 GCM); read out of the BIO in slices of this.
_OUT_SIZE = BULK_CHUNK + 64 * 64


log = Logger()

_running: weakref.WeakSet[ThreadedSender] = weakref.WeakSet()


def cancel_threaded_transfers() -> None:
    """Cancel every running threaded transfer (at shutdown, before the pool is joined)."""
    for sender in list(_running):
        sender.cancel()


class TransferCancelledError(Exception):
    """The transfer was cancelled while the thread owned the connection."""


def _tcp_transport(connection: Any) -> Any:
    """The ``tcp.Server``/``tcp.Client`` under a DataConnection (TLS or not)."""
    return connection.transport


def _twisted_buffered(transport: Any) -> bytes:
    """Bytes Twisted's TCP transport still holds for sending (handshake tail, tickets)."""
    pending = bytes(transport.dataBuffer[transport.offset :])
    if transport._tempDataBuffer:
        pending += b"".join(transport._tempDataBuffer)
    return pending


def _clear_twisted_buffer(transport: Any) -> None:
    transport.dataBuffer = b""
    transport.offset = 0
    transport._tempDataBuffer = []
    transport._tempDataLen = 0


class ThreadedSender:
    """Sends a whole file from one pool thread; the reactor path's drop-in for RETR.

    ``bytes_sent`` is updated by the thread as it goes (a plain int store, read
    by the data channel watchdog and STAT on the reactor thread).
    """

    threaded = True

    def __init__(
        self,
        pool: ThreadPool,
        reactor: Any,
        source: Readable,
        connection: Any,
        *,
        ascii: bool,
        timeout: float,
    ) -> None:
        self.pool = pool
        self.reactor = reactor
        self.source = source
        self.connection = connection
        self.ascii = ascii
        # A backstop only: the transfer's watchdog (dataChannelTimeout) aborts a
        # stalled transfer first, with its own log line, between one and two
        # timeouts after the last byte moved.
        self.timeout = 3 * timeout if timeout > 0 else None
        self.bytes_sent = 0
        self.done: defer.Deferred[int] = defer.Deferred()
        # Fires when the thread has handed the connection back (after ``done``,
        # or later if ``done`` was cancelled): the pool slot is free again.
        self.finished: defer.Deferred[None] = defer.Deferred()
        self._cancelled = threading.Event()
        self._transport = _tcp_transport(connection)
        self._socket: socket.socket = self._transport.socket
        self._tls: SSL.Connection | None = connection.tls_connection() if connection.tls else None
        self._running = False

    @staticmethod
    def usable(connection: Any) -> bool:
        """Can a thread take this connection over now without losing bytes?"""
        transport = _tcp_transport(connection)
        if connection.is_closed or getattr(transport, "socket", None) is None:
            return False
        if (
            getattr(transport, "disconnecting", False)
            or getattr(transport, "_aborting", False)
            or transport.producer is not None
        ):
            return False
        if connection.tls:
            tls_protocol = transport.protocol
            if getattr(tls_protocol, "_appSendBuffer", None):
                return False  # application bytes waiting for the handshake
            aggregator = getattr(tls_protocol, "_aggregator", None)
            if aggregator is not None and getattr(aggregator, "_buffer", None):
                return False
        return True

    def start(self) -> defer.Deferred[int]:
        """Take the socket away from the reactor and send the file in the pool."""
        transport = self._transport
        pending = _twisted_buffered(transport)
        _clear_twisted_buffer(transport)
        transport.stopReading()
        transport.stopWriting()
        self._socket.settimeout(self.timeout)
        self._running = True
        _running.add(self)
        self.connection.bulk = self
        self.pool.callInThreadWithCallback(self._returned, self._run, pending)
        return self.done

    def cancel(self) -> None:
        """Stop the transfer from the reactor thread; the thread notices at once."""
        if not self._running:
            return
        self._cancelled.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)

    # -- the thread
    def _run(self, pending: bytes) -> int:
        sock = self._socket
        if pending:
            sock.sendall(pending)
        if self._tls is None:
            return self._run_clear(sock)
        return self._run_tls(sock, self._tls)

    def _run_clear(self, sock: socket.socket) -> int:
        source: Any = self.source
        if not self.ascii and hasattr(source, "fileno"):
            offset = source.tell()
            fd = source.fileno()
            while not self._cancelled.is_set():
                try:
                    sent = os.sendfile(sock.fileno(), fd, offset, BULK_CHUNK)
                except BlockingIOError:
                    # A socket timeout makes the fd non-blocking; wait for room.
                    self._wait_writable(sock)
                    continue
                if sent == 0:
                    break
                offset += sent
                self.bytes_sent += sent
            return self._result()
        previous_cr = False
        while not self._cancelled.is_set():
            chunk = source.read(BULK_CHUNK)
            if not chunk:
                break
            if self.ascii:
                chunk, previous_cr = to_ascii(chunk, previous_cr)
            sock.sendall(chunk)
            self.bytes_sent += len(chunk)
        return self._result()

    def _wait_writable(self, sock: socket.socket) -> None:
        import select

        poller = select.poll()
        poller.register(sock.fileno(), select.POLLOUT)
        timeout_ms = None if self.timeout is None else int(self.timeout * 1000)
        if not poller.poll(timeout_ms):
            raise TimeoutError("data connection send timed out")

    def _run_tls(self, sock: socket.socket, tls: SSL.Connection) -> int:
        source: Any = self.source
        plain = bytearray(BULK_CHUNK)
        plain_view = memoryview(plain)
        cipher = bytearray(_OUT_SIZE)
        cipher_view = memoryview(cipher)
        cipher_pointer = _ffi.from_buffer(cipher)
        bio = tls._from_ssl  # the memory BIO Twisted's TLS protocol reads ciphertext from
        previous_cr = False
        readinto = getattr(source, "readinto", None)
        while not self._cancelled.is_set():
            if readinto is not None and not self.ascii:
                count = readinto(plain)
                if not count:
                    break
                tls.sendall(plain_view[:count])
            else:
                chunk = source.read(BULK_CHUNK)
                if not chunk:
                    break
                if self.ascii:
                    chunk, previous_cr = to_ascii(chunk, previous_cr)
                count = len(chunk)
                tls.sendall(chunk)
            while True:
                produced = _lib.BIO_read(bio, cipher_pointer, _OUT_SIZE)
                if produced <= 0:
                    break
                sock.sendall(cipher_view[:produced])
            self.bytes_sent += count
        return self._result()

    def _result(self) -> int:
        if self._cancelled.is_set():
            raise TransferCancelledError()
        return self.bytes_sent

    # -- back on the reactor
    def _returned(self, ok: bool, result: Any) -> None:
        self.reactor.callFromThread(self._give_back, ok, result)

    def _give_back(self, ok: bool, result: Any) -> None:
        try:
            self._hand_back(ok, result)
        finally:
            self.finished.callback(None)

    def _hand_back(self, ok: bool, result: Any) -> None:
        self._running = False
        _running.discard(self)
        self.connection.bulk = None
        transport = self._transport
        with contextlib.suppress(OSError):
            self._socket.setblocking(False)
        if self.done.called:  # cancelled by the transfer (ABOR): it already replied
            transport.startReading()
            transport.abortConnection()
            return
        if ok and not self._cancelled.is_set():
            transport.startReading()
            self.done.callback(result)
            return
        # Cancelled or failed (the peer reset, a timeout, a read error): the
        # connection is unusable; close it hard and report a lost transfer.
        transport.startReading()
        transport.abortConnection()
        reason = result if isinstance(result, Failure) else None
        if reason is not None and not reason.check(TransferCancelledError):
            log.info(
                "data connection to {peer} lost during a threaded download: {why}",
                peer=self.connection.peer_host(),
                why=reason.getErrorMessage() or reason.type.__name__,
            )
        if reason is None or reason.check(TransferCancelledError, OSError, SSL.Error):
            self.done.errback(Failure(error.ConnectionLost("data connection lost")))
        else:
            self.done.errback(reason)
