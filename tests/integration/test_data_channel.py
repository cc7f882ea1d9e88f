"""Data-channel security (IIS ``dataChannelSecurity``, RFC 2577) against a real server.

PORT/EPRT may not aim the server at another host or at a privileged port
(FTP bounce), a passive port accepts only the control connection's client
(port theft), EPSV ALL locks out the other data commands (RFC 2428 §4), and the
passive address and port range follow the firewall settings. Most tests use a
plaintext control channel (``SslAllow``): the checks are about addresses, not
TLS; one repeats the port-theft case under PROT P.
"""

from __future__ import annotations

import ftplib
import io
import os
import re
import socket
import ssl
from collections.abc import Callable

import pytest

from tests.integration.conftest import Running
from tests.integration.harness import ipv6_available
from tests.integration.test_robustness import PLAIN, RawControl, read_until_closed

STRANGER = "127.0.0.2"  # another loopback address: "another host" for the server
ILLEGAL_PORT = "Server cannot accept argument: illegal PORT address."


def _listen(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(1)
    listener.settimeout(20)
    return listener


def _port_argument(host: str, port: int) -> str:
    return ",".join([*host.split("."), str(port >> 8), str(port & 0xFF)])


def _pasv_port(text: str) -> tuple[str, int]:
    match = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", text)
    assert match is not None, text
    numbers = [int(n) for n in match.groups()]
    return ".".join(map(str, numbers[:4])), numbers[4] * 256 + numbers[5]


def _epsv_port(text: str) -> int:
    match = re.search(r"\(\|\|\|(\d+)\|\)", text)
    assert match is not None, text
    return int(match.group(1))


def _refused(sock: socket.socket) -> bool:
    """The server closed a data connection without sending anything."""
    try:
        return read_until_closed(sock) == b""
    except ConnectionResetError:
        return True


# ------------------------------------------------------------ active mode


def test_port_and_eprt_to_privileged_ports_are_refused(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(**PLAIN)
    client = RawControl(server.host, server.port)
    client.login()
    for line in ("PORT 127,0,0,1,0,21", "PORT 127,0,0,1,3,255", "EPRT |1|127.0.0.1|1023|",
                 "EPRT |1|127.0.0.1|22|", "PORT 127,0,0,1,0,0"):
        assert client.cmd(line) == (501, f"501 {ILLEGAL_PORT}"), line
    # Nothing was prepared: a transfer now has no data connection.
    assert client.code("LIST") == 425
    server.process.wait_for_log(r"refused PORT to 127\.0\.0\.1:21 ")
    assert client.code("PORT 127,0,0,1,4,0") == 200  # 1024 is fine
    client.close()


def test_a_passive_port_nobody_connects_to_is_425(start_server: Callable[..., Running]) -> None:
    # The transfer waits dataChannelTimeout for the connection, then 425; a
    # fuzzer found 451 and a traceback here.
    server = start_server(**PLAIN, extra='<connections dataChannelTimeout="1" />')
    client = RawControl(server.host, server.port)
    client.login()
    assert client.code("PASV") == 227
    assert client.cmd("LIST") == (425, "425 Cannot open data connection.")
    assert client.code("EPSV") == 229  # and the session goes on
    client.close()
    assert "Traceback" not in server.process.log


def test_port_and_eprt_to_another_address_are_refused(start_server: Callable[..., Running]) -> None:
    server = start_server(**PLAIN)
    target = _listen(STRANGER)
    port = target.getsockname()[1]
    client = RawControl(server.host, server.port)
    client.login()
    assert client.code(f"PORT {_port_argument(STRANGER, port)}") == 501
    assert client.code(f"EPRT |1|{STRANGER}|{port}|") == 501
    assert client.code("NLST") == 425
    server.process.wait_for_log(r"refused EPRT to 127\.0\.0\.2:\d+ \(client is 127\.0\.0\.1\)")
    target.settimeout(0.5)
    with pytest.raises(TimeoutError):
        target.accept()  # the server never connected to the third party
    target.close()
    client.close()


def test_match_client_address_for_port_false_allows_a_third_party(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(
        **PLAIN,
        security_extra='<dataChannelSecurity matchClientAddressForPort="false" />',
    )
    target = _listen(STRANGER)
    client = RawControl(server.host, server.port)
    client.login()
    assert client.code(f"EPRT |1|{STRANGER}|{target.getsockname()[1]}|") == 200
    assert client.cmd("RETR hello.txt")[0] == 150
    conn, peer = target.accept()
    assert peer[0] == "127.0.0.1"  # the server's own address, not the client's
    assert read_until_closed(conn) == b"Hello, world!\n"
    assert client.reply()[0] == 226
    # The privileged-port rule holds whatever the address setting.
    assert client.code(f"PORT {_port_argument(STRANGER, 21)}") == 501
    conn.close()
    target.close()
    client.close()


def test_active_mode_with_ftplib_port_and_eprt(start_server: Callable[..., Running]) -> None:
    server = start_server(**PLAIN)
    client = server.plain()
    client.login("alice", "alice-pw")
    client.set_pasv(False)  # PORT on IPv4
    data = os.urandom(200_000)
    client.storbinary("STOR active.bin", io.BytesIO(data))
    assert (server.root / "active.bin").read_bytes() == data
    out = io.BytesIO()
    client.retrbinary("RETR active.bin", out.write)
    assert out.getvalue() == data
    assert sorted(client.nlst()) == ["active.bin", "hello.txt"]
    # EPRT by hand (ftplib only uses it on IPv6); nlst() left TYPE A behind.
    client.voidcmd("TYPE I")
    listener = _listen()
    assert client.sendeprt("127.0.0.1", listener.getsockname()[1]).startswith("200")
    assert client.sendcmd("RETR hello.txt").startswith("150")
    conn, _ = listener.accept()
    assert read_until_closed(conn) == b"Hello, world!\n"
    assert client.voidresp().startswith("226")
    conn.close()
    listener.close()
    client.quit()
    log = server.process.log
    assert "PORT command successful" not in log  # replies are not logged as errors
    assert "refused" not in log


# ----------------------------------------------------------- passive mode


@pytest.mark.parametrize("command", ["PASV", "EPSV"])
def test_a_passive_connection_from_another_address_is_refused(
    start_server: Callable[..., Running], command: str
) -> None:
    server = start_server(**PLAIN)
    client = RawControl(server.host, server.port)
    client.login()
    code, text = client.cmd(command)
    port = _pasv_port(text)[1] if command == "PASV" else _epsv_port(text)
    # The thief connects first, from another address ...
    thief = socket.create_connection((server.host, port), timeout=20, source_address=(STRANGER, 0))
    assert _refused(thief)
    thief.close()
    server.process.wait_for_log(
        r"refused data connection from 127\.0\.0\.2 \(client is 127\.0\.0\.1\)"
    )
    # ... and the real client still gets its data.
    data = socket.create_connection((server.host, port), timeout=20)
    assert client.cmd("RETR hello.txt")[0] == 150
    assert read_until_closed(data) == b"Hello, world!\n"
    assert client.reply()[0] == 226
    data.close()
    client.close()


def test_port_theft_is_refused_under_prot_p(server: Running) -> None:
    client = server.ftps()
    _, port = ftplib.parse227(client.sendcmd("PASV"))
    thief = socket.create_connection((server.host, port), timeout=20, source_address=(STRANGER, 0))
    assert _refused(thief)
    thief.close()
    conn = socket.create_connection((server.host, port), timeout=20)
    assert client.sendcmd("RETR hello.txt").startswith("150")
    assert client.sock is not None and isinstance(client.sock, ssl.SSLSocket)
    tls = client.context.wrap_socket(conn, server_hostname=server.host, session=client.sock.session)
    data = b""
    while chunk := tls.recv(8192):
        data += chunk
    tls.unwrap()
    tls.close()
    assert data == b"Hello, world!\n"
    assert client.voidresp().startswith("226")
    client.quit()


def test_match_client_address_for_pasv_false_lets_anyone_connect(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(
        **PLAIN,
        security_extra='<dataChannelSecurity matchClientAddressForPasv="false" />',
    )
    client = RawControl(server.host, server.port)
    client.login()
    port = _epsv_port(client.cmd("EPSV")[1])
    other = socket.create_connection((server.host, port), timeout=20, source_address=(STRANGER, 0))
    assert client.cmd("RETR hello.txt")[0] == 150
    assert read_until_closed(other) == b"Hello, world!\n"
    assert client.reply()[0] == 226
    other.close()
    client.close()


def test_epsv_all_refuses_the_other_data_commands(start_server: Callable[..., Running]) -> None:
    server = start_server(**PLAIN)
    client = RawControl(server.host, server.port)
    client.login()
    assert client.cmd("EPSV ALL") == (200, "200 EPSV ALL command successful.")
    listener = _listen()
    port = listener.getsockname()[1]
    for line, name in (("PASV", "PASV"), (f"PORT {_port_argument('127.0.0.1', port)}", "PORT"),
                       (f"EPRT |1|127.0.0.1|{port}|", "EPRT")):
        assert client.cmd(line) == (503, f"503 {name} not allowed after EPSV ALL."), line
    data = socket.create_connection((server.host, _epsv_port(client.cmd("EPSV")[1])), timeout=20)
    assert client.cmd("NLST")[0] == 150
    assert read_until_closed(data) == b"hello.txt\r\n"
    assert client.reply()[0] == 226
    # REIN starts over: EPSV ALL belonged to the old logon.
    assert client.code("REIN") == 220
    client.login()
    assert client.code("PASV") == 227
    data.close()
    listener.close()
    client.close()


def test_pasv_reply_names_the_external_address(start_server: Callable[..., Running]) -> None:
    server = start_server(**PLAIN, extra='<firewallSupport externalIp4Address="192.0.2.10" />')
    client = RawControl(server.host, server.port)
    client.login()
    code, text = client.cmd("PASV")
    host, port = _pasv_port(text)
    assert code == 227 and host == "192.0.2.10"
    # Behind the (imaginary) NAT the port is the same one, on our own address.
    data = socket.create_connection((server.host, port), timeout=20)
    assert client.cmd("NLST")[0] == 150
    assert read_until_closed(data) == b"hello.txt\r\n"
    assert client.reply()[0] == 226
    data.close()
    # EPSV carries no address (RFC 2428), so nothing to rewrite there.
    epsv = client.cmd("EPSV")[1]
    assert re.fullmatch(r"229 Entering Extended Passive Mode \(\|\|\|\d+\|\)", epsv)
    client.close()


def _free_block(size: int) -> int:
    """The first port of ``size`` consecutive free ports below the ephemeral range."""
    start = 20000 + (os.getpid() * 7) % 10000
    for low in range(start, start + 2000, size):
        probes = []
        try:
            for port in range(low, low + size):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return low
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise AssertionError("no free port block")


def test_passive_ports_stay_in_the_configured_range(start_server: Callable[..., Running]) -> None:
    low = _free_block(3)
    server = start_server(
        **PLAIN,
        system_ftp=(
            f'<firewallSupport lowDataChannelPort="{low}" highDataChannelPort="{low + 2}" />'
        ),
    )
    client = RawControl(server.host, server.port)
    client.login()
    seen = set()
    for index in range(9):
        code, text = client.cmd("PASV" if index % 2 else "EPSV")
        seen.add(_pasv_port(text)[1] if index % 2 else _epsv_port(text))
    assert seen <= {low, low + 1, low + 2}
    data = socket.create_connection((server.host, _epsv_port(client.cmd("EPSV")[1])), timeout=20)
    assert client.cmd("NLST")[0] == 150
    assert read_until_closed(data) == b"hello.txt\r\n"
    assert client.reply()[0] == 226
    data.close()
    client.close()


def test_an_exhausted_passive_range_is_425(start_server: Callable[..., Running]) -> None:
    low = _free_block(1)
    server = start_server(
        **PLAIN,
        system_ftp=f'<firewallSupport lowDataChannelPort="{low}" highDataChannelPort="{low}" />',
    )
    first = RawControl(server.host, server.port)
    first.login()
    assert _epsv_port(first.cmd("EPSV")[1]) == low
    second = RawControl(server.host, server.port)
    second.login()
    assert second.cmd("EPSV") == (425, "425 Cannot open data connection.")
    server.process.wait_for_log("no passive port available")
    # Once the first session's data connection is accepted, the port is free again.
    data = socket.create_connection((server.host, low), timeout=20)
    assert first.cmd("NLST")[0] == 150
    assert read_until_closed(data) == b"hello.txt\r\n"
    assert first.reply()[0] == 226
    data.close()
    assert _epsv_port(second.cmd("EPSV")[1]) == low
    first.close()
    second.close()


# ------------------------------------------------------------------- IPv6


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback (::1) here")
def test_ipv6_on_loopback(start_server: Callable[..., Running]) -> None:
    server = start_server(host="::1")
    client = server.ftps()
    assert client.sock is not None and client.sock.family == socket.AF_INET6
    data = os.urandom(100_000)
    client.storbinary("STOR six.bin", io.BytesIO(data))  # EPSV: ftplib's choice on IPv6
    out = io.BytesIO()
    client.retrbinary("RETR six.bin", out.write)
    assert out.getvalue() == data
    with pytest.raises(ftplib.error_perm, match="^522"):
        client.sendcmd("PASV")  # PASV is for IPv4 (RFC 2428 §3)
    with pytest.raises(ftplib.error_perm, match="^522"):
        client.sendcmd("PORT 127,0,0,1,4,0")
    with pytest.raises(ftplib.error_perm, match="^522"):
        client.sendcmd("EPRT |1|127.0.0.1|2000|")
    client.set_pasv(False)  # EPRT |2|::1|port|
    assert sorted(client.nlst()) == ["hello.txt", "six.bin"]
    client.quit()
    server.process.wait_for_log(r"session \d+ connected from ::1:\d+ to ::1:")


# -------------------------------------------------- TLS 1.3 session tickets


def test_upload_from_a_client_that_never_reads_its_data_connection(server: Running) -> None:
    """lftp's way of uploading over TLS 1.3: send, close_notify, close, never read.

    Linux answers a close() with unread bytes in the socket with a reset and
    drops what the client had not sent yet. Before `datatls` held the data
    connection's tickets back, this failed every time here (426, no file).
    """
    from OpenSSL import SSL

    payload = bytes(range(256)) * (32 * 4096)  # 32 MiB: more than the socket buffers hold
    client = server.ftps()
    _, port = ftplib.parse227(client.sendcmd("PASV"))
    raw = socket.create_connection((server.host, port), timeout=20)
    assert client.sendcmd("STOR quiet.bin").startswith("150")
    raw.settimeout(None)  # pyOpenSSL wants a blocking socket
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    tls = SSL.Connection(context, raw)
    tls.set_connect_state()
    tls.do_handshake()
    # The server reads the upload only after it has finished the handshake and
    # sent whatever it sends then, so by the time this returns anything the server
    # sent after the handshake (a TLS 1.3 ticket, before server/datatls.py) is in
    # our receive buffer, unread ...
    tls.sendall(payload)
    tls.shutdown()  # ... close_notify is sent, nothing is read: lftp's way
    raw.close()
    assert client.voidresp().startswith("226")
    assert (server.root / "quiet.bin").read_bytes() == payload
    client.quit()


def test_uploads_over_max_allowed_content_length_are_refused(start_server) -> None:
    server = start_server(
        system_ftp='<security><requestFiltering><requestLimits maxAllowedContentLength="1000" />'
        "</requestFiltering></security>"
    )
    client = server.ftps()
    client.storbinary("STOR small.bin", io.BytesIO(b"s" * 1000))

    def refused(command: str, data: bytes) -> None:
        conn = client.transfercmd(command)
        try:
            conn.sendall(data)
            conn.unwrap()
        except OSError:
            pass  # the server cut the data connection at the limit
        conn.close()
        with pytest.raises(ftplib.error_perm, match="^552"):
            client.voidresp()

    refused("STOR big.bin", b"b" * 5000)
    assert not (server.root / "big.bin").exists()
    refused("APPE small.bin", b"x")
    assert (server.root / "small.bin").read_bytes() == b"s" * 1000
    client.quit()


def test_mlsd_on_a_file_is_501_and_host_with_own_address_is_default_site(server) -> None:
    client = server.ftps()
    with pytest.raises(ftplib.error_perm, match="^501"):
        list(client.mlsd("hello.txt"))
    client.quit()
    plain = ftplib.FTP(timeout=20)
    plain.connect(server.host, server.port)
    assert plain.sendcmd(f"HOST {server.host}").startswith("220")
    with pytest.raises(ftplib.error_perm, match="^504"):
        plain.sendcmd("HOST 192.0.2.1")
    plain.close()
