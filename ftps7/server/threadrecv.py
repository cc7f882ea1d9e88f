"""Uploads (STOR, APPE, STOU) received by one pool thread (see `handover`).

TLS: ``recv_into`` a preallocated buffer, ``BIO_write`` it into the memory
BIO, ``SSL_read`` the plaintext into a second preallocated buffer until about
1 MiB has collected, then one ``write`` to the temporary upload file. Clear
connections write what each ``recv_into`` returns. TYPE A converts CRLF per
write (`transfers.FromAscii`).

How the connection ended decides the upload's fate, as on the reactor path:
a TLS close_notify (clear: FIN) is clean; end of stream without close_notify,
a reset, a cancel or a TLS error is not. The thread records which one it saw
on the connection (``DataConnection.ended_cleanly``) and closes it: a clean
end with the reactor's TLS shutdown (our close_notify), anything else hard.
"""

from __future__ import annotations

import socket
from typing import Any

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ftps7 import logfilter
from ftps7.core.bandwidth import Bandwidth
from ftps7.server.handover import BULK_CHUNK, CIPHER_CHUNK, ThreadedTransfer
from ftps7.server.transfers import FromAscii, Writable

log = Logger(observer=logfilter.observer)

#: Largest TLS record plaintext: SSL_read never returns more per call.
_RECORD = 16 * 1024


class _Stop(Exception):  # noqa: N818 - control flow inside the thread, never escapes
    """End the receive loop: too large, or the file write failed."""


class ThreadedReceiver(ThreadedTransfer):
    """Receives an upload in one pool thread; the reactor path's drop-in (`transfers.FileReceiver`).

    ``bytes_received`` counts bytes off the wire as they are decrypted (read by
    the data channel watchdog and STAT on the reactor thread).
    """

    def __init__(
        self,
        pool: ThreadPool,
        reactor: Any,
        target: Writable,
        connection: Any,
        *,
        ascii: bool,
        timeout: float,
        bandwidth: Bandwidth | None = None,
    ) -> None:
        super().__init__(pool, reactor, connection, timeout, bandwidth)
        self.target = target
        self.converter = FromAscii() if ascii else None
        self.bytes_received = 0
        self.too_large = False
        self.error: Failure | None = None
        self._room = 0
        self._held: list[bytes] = []
        self._ended: defer.Deferred[None] = defer.Deferred()

    def receive(self, connection: Any, room: int) -> defer.Deferred[None]:
        """Receive until the connection ends; more than ``room`` bytes is too large.

        Fires once the connection is closed, like ``FileReceiver.receive``.
        """
        self._room = room
        # Bytes that arrived (already decrypted by Twisted) before the upload began.
        self._held = self.connection.take_held()
        self._lend()
        return self._ended

    def finish(self) -> defer.Deferred[None]:
        """Every byte is written once the thread is done; report a write error, if any."""
        if self.error is not None:
            return defer.fail(self.error)
        return defer.succeed(None)

    # -- the thread
    def _run(self, pending: bytes) -> bool:
        """Returns whether the upload ended cleanly."""
        sock = self._socket
        if pending:
            sock.sendall(pending)
        try:
            for chunk in self._held:
                self._count(len(chunk))
                self._write(memoryview(chunk))
            if self._tls is None:
                return self._receive_clear(sock)
            return self._receive_tls(sock, self._tls)
        except _Stop:
            return False

    def _count(self, size: int) -> None:
        self.bytes_received += size
        if self.bytes_received > self._room:
            self.too_large = True
            raise _Stop()

    def _write(self, data: memoryview) -> None:
        try:
            if self.converter is not None:
                self.target.write(self.converter.convert(bytes(data)))
            else:
                self.target.write(data)  # type: ignore[arg-type]
        except Exception:
            self.error = Failure()
            raise _Stop() from None

    def _flush_converter(self) -> None:
        if self.converter is not None:
            tail = self.converter.flush()
            if tail:
                self._write(memoryview(tail))

    def _receive_clear(self, sock: socket.socket) -> bool:
        buffer = bytearray(BULK_CHUNK)
        view = memoryview(buffer)
        while not self.cancelled:
            try:
                count = sock.recv_into(buffer, self.chunk)
            except OSError:
                return False  # reset or timed out
            if count == 0:
                if self.cancelled:
                    return False
                self._flush_converter()
                return True  # FIN: a clean end on a clear connection
            self._count(count)
            self._write(view[:count])
            self._pace(count)
        return False

    def _receive_tls(self, sock: socket.socket, tls: SSL.Connection) -> bool:
        cipher = bytearray(CIPHER_CHUNK)
        cipher_pointer = _ffi.from_buffer(cipher)
        plain = bytearray(BULK_CHUNK)
        plain_view = memoryview(plain)
        plain_pointer = _ffi.from_buffer(plain)
        ssl = tls._ssl
        incoming = tls._into_ssl
        filled = 0
        try:
            while not self.cancelled:
                try:
                    count = sock.recv_into(cipher, self.chunk)
                except OSError:
                    count = -1  # reset or timed out
                if count <= 0:
                    # Reset, or end of stream without close_notify: truncated.
                    # What arrived intact is written (keepPartialUploads keeps it).
                    if filled:
                        self._write(plain_view[:filled])
                    return False
                _lib.BIO_write(incoming, cipher_pointer, count)
                while True:
                    if filled > BULK_CHUNK - _RECORD:
                        self._write(plain_view[:filled])
                        filled = 0
                    got = _lib.SSL_read(ssl, plain_pointer + filled, BULK_CHUNK - filled)
                    if got > 0:
                        self._count(got)
                        filled += got
                        continue
                    reason = _lib.SSL_get_error(ssl, got)
                    if reason == _lib.SSL_ERROR_WANT_READ:
                        break
                    if filled:
                        self._write(plain_view[:filled])
                        filled = 0
                    if reason == _lib.SSL_ERROR_ZERO_RETURN:
                        self._flush_converter()
                        return not self.cancelled  # close_notify: the clean end
                    return False  # a TLS error: truncated or forged
                # What OpenSSL writes meanwhile (the tickets, a KeyUpdate reply)
                # stays in its BIO until our close_notify (`datatls`).
                self._pace(count)
            if filled:
                self._write(plain_view[:filled])
            return False
        finally:
            # Leave no error in this pool thread's OpenSSL error queue: pyOpenSSL
            # would report it from the next unrelated call in the same thread.
            _lib.ERR_clear_error()

    # -- back on the reactor
    def _hand_back(self, ok: bool, result: Any) -> None:
        clean = bool(ok and result is True and not self.cancelled)
        if not ok and isinstance(result, Failure):
            log.info(
                "data connection to {peer} failed during a threaded upload: {why}",
                peer=self.connection.peer_host(),
                why=result.getErrorMessage() or result.type.__name__,
            )
        self.connection.ended_cleanly = clean
        if clean:
            self.connection.transport.loseConnection()  # our close_notify, then FIN
        else:
            self.connection.transport.abortConnection()
        closed = self.connection.closed
        if self.connection.is_closed:
            self._ended.callback(None)
        else:
            closed.addBoth(lambda _: self._ended.callback(None))
