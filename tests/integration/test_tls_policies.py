"""The IIS SSL channel policies, reply by reply, with raw sockets.

ftplib hides reply sequences (it raises on the first unexpected code and
never shows whether a 150 came before an error), so these tests speak FTP
over a bare socket and wrap it with ``ssl.SSLContext.wrap_socket`` after
AUTH. Every controlChannelPolicy × dataChannelPolicy combination is walked
through: credentials on a clear channel, commands before AUTH, PROT C/P and
a transfer after each, CCC. The RFC 2228/4217 sequencing rules (PBSZ/PROT
before AUTH, PROT S/E, unknown mechanisms, a second AUTH, REIN), a server
without a certificate and the STARTTLS-injection defence follow.

`RawClient` is also used by the data-channel tests.
"""

from __future__ import annotations

import itertools
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.conftest import USERS, Running
from tests.integration.harness import SiteSpec, free_port

pytestmark = pytest.mark.integration

CONTROL_POLICIES = ("SslAllow", "SslRequire", "SslRequireCredentialsOnly")
DATA_POLICIES = ("SslAllow", "SslRequire", "SslDeny")

REQUIRES_SSL = (534, "Policy requires SSL.")
DENIES_SSL = (534, "Policy denies SSL on the data channel.")


@dataclass(frozen=True)
class Answer:
    """One (possibly multi-line) reply: its code, its text lines, its wire form."""

    code: int
    lines: tuple[str, ...]
    raw: bytes

    @property
    def text(self) -> str:
        """The text of a single-line reply (the last line of a multi-line one)."""
        return self.lines[-1]

    @property
    def pair(self) -> tuple[int, str]:
        return self.code, self.text


class RawClient:
    """FTP over a bare socket: one command, one reply, nothing hidden.

    Replies are read line by line from our own buffer, so nothing the server
    sends is lost or reordered; `starttls` refuses to wrap while unread
    plaintext is buffered (that would hide an injection bug).
    """

    def __init__(self, host: str, port: int, *, timeout: float = 20.0,
                 implicit: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.timeout = timeout
        self.sock: Any = socket.create_connection((host, port), timeout=timeout)
        if implicit is not None:
            self.sock = implicit.wrap_socket(self.sock, server_hostname=host)
        self.buffer = b""

    # ----------------------------------------------------------------- wire
    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(8192)
            if not chunk:
                raise ConnectionError(f"control connection closed; unread {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def reply(self) -> Answer:
        first = self._line()
        raw = [first]
        code = first[:3]
        assert code.isdigit(), first
        lines = [first[4:].decode("utf-8")]
        if first[3:4] == b"-":
            while True:
                line = self._line()
                raw.append(line)
                if line[:3] == code and line[3:4] == b" ":
                    lines.append(line[4:].decode("utf-8"))
                    break
                lines.append(line.decode("utf-8"))
        return Answer(int(code), tuple(lines), b"".join(x + b"\r\n" for x in raw))

    def cmd(self, line: str) -> Answer:
        self.send(line)
        return self.reply()

    def code(self, line: str) -> int:
        return self.cmd(line).code

    # ------------------------------------------------------------------ TLS
    def starttls(self, context: ssl.SSLContext) -> None:
        assert not self.buffer, f"plaintext left before the handshake: {self.buffer!r}"
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)

    def auth(self, context: ssl.SSLContext, mechanism: str = "TLS") -> Answer:
        answer = self.cmd(f"AUTH {mechanism}")
        assert answer.pair == (234, "AUTH command ok. Expecting TLS Negotiation."), answer
        self.starttls(context)
        return answer

    def login(self, user: str = "alice", password: str | None = None) -> None:
        assert self.cmd(f"USER {user}").code == 331
        answer = self.cmd(f"PASS {password or USERS[user][0]}")
        assert answer.code == 230, answer

    def ccc(self) -> Answer:
        """CCC; on 200 take TLS off our side too (close_notify both ways)."""
        answer = self.cmd("CCC")
        if answer.code == 200:
            assert not self.buffer
            self.sock = self.sock.unwrap()
        return answer

    # ----------------------------------------------------------------- data
    def pasv(self) -> tuple[str, int]:
        answer = self.cmd("PASV")
        assert answer.code == 227, answer
        match = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", answer.text)
        assert match is not None, answer
        numbers = [int(n) for n in match.groups()]
        return ".".join(str(n) for n in numbers[:4]), numbers[4] * 256 + numbers[5]

    def open_passive(self, *, tls: ssl.SSLContext | None = None,
                     session: ssl.SSLSession | None = None) -> Any:
        """PASV and connect; with ``tls`` the handshake runs at once (as curl does)."""
        address = self.pasv()
        data: Any = socket.create_connection(address, timeout=self.timeout)
        if tls is not None:
            data = tls.wrap_socket(data, server_hostname=self.host, session=session)
        return data

    def transfer(self, command: str, *, tls: ssl.SSLContext | None = None,
                 session: ssl.SSLSession | None = None,
                 upload: bytes | None = None) -> tuple[list[Answer], bytes]:
        """A passive transfer; returns the replies (1xx and final) and the bytes read."""
        data = self.open_passive(tls=tls, session=session)
        try:
            self.send(command)
            first = self.reply()
            if first.code >= 200:
                return [first], b""
            payload = b""
            if upload is not None:
                data.sendall(upload)
                if tls is not None:
                    data = data.unwrap()
            else:
                payload = read_all(data)
        finally:
            data.close()
        return [first, self.reply()], payload

    def close(self) -> None:
        self.sock.close()


def read_all(sock: Any) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def codes(answers: list[Answer]) -> list[int]:
    return [answer.code for answer in answers]


def raw_client(server: Running, **kwargs: Any) -> RawClient:
    client = RawClient(server.host, server.port, **kwargs)
    greeting = client.reply()
    assert greeting.code == 220, greeting
    return client


# --------------------------------------------------------- the nine policies
def _listing_works(answers: list[Answer], payload: bytes) -> None:
    assert codes(answers) == [150, 226], answers
    assert answers[1].text == "Transfer complete."
    assert b"hello.txt" in payload


def _clear_channel(server: Running, control: str, data: str) -> None:
    """What a client that never sends AUTH meets."""
    client = raw_client(server)
    # Negotiation commands are never refused by the control policy.
    assert client.cmd("FEAT").code == 211
    assert client.cmd("SYST").code == 215
    assert client.cmd("NOOP").code == 200
    assert client.cmd("HOST nowhere.invalid").code != 534
    # RFC 4217: PBSZ/PROT need a security exchange first, CCC a protected channel.
    assert client.cmd("PBSZ 0").pair == (
        503, "PBSZ requires a secure control connection (AUTH first).")
    assert client.cmd("PROT P").code == 503
    assert client.cmd("CCC").pair == (533, "CCC requires a protected control connection.")
    if control == "SslRequire":
        # Nothing else before AUTH.
        for command in ("PWD", "LIST", "TYPE I", "PASV", "STAT x"):
            assert client.cmd(command).pair == REQUIRES_SSL, command
    elif control == "SslRequireCredentialsOnly":
        # Commands are fine (a logon is still needed), credentials are not.
        assert client.cmd("PWD").pair == (530, "Please login with USER and PASS.")
    if control == "SslAllow":
        client.login()
        # Credentials already went out in the clear: too late to protect them.
        assert client.cmd("AUTH TLS").pair == (503, "Bad sequence of commands.")
        answers, payload = client.transfer("LIST")
        if data == "SslRequire":
            # Checked on the transfer command, before any 150 (RFC 4217 §10.2; IIS: 534).
            assert [a.pair for a in answers] == [REQUIRES_SSL]
        else:
            _listing_works(answers, payload)
    else:
        assert client.cmd("USER alice").pair == REQUIRES_SSL
        assert client.cmd("PASS alice-pw").pair == REQUIRES_SSL
    assert client.cmd("QUIT").code == 221
    client.close()


def _protected_channel(server: Running, control: str, data: str) -> None:
    """A client that protects the control channel, then tries every PROT and CCC."""
    context = server.client_context()
    client = raw_client(server)
    client.auth(context)
    assert client.cmd("CCC").code == (534 if control == "SslRequire" else 503)
    client.login()
    assert client.cmd("PBSZ 0").pair == (200, "PBSZ=0")

    assert client.cmd("PROT C").pair == (200, "PROT command successful.")
    answers, payload = client.transfer("LIST")
    if data == "SslRequire":
        assert [a.pair for a in answers] == [REQUIRES_SSL]
    else:
        _listing_works(answers, payload)

    prot_p = client.cmd("PROT P")
    if data == "SslDeny":
        assert prot_p.pair == DENIES_SSL
        # Refused: the session is still PROT C, and a clear transfer works.
        _listing_works(*client.transfer("NLST"))
    else:
        assert prot_p.pair == (200, "PROT command successful.")
        _listing_works(*client.transfer("LIST", tls=context))
    private = data != "SslDeny"

    ccc = client.ccc()
    if control == "SslRequire":
        assert ccc.pair == (534, "Policy requires SSL on the control channel; CCC refused.")
        assert client.cmd("QUIT").code == 221
        client.close()
        return
    assert ccc.pair == (200, "CCC command successful. Control channel is now clear.")
    # The session goes on in plaintext; the data protection level is frozen.
    assert client.cmd("NOOP").code == 200
    assert client.cmd("PWD").code == 257
    _listing_works(*client.transfer("LIST", tls=context if private else None))
    assert client.cmd("PROT C").code == 503
    assert client.cmd("PBSZ 0").code == 503
    assert client.cmd("AUTH TLS").code == 503
    # New credentials on the cleared channel: only where the policy allows them.
    user = client.cmd("USER bob")
    if control == "SslRequireCredentialsOnly":
        assert user.pair == REQUIRES_SSL
    else:
        assert user.code == 331
    assert client.cmd("QUIT").code == 221
    client.close()


@pytest.mark.parametrize(
    ("control", "data"), list(itertools.product(CONTROL_POLICIES, DATA_POLICIES))
)
def test_policy_combination(start_server: Callable[..., Running], control: str, data: str) -> None:
    server = start_server(control_policy=control, data_policy=data)
    _clear_channel(server, control, data)
    _protected_channel(server, control, data)


# ------------------------------------------------------- RFC 2228/4217 rules
def test_pbsz_and_prot_sequencing(server: Running) -> None:
    client = raw_client(server)
    assert client.cmd("PBSZ 0").code == 503
    assert client.cmd("PROT P").code == 503
    client.auth(server.client_context())
    assert client.cmd("PROT P").pair == (503, "PROT requires PBSZ first.")
    assert client.cmd("PBSZ x").code == 501
    # RFC 4217 §9: any buffer size is answered with PBSZ=0.
    assert client.cmd("PBSZ 1024").pair == (200, "PBSZ=0")
    assert client.cmd("PROT S").pair == (536, "PROT S is not supported.")
    assert client.cmd("PROT E").pair == (536, "PROT E is not supported.")
    assert client.cmd("PROT Q").pair == (504, "Unknown PROT level.")
    assert client.cmd("PROT").code == 501
    assert client.cmd("PROT p").code == 200
    client.close()


def test_auth_mechanisms(server: Running) -> None:
    client = raw_client(server)
    assert client.cmd("AUTH KERBEROS_V4").pair == (504, "Unknown AUTH mechanism.")
    assert client.cmd("AUTH").code == 501
    client.auth(server.client_context(), "tls-c")
    assert client.cmd("AUTH TLS").pair == (503, "AUTH already negotiated.")
    assert client.cmd("AUTH SSL").code == 503
    client.login()
    # TLS-C leaves the data channel clear: SslRequire refuses the transfer.
    assert [a.pair for a in client.transfer("LIST")[0]] == [REQUIRES_SSL]
    client.close()


@pytest.mark.parametrize("mechanism", ["SSL", "TLS-P"])
def test_auth_ssl_and_tls_p_protect_the_data_channel(server: Running, mechanism: str) -> None:
    context = server.client_context()
    client = raw_client(server)
    client.auth(context, mechanism)
    client.login()
    # No PBSZ/PROT sent: the mechanism already implies PROT P.
    _listing_works(*client.transfer("LIST", tls=context))
    assert "data protection: private" in client.cmd("STAT").raw.decode()
    client.close()


def test_rein_logs_out_and_keeps_tls(server: Running) -> None:
    context = server.client_context()
    client = raw_client(server)
    client.auth(context)
    client.login()
    assert client.cmd("PWD").code == 257
    assert client.cmd("REIN").pair == (220, "REIN command successful.")
    assert client.cmd("PWD").pair == (530, "Please login with USER and PASS.")
    # Still TLS (a documented difference from RFC 4217 §13): the policy passes
    # and the next logon goes over the same protected channel.
    assert isinstance(client.sock, ssl.SSLSocket)
    assert client.cmd("AUTH TLS").code == 503
    client.login("bob")
    assert client.cmd("PBSZ 0").code == 200
    assert client.cmd("PROT P").code == 200
    _listing_works(*client.transfer("LIST", tls=context))
    client.close()


@pytest.mark.parametrize("control", ["SslAllow", "SslRequire"])
def test_without_a_certificate_auth_is_refused(start_server: Callable[..., Running],
                                              control: str) -> None:
    port = free_port()
    site = SiteSpec(bindings=[f"ftp:127.0.0.1:{port}:"], control_policy=control,
                    data_policy="SslAllow")  # no serverCertHash
    server = start_server(sites=[site])
    client = RawClient(server.host, port)
    assert client.reply().code == 220
    feat = client.cmd("FEAT")
    features = {line.strip() for line in feat.lines[1:-1]}
    assert feat.code == 211 and "UTF8" in features
    assert not {"AUTH TLS", "AUTH SSL", "PBSZ", "PROT", "CCC"} & features
    answer = client.cmd("AUTH TLS")
    # IIS's multi-line refusal, exactly.
    assert answer.raw == (
        b"534-Local policy on server does not allow TLS secure connections.\r\n"
        b" Error details: SSL certificate was not configured.\r\n"
        b"534 End\r\n"
    )
    # The connection stays usable in plaintext.
    assert client.cmd("NOOP").code == 200
    user = client.cmd("USER alice")
    if control == "SslRequire":
        assert user.pair == REQUIRES_SSL  # the policy cannot be met
    else:
        assert user.code == 331
        assert client.cmd("PASS alice-pw").code == 230
    client.close()


BRIEF_REFUSAL = b"534 Local policy on server does not allow TLS secure connections.\r\n"


def test_the_error_details_go_only_to_local_clients_and_only_if_allowed(
    start_server: Callable[..., Running],
) -> None:
    """IIS allowLocalDetailedErrors: what the server lacks is nobody else's business."""
    port, quiet_port = free_port(), free_port()
    sites = [
        SiteSpec(bindings=[f"ftp:127.0.0.1:{port}:"], control_policy="SslAllow",
                 data_policy="SslAllow"),
        SiteSpec(name="Quiet", id=2, bindings=[f"ftp:127.0.0.1:{quiet_port}:"],
                 control_policy="SslAllow", data_policy="SslAllow",
                 extra='<messages allowLocalDetailedErrors="false" />'),
    ]
    # A client elsewhere, as a trusted load balancer names it (PROXY protocol).
    server = start_server(
        sites=sites, ftps7_extra='<proxyProtocol enabled="true" trustedProxies="127.0.0.2" />'
    )
    quiet = RawClient(server.host, quiet_port)
    assert quiet.reply().code == 220
    assert quiet.cmd("AUTH TLS").raw == BRIEF_REFUSAL
    quiet.close()
    remote = socket.create_connection((server.host, port), timeout=20,
                                      source_address=("127.0.0.2", 0))
    remote.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 21\r\n")
    reader = remote.makefile("rb")
    assert reader.readline().startswith(b"220")
    remote.sendall(b"AUTH TLS\r\n")
    assert reader.readline() == BRIEF_REFUSAL
    remote.close()
    local = RawClient(server.host, port)  # from this machine: the details
    assert local.reply().code == 220
    assert local.cmd("AUTH TLS").raw.startswith(b"534-")
    local.close()


@pytest.mark.parametrize("data", ["SslRequire", "SslDeny"])
def test_implicit_sessions_start_private(start_server: Callable[..., Running],
                                         data: str) -> None:
    server = start_server(implicit=True, data_policy=data)
    context = server.client_context()
    client = RawClient(server.host, server.ports["implicit"], implicit=context)
    assert client.reply().code == 220  # sent after the handshake
    assert client.cmd("AUTH TLS").pair == (503, "AUTH already negotiated.")
    client.login()
    # As if AUTH TLS, PBSZ 0 and PROT P had been sent.
    if data == "SslDeny":
        assert [a.pair for a in client.transfer("LIST", tls=context)[0]] == [DENIES_SSL]
        assert client.cmd("PROT C").code == 200
        _listing_works(*client.transfer("LIST"))
    else:
        _listing_works(*client.transfer("LIST", tls=context))
        # What curl sends anyway is accepted.
        assert client.cmd("PBSZ 0").pair == (200, "PBSZ=0")
        assert client.cmd("PROT P").code == 200
        _listing_works(*client.transfer("LIST", tls=context))
    client.close()


# ------------------------------------------------------- STARTTLS injection
@pytest.mark.parametrize("control", ["SslAllow", "SslRequire"])
def test_plaintext_pipelined_behind_auth_is_discarded(start_server: Callable[..., Running],
                                                      control: str) -> None:
    server = start_server(control_policy=control)
    client = raw_client(server)
    client.send_raw(b"AUTH TLS\r\nUSER alice\r\n")
    assert client.reply().pair == (234, "AUTH command ok. Expecting TLS Negotiation.")
    client.starttls(server.client_context())
    # The first reply after the handshake answers PASS: the USER never ran
    # (nor was it answered).
    assert client.cmd("PASS alice-pw").pair == (503, "Login with USER first.")
    client.login()
    client.close()
    server.process.wait_for_log(r"pipelined plaintext after AUTH; discarded")


def test_plaintext_pipelined_behind_auth_in_a_later_packet_never_runs(server: Running) -> None:
    """Injected bytes that arrive after AUTH are fed to TLS and fail the handshake."""
    client = raw_client(server)
    assert client.cmd("AUTH TLS").code == 234
    client.send_raw(b"USER alice\r\n")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        client.starttls(server.client_context())
        client.cmd("PASS alice-pw")
    client.close()
    server.process.wait_for_log(r"TLS handshake with 127\.0\.0\.1 failed")
