"""Seeded random FTPS sessions with data connections, against a real server.

The plaintext run in test_robustness.py covers the command line; this one
covers what TLS and data connections add: AUTH TLS, PBSZ/PROT, CCC, and
data connections that are used, closed at once, reset, or left alone,
downloads read to their end, uploads of random bytes ended with or without
close_notify. Every reply must be well formed and none a 451 (a local
error: a bug), and the log must hold no traceback (the fixture checks).
Runs of this kind found two such bugs: a transfer after an unused PASV,
and a download whose data connection was already gone (both 451).
"""

from __future__ import annotations

import random
import re
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import USERS, Running
from tests.integration.test_robustness import reset

pytestmark = pytest.mark.integration

VERBS = (
    "USER", "PASS", "CWD", "CDUP", "PWD", "MKD", "RMD", "DELE", "RNFR", "RNTO", "LIST",
    "NLST", "MLSD", "MLST", "RETR", "STOR", "STOU", "APPE", "REST", "SIZE", "MDTM", "TYPE",
    "MODE", "STRU", "PASV", "EPSV", "PORT", "EPRT", "ABOR", "STAT", "SYST", "FEAT", "OPTS",
    "HELP", "NOOP", "HOST", "AUTH", "PBSZ", "PROT", "CCC", "ALLO",
)  # fmt: skip
TRANSFERS = ("PASV", "EPSV", "RETR", "STOR", "MLSD", "NLST", "LIST")
ARGUMENTS = (
    "", "/", "..", "../../etc/passwd", "hello.txt", "big.bin", "nonexistent", "a" * 300,
    "*", "-la", "I", "A", "P", "C", "0", "-1", "4096", "99999999999999999999", "UTF8 ON",
    "TLS", "éü", "up.bin", "small.txt",
)  # fmt: skip
UPLOADS = ("STOR", "STOU", "APPE")


class Session:
    """A control connection that may switch to TLS and back (CCC)."""

    def __init__(self, server: Running) -> None:
        self.context = server.client_context()
        self.sock: Any = socket.create_connection((server.host, server.port), timeout=20)
        self.reader = self.sock.makefile("rb")
        self.tls = False
        assert self.reply()[0] == 220

    def reply(self) -> tuple[int, str]:
        first = self.reader.readline()
        if not first:
            raise EOFError
        assert first.endswith(b"\r\n"), first
        text = first.decode()
        code = text[:3]
        assert code.isdigit() and text[3] in " -", text
        line = text
        while line[3] == "-" or line[:3] != code:
            line = self.reader.readline().decode()
            if not line:
                raise EOFError
            if line[:3] == code and line[3:4] == " ":
                break
        return int(code), text

    def cmd(self, line: str) -> tuple[int, str]:
        self.sock.sendall(line.encode("utf-8", "surrogateescape") + b"\r\n")
        return self.reply()

    def switch(self, secure: bool) -> None:
        self.reader.close()
        if secure:
            self.sock = self.context.wrap_socket(self.sock, server_hostname="localhost")
        else:
            self.sock = self.sock.unwrap()
        self.reader = self.sock.makefile("rb")
        self.tls = secure


def _data_port(text: str) -> int:
    epsv = re.search(r"\(\|\|\|(\d+)\|\)", text)
    if epsv:
        return int(epsv.group(1))
    pasv = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", text)
    assert pasv is not None, text
    return int(pasv.group(5)) * 256 + int(pasv.group(6))


def _use(data: Any, verb: str, rng: random.Random) -> None:
    """Download to the end, or upload random bytes; then close one way or another."""
    try:
        if verb in UPLOADS:
            data.sendall(rng.randbytes(rng.randint(0, 200_000)))
        else:
            while data.recv(65536):
                pass
        if isinstance(data, ssl.SSLSocket) and rng.random() < 0.7:
            data = data.unwrap()  # close_notify
    except (OSError, ssl.SSLError):
        pass
    data.close()


def _one_session(server: Running, rng: random.Random) -> None:
    session = Session(server)
    protected = False
    data: Any = None
    try:
        if rng.random() < 0.85:
            assert session.cmd("AUTH TLS")[0] == 234
            session.switch(True)
        if rng.random() < 0.8:
            session.cmd("USER alice")
            session.cmd(f"PASS {USERS['alice'][0]}")
        if session.tls and rng.random() < 0.7:
            protected = session.cmd("PBSZ 0")[0] == 200 and session.cmd("PROT P")[0] == 200
        for _ in range(rng.randint(1, 20)):
            verb = rng.choice(VERBS + TRANSFERS * 3)
            argument = rng.choice(ARGUMENTS)
            line = f"{verb} {argument}" if argument else verb
            code, text = session.cmd(line)
            assert code != 451, (line, text)
            if verb == "AUTH" and code == 234:
                session.switch(True)
            elif verb == "CCC" and code == 200:
                session.switch(False)
            elif verb == "PROT" and code == 200:
                protected = argument.upper() == "P"
            elif code in (227, 229) and rng.random() < 0.8:
                data = socket.create_connection((server.host, _data_port(text)), timeout=20)
                choice = rng.random()
                if choice < 0.25:
                    reset(data)
                    data = None
                elif protected and choice < 0.9:
                    resume = session.sock.session if session.tls else None
                    try:
                        data = session.context.wrap_socket(
                            data, server_hostname="localhost", session=resume
                        )
                    except (OSError, ssl.SSLError):
                        data = None  # refused (522) or dropped: the reply says which
            elif code in (125, 150):
                if data is not None:
                    _use(data, verb, rng)
                    data = None
                final, text = session.reply()
                assert final != 451, (line, text)
    except (EOFError, ConnectionError, TimeoutError, ssl.SSLError):
        pass  # the server may end a session (a 421); the log check still applies
    finally:
        if data is not None:
            data.close()
        session.sock.close()


def test_random_tls_sessions_with_data_connections(start_server: Callable[..., Running]) -> None:
    server = start_server(
        control_policy="SslAllow",
        data_policy="SslAllow",
        files={"hello.txt": b"Hello\n", "small.txt": b"s" * 4096, "big.bin": b"Z" * (3 << 20)},
        extra='<connections dataChannelTimeout="1" />',
    )
    rng = random.Random(20261208)
    for _ in range(100):
        _one_session(server, rng)
    check = server.ftps()  # and the server still serves
    assert check.sendcmd("NOOP").startswith("200")
    check.quit()
