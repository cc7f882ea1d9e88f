"""The byte movers of ftps7/server/transfers.py, with an in-memory transport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from ftps7.server.transfers import (
    CHUNK,
    FileReceiver,
    FileSender,
    FromAscii,
    MemorySource,
    to_ascii,
)


class ManualPool:
    """Runs nothing until told: each call returns a Deferred the test fires."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...], defer.Deferred[Any]]] = []

    def __call__(self, function: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.calls.append((function, args, d))
        return d

    def run_next(self) -> None:
        function, args, d = self.calls.pop(0)
        try:
            d.callback(function(*args))
        except Exception:  # noqa: BLE001
            d.errback(Failure())


def sync_pool(function: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    return defer.maybeDeferred(function, *args)


class Source:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    def read(self, size: int) -> bytes:
        if self.closed:
            raise ValueError("read of closed file")
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def close(self) -> None:
        self.closed = True


class Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


def test_sender_streams_the_whole_file() -> None:
    transport = StringTransport()
    data = bytes(range(256)) * 5000
    sender = FileSender(sync_pool, Source(data), transport, ascii=False)
    result: list[int] = []
    sender.start().addCallback(result.append)
    assert transport.value() == data
    assert result == [len(data)]
    assert transport.producer is None


def test_a_file_read_whole_is_sent_without_the_pool() -> None:
    transport = StringTransport()
    pool = ManualPool()
    data = b"small\r\nfile" * 1000
    result: list[int] = []
    FileSender(pool, MemorySource(data), transport, ascii=False).start().addCallback(
        result.append
    )
    assert pool.calls == []  # no round trip to a thread
    assert transport.value() == data and result == [len(data)]
    # In chunks under a bandwidth cap or in ASCII mode, still without the pool.
    transport = StringTransport()
    sender = FileSender(pool, MemorySource(b"a\nb" * CHUNK), transport, ascii=True)
    sender.chunk = 1000
    sender.start().addCallback(result.append)
    assert pool.calls == [] and transport.value() == b"a\r\nb" * CHUNK
    assert result[-1] == 4 * CHUNK


def test_a_file_read_whole_waits_while_the_transport_is_full() -> None:
    transport = StringTransport()
    sender = FileSender(ManualPool(), MemorySource(b"z" * 3000), transport, ascii=False)
    sender.chunk = 1000
    sender.pauseProducing()
    done = sender.start()
    assert transport.value() == b"" and not done.called
    sender.resumeProducing()
    assert transport.value() == b"z" * 3000 and done.called


def test_sender_honours_back_pressure() -> None:
    transport = StringTransport()
    pool = ManualPool()
    sender = FileSender(pool, Source(b"x" * (3 * CHUNK)), transport, ascii=False)
    sender.start()
    sender.pauseProducing()
    pool.run_next()  # first chunk arrives while paused: nothing is written
    assert transport.value() == b""
    sender.resumeProducing()
    assert len(transport.value()) == CHUNK


def test_a_read_failing_after_abort_does_not_touch_the_transport() -> None:
    """ABOR closes the file under an in-flight read; its failure must stay quiet."""
    transport = StringTransport()
    pool = ManualPool()
    source = Source(b"y" * CHUNK)
    sender = FileSender(pool, source, transport, ascii=False)
    outcome: list[Failure] = []
    sender.start().addErrback(outcome.append)
    sender.stopProducing()  # the data connection went away
    transport.unregisterProducer()
    source.close()
    pool.run_next()  # the read now fails
    assert len(outcome) == 1  # reported once, by stopProducing
    assert transport.producer is None


@pytest.mark.parametrize("split", [1, 2, 3, 4, 5, 7])
def test_ascii_conversion_across_chunk_boundaries(split: int) -> None:
    text = b"a\nb\r\nc\n\nd\r\n"
    cr = False
    out = b""
    for start in range(0, len(text), split):
        chunk, cr = to_ascii(text[start : start + split], cr)
        out += chunk
    assert out == b"a\r\nb\r\nc\r\n\r\nd\r\n"
    back = FromAscii()
    restored = b"".join(back.convert(out[i : i + split]) for i in range(0, len(out), split))
    assert restored + back.flush() == b"a\nb\nc\n\nd\n"


def test_receiver_writes_in_order_and_reports_write_errors() -> None:
    transport = StringTransport()
    sink = Sink()
    receiver = FileReceiver(sync_pool, sink, transport, ascii=False)
    for index in range(5):
        receiver.feed(bytes([index]) * CHUNK)
    done: list[object] = []
    receiver.finish().addCallback(done.append)
    assert done == [None]
    assert sink.data == b"".join(bytes([i]) * CHUNK for i in range(5))

    class Full:
        def write(self, data: bytes) -> None:
            raise OSError(28, "No space left on device")

    transport = StringTransport()
    failing = FileReceiver(sync_pool, Full(), transport, ascii=False)
    failing.feed(b"z" * CHUNK)
    errors: list[Failure] = []
    failing.finish().addErrback(errors.append)
    assert errors and errors[0].check(OSError)
    assert transport.disconnecting or transport.disconnected
