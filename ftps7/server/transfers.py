"""Moving file bytes between the file system and a data connection.

File reads and writes are blocking calls, so they run in the I/O thread pool;
the reactor thread only moves the chunks. A download reads the next chunk in
the pool while the previous one is being encrypted and sent; an upload hands
chunks to the pool in order and pauses the data connection when too many are
waiting, so memory per transfer stays bounded (about 4 MiB at worst).

TYPE A converts line ends on the fly (RFC 959 §3.1.1.1): LF → CRLF when
sending, CRLF → LF when receiving; Twisted's own ASCII wrapper crashes on
bytes (RESEARCH.md §1.7, defect 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet import defer, error
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from ftps7.core.bandwidth import Bandwidth

CHUNK = 256 * 1024
HIGH_WATER = 4 * CHUNK * 4
LOW_WATER = CHUNK * 4

RunInPool = Callable[..., "defer.Deferred[Any]"]


class Readable(TypingProtocol):
    def read(self, size: int) -> bytes: ...
    def close(self) -> None: ...


class Writable(TypingProtocol):
    def write(self, data: bytes) -> None: ...


def to_ascii(chunk: bytes, previous_cr: bool) -> tuple[bytes, bool]:
    """LF → CRLF, leaving existing CRLF alone, across chunk boundaries."""
    if not chunk:
        return chunk, previous_cr
    out = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if previous_cr and chunk.startswith(b"\n"):
        out = out[1:]  # the CR went out with the previous chunk
    return out, chunk.endswith(b"\r")


class FromAscii:
    """CRLF → LF for uploads in TYPE A, holding a trailing CR until the next chunk."""

    def __init__(self) -> None:
        self._pending_cr = False

    def convert(self, chunk: bytes) -> bytes:
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if chunk.endswith(b"\r"):
            self._pending_cr = True
            chunk = chunk[:-1]
        return chunk.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        if self._pending_cr:
            self._pending_cr = False
            return b"\r"
        return b""


class _Paced:
    """A reactor-path transfer under its site's ``maxBandwidth`` (`core.bandwidth`).

    `_charge` records the bytes just moved; when the bucket is in debt a
    DelayedCall (``_capped``) holds the transfer, and `_resumed` runs once the
    debt is paid off. ``throttled`` sums the pauses (the watchdog does not
    count them against the client).
    """

    def __init__(self, bandwidth: Bandwidth | None, clock: IReactorTime | None) -> None:
        self.bandwidth = bandwidth
        self.clock = clock
        self.throttled = 0.0
        self._capped: Any = None

    def _charge(self, count: int) -> bool:
        """Charge ``count`` bytes; True when that starts a pause."""
        if self.bandwidth is None or self.clock is None:
            return False
        delay = self.bandwidth.charge(count)  # bytes that arrive during a pause count too
        if delay <= 0 or self._capped is not None:
            return False
        self.throttled += delay
        self._capped = self.clock.callLater(delay, self._uncap)
        return True

    def _uncap(self) -> None:
        self._capped = None
        # What moved during the pause (the rest of a read) may not be paid off yet.
        if not self._charge(0):
            self._resumed()

    def _cancel_pause(self) -> None:
        if self._capped is not None and self._capped.active():
            self._capped.cancel()
        self._capped = None

    def _resumed(self) -> None:
        raise NotImplementedError


class MemorySource:
    """A small file already read, whole, in the pool job that opened it.

    `FileSender` takes its chunks without a pool round trip: a 4 KiB RETR
    otherwise went to the I/O pool three times (open, read, read to find the
    end), each a thread wake-up and a reactor wake-up.
    """

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)

    def read(self, size: int) -> bytes:
        chunk, self._view = self._view[:size], self._view[size:]
        return bytes(chunk)

    def close(self) -> None:
        self._view = memoryview(b"")


@implementer(IPushProducer)
class FileSender(_Paced):
    """Streams a file to a transport, reading in the pool, honouring back-pressure."""

    threaded = False  # the reactor moves the chunks (server/threadsend.py: the threaded sender)

    def __init__(
        self,
        run: RunInPool,
        source: Readable,
        transport: Any,
        ascii: bool,
        bandwidth: Bandwidth | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        super().__init__(bandwidth, clock)
        self.run = run
        self.source = source
        self.transport = transport
        self.ascii = ascii
        # Under a site's maxBandwidth: smaller reads, and a pause after a
        # chunk whenever the bucket says so.
        self.chunk = CHUNK if bandwidth is None else bandwidth.chunk(CHUNK)
        self.bytes_sent = 0
        self.done: defer.Deferred[int] = defer.Deferred()
        self._paused = False
        self._stopped = False
        self._next: defer.Deferred[bytes] | None = None
        self._ready: bytes | None = None
        self._cr = False

    def start(self) -> defer.Deferred[int]:
        self.transport.registerProducer(self, True)
        self._read_ahead()
        if self._ready is not None:
            self._pump()
        return self.done

    def _read_ahead(self) -> None:
        if self._next is not None or self._stopped:
            return
        if isinstance(self.source, MemorySource):
            # In memory already: the chunk is ready now, and _pump's loop
            # (or start) sends it.
            self._ready = self.source.read(self.chunk)
            return
        self._next = self.run(self.source.read, self.chunk)
        self._next.addCallbacks(self._got_chunk, self._failed)

    def _got_chunk(self, chunk: bytes) -> None:
        self._next = None
        if self._stopped:
            return
        self._ready = chunk
        self._pump()

    def _pump(self) -> None:
        while (
            not self._paused
            and not self._stopped
            and self._capped is None
            and self._ready is not None
        ):
            chunk, self._ready = self._ready, None
            if not chunk:
                self._finish()
                return
            if self.ascii:
                chunk, self._cr = to_ascii(chunk, self._cr)
            self.bytes_sent += len(chunk)
            self.transport.write(chunk)
            self._charge(len(chunk))
            # Read the next chunk while this one is encrypted and sent; after
            # the write, so chunks go out in order even if the read completes
            # at once.
            self._read_ahead()

    def _resumed(self) -> None:
        self._pump()

    def _finish(self) -> None:
        self._stopped = True
        self.transport.unregisterProducer()
        if not self.done.called:
            self.done.callback(self.bytes_sent)

    def _failed(self, failure: Failure) -> None:
        self._next = None
        if self._stopped:
            # The transfer already ended (ABOR, connection lost: stopProducing)
            # and the file was closed under this read; the transport may be gone.
            return
        self._stopped = True
        self.transport.unregisterProducer()
        if not self.done.called:
            self.done.errback(failure)

    # IPushProducer
    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._pump()

    def stopProducing(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._cancel_pause()
        if not self.done.called:
            self.done.errback(Failure(error.ConnectionLost("data connection lost")))


class FileReceiver(_Paced):
    """Collects uploaded bytes and writes them in order in the pool.

    ``feed`` is called from the reactor with each received chunk; ``finish``
    waits for every write to land. A write error (disk full, quota) is kept and
    reported by ``finish`` and the data connection is aborted at once.
    """

    threaded = False  # server/threadrecv.py: the threaded receiver

    def __init__(
        self,
        run: RunInPool,
        target: Writable,
        transport: Any,
        ascii: bool,
        bandwidth: Bandwidth | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        # Under a site's maxBandwidth the connection is not read while the
        # bucket is in debt.
        super().__init__(bandwidth, clock)
        self.run = run
        self.target = target
        self.transport = transport
        self.converter = FromAscii() if ascii else None
        self.bytes_received = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._in_flight = 0
        self._chain: defer.Deferred[None] = defer.succeed(None)
        self._paused = False
        self.error: Failure | None = None
        self.too_large = False

    def receive(self, connection: Any, room: int) -> defer.Deferred[None]:
        """Take the connection's bytes until it closes; more than ``room`` bytes is too large.

        Fires when the data connection is closed (its ``clean_close`` says how).
        """

        def feed(data: bytes) -> None:
            if self.too_large:
                return
            if self.bytes_received + len(data) > room:
                self.too_large = True
                connection.abort()
                return
            self.feed(data)

        connection.attach_sink(feed)
        if connection.is_closed:
            return defer.succeed(None)
        ended: defer.Deferred[None] = defer.Deferred()
        connection.closed.addBoth(lambda _: ended.callback(None))
        return ended

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        self.bytes_received += len(data)
        if self._charge(len(data)) and not self._paused:
            self.transport.pauseProducing()
        if self.converter is not None:
            data = self.converter.convert(data)
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        block = b"".join(self._buffer)
        self._buffer = []
        self._buffered = 0
        self._in_flight += len(block)
        if self._in_flight > HIGH_WATER and not self._paused:
            self._paused = True
            if self._capped is None:
                self.transport.pauseProducing()

        def write(_: object) -> defer.Deferred[None]:
            if self.error is not None:
                return defer.succeed(None)
            return self.run(self.target.write, block)

        def written(_: object) -> None:
            self._in_flight -= len(block)
            if self._paused and self._in_flight < LOW_WATER:
                self._paused = False
                if self._capped is None:
                    self.transport.resumeProducing()

        def failed(failure: Failure) -> None:
            self._in_flight -= len(block)
            if self.error is None:
                self.error = failure
                self.transport.abortConnection()

        self._chain.addCallback(write)
        self._chain.addCallbacks(written, failed)

    def _resumed(self) -> None:
        if not self._paused:
            self.transport.resumeProducing()  # a no-op once the connection is gone

    def finish(self) -> defer.Deferred[None]:
        """Flush what is buffered; fire when all writes are done (or the first error)."""
        if self.converter is not None:
            tail = self.converter.flush()
            if tail:
                self._buffer.append(tail)
                self._buffered += len(tail)
        self._flush()
        done: defer.Deferred[None] = defer.Deferred()

        def report(_: object) -> None:
            if self.error is not None:
                done.errback(self.error)
            else:
                done.callback(None)

        self._chain.addBoth(report)
        return done
