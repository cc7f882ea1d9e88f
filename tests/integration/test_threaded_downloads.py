"""Downloads sent by a transfer thread (server/threadsend.py, server/handover.py).

The thread owns the data connection's socket and TLS object for the length of
the transfer, so these tests pin what must survive the hand-over: exact bytes
across many 1 MiB rounds (REST offsets, TYPE A, PROT P and PROT C/sendfile),
ABOR and the data channel timeout while the thread is blocked on a client
that stopped reading, and a server shutdown in the same situation.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
from collections.abc import Callable

import pytest

from tests.integration.conftest import Running
from tests.integration.test_tls_data_channel import make_big_file, protected_client

pytestmark = pytest.mark.integration

THREADED = r"RETR {} sent by a transfer thread"


def payload() -> bytes:
    """3 MiB and change of bytes with bare LFs, CRLFs and a CR at chunk edges."""
    block = bytearray(os.urandom(1 << 20))
    block[-1:] = b"\r"
    block[1000:1002] = b"\r\n"
    block[5000:5001] = b"\n"
    return bytes(block) * 3 + b"tail\nend"


def to_crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize("prot_p", [True, False], ids=["prot-p", "prot-c"])
def test_large_downloads_are_exact(start_server: Callable[..., Running], prot_p: bool) -> None:
    data = payload()
    server = start_server(files={"big.bin": data}, data_policy="SslAllow")
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
    server.process.wait_for_log(THREADED.format("/big.bin"))


def test_abor_while_the_client_stopped_reading(server: Running) -> None:
    make_big_file(server)
    context = server.client_context()
    client = protected_client(server, context)
    data = client.open_passive(tls=context)
    client.send("RETR big.bin")
    assert client.reply().code == 150
    assert data.recv(65536)  # under way; now the client reads no more
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
    make_big_file(server)
    context = server.client_context()
    client = protected_client(server, context)
    data = client.open_passive(tls=context)
    client.send("RETR big.bin")
    assert client.reply().code == 150
    assert data.recv(65536)
    assert client.reply().code == 426  # the watchdog ended it; no reply was lost
    assert client.cmd("NOOP").code == 200
    data.close()
    client.close()
    server.process.wait_for_log(r"RETR /big\.bin aborted \(data channel timeout\)")


def test_shutdown_does_not_wait_for_a_stalled_download(server: Running) -> None:
    make_big_file(server)
    context = server.client_context()
    client = protected_client(server, context)
    data = client.open_passive(tls=context)
    client.send("RETR big.bin")
    assert client.reply().code == 150
    assert data.recv(65536)
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
