"""FTPS with real clients: curl (OpenSSL), lftp (GnuTLS), Python's ssl/ftplib.

Each client verifies the server certificate (the self-signed test certificate
is its own CA), so these tests also show that the certificate selected by
serverCertHash is the one presented, with names a client accepts.
"""

from __future__ import annotations

import ftplib
import io
import shutil
import socket
import ssl
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import USERS, ReusingFTP_TLS, Running
from tests.integration.test_tls_policies import RawClient, raw_client
from tests.pki import make_ca

pytestmark = pytest.mark.integration

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
needs_lftp = pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed")

REUSE = '<tls requireSessionReuse="true" />'


def curl(server: Running, url_path: str, *args: str, port: int | None = None,
         scheme: str = "ftp", verbose: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run curl against the server, verifying its certificate; never hangs."""
    url = f"{scheme}://{server.host}:{port or server.port}/{url_path}"
    command = ["curl", "-sS", "--max-time", "30", "--cacert", server.ca_file,
               "-u", "alice:" + USERS["alice"][0], *args, url]
    if verbose:
        command.insert(1, "-v")
    return subprocess.run(command, capture_output=True, timeout=60, check=False)


# ---------------------------------------------------------------------- curl
@needs_curl
@pytest.mark.parametrize("tls", ["", REUSE], ids=["reuse-optional", "reuse-required"])
def test_curl_explicit_list_get_put(start_server: Callable[..., Running], tmp_path: Path,
                                    tls: str) -> None:
    server = start_server(tls=tls)
    listing = curl(server, "", "--ssl-reqd")
    assert listing.returncode == 0, listing.stderr
    assert b"hello.txt" in listing.stdout
    download = curl(server, "hello.txt", "--ssl-reqd")
    assert download.returncode == 0, download.stderr
    assert download.stdout == b"Hello, world!\n"
    source = tmp_path / "upload.bin"
    source.write_bytes(bytes(range(256)) * 512)
    upload = curl(server, "sub/uploaded.bin", "--ssl-reqd", "--ftp-create-dirs", "-T",
                  str(source))
    assert upload.returncode == 0, upload.stderr
    assert (server.root / "sub" / "uploaded.bin").read_bytes() == source.read_bytes()
    # curl resumes the control session on every data connection.
    assert "did not resume" not in server.process.log


@needs_curl
def test_curl_without_tls_is_refused_under_ssl_require(server: Running) -> None:
    result = curl(server, "hello.txt")  # plain FTP: USER goes out in the clear
    assert result.returncode != 0
    assert b"Hello" not in result.stdout
    assert "logged on" not in server.process.log


@needs_curl
def test_curl_implicit(start_server: Callable[..., Running], tmp_path: Path) -> None:
    server = start_server(implicit=True)
    port = server.ports["implicit"]
    listing = curl(server, "", scheme="ftps", port=port)
    assert listing.returncode == 0, listing.stderr
    assert b"hello.txt" in listing.stdout
    download = curl(server, "hello.txt", scheme="ftps", port=port)
    assert download.stdout == b"Hello, world!\n", download.stderr
    source = tmp_path / "implicit.txt"
    source.write_bytes(b"over implicit FTPS\n")
    upload = curl(server, "implicit.txt", "-T", str(source), scheme="ftps", port=port)
    assert upload.returncode == 0, upload.stderr
    assert (server.root / "implicit.txt").read_bytes() == b"over implicit FTPS\n"
    server.process.wait_for_log(r"session \d+: \w+ logged on .*\(TLSv1\.[23] ")


@needs_curl
@pytest.mark.parametrize("mode", ["passive", "active"])
@pytest.mark.parametrize("tls", ["", REUSE], ids=["reuse-optional", "reuse-required"])
def test_curl_clears_the_control_channel(start_server: Callable[..., Running], tmp_path: Path,
                                         mode: str, tls: str) -> None:
    server = start_server(control_policy="SslRequireCredentialsOnly", tls=tls)
    download = curl(server, "hello.txt", "--ssl-reqd", "--ftp-ssl-ccc", "--ftp-ssl-ccc-mode",
                    mode, verbose=True)
    assert download.returncode == 0, download.stderr
    assert download.stdout == b"Hello, world!\n"
    trace = download.stderr.decode()
    assert "< 200 CCC command successful. Control channel is now clear." in trace
    # Commands after CCC travel in the clear, the data channel stays private
    # (PROT P) and needs no session reuse after CCC.
    server.process.wait_for_log(r"control channel cleared \(CCC\)")
    assert "did not resume" not in server.process.log


@needs_curl
def test_curl_ccc_is_refused_under_ssl_require(server: Running) -> None:
    download = curl(server, "hello.txt", "--ssl-reqd", "--ftp-ssl-ccc", verbose=True)
    # curl treats a refused CCC as non-fatal and carries on over TLS.
    assert "< 534 Policy requires SSL on the control channel; CCC refused." in (
        download.stderr.decode()
    )
    assert download.stdout == b"Hello, world!\n"
    assert "control channel cleared" not in server.process.log


# ---------------------------------------------------------------------- lftp
def lftp(server: Running, home: Path, ca_file: str, *commands: str,
         port: int | None = None) -> subprocess.CompletedProcess[str]:
    script = "; ".join(
        (
            "set cmd:fail-exit true",
            "set net:max-retries 1",
            "set net:timeout 15",
            "set ssl:verify-certificate true",
            f"set ssl:ca-file {ca_file}",
            "set ftp:ssl-force true",
            "set ftp:ssl-protect-data true",
            "set ftp:ssl-protect-list true",
            f"open -u alice,{USERS['alice'][0]} -p {port or server.port} {server.host}",
            *commands,
        )
    )
    home.mkdir(exist_ok=True)
    environment = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    return subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=90,
                          env=environment, cwd=home, check=False)


@needs_lftp
@pytest.mark.parametrize("tls", ["", REUSE], ids=["reuse-optional", "reuse-required"])
def test_lftp_verifies_the_certificate(start_server: Callable[..., Running], tmp_path: Path,
                                       tls: str) -> None:
    server = start_server(tls=tls)
    home = tmp_path / "lftp-home"
    home.mkdir()
    (home / "local.txt").write_text("from lftp\n")
    result = lftp(server, home, server.ca_file, "ls", "get hello.txt -o fetched.txt",
                  "put local.txt -o put.txt")
    assert result.returncode == 0, result.stderr
    assert "hello.txt" in result.stdout
    assert (home / "fetched.txt").read_bytes() == b"Hello, world!\n"
    assert (server.root / "put.txt").read_text() == "from lftp\n"
    assert "did not resume" not in server.process.log


@needs_lftp
def test_lftp_refuses_a_certificate_from_another_ca(server: Running, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-ca.pem"
    wrong.write_bytes(make_ca("Some Other Root CA").cert_pem())
    result = lftp(server, tmp_path / "lftp-home", str(wrong), "ls")
    assert result.returncode != 0
    assert "Certificate verification" in result.stderr, result.stderr
    assert "hello.txt" not in result.stdout
    assert "logged on" not in server.process.log


# -------------------------------------------------------------------- ftplib
class ImplicitFTP_TLS(ReusingFTP_TLS):
    """ftplib has no implicit FTPS: wrap the socket before reading the greeting."""

    def connect(self, host: str = "", port: int = 0, timeout: float = -999,
                source_address: Any = None) -> str:
        self.host, self.port = host, port
        raw = socket.create_connection((host, port), self.timeout)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def test_ftplib_implicit(start_server: Callable[..., Running]) -> None:
    server = start_server(implicit=True, tls=REUSE)
    client = ImplicitFTP_TLS(context=server.client_context(), timeout=20)
    assert client.connect(server.host, server.ports["implicit"]).startswith("220")
    assert isinstance(client.sock, ssl.SSLSocket)
    # Already protected: AUTH is a sequence error; login does not send it.
    with pytest.raises(ftplib.error_perm, match="^503"):
        client.sendcmd("AUTH TLS")
    client.login("alice", USERS["alice"][0])
    client.prot_p()
    chunks: list[bytes] = []
    client.retrbinary("RETR hello.txt", chunks.append)
    assert b"".join(chunks) == b"Hello, world!\n"
    client.storbinary("STOR implicit.bin", io.BytesIO(b"x" * 100_000))
    assert (server.root / "implicit.bin").read_bytes() == b"x" * 100_000
    assert "hello.txt" in client.nlst()
    client.quit()


def test_plaintext_on_the_implicit_port_is_dropped(start_server: Callable[..., Running]) -> None:
    server = start_server(implicit=True)
    with socket.create_connection((server.host, server.ports["implicit"]), timeout=20) as sock:
        sock.sendall(b"USER alice\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    # No greeting, no reply in the clear: the bytes were a failed handshake.
    assert b"220" not in received and b"331" not in received
    server.process.wait_for_log(r"TLS handshake with 127\.0\.0\.1 failed")
    client = ImplicitFTP_TLS(context=server.client_context(), timeout=20)
    client.connect(server.host, server.ports["implicit"])
    client.login("alice", USERS["alice"][0])
    client.quit()


# ------------------------------------------------------------ TLS versions
def tls_client(server: Running, *, maximum: ssl.TLSVersion | None = None,
               minimum: ssl.TLSVersion | None = None, ciphers: str | None = None) -> Any:
    context = server.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1 is deprecated
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
        if ciphers is not None:
            context.set_ciphers(ciphers)
    return context


def legacy_client(server: Running) -> ssl.SSLContext:
    """A TLS 1.1-only client, or a skip if this OpenSSL cannot speak TLS 1.1."""
    try:
        context = tls_client(server, minimum=ssl.TLSVersion.TLSv1_1,
                             maximum=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as exc:
        pytest.skip(f"the client library cannot be limited to TLS 1.1: {exc}")
    return context


def _handshake_after_auth(server: Running, context: ssl.SSLContext) -> RawClient:
    client = raw_client(server)
    assert client.cmd("AUTH TLS").code == 234
    client.starttls(context)
    return client


def test_tls_1_1_is_refused_by_default(start_server: Callable[..., Running]) -> None:
    legacy = start_server(tls='<tls minimumVersion="TLSv1.1" />')
    # Control: with the minimum lowered, this client gets through, so the
    # refusal below is the server's default and not a client limitation.
    try:
        client = _handshake_after_auth(legacy, legacy_client(legacy))
    except ssl.SSLError as exc:
        pytest.skip(f"this client cannot negotiate TLS 1.1 at all: {exc}")
    assert client.sock.version() == "TLSv1.1"
    client.login()
    client.close()

    server = start_server()
    client = raw_client(server)
    assert client.cmd("AUTH TLS").code == 234
    with pytest.raises(ssl.SSLError):
        client.starttls(legacy_client(server))
    client.close()
    server.process.wait_for_log(r"TLS handshake with 127\.0\.0\.1 failed: .*(protocol|version)")
    # Nothing crashed: a TLS 1.2+ client is served as usual.
    server.ftps().quit()


def test_minimum_tls_1_3_refuses_a_tls_1_2_client(start_server: Callable[..., Running]) -> None:
    server = start_server(tls='<tls minimumVersion="TLSv1.3" />')
    client = raw_client(server)
    assert client.cmd("AUTH TLS").code == 234
    with pytest.raises(ssl.SSLError):
        client.starttls(tls_client(server, maximum=ssl.TLSVersion.TLSv1_2))
    client.close()
    server.process.wait_for_log(r"TLS handshake with 127\.0\.0\.1 failed")
    modern = _handshake_after_auth(server, server.client_context())
    assert modern.sock.version() == "TLSv1.3"
    modern.login()
    modern.close()


def test_ssl128_site_serves_128_bit_ciphers(start_server: Callable[..., Running]) -> None:
    """ssl128 lets 128-bit suites through (the boundary) and keeps the session usable.

    No cipher under 128 bits is left in OpenSSL 3 or 4 for a client to offer,
    so the refusal itself is covered by the cipher-string unit tests.
    """
    server = start_server(site_defaults='<security><ssl ssl128="true" /></security>',
                          extra_args=("--log-level", "debug"))  # the line with the bits
    context = tls_client(server, maximum=ssl.TLSVersion.TLSv1_2,
                         ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
    client = _handshake_after_auth(server, context)
    name, _, bits = client.sock.cipher()
    assert bits == 128 and "AES128" in name
    client.login()
    assert client.cmd("PBSZ 0").code == 200
    assert client.cmd("PROT P").code == 200
    answers, payload = client.transfer("RETR hello.txt", tls=context)
    assert [a.code for a in answers] == [150, 226] and payload == b"Hello, world!\n"
    client.close()
    server.process.wait_for_log(r"TLS TLSv1\.2 \S*AES128\S* \(128 bits\)")


def test_the_logon_log_line_names_the_tls_protocol_and_cipher(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(control_policy="SslAllow", data_policy="SslAllow")
    protected = server.ftps()
    server.process.wait_for_log(
        r"session \d+: alice logged on to site Test Site from 127\.0\.0\.1 "
        r"\(TLSv1\.3 TLS_\w+\)"
    )
    protected.quit()
    plain = server.plain()
    plain.login("bob", USERS["bob"][0])
    server.process.wait_for_log(r"bob logged on to site Test Site from 127\.0\.0\.1 \(no TLS\)")
    plain.quit()
