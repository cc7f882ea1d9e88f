"""``<proxyProtocol>`` against a real server: the test client plays the load balancer.

The "proxy" is any connection from 127.0.0.1 (``trustedProxies``); it sends
the PROXY header a balancer would, naming a client address of the test's
choosing, and then speaks FTP (or TLS) as the client would through it.
"""

from __future__ import annotations

import contextlib
import ftplib
import random
import socket
import struct
from collections.abc import Callable

import pytest

from tests.integration.conftest import USERS, ReusingFTP_TLS, Running
from tests.integration.test_site_features import closing_words as everything

pytestmark = pytest.mark.integration

PROXY = '<proxyProtocol enabled="true" trustedProxies="127.0.0.1" />'
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(client: str, port: int = 40000) -> bytes:
    return f"PROXY TCP4 {client} 127.0.0.1 {port} 21\r\n".encode()


def v2(client: str, port: int = 40000, *, local: bool = False) -> bytes:
    block = socket.inet_aton(client) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", port, 21)
    return V2_SIGNATURE + bytes([0x20 if local else 0x21, 0x11]) + struct.pack("!H", 12) + block


def connect(server: Running, header: bytes, *, port: int | None = None,
            source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(
        (server.host, port or server.port), timeout=20, source_address=(source, 0)
    )
    if header:
        sock.sendall(header)
    return sock


def greeting(sock: socket.socket) -> bytes:
    return sock.makefile("rb").readline()


@pytest.fixture
def server(start_server: Callable[..., Running]) -> Running:
    return start_server(
        ftps7_extra=PROXY,
        data_policy="SslAllow",
        system_ftp=(
            '<security><ipSecurity allowUnlisted="true">'
            '<add ipAddress="192.0.2.66" allowed="false" />'
            "</ipSecurity></security>"
        ),
    )


@pytest.mark.parametrize("make_header", [v1, v2], ids=["v1", "v2"])
def test_the_client_named_by_the_proxy_is_the_sessions_peer(
    server: Running, make_header: Callable[..., bytes]
) -> None:
    sock = connect(server, make_header("192.0.2.7", 40001))
    assert greeting(sock).startswith(b"220")
    sock.close()
    server.process.wait_for_log(r"session \d+ connected from 192\.0\.2\.7:40001 to 127\.0\.0\.1:")


def test_ip_security_judges_the_real_client(server: Running) -> None:
    sock = connect(server, v1("192.0.2.66"))
    assert everything(sock) == (
        b"421 Access denied for your address; closing control connection.\r\n"
    )
    sock.close()
    server.process.wait_for_log(r"connection from 192\.0\.2\.66 refused by ipSecurity")


def test_a_health_check_keeps_the_proxys_address(server: Running) -> None:
    sock = connect(server, v2("192.0.2.7", local=True))
    assert greeting(sock).startswith(b"220")
    sock.close()
    server.process.wait_for_log(r"session \d+ connected from 127\.0\.0\.1:\d+ to")


@pytest.mark.parametrize(
    "first", [b"USER alice\r\n", b"PROXY TCP4 nonsense\r\n", b"\x16\x03\x01\x00\x05hello"]
)
def test_a_trusted_peer_without_a_good_header_is_closed_without_a_word(
    server: Running, first: bytes
) -> None:
    sock = connect(server, first)
    assert everything(sock) == b""
    sock.close()
    server.process.wait_for_log(r"connection from trusted proxy 127\.0\.0\.1 closed: ")


def test_other_peers_are_served_directly_and_their_header_is_just_a_bad_command(
    server: Running,
) -> None:
    sock = connect(server, b"", source="127.0.0.2")
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"220")
    sock.sendall(v1("192.0.2.7"))
    assert reader.readline().startswith(b"500")  # PROXY is no FTP command
    sock.close()
    server.process.wait_for_log(r"session \d+ connected from 127\.0\.0\.2:")


class _ProxiedFTP(ReusingFTP_TLS):
    """ftplib over a connection that already carried the proxy's header."""

    def adopt(self, sock: socket.socket, host: str, port: int) -> str:
        self.host, self.port, self.sock, self.af = host, port, sock, sock.family
        self.file = sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def _proxied_session(server: Running, client: str) -> _ProxiedFTP:
    ftp = _ProxiedFTP(context=server.client_context(), timeout=20)
    ftp.adopt(connect(server, v2(client)), server.host, server.port)
    ftp.auth()
    ftp.login("alice", USERS["alice"][0])
    ftp.prot_p()
    return ftp


def _listing_through(ftp: _ProxiedFTP, server: Running, header: bytes) -> bytes:
    """LIST over a passive data connection that starts with ``header``."""
    host, port = ftplib.parse227(ftp.sendcmd("PASV"))
    data = connect(server, header, port=port)
    assert ftp.sendcmd("NLST").startswith("150")
    assert ftp.sock is not None
    tls = ftp.context.wrap_socket(data, server_hostname=host, session=ftp.sock.session)
    listing = everything(tls)
    tls.close()
    return listing


def test_passive_data_connections_through_the_proxy_are_checked_against_the_real_client(
    server: Running,
) -> None:
    ftp = _proxied_session(server, "127.0.0.5")
    assert b"hello.txt" in _listing_through(ftp, server, v1("127.0.0.5", 40002))
    assert ftp.voidresp().startswith("226")

    # A data connection the proxy says comes from someone else is refused ...
    host, port = ftplib.parse227(ftp.sendcmd("PASV"))
    intruder = connect(server, v1("127.0.0.9"), port=port)
    assert everything(intruder) == b""
    intruder.close()
    server.process.wait_for_log(
        r"refused data connection from 127\.0\.0\.9 \(client is 127\.0\.0\.5\)"
    )
    # ... and the port still waits for the real client.
    data = connect(server, v1("127.0.0.5"), port=port)
    assert ftp.sendcmd("NLST").startswith("150")
    assert ftp.sock is not None
    tls = ftp.context.wrap_socket(data, server_hostname=host, session=ftp.sock.session)
    assert b"hello.txt" in everything(tls)
    tls.close()
    assert ftp.voidresp().startswith("226")
    ftp.quit()


def test_implicit_ftps_reads_the_header_before_the_tls_handshake(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(ftps7_extra=PROXY, implicit=True)
    sock = connect(server, v1("192.0.2.8", 40003), port=server.ports["implicit"])
    tls = server.client_context().wrap_socket(sock, server_hostname=server.host)
    assert tls.makefile("rb").readline().startswith(b"220")
    tls.close()
    server.process.wait_for_log(r"session \d+ connected from 192\.0\.2\.8:40003 to")


def test_random_bytes_from_a_trusted_peer_never_hurt(server: Running) -> None:
    rng = random.Random(7)
    for index in range(45):
        body = rng.randbytes(rng.choice([1, 5, 12, 16, 40, 107, 200, 2000]))
        start = (b"", V2_SIGNATURE, b"PROXY ", b"PROXY TCP4 ")[index % 4]
        sock = connect(server, b"")
        # The server may reset the connection as soon as the bytes cannot be a
        # header, before the client is done: that is an accepted end too.
        with contextlib.suppress(OSError):
            sock.sendall(start + body)
            sock.shutdown(socket.SHUT_WR)  # whatever the reader still waits for never comes
        answer = everything(sock)
        sock.close()
        assert answer == b"" or answer.startswith(b"220"), (index, answer[:80])
    direct = connect(server, b"", source="127.0.0.2")
    assert greeting(direct).startswith(b"220")  # still serving
    direct.close()
    assert "Traceback" not in server.process.log
    assert "Unhandled" not in server.process.log
