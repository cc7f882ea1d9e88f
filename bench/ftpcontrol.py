"""The client side of one FTPS control connection, built for a cheap client.

The socket is blocking (time-outs through SO_RCVTIMEO/SO_SNDTIMEO, so Python
adds no poll() before every call) and TLS runs over memory BIOs: one recv()
hands every record that has arrived to the TLS library at once, where an
``ssl.SSLSocket`` reads each record's header and body with separate calls.

Two TLS engines, the same protocol (TLS 1.3 only, P-256 key exchange, no certificate
verification: the bench made the certificate a minute ago):

- ``stdlib``: Python's ``ssl`` module (the system OpenSSL). Its sessions can
  be resumed by ``ssl`` data connections, which the transfer and listing
  workloads need (vsftpd's ``require_ssl_reuse``).
- ``pyopenssl``: pyOpenSSL on cryptography's bundled OpenSSL. Its client
  handshake costs about half the CPU of Debian 12's OpenSSL 3.0 (measured
  here: ~0.5 ms against ~1.0 ms for an ECDSA P-256 server), which matters
  for the session-rate test, where the client must outrun the server on one
  CPU. Session rate needs no data connection, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Protocol

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

TIMEOUT = 60.0
# vsftpd 3.0.3 (Debian) fixes its ECDHE group to P-256, so with any other group
# offered it would need a HelloRetryRequest or fail: every server is measured
# with P-256 key exchange.
GROUP = b"prime256v1"
_EPSV = re.compile(r"\(\|\|\|(\d+)\|\)")
_PASV = re.compile(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")


class FtpError(Exception):
    """An unexpected reply or a broken connection."""


# What a failed session can raise (ssl.SSLError is an OSError; pyOpenSSL's are not).
FAILURES = (OSError, FtpError, SSL.Error)


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    password: str
    server_pid: int


# -- TLS engines --------------------------------------------------------------


class TlsEngine(Protocol):
    """A client TLS connection over memory buffers."""

    def handshake(self) -> bool:
        """Advance the handshake; True when it is complete."""
        ...

    def feed(self, data: bytes) -> None:
        """Bytes received from the network."""
        ...

    def read(self) -> bytes | None:
        """Decrypted bytes; None if more network input is needed; b"" at close_notify."""
        ...

    def write(self, data: bytes) -> None: ...

    def output(self) -> bytes:
        """Bytes to send to the network."""
        ...

    def close_notify(self) -> None: ...

    def group(self) -> str | None:
        """The key-exchange group negotiated, if the engine can tell."""
        ...


def stdlib_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ecdh_curve(GROUP.decode())  # the same single group as the other engine
    return context


class StdlibTls:
    def __init__(self, context: ssl.SSLContext) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing)

    def handshake(self) -> bool:
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def feed(self, data: bytes) -> None:
        self.incoming.write(data)

    def read(self) -> bytes | None:
        try:
            return self.tls.read(65536)  # b"" at close_notify
        except ssl.SSLWantReadError:
            return None

    def write(self, data: bytes) -> None:
        self.tls.write(data)

    def output(self) -> bytes:
        return self.outgoing.read()

    def close_notify(self) -> None:
        with contextlib.suppress(ssl.SSLError):
            self.tls.unwrap()

    def group(self) -> str | None:
        return None  # Python 3.11's ssl cannot tell

    @property
    def session(self) -> ssl.SSLSession | None:
        return self.tls.session


def pyopenssl_context() -> SSL.Context:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.set_max_proto_version(SSL.TLS1_3_VERSION)
    context.set_verify(SSL.VERIFY_NONE)
    # pyOpenSSL has no public call for the group list; without it OpenSSL 3.5+
    # offers the hybrid X25519MLKEM768 first, which only some of the servers'
    # OpenSSL builds know, and the servers would not do the same work.
    if _lib.SSL_CTX_set1_curves_list(context._context, GROUP) != 1:
        raise FtpError(f"cannot restrict the pyOpenSSL client to {GROUP.decode()}")
    return context


class PyOpenSslTls:
    def __init__(self, context: SSL.Context) -> None:
        self.tls = SSL.Connection(context, None)
        self.tls.set_connect_state()

    def handshake(self) -> bool:
        try:
            self.tls.do_handshake()
        except SSL.WantReadError:
            return False
        return True

    def feed(self, data: bytes) -> None:
        self.tls.bio_write(data)

    def read(self) -> bytes | None:
        try:
            return self.tls.recv(65536)
        except SSL.WantReadError:
            return None
        except SSL.ZeroReturnError:
            return b""

    def write(self, data: bytes) -> None:
        self.tls.sendall(data)

    def output(self) -> bytes:
        chunks = []
        while True:
            try:
                chunks.append(self.tls.bio_read(65536))
            except SSL.WantReadError:
                return b"".join(chunks)

    def close_notify(self) -> None:
        with contextlib.suppress(SSL.Error):
            self.tls.shutdown()

    def group(self) -> str | None:
        name = _lib.SSL_get0_group_name(self.tls._ssl)
        return _ffi.string(name).decode() if name != _ffi.NULL else None


TlsContext = ssl.SSLContext | SSL.Context


def make_engine(context: TlsContext) -> StdlibTls | PyOpenSslTls:
    if isinstance(context, ssl.SSLContext):
        return StdlibTls(context)
    return PyOpenSslTls(context)


# -- the control connection ---------------------------------------------------


class Control:
    """One control connection: lines out, (possibly multi-line) replies in."""

    def __init__(self, target: Target, timeout: float = TIMEOUT) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        limit = struct.pack("ll", int(timeout), 0)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock.connect((target.host, target.port))
        except OSError:
            self.sock.close()
            raise
        self.buffer = bytearray()
        self.tls: StdlibTls | PyOpenSslTls | None = None
        self.close_notified = False

    def _receive(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise FtpError("control connection closed")
        return data

    def _flush(self) -> None:
        assert self.tls is not None
        pending = self.tls.output()
        if pending:
            self.sock.sendall(pending)

    def _line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line.rstrip(b"\r\n")
            if self.close_notified:
                raise FtpError("control connection closed (close_notify)")
            data = self._receive()
            if self.tls is None:
                self.buffer += data
                continue
            self.tls.feed(data)
            while (plain := self.tls.read()) is not None:
                if not plain:  # close_notify; lines before it are still good
                    self.close_notified = True
                    break
                self.buffer += plain
            self._flush()  # anything the TLS library wants to answer (key updates)

    def reply(self, *expected: int) -> str:
        line = self._line()
        text = [line]
        if line[3:4] == b"-":
            last = line[:3] + b" "
            while not line.startswith(last):
                line = self._line()
                text.append(line)
        joined = b"\n".join(text).decode("utf-8", "replace")
        if not line[:3].isdigit():
            raise FtpError(f"not an FTP reply: {joined!r}")
        if expected and int(line[:3]) not in expected:
            raise FtpError(joined)
        return joined

    def send(self, line: str) -> None:
        payload = line.encode("utf-8") + b"\r\n"
        if self.tls is None:
            self.sock.sendall(payload)
        else:
            self.tls.write(payload)
            self._flush()

    def command(self, line: str, *expected: int) -> str:
        self.send(line)
        try:
            return self.reply(*expected)
        except FtpError as error:
            verb = line.split(" ", 1)[0]
            shown = verb if verb == "PASS" else line
            raise FtpError(f"{shown}: {error}") from None

    def start_tls(self, context: TlsContext) -> None:
        """AUTH TLS and the client side of the handshake."""
        self.command("AUTH TLS", 234)
        if self.buffer:
            raise FtpError("bytes after the AUTH reply")
        self.tls = make_engine(context)
        while not self.tls.handshake():
            self._flush()
            self.tls.feed(self._receive())
        self._flush()  # the client's Finished

    def logon(self, context: TlsContext) -> None:
        """Banner, AUTH TLS, USER, PASS: a logged-in TLS control connection."""
        self.reply(220)
        self.start_tls(context)
        self.command(f"USER {self.target.user}", 331)
        self.command(f"PASS {self.target.password}", 230)

    def quit(self) -> None:
        """QUIT, answer the server's close_notify, and let the server close first.

        Some servers (pyftpdlib) wait for the client's close_notify before they
        close the TCP connection. The server closing first leaves TIME_WAIT on
        its side of each connection rather than on the client's ephemeral
        ports, so thousands of sessions per run do not exhaust them.
        """
        self.command("QUIT", 221)
        with contextlib.suppress(OSError, FtpError):
            if self.tls is not None:
                while not self.close_notified:
                    plain = self.tls.read()
                    if plain is None:
                        self.tls.feed(self._receive())
                    elif not plain:
                        self.close_notified = True
                self.tls.close_notify()
                self._flush()
            while self.sock.recv(65536):
                pass

    def close(self) -> None:
        self.sock.close()

    # -- data connections (stdlib engine only: they resume its session) --------
    def passive(self) -> int:
        """EPSV (PASV if refused): the data port to connect to."""
        self.send("EPSV")
        text = self.reply()
        match = _EPSV.search(text)
        if text.startswith("229") and match:
            return int(match.group(1))
        found = _PASV.search(self.command("PASV", 227))
        if not found:
            raise FtpError("cannot parse the PASV reply")
        return int(found.group(5)) * 256 + int(found.group(6))

    def secure_data(self) -> None:
        self.command("PBSZ 0", 200)
        self.command("PROT P", 200)
        self.command("TYPE I", 200)

    def open_data(self, port: int) -> socket.socket:
        data = socket.create_connection((self.target.host, port), timeout=TIMEOUT)
        data.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return data

    def wrap_data(self, context: ssl.SSLContext, data: socket.socket) -> ssl.SSLSocket:
        """TLS on a data connection, resuming the control connection's session."""
        if not isinstance(self.tls, StdlibTls):
            raise FtpError("data connections need the stdlib TLS engine")
        return context.wrap_socket(data, session=self.tls.session)
