"""How TLS sessions end when the server ends them: timeouts and shutdown."""

from __future__ import annotations

import ftplib
import socket
from pathlib import Path

import pytest

from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

LOG_FIELDS = 'logExtFileFlags="UserName, Method, FtpStatus, Win32Status, Session" />'


def _log_entries(logs: Path) -> list[list[str]]:
    (path,) = (logs / "FTPSVC1").glob("u_ex*.log")
    lines = path.read_text().splitlines()
    return [line.split(" ") for line in lines if not line.startswith("#")]


def test_a_tls_client_that_never_answers_close_notify_is_still_dropped(start_server) -> None:
    # The idle timeout sends 421 and close_notify; Twisted's TLS layer then
    # waited for the client's close_notify before closing the socket, so a
    # client that never sends one (hung, or holding the slot on purpose)
    # kept its session, and its maxConnections slot, for ever.
    server: Running = start_server(extra='<connections controlChannelTimeout="1" />')
    client = server.ftps()  # logged on, then silent: it reads nothing
    server.process.wait_for_log(r"session 1: idle timeout")
    server.process.wait_for_log(r"session 1 from \S+ closed")
    # Closed after our close_notify, not by the last-resort timer.
    assert server.process.count("did not close") == 0
    with pytest.raises(ftplib.error_temp, match="^421 Timeout"):
        client.getresp()


def test_a_client_that_reads_nothing_is_dropped_after_it_is_closed(start_server) -> None:
    # The server closes a connection once its replies are sent; a client
    # that stops reading keeps them unsent, so the close waits for a bound.
    server: Running = start_server(
        control_policy="SslAllow",
        data_policy="SslAllow",
        extra='<connections unauthenticatedTimeout="1" />',
    )
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect((server.host, server.port))
    client.sendall(b"FEAT\r\n" * 20_000)  # megabytes of replies it never reads
    server.process.wait_for_log(r"session 1: idle timeout", timeout=30)
    server.process.wait_for_log(r"session 1: the client did not close; dropped")
    server.process.wait_for_log(r"session 1 from \S+ closed")
    client.close()


def test_sessions_hear_421_and_their_channel_close_is_logged(start_server, tmp_path) -> None:
    logs = tmp_path / "logs"
    server: Running = start_server(extra=f'<logFile directory="{logs}" {LOG_FIELDS}')
    first, second = server.ftps(), server.ftps(user="bob")
    server.process.terminate()
    for client in (first, second):
        with pytest.raises(ftplib.error_temp, match="^421 Service shutting down"):
            client.getresp()
        client.close()
    server.process.stop()
    assert "ending 2 sessions" in server.process.log
    entries = _log_entries(logs)
    closed = {entry[0]: entry for entry in entries if entry[1] == "ControlChannelClosed"}
    # user method status win32 session: closed by the server, so cleanly.
    assert closed == {
        "alice": ["alice", "ControlChannelClosed", "-", "0", "1"],
        "bob": ["bob", "ControlChannelClosed", "-", "0", "2"],
    }


def test_an_upload_cut_off_by_shutdown_leaves_the_old_file_and_no_part(start_server) -> None:
    server: Running = start_server(extra_args=("--log-level", "debug"))
    original = (server.root / "hello.txt").read_bytes()
    before = sorted(path.name for path in server.root.iterdir())
    client = server.ftps()
    data = client.transfercmd("STOR hello.txt")  # after the 150: the part file exists
    data.sendall(b"x" * 200_000)
    server.process.wait_for_log(r"STOR /hello\.txt received by")
    server.process.terminate()
    with pytest.raises(ftplib.error_temp, match="^421 Service shutting down"):
        client.getresp()
    data.close()
    client.close()
    server.process.stop()
    assert (server.root / "hello.txt").read_bytes() == original
    # The part file was discarded through the I/O pool before the pool stopped.
    assert sorted(path.name for path in server.root.iterdir()) == before
