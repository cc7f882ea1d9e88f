"""Per-site W3C log files (logFile), as IIS FTP writes them."""

from __future__ import annotations

import ftplib
import io
import socket
import struct
from pathlib import Path

import pytest

from tests.integration.conftest import Running


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_commands_are_logged_without_passwords(start_server, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    server: Running = start_server(
        extra=f'<logFile directory="{logs}" period="Daily" '
        'logExtFileFlags="Date, Time, ClientIP, UserName, Method, UriStem, FtpStatus, '
        'BytesRecv, Session" />'
    )
    client = server.ftps()
    client.storbinary("STOR up load.txt", io.BytesIO(b"12345"))
    client.quit()
    server.process.stop()
    files = list((logs / "FTPSVC1").glob("u_ex*.log"))
    assert len(files) == 1
    lines = _lines(files[0])
    assert lines[0] == "#Software: ftps7"
    assert (
        lines[3]
        == "#Fields: date time c-ip cs-username cs-method cs-uri-stem sc-status cs-bytes x-session"
    )
    body = [line.split(" ") for line in lines[4:]]
    methods = [(fields[4], fields[5], fields[6]) for fields in body]
    assert ("PASS", "***", "230") in methods
    assert ("STOR", "/up+load.txt", "226") in methods
    stor = next(fields for fields in body if fields[4] == "STOR")
    assert stor[3] == "alice" and stor[7] == "5"
    assert "alice-pw" not in files[0].read_text()


CHANNEL_FIELDS = (
    'logExtFileFlags="Date, Time, UserName, ServerPort, Method, UriStem, FtpStatus, '
    'Win32Status, Session" />'
)


def _entries(logs: Path) -> list[list[str]]:
    (path,) = (logs / "FTPSVC1").glob("u_ex*.log")
    return [line.split(" ")[2:] for line in _lines(path) if not line.startswith("#")]


def test_channels_are_logged_as_iis_logs_them(start_server, tmp_path: Path) -> None:
    """ControlChannelOpened/Closed around a session, DataChannelOpened/Closed with the
    data connection's own port, no FTP status, before the transfer's own line."""
    logs = tmp_path / "logs"
    server: Running = start_server(extra=f'<logFile directory="{logs}" {CHANNEL_FIELDS}')
    client = server.ftps()
    port = int(client.sendcmd("EPSV").split("|")[3])  # replaced by RETR's PASV, unused
    out = io.BytesIO()
    client.retrbinary("RETR hello.txt", out.write)
    client.quit()
    server.process.stop()
    entries = _entries(logs)
    # user s-port method uri-stem status win32 session
    assert entries[0] == ["-", str(server.port), "ControlChannelOpened", "-", "-", "0", "1"]
    assert entries[-1] == ["alice", str(server.port), "ControlChannelClosed", "-", "-", "0", "1"]
    methods = [entry[2] for entry in entries]
    retr = methods.index("RETR")
    assert methods[retr - 2 : retr + 1] == ["DataChannelOpened", "DataChannelClosed", "RETR"]
    opened, closed = entries[retr - 2], entries[retr - 1]
    assert opened[1] == closed[1] != str(server.port)  # the passive port
    assert opened[1] != str(port)  # the PASV's port, not the unused EPSV's
    assert (opened[3:6], closed[3:6]) == (["-", "-", "0"], ["-", "-", "0"])
    assert entries[retr][4] == "226"


def test_a_data_channel_reset_by_the_client_is_win32_status_64(
    start_server, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    server: Running = start_server(
        extra=f'<logFile directory="{logs}" {CHANNEL_FIELDS}', data_policy="SslAllow"
    )
    client = server.ftps(prot_p=False)
    client.voidcmd("TYPE I")
    conn = client.transfercmd("STOR up.bin")
    conn.sendall(b"x" * 100_000)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST
    with pytest.raises(ftplib.error_temp, match="^426"):
        client.voidresp()
    client.quit()
    server.process.stop()
    closed = [entry for entry in _entries(logs) if entry[2] == "DataChannelClosed"]
    assert [entry[5] for entry in closed] == ["64"]


def test_workers_share_a_log_file_line_by_line(start_server, tmp_path: Path) -> None:
    """Two processes append whole lines to one file, under one header, and a
    session number names one session of the server."""
    logs = tmp_path / "logs"
    low = 20160  # below the ephemeral range, apart from the other workers tests' ports
    server: Running = start_server(
        extra=f'<logFile directory="{logs}" {CHANNEL_FIELDS}',
        system_ftp=(
            f'<firewallSupport lowDataChannelPort="{low}" highDataChannelPort="{low + 9}" />'
        ),
        ftps7_extra='<process workers="2" />',
    )
    server.process.wait_for_log(r"ftps7 ready \(worker 1\)")
    for _ in range(16):
        client = server.ftps()
        assert client.nlst() == ["hello.txt"]
        client.quit()
    server.process.stop()
    (path,) = (logs / "FTPSVC1").glob("u_ex*.log")
    lines = _lines(path)
    assert sum(1 for line in lines if line.startswith("#Fields:")) == 1
    assert lines[0] == "#Software: ftps7"
    body = [line.split(" ") for line in lines if not line.startswith("#")]
    assert all(len(fields) == 9 for fields in body), lines
    sessions = [fields[8] for fields in body if fields[4] == "ControlChannelOpened"]
    assert len(sessions) == len(set(sessions)) == 16
    assert {int(session) % 2 for session in sessions} == {0, 1}  # both workers served


def test_a_control_channel_reset_by_the_client_is_win32_status_64(
    start_server, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    server: Running = start_server(extra=f'<logFile directory="{logs}" {CHANNEL_FIELDS}')
    client = server.ftps()
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.file.close()  # (it holds the socket open too)
    client.sock.close()  # RST, no QUIT
    server.process.wait_for_log(r"session 1 from 127\.0\.0\.1 closed")
    server.process.stop()
    closed = [entry for entry in _entries(logs) if entry[2] == "ControlChannelClosed"]
    assert closed == [["alice", str(server.port), "ControlChannelClosed", "-", "-", "64", "1"]]
