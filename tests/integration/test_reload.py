"""SIGHUP reloads the configuration: new sessions get it, running ones keep theirs."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import socket
import ssl
from collections.abc import Callable
from ftplib import error_perm
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ftps7.tls.store import CertificateStore
from tests.integration.conftest import USERS, ReusingFTP_TLS, Running, make_certificate
from tests.integration.harness import free_port

READERS = '<add accessType="Allow" roles="readers" permissions="Read" />'
READERS_WRITE = '<add accessType="Allow" roles="readers" permissions="Read, Write" />'
RELOADED = r"configuration reloaded from "
REFUSED = r"configuration reload refused"


def _edit(server: Running, old: str, new: str) -> None:
    path = server.process.config
    text = path.read_text(encoding="utf-8")
    assert old in text, text
    # As an editor or a deployment tool would: the server never sees half a file.
    temporary = path.with_suffix(".new")
    temporary.write_text(text.replace(old, new), encoding="utf-8")
    os.replace(temporary, path)


def _reload(server: Running, expect: str = RELOADED, worker: int = 0) -> str:
    """SIGHUP the server; the log line that says how the reload ended."""
    pattern = f"({RELOADED}|{REFUSED}).*\\(worker {worker}\\)"
    done = server.process.count(pattern)
    assert server.process.process is not None
    server.process.process.send_signal(signal.SIGHUP)
    line = server.process.wait_for_log(pattern, occurrence=done + 1)
    assert expect in line, server.process.log
    return line


def _store(client: ReusingFTP_TLS, name: str) -> None:
    client.storbinary(f"STOR {name}", io.BytesIO(b"uploaded\n"))


def test_new_sessions_get_the_new_rules_and_running_ones_keep_theirs(
    server: Running,
) -> None:
    running = server.ftps(user="bob")
    with pytest.raises(error_perm, match="^550"):
        _store(running, "before.txt")
    _edit(server, READERS, READERS_WRITE)
    _reload(server)
    fresh = server.ftps(user="bob")
    _store(fresh, "after.txt")
    assert (server.root / "after.txt").read_bytes() == b"uploaded\n"
    fresh.quit()
    # The logged-on session keeps the rules it logged on with, and goes on working.
    with pytest.raises(error_perm, match="^550"):
        _store(running, "still-not.txt")
    assert running.nlst() == ["after.txt", "hello.txt"]
    running.quit()


def test_a_file_with_errors_changes_nothing(server: Running) -> None:
    _edit(server, READERS, READERS_WRITE.replace("permissions=", "permission="))
    line = _reload(server, expect=REFUSED)
    assert "refused (worker 0): 1 error, the running configuration stays" in line
    log = server.process.log
    assert f"{server.process.config}:" in log and "permission: unknown attribute" in log
    client = server.ftps(user="bob")  # the running configuration still serves
    with pytest.raises(error_perm, match="^550"):
        _store(client, "refused.txt")
    assert client.nlst() == ["hello.txt"]
    client.quit()
    # Fixed, the next reload applies it.
    _edit(server, READERS_WRITE.replace("permissions=", "permission="), READERS_WRITE)
    _reload(server)
    client = server.ftps(user="bob")
    _store(client, "accepted.txt")
    client.quit()


def test_bindings_follow_the_file(server: Running) -> None:
    running = server.ftps()
    new_port = free_port()
    _edit(server, f"127.0.0.1:{server.port}:", f"127.0.0.1:{new_port}:")
    _reload(server)
    assert f"listening on 127.0.0.1:{new_port}" in server.process.log
    assert f"no longer listening on 127.0.0.1:{server.port}" in server.process.log
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=5).close()
    moved = server.ftps(port=new_port)
    assert moved.nlst() == ["hello.txt"]
    moved.quit()
    # A session of the closed socket goes on, data connections included.
    out = io.BytesIO()
    running.retrbinary("RETR hello.txt", out.write)
    assert out.getvalue() == b"Hello, world!\n"
    running.quit()


def test_a_port_in_use_is_reported_and_the_rest_applies(server: Running) -> None:
    with socket.socket() as taken:
        taken.bind((server.host, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        _edit(
            server,
            f'bindingInformation="127.0.0.1:{server.port}:" />',
            f'bindingInformation="127.0.0.1:{server.port}:" />'
            f'<binding protocol="ftp" bindingInformation="127.0.0.1:{busy}:" />',
        )
        _edit(server, READERS, READERS_WRITE)
        line = _reload(server)
    assert "; 1 listeners could not be opened" in line
    assert f"cannot listen on ftp 127.0.0.1:{busy}" in server.process.log
    client = server.ftps(user="bob")
    _store(client, "applied.txt")
    client.quit()
    # Free now: the next reload opens it.
    _reload(server)
    other = server.ftps(port=busy)
    assert other.nlst() == ["applied.txt", "hello.txt"]
    other.quit()


def test_a_renewed_certificate_is_served_to_new_sessions(server: Running) -> None:
    renewed = make_certificate(CertificateStore(str(server.workdir / "certs")), "renewed")
    _edit(server, server.thumbprint, renewed.thumbprint)
    _reload(server)
    context = ssl.create_default_context(
        cadata=renewed.leaf.public_bytes(serialization.Encoding.PEM).decode()
    )
    client = ReusingFTP_TLS(context=context, timeout=20)
    client.connect(server.host, server.port)
    client.auth()
    served = client.sock.getpeercert(binary_form=True)
    assert hashlib.sha1(served).hexdigest().upper() == renewed.thumbprint.upper()
    client.login("alice", USERS["alice"][0])
    client.prot_p()
    assert client.nlst() == ["hello.txt"]
    client.quit()


def test_restart_only_settings_are_named_and_the_rest_applies(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(ftps7_extra='<process transferThreads="4" />')
    _edit(server, '<process transferThreads="4" />', '<process transferThreads="8" />')
    _edit(server, READERS, READERS_WRITE)
    _reload(server)
    assert (
        "<ftps7><process transferThreads> (4 -> 8) takes effect at the next restart"
        in server.process.log
    )
    client = server.ftps(user="bob")
    _store(client, "applied.txt")
    client.quit()


def test_workers_reload_a_valid_file_once_worker_0_checked_it(
    start_server: Callable[..., Running],
) -> None:
    low = 20120  # below the ephemeral range, apart from test_workers' ports
    server = start_server(
        system_ftp=(
            f'<firewallSupport lowDataChannelPort="{low}" highDataChannelPort="{low + 9}" />'
        ),
        ftps7_extra='<process workers="2" />',
    )
    server.process.wait_for_log(r"ftps7 ready \(worker 1\)")
    _edit(server, READERS, READERS.replace("permissions=", "permission="))
    _reload(server, expect=REFUSED)
    assert server.process.count(REFUSED) == 1  # worker 1 was not asked
    _edit(server, READERS.replace("permissions=", "permission="), READERS_WRITE)
    _reload(server)
    server.process.wait_for_log(f"{RELOADED}.*\\(worker 1\\)")
    for number in range(6):  # the kernel spreads them over both workers
        client = server.ftps(user="bob")
        _store(client, f"upload{number}.txt")
        client.quit()


def test_a_missing_file_is_refused_and_the_server_goes_on(server: Running) -> None:
    path: Path = server.process.config
    moved = path.with_name("moved.config")
    os.replace(path, moved)
    _reload(server, expect=REFUSED)
    assert "cannot read the configuration file" in server.process.log
    os.replace(moved, path)
    _reload(server)


def test_a_file_that_cannot_be_applied_changes_nothing(server: Running) -> None:
    missing = server.workdir / "missing-ca.pem"
    _edit(
        server,
        "</ftps7>",
        f'<activeDirectory url="ldaps://127.0.0.1:636" caFile="{missing}" /></ftps7>',
    )
    _edit(server, READERS, READERS_WRITE)
    line = _reload(server, expect=REFUSED)
    assert "<activeDirectory>: cannot use caFile" in line
    client = server.ftps(user="bob")  # the rules of the running configuration
    with pytest.raises(error_perm, match="^550"):
        _store(client, "refused.txt")
    client.quit()


def test_a_restarted_worker_runs_with_the_running_worker_count(
    start_server: Callable[..., Running],
) -> None:
    """Its passive ports depend on it: a worker restarted after the file changed
    must not take another worker's slice."""
    low = 20140  # below the ephemeral range, apart from the other workers tests' ports
    server = start_server(
        system_ftp=(
            f'<firewallSupport lowDataChannelPort="{low}" highDataChannelPort="{low + 9}" />'
        ),
        ftps7_extra='<process workers="2" />',
    )
    server.process.wait_for_log(r"ftps7 ready \(worker 1\)")
    _edit(server, '<process workers="2" />', '<process workers="3" />')
    _reload(server)
    assert "<ftps7><process workers> (2 -> 3) takes effect" in server.process.log
    started = re.search(r"started worker 1 \(pid (\d+)\)", server.process.log)
    assert started is not None
    os.kill(int(started.group(1)), signal.SIGKILL)
    server.process.wait_for_log(r"ftps7 ready \(worker 1\)", occurrence=2)
    slices = re.findall(r"worker 1 of (\d) owns passive ports (\d+)-(\d+)", server.process.log)
    assert slices == [("2", str(low + 5), str(low + 9))] * 2
    client = server.ftps(user="bob")
    assert client.nlst() == ["hello.txt"]
    client.quit()
