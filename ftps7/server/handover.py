"""Lending a data connection to one pool thread for the length of a transfer.

The reactor path moves every chunk of a transfer through Twisted's TLS
protocol (``SSL_write``/``SSL_read`` on memory BIOs, copies in and out per 32
KiB), the transport's buffers and a thread-pool hop for each file read or
write: about 1.1 CPU-seconds per GiB downloaded. A thread that owns the data
connection for the whole transfer does the same work in a tight loop over
preallocated buffers with the GIL released in every read, encrypt, decrypt,
send and write: 0.4 CPU-seconds per GiB (docs/performance.md). The threads
are `threadsend.ThreadedSender` (RETR) and `threadrecv.ThreadedReceiver`
(STOR, APPE, STOU); this module is what they share: taking the socket and
the TLS object away from the reactor and giving them back.

While the thread owns the connection the reactor watches the socket neither
for reading nor for writing, and nothing else may touch the TLS object. A
cancel (ABOR, data channel timeout, session end, shutdown) only sets a flag
and shuts the socket down, which ends a blocked send or receive at once. The
connection is handed back to the reactor, non-blocking again, before the
result is reported.

The take-over must not happen inside Twisted's handshake callback (its TLS
layer still reads the connection after the callback returns): callers wait
one reactor turn after the data handshake. A connection the hand-over cannot
take safely (Twisted's TLS layer still holds application bytes) and a busy
pool fall back to the reactor path (`usable`, `ServerState.file_sender`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from typing import Any

from OpenSSL import SSL
from twisted.internet import defer
from twisted.python.threadpool import ThreadPool

from ftps7.core.bandwidth import Bandwidth

#: Plaintext per round: 1 MiB halves the per-round overhead of 256 KiB and
#: is still well under a millisecond of work.
BULK_CHUNK = 1 << 20
#: Ciphertext of BULK_CHUNK bytes: 64 records of 16 KiB plus at most 29 bytes
#: each (TLS 1.2 GCM; TLS 1.3 adds 22), read out of the BIO in slices of this.
CIPHER_CHUNK = BULK_CHUNK + 64 * 64

_running: weakref.WeakSet[ThreadedTransfer] = weakref.WeakSet()


def cancel_threaded_transfers() -> None:
    """Cancel every running threaded transfer (at shutdown, before the pool is joined)."""
    for transfer in list(_running):
        transfer.cancel()


class TransferCancelledError(Exception):
    """The transfer was cancelled while the thread owned the connection."""


def usable(connection: Any) -> bool:
    """Can a thread take this data connection over now without losing bytes?"""
    transport = connection.transport
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


def _take_twisted_buffer(transport: Any) -> bytes:
    """Bytes Twisted's TCP transport still holds for sending (handshake tail, tickets).

    The thread sends them first; Twisted's buffer is emptied so nothing is
    sent twice. (``dataBuffer``/``offset``/``_tempDataBuffer`` are
    ``FileDescriptor``'s buffer, unchanged since Twisted 8.)
    """
    pending = bytes(transport.dataBuffer[transport.offset :])
    if transport._tempDataBuffer:
        pending += b"".join(transport._tempDataBuffer)
    transport.dataBuffer = b""
    transport.offset = 0
    transport._tempDataBuffer = []
    transport._tempDataLen = 0
    return pending


class ThreadedTransfer:
    """One transfer run by a pool thread that owns the data connection.

    Subclasses implement ``_run(pending)`` (in the thread; ``pending`` are
    bytes to send first) and ``_hand_back(ok, result)`` (on the reactor, after
    the connection is the reactor's again).
    """

    threaded = True

    def __init__(
        self,
        pool: ThreadPool,
        reactor: Any,
        connection: Any,
        timeout: float,
        bandwidth: Bandwidth | None = None,
    ) -> None:
        self.pool = pool
        self.reactor = reactor
        self.connection = connection
        # A backstop only: the transfer's watchdog (dataChannelTimeout) aborts a
        # stalled transfer first, with its own log line, between one and two
        # timeouts after the last byte moved.
        self.timeout = 3 * timeout if timeout > 0 else None
        # Fires when the thread has handed the connection back: the pool slot
        # is free again (counted by ServerState).
        self.finished: defer.Deferred[None] = defer.Deferred()
        self._cancelled = threading.Event()
        self._transport = connection.transport
        self._socket: socket.socket = self._transport.socket
        self._tls: SSL.Connection | None = connection.tls_connection() if connection.tls else None
        self._running = False
        # The site's maxBandwidth, if it has one: the thread moves `chunk`
        # bytes at a time and waits after each as the bucket says (`_pace`).
        self.bandwidth = bandwidth
        self.chunk = BULK_CHUNK if bandwidth is None else bandwidth.chunk(BULK_CHUNK)
        # Seconds spent waiting for the cap (read by the watchdog, which does
        # not count them against the client's minBytesPerSecond).
        self.throttled = 0.0

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _pace(self, count: int) -> None:
        """In the thread: charge ``count`` bytes to the site's cap and wait if it says so.

        The wait is on the cancel flag, so ABOR, a timeout or shutdown end it at once.
        """
        if self.bandwidth is None:
            return
        delay = self.bandwidth.charge(count)
        if delay > 0:
            self.throttled += delay
            self._cancelled.wait(delay)

    def _lend(self) -> None:
        """Take the socket away from the reactor and run the transfer in the pool."""
        transport = self._transport
        pending = _take_twisted_buffer(transport)
        transport.stopReading()
        transport.stopWriting()
        self._socket.settimeout(self.timeout)
        self._running = True
        _running.add(self)
        self.connection.lent_to = self
        self.pool.callInThreadWithCallback(self._returned, self._run, pending)

    def cancel(self) -> None:
        """Stop the transfer from the reactor thread; the thread notices at once."""
        if not self._running:
            return
        self._cancelled.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)

    def _run(self, pending: bytes) -> Any:
        raise NotImplementedError

    def _returned(self, ok: bool, result: Any) -> None:
        self.reactor.callFromThread(self._give_back, ok, result)

    def _give_back(self, ok: bool, result: Any) -> None:
        self._running = False
        _running.discard(self)
        self.connection.lent_to = None
        with contextlib.suppress(OSError):
            self._socket.setblocking(False)
        self._transport.startReading()
        try:
            self._hand_back(ok, result)
        finally:
            self.finished.callback(None)

    def _hand_back(self, ok: bool, result: Any) -> None:
        raise NotImplementedError
