"""What hostile or broken clients send, over raw sockets, against a real server.

Plaintext is allowed here (``SslAllow`` on both channels) because TLS is not
the point: the line framing, the gates, the command queue, the clean-up of
vanished clients and the file descriptors are. After all of it the server must
still answer other clients, and the fixture checks that the log holds no
traceback.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ftps7.core import commands
from tests.integration.conftest import USERS, Running

PLAIN = {"control_policy": "SslAllow", "data_policy": "SslAllow"}


class RawControl:
    """A plaintext control connection: bytes out, ``(code, text)`` replies in."""

    def __init__(self, host: str, port: int, *, source: str | None = None,
                 timeout: float = 20.0) -> None:
        self.host = host
        self.sock = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None
        )
        self.reader = self.sock.makefile("rb")
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _line(self) -> str:
        raw = self.reader.readline()
        if not raw:
            raise EOFError("the server closed the control connection")
        assert raw.endswith(b"\r\n"), raw
        return raw[:-2].decode("utf-8", "surrogateescape")

    def reply(self) -> tuple[int, str]:
        """One reply, multi-line ones (RFC 959 §4.2) joined with newlines."""
        first = self._line()
        code = first[:3]
        assert code.isdigit() and first[3:4] in ("-", " "), first
        lines = [first]
        if first[3] == "-":
            while not (lines[-1][:3] == code and lines[-1][3:4] == " "):
                lines.append(self._line())
        return int(code), "\n".join(lines)

    def cmd(self, line: str) -> tuple[int, str]:
        self.send(line.encode("utf-8", "surrogateescape") + b"\r\n")
        return self.reply()

    def code(self, line: str) -> int:
        return self.cmd(line)[0]

    def login(self, user: str = "alice") -> None:
        assert self.code(f"USER {user}") == 331
        assert self.code(f"PASS {USERS[user][0]}") == 230

    def epsv(self) -> socket.socket:
        """EPSV and connect to the port it names."""
        code, text = self.cmd("EPSV")
        assert code == 229, text
        match = re.search(r"\(\|\|\|(\d+)\|\)", text)
        assert match is not None, text
        return socket.create_connection((self.host, int(match.group(1))), timeout=20)

    def reset(self) -> None:
        """Vanish: close with an RST instead of a FIN (SO_LINGER 0)."""
        reset(self.sock)
        self.reader.close()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def transferred(control: RawControl) -> int:
    """The byte count STAT reports for the running transfer."""
    code, text = control.cmd("STAT")
    assert code == 211, text
    match = re.search(r": (\d+) bytes transferred", text)
    assert match is not None, text
    return int(match.group(1))


def wait_until_received(control: RawControl, minimum: int) -> int:
    """Ask STAT until the server has read ``minimum`` upload bytes.

    Each STAT is a full round trip on the control channel, so this waits on
    the server's own report rather than on time.
    """
    for _ in range(500):
        count = transferred(control)
        if count >= minimum:
            return count
    raise AssertionError(f"the server never received {minimum} bytes")


def open_fds(server: Running) -> int:
    assert server.process.process is not None
    return len(os.listdir(f"/proc/{server.process.process.pid}/fd"))


def wait_closed(server: Running, session: int) -> None:
    server.process.wait_for_log(rf"session {session} from \S+ closed")


def still_serving(server: Running) -> None:
    client = RawControl(server.host, server.port)
    assert client.greeting[0] == 220
    client.login("bob")
    assert client.cmd("PWD") == (257, '257 "/" is current directory.')
    assert client.code("QUIT") == 221
    client.close()


@pytest.fixture
def plain(start_server: Callable[..., Running]) -> Iterator[Running]:
    server = start_server(
        **PLAIN,
        files={"hello.txt": b"Hello, world!\n", "big.bin": b"\x5a" * (8 << 20)},
    )
    yield server
    still_serving(server)


# ------------------------------------------------------------ line framing


def test_100_kb_command_line_is_refused_and_the_session_goes_on(plain: Running) -> None:
    client = RawControl(plain.host, plain.port)
    assert client.cmd("NOOP " + "n" * 100_000) == (500, "500 Command line too long.")
    assert client.code("NOOP") == 200
    client.login()
    assert client.code("MKD " + "d" * 100_000) == 500
    assert client.code("STOR " + "s" * 100_000) == 500
    assert client.cmd("PWD")[0] == 257
    assert sorted(os.listdir(plain.root)) == ["big.bin", "hello.txt"]
    client.close()


def _garbage(seed: int, size: int) -> bytes:
    data = random.Random(seed).randbytes(size)  # noqa: S311 - reproducible test data
    return data.replace(b"\n", b"").replace(b"\r", b"")


GARBAGE = [
    b"\x00",
    b"\x00\x01\x02NOOP",
    b"NO\x00OP",
    b"\x80\x81\xfe\xfd",
    b"\xc3(\xa0\xa1 \xed\xa0\x80",
    b"\xff\xff\xff\xff",
    b"\x1b[31mRED\x1b[0m",
    b"USER\x00alice",
    _garbage(1, 1000),
    _garbage(2, 3000),
]


def test_binary_garbage_gets_a_clean_500(plain: Running) -> None:
    client = RawControl(plain.host, plain.port)
    for login in (False, True):
        if login:
            client.login()
        for line in GARBAGE:
            client.send(line + b"\r\n")
            raw = client.reader.readline()
            # The echo of the verb never carries raw bytes: the reply is valid UTF-8.
            raw.decode("utf-8")
            assert raw.startswith(b"500 ") and raw.endswith(b"\r\n"), (line, raw)
            assert raw.count(b"\r") == 1 and raw.count(b"\n") == 1
            assert client.code("NOOP") == 200
        # All of it in one write, too.
        client.send(b"".join(line + b"\r\n" for line in GARBAGE) + b"NOOP\r\n")
        assert [client.reply()[0] for _ in GARBAGE] == [500] * len(GARBAGE)
        assert client.reply()[0] == 200
    # A lone CR is data, not a line end; a bare LF is a line end.
    client.send(b"NOOP\rNOOP\r\n")
    code, text = client.reply()
    assert code == 500 and "\r" not in text
    client.send(b"NOOP\n")
    assert client.reply()[0] == 200
    client.send(b"\r\n")
    assert client.reply()[0] == 500
    client.close()


def test_telnet_synch_before_abor_idle_and_during_a_download(plain: Running) -> None:
    client = RawControl(plain.host, plain.port)
    # RFC 959 §4.1.3 "synch", all in the normal stream ...
    client.send(b"\xff\xf4\xff\xf2ABOR\r\n")
    assert client.reply() == (225, "225 ABOR command successful.")
    # ... and with the Data Mark sent as TCP urgent data, as the RFC intends.
    client.send(b"\xff\xf4\xff")
    client.sock.send(b"\xf2", socket.MSG_OOB)
    client.send(b"ABOR\r\n")
    assert client.reply()[0] == 225
    # Option negotiation and escaped 0xFF do not derail the next commands.
    client.send(b"\xff\xfb\x01\xff\xfd\x03NOOP\r\n")
    assert client.reply()[0] == 200
    # And the same synch during a download aborts it.
    client.login()
    assert client.code("TYPE I") == 200
    data = client.epsv()
    assert client.cmd("RETR big.bin")[0] == 150
    assert data.recv(65536)
    client.send(b"\xff\xf4\xff")
    client.sock.send(b"\xf2", socket.MSG_OOB)
    client.send(b"ABOR\r\n")
    assert client.reply()[0] == 426
    assert client.reply() == (226, "226 ABOR command successful.")
    data.close()
    assert client.cmd("SIZE big.bin") == (213, f"213 {8 << 20}")
    client.close()


def test_ftplib_abort_sends_abor_as_urgent_data(plain: Running) -> None:
    # ftplib.FTP.abort() sends "ABOR\r\n" with MSG_OOB: without SO_OOBINLINE the
    # final LF would be taken out of the stream and the ABOR line would never end.
    client = plain.plain()
    client.login("alice", "alice-pw")
    conn = client.transfercmd("RETR big.bin")
    assert conn.recv(65536)
    first = client.abort()
    conn.close()
    assert first.startswith("426")
    assert client.getresp() == "226 ABOR command successful."
    assert client.sendcmd("TYPE I") == "200 Type set to I."
    assert client.size("hello.txt") == 14
    client.quit()


# ------------------------------------------------------------------- gates


UNKNOWN = ["XYZZY", "SITE CHMOD 777 hello.txt", "SMNT /", "LANG en",
           "MFMT 20200101000000 hello.txt", "ADAT x", "CONF x", "ENC x", "MIC x",
           "XCRC hello.txt", "OPTZ x", "NOOP!", "N00P", "RETR\thello.txt"]


def test_unknown_commands_get_500(plain: Running) -> None:
    client = RawControl(plain.host, plain.port)
    for login in (False, True):
        if login:
            client.login()
        for line in UNKNOWN:
            code, text = client.cmd(line)
            assert code == 500 and "command not understood" in text, (line, text)
    assert client.code("noop") == 200  # verbs are case-insensitive
    client.close()


RANDOM_ARGUMENTS = (
    "", "/", "..", "../../etc/passwd", "/../..", "hello.txt", "big.bin", "nonexistent", "a" * 300,
    "\x00x", "dir/sub/", "*", "-la", "I", "A N", "E", "L 8", "S", "F", "P", "C",
    "1,2,3,4,5,6", "127,0,0,1,0,21", "127,0,0,1,300,1", "|1|127.0.0.1|21|", "|2|::1|99999|",
    "|3|x|1|", "0", "-1", "99999999999999999999", "UTF8 ON", "MLST type;size;", "XYZ",
    "20200101000000 hello.txt", "localhost", "éü", "%00", "C:\\windows", "~root", " lead",
    "a\tb", "\x7f",
)


def test_random_command_sequences_get_replies(start_server: Callable[..., Running]) -> None:
    """Seeded random sessions: every known verb (and some unknown ones) with
    odd arguments, in any order, logged on or not; passive ports used or left.

    Each line must get one well-formed reply and the log no traceback (the
    fixture checks). A run of this kind found a transfer after an unused PASV
    crashing with 451.
    """
    server = start_server(
        **PLAIN,
        files={"hello.txt": b"Hello\n", "big.bin": b"Z" * (1 << 16)},
        extra='<connections dataChannelTimeout="1" />',
    )
    verbs = [*commands.COMMANDS, *commands.ALIASES, "XYZZY", "SMNT", "REIN"]
    rng = random.Random(20261208)
    for _ in range(80):
        client = RawControl(server.host, server.port)
        if rng.random() < 0.7:
            client.login()
        data: socket.socket | None = None
        for _ in range(rng.randint(1, 25)):
            verb = rng.choice(verbs)
            if verb in ("AUTH", "CCC", "QUIT"):
                continue  # they change or end the plaintext channel
            if rng.random() < 0.2:
                argument = "".join(chr(rng.randint(1, 0x2FF)) for _ in range(rng.randint(0, 20)))
                argument = argument.replace("\r", "").replace("\n", "")
            else:
                argument = rng.choice(RANDOM_ARGUMENTS)
            line = f"{verb} {argument}" if argument else verb
            code, text = client.cmd(line)
            assert 200 <= code < 600 and "Traceback" not in text, (line, code, text)
            if code in (125, 150):
                if data is not None:
                    read_until_closed(data)
                final, text = client.reply()
                assert final in (226, 250, 425, 426, 451, 550), (line, final, text)
                assert final != 451, (line, text)
            elif code == 229 and rng.random() < 0.5:
                port = int(re.search(r"\(\|\|\|(\d+)\|\)", text).group(1))  # type: ignore[union-attr]
                data = socket.create_connection((server.host, port), timeout=20)
                if rng.random() < 0.5:
                    data.close()
                    data = None
        assert client.code("NOOP") == 200
        client.close()
        if data is not None:
            data.close()
    still_serving(server)


LOGIN_REQUIRED = sorted(name for name, spec in commands.COMMANDS.items() if spec.login)
ARGUMENT_REQUIRED = sorted(
    name for name, spec in commands.COMMANDS.items() if spec.arg is commands.Arg.REQUIRED
)


def test_every_command_that_needs_a_logon_is_530_before_it(plain: Running) -> None:
    client = RawControl(plain.host, plain.port)
    names = LOGIN_REQUIRED + sorted(
        alias for alias, target in commands.ALIASES.items() if commands.COMMANDS[target].login
    )
    assert "RETR" in names and "XPWD" in names
    client.send(b"".join(f"{name} x\r\n".encode() for name in names))
    answers = {name: client.reply()[0] for name in names}
    assert answers == {name: 530 for name in names}
    assert client.code("SYST") == 215  # allowed before logon
    client.close()


MALFORMED = [
    ("PORT 1,2,3", 501),
    ("PORT 127,0,0,1,300,1", 501),
    ("PORT a,b,c,d,e,f", 501),
    ("EPRT |1|127.0.0.1|", 501),
    ("EPRT |1|127.0.0.1|99999|", 501),
    ("EPRT |3|127.0.0.1|2000|", 522),
    ("REST abc", 501),
    ("REST -1", 554),
    ("REST 99999999999999999999999", 554),
    ("TYPE X", 504),
    ("TYPE", 501),
    ("MODE B", 504),
    ("STRU R", 504),
    ("EPSV 7", 522),
    ("PROT P", 503),
    ("PBSZ 0", 503),
    ("ACCT billing", 502),
    ("RNTO x", 503),
    ("OPTS NOTHING", 504),
    ("HOST ", 501),
]


def test_missing_and_malformed_arguments(plain: Running) -> None:
    client = RawControl(plain.host, plain.port)
    client.login()
    for suffix in ("", " ", "    "):
        client.send(b"".join(f"{name}{suffix}\r\n".encode() for name in ARGUMENT_REQUIRED))
        answers = {name: client.reply()[0] for name in ARGUMENT_REQUIRED}
        assert answers == {name: 501 for name in ARGUMENT_REQUIRED}, suffix
    answers = {line: client.cmd(line)[0] for line, _ in MALFORMED}
    assert answers == dict(MALFORMED)
    assert client.cmd("PWD")[0] == 257
    client.close()


# ---------------------------------------------------------------- pipelines


def test_many_pipelined_commands_are_answered_in_order(plain: Running) -> None:
    client = RawControl(plain.host, plain.port)
    client.login()
    # SIZE and MKD/RMD run in the thread pool, so most of these wait in the queue.
    batch = []
    for index in range(60):
        batch += ["SIZE hello.txt", f"MKD d{index}", "PWD", f"RMD d{index}", "NOOP"]
    client.send(b"".join(line.encode() + b"\r\n" for line in batch))
    answers = [client.reply()[1] for _ in batch]
    for index in range(60):
        assert answers[index * 5 : index * 5 + 5] == [
            "213 14",
            f'257 "/d{index}" directory created.',
            '257 "/" is current directory.',
            "250 RMD command successful.",
            "200 NOOP command successful.",
        ]
    assert sorted(os.listdir(plain.root)) == ["big.bin", "hello.txt"]
    # Far more than the server queues: it stops reading until the queue drains.
    client.send(b"SIZE hello.txt\r\n" * 5000 + b"NOOP\r\n")
    assert all(client.reply() == (213, "213 14") for _ in range(5000))
    assert client.reply()[0] == 200
    client.close()


def test_thousands_of_instant_commands_behind_a_slow_one(plain: Running) -> None:
    # PASS runs in the pool, so everything behind it queues; each NOOP then
    # finishes at once. Run one by one from the queue they used to recurse
    # until Python's limit, and the session hung.
    client = RawControl(plain.host, plain.port)
    password = USERS["alice"][0].encode()
    client.send(b"USER alice\r\nPASS " + password + b"\r\n" + b"NOOP\r\n" * 3000 + b"PWD\r\n")
    assert client.reply()[0] == 331
    assert client.reply()[0] == 230
    assert all(client.reply()[0] == 200 for _ in range(3000))
    assert client.reply() == (257, '257 "/" is current directory.')
    client.close()


def test_a_long_pipeline_over_implicit_tls(start_server: Callable[..., Running]) -> None:
    # Pausing the reads goes through the TLS layer to the socket underneath.
    server = start_server(implicit=True)
    raw = socket.create_connection((server.host, server.ports["implicit"]), timeout=20)
    tls = server.client_context().wrap_socket(raw, server_hostname=server.host)
    reader = tls.makefile("rb")
    assert reader.readline().startswith(b"220")
    tls.sendall(b"USER alice\r\nPASS alice-pw\r\n" + b"SIZE hello.txt\r\n" * 3000 + b"NOOP\r\n")
    assert reader.readline() == b"331 Password required\r\n"
    assert reader.readline() == b"230 User logged in.\r\n"
    assert all(reader.readline() == b"213 14\r\n" for _ in range(3000))
    assert reader.readline() == b"200 NOOP command successful.\r\n"
    reader.close()
    tls.close()


def test_a_single_read_of_countless_tiny_lines_is_cut_off(plain: Running) -> None:
    client = RawControl(plain.host, plain.port)
    client.login()
    client.epsv()  # never used: the RETR below waits for it, so everything queues
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        client.send(b"RETR hello.txt\r\n" + b"\n" * 60_000)  # may be cut off mid-send
    with pytest.raises((EOFError, ConnectionResetError)):
        for _ in range(60_001):
            client.reply()
    plain.process.wait_for_log("too many pipelined commands")
    client.close()


# ------------------------------------------------- vanishing clients and fds


def _session_count(server: Running) -> int:
    return len(re.findall(r"session \d+ connected from", server.process.log))


def _abuse(server: Running, kind: str) -> None:
    host, port = server.host, server.port
    if kind == "fin":
        socket.create_connection((host, port), timeout=10).close()
    elif kind == "rst":
        reset(socket.create_connection((host, port), timeout=10))
    elif kind == "half-line":
        client = RawControl(host, port)
        client.send(b"USER ali")
        client.reset()
    elif kind == "huge-line":
        client = RawControl(host, port)
        client.send(b"X" * 200_000)
        client.close()
    elif kind == "tls-hello-cut":
        client = RawControl(host, port)
        assert client.code("AUTH TLS") == 234
        client.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        client.reset()
    elif kind == "tls-session-reset":
        # Replies go out at once under TLS (controltls.send_now): here onto a
        # connection that is reset while they are being written.
        raw = socket.create_connection((host, port), timeout=10)
        reader = raw.makefile("rb")
        assert reader.readline().startswith(b"220")
        raw.sendall(b"AUTH TLS\r\n")
        assert reader.readline().startswith(b"234")
        reader.close()
        tls = server.client_context().wrap_socket(raw, server_hostname=host)
        password = USERS["alice"][0]
        tls.sendall(f"USER alice\r\nPASS {password}\r\n".encode() + b"NOOP\r\n" * 200)
        reset(tls)
    elif kind == "pasv-unused":
        client = RawControl(host, port)
        client.login()
        assert client.code("PASV") == 227
        client.close()
    elif kind == "pasv-connected":
        client = RawControl(host, port)
        client.login()
        data = client.epsv()
        client.reset()
        with contextlib.suppress(ConnectionResetError):
            assert read_until_closed(data) == b""
        data.close()
    elif kind == "download-cut":
        client = RawControl(host, port)
        client.login()
        data = client.epsv()
        assert client.cmd("RETR big.bin")[0] == 150
        assert data.recv(65536)
        reset(data)
        client.reset()
    elif kind == "upload-cut":
        client = RawControl(host, port)
        client.login()
        data = client.epsv()
        assert client.cmd("STOR cut.bin")[0] == 150
        data.sendall(b"u" * 100_000)
        client.reset()
        reset(data)
    else:  # pragma: no cover
        raise AssertionError(kind)


KINDS = ["fin", "rst", "half-line", "huge-line", "tls-hello-cut", "tls-session-reset",
         "pasv-unused", "pasv-connected", "download-cut", "upload-cut"]


def test_no_descriptor_leak_after_many_aborted_sessions(plain: Running) -> None:
    # Warm up (lazily opened files, thread pools), then take the baseline.
    for kind in KINDS:
        _abuse(plain, kind)
    still_serving(plain)
    for session in range(1, _session_count(plain) + 1):
        wait_closed(plain, session)
    still_serving(plain)  # reactor turns for deferred socket closes
    wait_closed(plain, _session_count(plain))
    baseline = open_fds(plain)
    for _ in range(4):
        for kind in KINDS:
            _abuse(plain, kind)
    last = _session_count(plain)
    for session in range(1, last + 1):
        wait_closed(plain, session)
    still_serving(plain)
    wait_closed(plain, _session_count(plain))
    assert open_fds(plain) == baseline
    assert not [p for p in os.listdir(plain.root) if p.startswith(".ftps7-part-")]


def _start_upload(server: Running, name: str) -> tuple[RawControl, socket.socket]:
    client = RawControl(server.host, server.port)
    client.login()
    assert client.code("TYPE I") == 200
    data = client.epsv()
    code, text = client.cmd(f"STOR {name}")
    assert code == 150, text
    return client, data


def _partials(root: Path) -> list[str]:
    return [p for p in os.listdir(root) if p.startswith(".ftps7-part-")]


def test_vanishing_mid_upload_leaves_no_trace(plain: Running) -> None:
    original = b"original content\n" * 1000
    for how in ("data-rst", "control-rst", "both-rst"):
        name = f"keep-{how}.bin"
        (plain.root / name).write_bytes(original)
        client, data = _start_upload(plain, name)
        data.sendall(b"N" * 1_000_000)
        wait_until_received(client, 1)
        if how == "data-rst":
            reset(data)
            assert client.reply()[0] == 426
            client.close()
        elif how == "control-rst":
            client.reset()
            data.close()  # even a clean FIN after that cannot complete the upload
        else:
            reset(data)
            client.reset()
        plain.process.wait_for_log(
            rf"STOR /{re.escape(name)} ended without a clean close .* upload discarded"
        )
        assert (plain.root / name).read_bytes() == original, how
        assert _partials(plain.root) == [], how
    # A new file: nothing at all is left.
    client, data = _start_upload(plain, "new.bin")
    data.sendall(b"N" * 1_000_000)
    wait_until_received(client, 1)
    reset(data)
    client.reset()
    plain.process.wait_for_log(r"STOR /new\.bin ended without a clean close .* upload discarded")
    assert not (plain.root / "new.bin").exists()
    assert _partials(plain.root) == []


def test_vanishing_with_keep_partial_uploads(start_server: Callable[..., Running]) -> None:
    server = start_server(**PLAIN, extra='<fileHandling keepPartialUploads="true" />')
    payload = bytes(range(256)) * 4096  # 1 MiB, position-dependent content
    (server.root / "old.bin").write_bytes(b"old")
    for name in ("partial.bin", "old.bin"):
        client, data = _start_upload(server, name)
        data.sendall(payload)
        received = wait_until_received(client, 1)
        reset(data)
        client.reset()
        server.process.wait_for_log(
            rf"STOR /{re.escape(name)} ended without a clean close .* upload "
            + ("kept" if name == "partial.bin" else "discarded")
        )
        assert _partials(server.root) == []
        if name == "partial.bin":
            kept = (server.root / name).read_bytes()
            assert len(kept) >= received and payload.startswith(kept)
    # A partial upload never replaces a file that was there.
    assert (server.root / "old.bin").read_bytes() == b"old"
    still_serving(server)


def test_a_data_connection_reset_before_the_listing_is_sent(plain: Running) -> None:
    # The listing is written to a connection already gone, then closed: a
    # 426 or 226, never 451 (setting TCP_NODELAY on the dead socket crashed).
    client = RawControl(plain.host, plain.port)
    client.login()
    for _ in range(20):
        reset(client.epsv())
        assert client.code("NOOP") == 200
        code, text = client.cmd("NLST")
        if code == 150:
            code, text = client.reply()
        assert code in (226, 425, 426), text
    client.close()


def test_vanished_clients_do_not_stop_other_sessions(plain: Running) -> None:
    watcher = RawControl(plain.host, plain.port)
    watcher.login("bob")
    for kind in KINDS:
        _abuse(plain, kind)
    out = plain.plain()
    out.login("bob", "bob-pw")
    assert sorted(out.nlst()) == ["big.bin", "hello.txt"]
    out.quit()
    assert watcher.code("NOOP") == 200
    assert watcher.cmd("SIZE big.bin") == (213, f"213 {8 << 20}")
    watcher.close()
