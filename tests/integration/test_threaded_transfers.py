"""Transfers run by a pool thread (server/handover.py, threadsend.py, threadrecv.py).

The thread owns the data connection's socket and TLS object for the length of
the transfer, so these tests pin what must survive the hand-over: exact bytes
across many 1 MiB rounds both ways (REST offsets, APPE, TYPE A, PROT P and
PROT C/sendfile), ABOR and the data channel timeout while the thread is
blocked on a client that stopped reading or sending, and a server shutdown in
the same situation. Truncated uploads and size limits on the thread path are
in test_tls_data_channel.py and test_data_channel.py.
"""

from __future__ import annotations

import contextlib
import ftplib
import functools
import io
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ftps7.server.state import SMALL_DOWNLOAD
from tests.integration.conftest import Running
from tests.integration.test_tls_data_channel import abort_socket, make_big_file, protected_client
from tests.integration.test_tls_policies import RawClient

pytestmark = pytest.mark.integration

THREADED = r"RETR {} sent by a transfer thread"
#: A download large enough for a transfer thread (state.SMALL_DOWNLOAD).
MEDIUM = bytes(range(256)) * (SMALL_DOWNLOAD // 256)
RECEIVED = r"{} {} received by a transfer thread"


@pytest.fixture
def start_server(start_server: Callable[..., Running]) -> Callable[..., Running]:
    """The servers of this module log at debug: who ran each transfer is a debug line."""
    return functools.partial(start_server, extra_args=("--log-level", "debug"))


def payload() -> bytes:
    """3 MiB and change of bytes with bare LFs, CRLFs and a CR at chunk edges."""
    block = bytearray(os.urandom(1 << 20))
    block[-1:] = b"\r"
    block[1000:1002] = b"\r\n"
    block[5000:5001] = b"\n"
    return bytes(block) * 3 + b"tail\nend"


def to_crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


#: The default, and every transfer on the reactor path (transfers.py).
PATHS = pytest.mark.parametrize(
    "threads", ["", '<process transferThreads="0" />'], ids=["thread", "reactor"]
)


@PATHS
@pytest.mark.parametrize("prot_p", [True, False], ids=["prot-p", "prot-c"])
def test_large_downloads_are_exact(
    start_server: Callable[..., Running], prot_p: bool, threads: str
) -> None:
    data = payload()
    server = start_server(files={"big.bin": data}, data_policy="SslAllow", ftps7_extra=threads)
    client = server.ftps(prot_p=prot_p)

    out = io.BytesIO()
    client.retrbinary("RETR big.bin", out.write)
    assert out.getvalue() == data

    offset = (1 << 20) + 4321
    out = io.BytesIO()
    client.retrbinary("RETR big.bin", out.write, rest=offset)
    assert out.getvalue() == data[offset:]

    client.voidcmd("TYPE A")
    conn = client.transfercmd("RETR big.bin")
    received = bytearray()
    while chunk := conn.recv(1 << 16):
        received += chunk
    if prot_p:
        conn.unwrap()
    conn.close()
    assert client.voidresp().startswith("226")
    assert bytes(received) == to_crlf(data)
    client.quit()
    if threads:
        server.process.wait_for_log(r"RETR /big\.bin sent by the reactor")
        assert "transfer thread" not in server.process.log
    else:
        server.process.wait_for_log(THREADED.format("/big.bin"))


def stalled_download(server: Running) -> tuple[RawClient, Any]:
    """A PROT P RETR of a 32 MiB file whose client read once and then stopped."""
    make_big_file(server)
    context = server.client_context()
    client = protected_client(server, context)
    data = client.open_passive(tls=context)
    client.send("RETR big.bin")
    assert client.reply().code == 150
    assert data.recv(65536)  # under way; now the client reads no more
    return client, data


def assert_thread_is_free_again(server: Running) -> None:
    """A new session's download gets a transfer thread (bounded retries, no sleeps).

    The thread is free once the ended transfer has handed its connection back,
    moments after the replies; until then downloads take the reactor path.
    """
    (server.root / "medium.bin").write_bytes(MEDIUM)
    again = server.ftps()
    for _ in range(100):
        again.retrbinary("RETR medium.bin", io.BytesIO().write)
        if re.search(THREADED.format("/medium.bin"), server.process.log):
            break
    else:
        pytest.fail("the transfer thread was never free again")
    again.quit()


@PATHS
@pytest.mark.parametrize("prot_p", [True, False], ids=["prot-p", "prot-c"])
def test_a_sites_max_bandwidth_paces_its_transfers(
    start_server: Callable[..., Running], prot_p: bool, threads: str
) -> None:
    """3 MiB each way under a 2 MB/s cap: exact, and the server says it held them back.

    (No clock in the test: that the cap was applied is the server's log line,
    which only a transfer that had to wait for the bucket writes.)
    """
    data = payload()
    server = start_server(
        files={"big.bin": data},
        data_policy="SslAllow",
        ftps7_extra=threads,
        extra='<connections maxBandwidth="2000000" />',
    )
    client = server.ftps(prot_p=prot_p)
    out = io.BytesIO()
    client.retrbinary("RETR big.bin", out.write)
    assert out.getvalue() == data
    assert client.storbinary("STOR up.bin", io.BytesIO(data)).startswith("226")
    assert (server.root / "up.bin").read_bytes() == data
    client.quit()
    for command, path in (("RETR", "/big.bin"), ("STOR", "/up.bin")):
        server.process.wait_for_log(
            rf"{command} {path} waited \d+\.\d s for the site's maxBandwidth"
        )


@PATHS
def test_abor_ends_a_transfer_waiting_for_the_sites_max_bandwidth(
    start_server: Callable[..., Running], threads: str
) -> None:
    """At 20 kB/s a 32 MiB download would take half an hour; ABOR still ends it (no hang)."""
    server = start_server(ftps7_extra=threads, extra='<connections maxBandwidth="20000" />')
    client, data = stalled_download(server)  # reads once, then waits for the replies
    assert client.cmd("ABOR").code == 426
    assert client.reply().code == 226
    assert client.cmd("NOOP").code == 200
    data.close()
    client.close()
    server.process.wait_for_log(r"RETR /big\.bin waited \d+\.\d s for the site's maxBandwidth")


def test_abor_while_the_client_stopped_reading(server: Running) -> None:
    client, data = stalled_download(server)
    server.process.wait_for_log(THREADED.format("/big.bin"))
    assert client.cmd("ABOR").code == 426
    assert client.reply().code == 226
    assert client.cmd("NOOP").code == 200  # the session goes on
    data.close()
    client.close()


def test_data_channel_timeout_while_the_client_stopped_reading(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(extra='<connections dataChannelTimeout="2" />')
    client, data = stalled_download(server)
    assert client.reply().code == 426  # the watchdog ended it; no reply was lost
    assert client.cmd("NOOP").code == 200
    data.close()
    client.close()
    server.process.wait_for_log(r"RETR /big\.bin aborted \(data channel timeout\)")


def test_an_upload_that_only_trickles_is_ended_by_min_bytes_per_second(
    start_server: Callable[..., Running],
) -> None:
    """Bytes keep moving, so dataChannelTimeout alone would never end it."""
    server = start_server(
        extra='<connections dataChannelTimeout="1" minBytesPerSecond="1000000" />'
    )
    client = server.ftps()
    conn = client.transfercmd("STOR slow.bin")
    stop = threading.Event()

    def trickle() -> None:  # a slow client: 100 bytes every 20 ms, ~5 KB/s
        with contextlib.suppress(OSError, ValueError):
            while not stop.wait(0.02):
                conn.sendall(b"x" * 100)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        with pytest.raises(ftplib.error_temp, match="^426"):
            client.voidresp()
    finally:
        stop.set()
        sender.join(10)
    conn.close()
    assert client.sendcmd("NOOP").startswith("200")
    client.quit()
    server.process.wait_for_log(
        r"STOR /slow\.bin aborted \(below minBytesPerSecond: \d+ bytes in 1 s\)"
    )
    assert not (server.root / "slow.bin").exists()


def test_shutdown_does_not_wait_for_a_stalled_download(server: Running) -> None:
    client, data = stalled_download(server)
    server.process.wait_for_log(THREADED.format("/big.bin"))
    process = server.process.process
    assert process is not None
    process.send_signal(signal.SIGTERM)
    try:
        # The data channel timeout (30 s by default) would otherwise keep the
        # transfer thread, and so twistd, alive.
        process.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail("ftps7 did not stop while a download thread was blocked")
    data.close()
    client.close()


@PATHS
@pytest.mark.parametrize("prot_p", [True, False], ids=["prot-p", "prot-c"])
def test_large_uploads_are_exact(
    start_server: Callable[..., Running], prot_p: bool, threads: str
) -> None:
    data = payload()
    server = start_server(data_policy="SslAllow", ftps7_extra=threads)
    client = server.ftps(prot_p=prot_p)

    assert client.storbinary("STOR up.bin", io.BytesIO(data)).startswith("226")
    assert (server.root / "up.bin").read_bytes() == data
    if threads:
        server.process.wait_for_log(r"STOR /up\.bin received by the reactor")
    else:
        server.process.wait_for_log(RECEIVED.format("STOR", "/up.bin"))

    assert client.storbinary("APPE up.bin", io.BytesIO(data[:12345])).startswith("226")
    assert (server.root / "up.bin").read_bytes() == data + data[:12345]

    offset = (1 << 20) + 99
    client.sendcmd(f"REST {offset}")
    assert client.storbinary("STOR up.bin", io.BytesIO(data[offset:])).startswith("226")
    assert (server.root / "up.bin").read_bytes() == data

    client.voidcmd("TYPE A")  # storbinary would switch to TYPE I
    conn = client.transfercmd("STOR text.txt")
    conn.sendall(to_crlf(data))
    if prot_p:
        conn.unwrap()
    conn.close()
    assert client.voidresp().startswith("226")
    assert (server.root / "text.txt").read_bytes() == to_crlf(data).replace(b"\r\n", b"\n")
    client.quit()


def test_abor_while_the_client_stopped_sending(server: Running) -> None:
    context = server.client_context()
    client = protected_client(server, context)
    data = client.open_passive(tls=context)
    client.send("STOR stalled.bin")
    assert client.reply().code == 150
    data.sendall(os.urandom(100_000))
    server.process.wait_for_log(RECEIVED.format("STOR", "/stalled.bin"))
    assert client.cmd("ABOR").code == 426
    assert client.reply().code == 226
    assert client.cmd("NOOP").code == 200
    assert not (server.root / "stalled.bin").exists()  # never replaced by a partial file
    data.close()
    client.close()


def test_reset_during_a_clear_upload_keeps_the_old_file(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(data_policy="SslAllow")
    client = server.ftps(prot_p=False)
    client.voidcmd("TYPE I")
    conn = client.transfercmd("STOR hello.txt")
    conn.sendall(os.urandom(3 << 20))
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()  # RST: not a clean end
    with pytest.raises(ftplib.error_temp, match="^426"):
        client.voidresp()
    assert (server.root / "hello.txt").read_bytes() == b"Hello, world!\n"
    client.quit()


def test_transfers_beyond_the_thread_pool_run_on_the_reactor(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(ftps7_extra='<process transferThreads="1" />')
    first, stalled = stalled_download(server)  # holds the only transfer thread
    server.process.wait_for_log(THREADED.format("/big.bin"))
    (server.root / "medium.bin").write_bytes(MEDIUM)
    second = server.ftps()
    out = io.BytesIO()
    second.retrbinary("RETR medium.bin", out.write)  # large enough for a thread
    assert out.getvalue() == MEDIUM
    assert second.storbinary("STOR copy.txt", io.BytesIO(b"copy")).startswith("226")
    assert (server.root / "copy.txt").read_bytes() == b"copy"
    server.process.wait_for_log(r"RETR /medium\.bin sent by the reactor")
    server.process.wait_for_log(r"STOR /copy\.txt received by the reactor")
    second.quit()
    assert first.cmd("ABOR").code == 426
    assert first.reply().code == 226
    stalled.close()
    assert_thread_is_free_again(server)
    first.close()


def test_session_end_during_a_stalled_download_frees_the_thread(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(ftps7_extra='<process transferThreads="1" />')
    client, data = stalled_download(server)
    server.process.wait_for_log(THREADED.format("/big.bin"))
    abort_socket(client.sock)  # the control connection vanishes mid-transfer
    server.process.wait_for_log(r"session 1 from \S+ closed")
    assert_thread_is_free_again(server)
    data.close()
