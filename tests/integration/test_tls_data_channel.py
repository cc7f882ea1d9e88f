"""TLS on the data channel: both directions, session reuse, clean ends, ABOR/STAT.

The server is always the TLS server of a PROT P data connection, whether it
accepted it (PASV) or opened it (PORT), and presents the control connection's
certificate. With ``<tls requireSessionReuse="true">`` a data connection must
resume its own control connection's session: one SSL context per FTP session
makes another client's session unknown there (RESEARCH.md §2.5, E4).
"""

from __future__ import annotations

import ftplib
import io
import os
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import Running
from tests.integration.test_tls_policies import RawClient, codes, raw_client, read_all

pytestmark = pytest.mark.integration

REUSE = '<tls requireSessionReuse="true" />'
NOT_RESUMED = (522, "Data connection refused: it must resume the TLS session of the control "
               "connection.")
#: Large enough that it cannot sit in socket buffers while a test looks at it.
BIG = 32 * 1024 * 1024


def protected_client(server: Running, context: ssl.SSLContext | None = None,
                     user: str = "alice") -> RawClient:
    """AUTH TLS, logon, PBSZ 0, PROT P: the usual FTPS session, over a raw socket."""
    client = raw_client(server)
    client.auth(context or server.client_context())
    client.login(user)
    assert client.cmd("PBSZ 0").code == 200
    assert client.cmd("PROT P").code == 200
    return client


def make_big_file(server: Running, name: str = "big.bin") -> None:
    with open(server.root / name, "wb") as handle:
        handle.truncate(BIG)  # sparse: no disk cost


def abort_socket(sock: Any) -> None:
    """Close with a TCP RST and nothing else (no close_notify, no FIN)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ------------------------------------------------------------- both directions
@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
@pytest.mark.parametrize("tls", ["", REUSE], ids=["reuse-optional", "reuse-required"])
def test_prot_p_transfers(start_server: Callable[..., Running], passive: bool, tls: str) -> None:
    server = start_server(tls=tls)
    client = server.ftps()
    client.set_pasv(passive)
    chunks: list[bytes] = []
    client.retrbinary("RETR hello.txt", chunks.append)
    assert b"".join(chunks) == b"Hello, world!\n"
    payload = os.urandom(300_000)
    assert client.storbinary("STOR upload.bin", io.BytesIO(payload)).startswith("226")
    assert (server.root / "upload.bin").read_bytes() == payload
    assert sorted(client.nlst()) == ["hello.txt", "upload.bin"]
    client.quit()
    assert "did not resume" not in server.process.log


def test_data_certificate_is_the_control_certificate_passive(server: Running) -> None:
    context = server.client_context()
    client = protected_client(server, context)
    control_cert = client.sock.getpeercert(binary_form=True)
    assert control_cert == ssl.PEM_cert_to_DER_cert(server.cert_pem.decode())
    for session in (None, client.sock.session):  # a full handshake, then a resumed one
        data = client.open_passive(tls=context, session=session)
        assert data.getpeercert(binary_form=True) == control_cert
        assert data.session_reused is (session is not None)
        client.send("NLST")
        assert client.reply().code == 150
        assert read_all(data) == b"hello.txt\r\n"
        data.close()
        assert client.reply().code == 226
    client.close()


def test_data_certificate_is_the_control_certificate_active(server: Running) -> None:
    context = server.client_context()
    client = protected_client(server, context)
    control_cert = client.sock.getpeercert(binary_form=True)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(20)
        port = listener.getsockname()[1]
        assert client.cmd(f"PORT 127,0,0,1,{port // 256},{port % 256}").code == 200
        client.send("NLST")
        accepted, _ = listener.accept()
    # The server connected to us, yet it is the TLS server of this connection.
    data = context.wrap_socket(accepted, server_hostname=server.host)
    assert data.getpeercert(binary_form=True) == control_cert
    assert client.reply().code == 150
    assert read_all(data) == b"hello.txt\r\n"
    data.close()
    assert client.reply().code == 226
    client.close()


# ----------------------------------------------------------- session reuse
def _refused_transfer(client: ftplib.FTP_TLS, command: str, upload: bytes = b"") -> bytes:
    """Run a transfer that the server refuses after 150; return what arrived."""
    received: list[bytes] = []
    try:
        with client.transfercmd(command) as conn:  # 150 is read here, then the handshake
            if upload:
                conn.sendall(upload)
            while chunk := conn.recv(8192):
                received.append(chunk)
    except OSError:
        pass  # the server aborts the refused connection; a reset is fine
    with pytest.raises(ftplib.error_perm, match="^522 Data connection refused"):
        client.voidresp()
    return b"".join(received)


def test_a_data_connection_that_does_not_resume_is_refused(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(tls=REUSE)
    client = server.ftps(reuse=False)  # plain ftplib behaviour: a new session per connection
    assert _refused_transfer(client, "RETR hello.txt") == b""
    assert _refused_transfer(client, "STOR refused.txt", b"never stored") == b""
    assert not (server.root / "refused.txt").exists()
    assert client.voidcmd("NOOP").startswith("200")
    # The same client, resuming, is served.
    client.reuse_session = True
    chunks: list[bytes] = []
    client.retrbinary("RETR hello.txt", chunks.append)
    assert b"".join(chunks) == b"Hello, world!\n"
    client.storbinary("STOR stored.txt", io.BytesIO(b"stored"))
    assert (server.root / "stored.txt").read_bytes() == b"stored"
    client.quit()
    server.process.wait_for_log(r"did not resume the control connection's TLS session; refused")


def test_another_clients_session_is_refused_on_my_passive_port(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(tls=REUSE)
    context = server.client_context()  # one client context, as one attacker program
    alice = protected_client(server, context, "alice")
    # A's session is good for A's own data connection ...
    answers, payload = alice.transfer("NLST", tls=context, session=alice.sock.session)
    assert codes(answers) == [150, 226] and payload == b"hello.txt\r\n"
    mallory = protected_client(server, context, "bob")
    # ... and useless on B's: B's session context has never seen it.
    data = mallory.open_passive(tls=context, session=alice.sock.session)
    assert not data.session_reused
    mallory.send("LIST")
    assert mallory.reply().code == 150
    try:
        leaked = read_all(data)
    except OSError:
        leaked = b""
    data.close()
    assert mallory.reply().pair == NOT_RESUMED
    assert leaked == b""
    # Both sessions go on.
    answers, _ = mallory.transfer("NLST", tls=context, session=mallory.sock.session)
    assert codes(answers) == [150, 226]
    assert alice.cmd("NOOP").code == 200
    alice.close()
    mallory.close()


def test_reuse_is_not_required_after_ccc(start_server: Callable[..., Running]) -> None:
    server = start_server(control_policy="SslRequireCredentialsOnly", tls=REUSE)
    context = server.client_context()
    client = protected_client(server, context)
    answers, _ = client.transfer("NLST", tls=context)  # no session offered
    assert [a.pair for a in answers] == [(150, "Opening BINARY mode data connection."),
                                        NOT_RESUMED]
    assert client.ccc().code == 200
    # After CCC the control session is gone, so nothing could be resumed (as
    # curl shows): the data channel stays private without reuse (ProFTPD does the same).
    answers, payload = client.transfer("NLST", tls=context)
    assert codes(answers) == [150, 226] and payload == b"hello.txt\r\n"
    client.close()


# ------------------------------------------------------------- clean ends
@pytest.mark.parametrize("cut", ["close", "shutdown", "reset"])
@pytest.mark.parametrize("target", ["new.txt", "hello.txt"])
def test_a_truncated_upload_is_426(server: Running, cut: str, target: str) -> None:
    context = server.client_context()
    client = protected_client(server, context)
    data = client.open_passive(tls=context)
    client.send(f"STOR {target}")
    assert client.reply().code == 150
    data.sendall(b"partial " * 10_000)
    if cut == "close":
        data.close()  # Python never sends close_notify on close()
    elif cut == "shutdown":
        data.shutdown(socket.SHUT_RDWR)  # FIN under the TLS layer
        data.close()
    else:
        abort_socket(data)
    assert client.reply().pair == (
        426, "Data connection closed without TLS close_notify; transfer aborted.")
    if target == "new.txt":
        assert not (server.root / "new.txt").exists()
    else:
        assert (server.root / "hello.txt").read_bytes() == b"Hello, world!\n"
    assert os.listdir(server.root) == ["hello.txt"]  # no temporary file left behind
    # The session is fine; a clean upload of the same file succeeds.
    answers, _ = client.transfer(f"STOR {target}", tls=context, upload=b"complete")
    assert [a.pair for a in answers][1] == (226, "Transfer complete.")
    assert (server.root / target).read_bytes() == b"complete"
    client.close()
    server.process.wait_for_log(r"ended without a clean close .*; upload discarded")


def test_a_truncated_upload_under_keep_partial_uploads(
    start_server: Callable[..., Running],
) -> None:
    """Still 426; fileHandling keeps the partial data, but never over a good file."""
    server = start_server(extra='<fileHandling keepPartialUploads="true" />')
    context = server.client_context()
    client = protected_client(server, context)
    sent = os.urandom(50_000)
    for target in ("partial.bin", "hello.txt"):
        data = client.open_passive(tls=context)
        client.send(f"STOR {target}")
        assert client.reply().code == 150
        data.sendall(sent)
        data.shutdown(socket.SHUT_RDWR)
        data.close()
        assert client.reply().code == 426
    assert (server.root / "partial.bin").read_bytes() == sent
    assert (server.root / "hello.txt").read_bytes() == b"Hello, world!\n"
    client.close()
    server.process.wait_for_log(r"STOR /partial\.bin ended without a clean close .*kept")


# ----------------------------------------------- the control channel keeps reading
def test_abor_during_a_large_download(server: Running) -> None:
    make_big_file(server)
    context = server.client_context()
    client = protected_client(server, context)
    data = client.open_passive(tls=context)
    client.send("RETR big.bin")
    assert client.reply().code == 150
    assert data.recv(65536)  # the transfer is under way
    assert client.cmd("ABOR").pair == (426, "Connection closed; transfer aborted.")
    assert client.reply().pair == (226, "ABOR command successful.")
    try:
        received = read_all(data)
    except OSError:
        received = b""
    data.close()
    assert len(received) < BIG
    # The session continues.
    assert client.cmd("NOOP").code == 200
    answers, payload = client.transfer("RETR hello.txt", tls=context)
    assert codes(answers) == [150, 226] and payload == b"Hello, world!\n"
    client.close()


def test_226_comes_without_waiting_for_the_clients_close(
    start_server: Callable[..., Running],
) -> None:
    # The client reads the download to its end (our close_notify), then the
    # 226, and only then closes the data connection, as some clients do. The
    # server used to wait for the client's close before the 226: such a
    # client stalled for dataChannelTimeout, every other one paid a round trip.
    server = start_server(extra='<connections dataChannelTimeout="120" />')
    context = server.client_context()
    client = protected_client(server, context)
    client.sock.settimeout(10)
    for command in ("RETR hello.txt", "MLSD", "NLST"):
        data = client.open_passive(tls=context)
        client.send(command)
        assert client.reply().code == 150
        assert read_all(data)  # up to our close_notify
        assert client.reply().code == 226, command  # the data connection still open
        data.close()
    client.close()


def test_stat_during_a_transfer(server: Running) -> None:
    make_big_file(server)
    context = server.client_context()
    client = protected_client(server, context)
    data = client.open_passive(tls=context)
    client.send("RETR big.bin")
    assert client.reply().code == 150
    received = len(data.recv(65536))
    assert received
    status = client.cmd("STAT")
    assert status.code == 211 and status.text == "End of status."
    assert any(line.strip().startswith("RETR /big.bin: ") for line in status.lines), status
    # NOOP is not out-of-band: it waits for the transfer (RFC 959 §4.1.3), so
    # only read on now.
    while chunk := data.recv(1 << 20):
        received += len(chunk)
    data.close()
    assert received == BIG
    assert client.reply().pair == (226, "Transfer complete.")
    assert "No data connection" in client.cmd("STAT").raw.decode()
    client.close()


# ------------------------------------------------------------------ PROT changes
def test_prot_changed_between_pasv_and_the_transfer_is_521(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(data_policy="SslAllow")
    context = server.client_context()
    client = protected_client(server, context)
    prot_changed = (521, "Data connection cannot be opened with this PROT setting.")

    # Clear data connection set up under PROT C, transfer asked under PROT P.
    assert client.cmd("PROT C").code == 200
    data = client.open_passive()
    assert client.cmd("NOOP").code == 200  # the server has accepted by now
    assert client.cmd("PROT P").code == 200
    assert client.cmd("LIST").pair == prot_changed
    data.close()

    # TLS data connection set up under PROT P, transfer asked under PROT C.
    data = client.open_passive(tls=context)
    assert client.cmd("PROT C").code == 200
    assert client.cmd("LIST").pair == prot_changed
    data.close()

    answers, payload = client.transfer("NLST")
    assert codes(answers) == [150, 226] and payload == b"hello.txt\r\n"
    client.close()


def test_a_failed_data_handshake_is_522(server: Running) -> None:
    client = protected_client(server)
    data = client.open_passive()  # TCP only, though PROT P is in force
    client.send("NLST")
    assert client.reply().code == 150
    data.sendall(b"this is not a TLS ClientHello\r\n" * 4)
    assert client.reply().pair == (522, "Data connection TLS negotiation failed.")
    data.close()
    assert client.cmd("NOOP").code == 200
    client.close()
