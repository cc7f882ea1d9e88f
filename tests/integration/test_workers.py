"""<process workers="2">: two processes share the listening socket and split the passive range."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable

from tests.integration.conftest import Running


def test_two_workers_share_the_port_and_own_their_passive_slices(
    start_server: Callable[..., Running],
) -> None:
    low = 20100  # below the ephemeral range: no other test picks these ports
    server = start_server(
        system_ftp=(
            f'<firewallSupport lowDataChannelPort="{low}" highDataChannelPort="{low + 9}" />'
        ),
        ftps7_extra='<process workers="2" />',
        files={"data.bin": os.urandom(200_000)},
    )
    server.process.wait_for_log(r"ftps7 ready \(worker 1\)")
    pid = int(re.search(r"started worker 1 \(pid (\d+)\)", server.process.log).group(1))
    expected = (server.root / "data.bin").read_bytes()
    ports: set[int] = set()
    for _ in range(24):
        client = server.ftps()
        client.voidcmd("TYPE I")
        conn, _ = client.ntransfercmd("RETR data.bin")
        ports.add(conn.getpeername()[1])
        out = io.BytesIO()
        while chunk := conn.recv(65536):
            out.write(chunk)
        conn.unwrap()
        conn.close()
        client.voidresp()
        assert out.getvalue() == expected
        client.quit()
    # Worker 0 owns low..low+4, worker 1 low+5..low+9; the kernel spread the
    # sessions, and each data connection reached the process that owned it.
    assert any(port < low + 5 for port in ports) and any(port >= low + 5 for port in ports)
    assert all(low <= port <= low + 9 for port in ports)
    server.process.stop()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"worker 1 (pid {pid}) outlived worker 0")
