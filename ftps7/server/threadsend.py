"""RETR sent by one pool thread (see `handover` for why and how the thread owns the connection).

TLS: ``readinto`` a preallocated buffer, ``SSL_write`` into the memory BIO,
``BIO_read`` the records out into another preallocated buffer, blocking
``send``. Clear binary downloads use ``sendfile``. TYPE A converts line ends
per round (`transfers.to_ascii`).
"""

from __future__ import annotations

import os
import select
import socket
from typing import Any

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib
from twisted.internet import defer, error
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ftps7 import logfilter
from ftps7.core.bandwidth import Bandwidth
from ftps7.server.handover import (
    BULK_CHUNK,
    CIPHER_CHUNK,
    ThreadedTransfer,
    TransferCancelledError,
)
from ftps7.server.transfers import Readable, to_ascii

log = Logger(observer=logfilter.observer)


def wait_writable(sock: socket.socket, timeout: float | None) -> None:
    """Block until ``sock`` can take more bytes (``sendfile`` on a socket with a timeout)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    if not poller.poll(None if timeout is None else int(timeout * 1000)):
        raise TimeoutError("data connection send timed out")


class ThreadedSender(ThreadedTransfer):
    """Sends a whole file from one pool thread; the reactor path's drop-in for RETR.

    ``bytes_sent`` is updated by the thread as it goes (a plain int store, read
    by the data channel watchdog and STAT on the reactor thread).
    """

    def __init__(
        self,
        pool: ThreadPool,
        reactor: Any,
        source: Readable,
        connection: Any,
        *,
        ascii: bool,
        timeout: float,
        bandwidth: Bandwidth | None = None,
    ) -> None:
        super().__init__(pool, reactor, connection, timeout, bandwidth)
        self.source = source
        self.ascii = ascii
        self.bytes_sent = 0
        self.done: defer.Deferred[int] = defer.Deferred()

    def start(self) -> defer.Deferred[int]:
        self._lend()
        return self.done

    # -- the thread
    def _run(self, pending: bytes) -> int:
        sock = self._socket
        if pending:
            sock.sendall(pending)
        if self._tls is None:
            self._send_clear(sock)
        else:
            self._send_tls(sock, self._tls)
        if self.cancelled:
            raise TransferCancelledError()
        return self.bytes_sent

    def _send_clear(self, sock: socket.socket) -> None:
        source: Any = self.source
        if not self.ascii and hasattr(source, "fileno"):
            offset = source.tell()
            fd = source.fileno()
            while not self.cancelled:
                try:
                    sent = os.sendfile(sock.fileno(), fd, offset, self.chunk)
                except BlockingIOError:
                    # A socket timeout makes the fd non-blocking; wait for room.
                    wait_writable(sock, self.timeout)
                    continue
                if sent == 0:
                    return
                offset += sent
                self.bytes_sent += sent
                self._pace(sent)
            return
        previous_cr = False
        while not self.cancelled:
            chunk = source.read(self.chunk)
            if not chunk:
                return
            if self.ascii:
                chunk, previous_cr = to_ascii(chunk, previous_cr)
            sock.sendall(chunk)
            self.bytes_sent += len(chunk)
            self._pace(len(chunk))

    def _send_tls(self, sock: socket.socket, tls: SSL.Connection) -> None:
        source: Any = self.source
        plain = bytearray(BULK_CHUNK)
        plain_view = memoryview(plain)
        cipher = bytearray(CIPHER_CHUNK)
        cipher_view = memoryview(cipher)
        cipher_pointer = _ffi.from_buffer(cipher)
        outgoing = tls._from_ssl  # the memory BIO Twisted's TLS protocol reads records from
        previous_cr = False
        readinto = None if self.ascii else getattr(source, "readinto", None)
        while not self.cancelled:
            if readinto is not None:
                count = readinto(plain_view[: self.chunk])
                if not count:
                    return
                tls.sendall(plain_view[:count])
            else:
                chunk = source.read(self.chunk)
                if not chunk:
                    return
                if self.ascii:
                    chunk, previous_cr = to_ascii(chunk, previous_cr)
                count = len(chunk)
                tls.sendall(chunk)
            while (produced := _lib.BIO_read(outgoing, cipher_pointer, CIPHER_CHUNK)) > 0:
                sock.sendall(cipher_view[:produced])
            self.bytes_sent += count
            self._pace(count)

    # -- back on the reactor
    def _hand_back(self, ok: bool, result: Any) -> None:
        transport = self._transport
        if self.done.called:  # cancelled by the transfer (ABOR): it already replied
            transport.abortConnection()
            return
        if ok and not self.cancelled:
            self.done.callback(result)
            return
        # Cancelled or failed (the peer reset, a timeout, a read error): the
        # connection is unusable; close it hard and report a lost transfer.
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
