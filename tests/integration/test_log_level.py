"""``twistd ftps7 --log-level``: what reaches twistd's log, on a real server."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

TLS_LINE = r"session \d+: TLS TLSv1\.[23] \S+ \(\d+ bits\)"  # the debug line of a handshake


def _logon_and_quit(server: Running) -> None:
    client = server.ftps()
    client.quit()


def test_debug_lines_are_left_out_by_default(server: Running) -> None:
    _logon_and_quit(server)
    server.process.wait_for_log(r"session \d+ from 127\.0\.0\.1 closed")
    log = server.process.log
    assert "alice logged on to site" in log and "(TLSv1." in log
    assert "#debug]" not in log


def test_debug_shows_the_handshake_line(start_server: Callable[..., Running]) -> None:
    server = start_server(extra_args=("--log-level", "debug"))
    _logon_and_quit(server)
    server.process.wait_for_log(TLS_LINE)


def test_warn_leaves_out_the_session_lines_but_not_ready_or_warnings(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(extra_args=("--log-level", "warn"))  # started: "ready" was written
    _logon_and_quit(server)
    # A warning, written after the session above logged on: plaintext pipelined behind AUTH.
    with socket.create_connection((server.host, server.port), timeout=20) as raw:
        raw.recv(1024)
        raw.sendall(b"AUTH TLS\r\nNOOP\r\n")
        server.process.wait_for_log("pipelined plaintext after AUTH")
    assert "logged on to site" not in server.process.log


def test_an_unknown_level_stops_start_up(start_server: Callable[..., Running]) -> None:
    with pytest.raises(RuntimeError, match="verbose.*debug, info, warn, error, critical"):
        start_server(extra_args=("--log-level", "verbose"))
