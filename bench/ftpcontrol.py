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
  CPU. Its sessions can be resumed by `PyOpenSslDownload` data connections
  (the ``workers`` workload), whose AES-GCM is also more than twice as fast
  on this CPU (cryptography's OpenSSL uses the VAES instructions).
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

    @property
    def session(self) -> SSL.Session | None:
        return self.tls.get_session()


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

    def open_download(self, port: int) -> socket.socket:
        """A data connection for `PyOpenSslDownload`: blocking, time-outs in the kernel.

        ``socket.create_connection(timeout=...)`` would make Python poll()
        before every recv(); with SO_RCVTIMEO a recv is one system call.
        """
        data = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        limit = struct.pack("ll", int(TIMEOUT), 0)
        data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        data.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        data.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            data.connect((self.target.host, port))
        except OSError:
            data.close()
            raise
        return data

    def download_tls(self, context: SSL.Context, data: socket.socket) -> PyOpenSslDownload:
        """TLS on a download data connection, resuming the control connection's session."""
        if not isinstance(self.tls, PyOpenSslTls):
            raise FtpError("PyOpenSslDownload needs the pyopenssl control engine")
        return PyOpenSslDownload(context, self.tls.session, data)


class PyOpenSslDownload:
    """The receiving end of a PROT P download, as cheap as it can honestly be.

    Every byte is decrypted and its GCM tag checked, as any client must; what
    is cut is the work around it, measured on this machine against the other
    reading paths (client CPU seconds per GiB, one 1 GiB stream):

    - ``ssl.SSLSocket.recv_into``: 0.8-1.0. OpenSSL reads each record with
      two recv() calls (header, then body): 130,000 system calls per GiB.
    - ``ssl.SSLObject`` over memory BIOs (one recv_into of up to 1 MiB, then
      reads into a buffer): 0.5-0.65. The system OpenSSL 3.0's AES-256-GCM
      runs at 3.2 GB/s on this CPU.
    - pyOpenSSL over memory BIOs with ``Connection.recv_into``: 0.5-0.6.
      cryptography's OpenSSL decrypts at 7.7 GB/s (VAES), but every call
      allocates a buffer and copies the plaintext once more.
    - this class: 0.35-0.42. The same library and BIOs; ``SSL_read`` writes
      straight into one preallocated 1 MiB buffer (one record per call).

    What remains is the kernel's copy to user space, the copy into the BIO,
    the decryption and one Python loop turn per 16 KiB record.
    """

    def __init__(
        self, context: SSL.Context, session: SSL.Session | None, sock: socket.socket
    ) -> None:
        self.sock = sock
        self.tls = SSL.Connection(context, None)
        self.tls.set_connect_state()
        if session is not None:  # no ticket from the server: a full handshake
            self.tls.set_session(session)
        self.closed_by_notify = False
        self.recv_calls = 0  # during receive_all: bytes per call show how the reads batch

    def _flush(self) -> None:
        chunks = []
        while True:
            try:
                chunks.append(self.tls.bio_read(65536))
            except SSL.WantReadError:
                break
        if chunks:
            self.sock.sendall(b"".join(chunks))

    def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except SSL.WantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    raise FtpError("data connection closed during the TLS handshake") from None
                self.tls.bio_write(data)
        self._flush()  # the client's Finished

    def receive_all(self, plain: bytearray, network: bytearray) -> int:
        """Decrypt everything until close_notify or the end of the TCP stream.

        Returns the number of plaintext bytes (each overwrites ``plain``).
        The caller checks the count and the server's 226: a stream cut short
        fails one of them.
        """
        connection = self.tls._ssl
        into_ssl = self.tls._into_ssl
        target = _ffi.from_buffer(plain)
        wanted = len(plain)
        incoming = _ffi.from_buffer(network)
        view = memoryview(network)
        read, get_error, bio_write = _lib.SSL_read, _lib.SSL_get_error, _lib.BIO_write
        want_read, zero_return = _lib.SSL_ERROR_WANT_READ, _lib.SSL_ERROR_ZERO_RETURN
        total = 0
        while True:
            while (count := read(connection, target, wanted)) > 0:
                total += count
            error = get_error(connection, count)
            if error == zero_return:
                self.closed_by_notify = True
                return total
            if error != want_read:
                _lib.ERR_clear_error()
                raise FtpError(f"TLS error on the data connection (SSL_get_error {error})")
            received = self.sock.recv_into(view)
            self.recv_calls += 1
            if not received:
                return total
            if bio_write(into_ssl, incoming, received) != received:
                raise FtpError("BIO_write failed")

    @property
    def session_reused(self) -> bool:
        return bool(_lib.SSL_session_reused(self.tls._ssl))

    def cipher(self) -> str | None:
        return self.tls.get_cipher_name()

    def version(self) -> str:
        return self.tls.get_protocol_version_name()

    def close(self) -> None:
        self.sock.close()
