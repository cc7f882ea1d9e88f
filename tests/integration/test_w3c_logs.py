"""Per-site W3C log files (logFile), as IIS FTP writes them."""

from __future__ import annotations

import io
from pathlib import Path

from tests.integration.conftest import Running


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_commands_are_logged_without_passwords(start_server, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    server: Running = start_server(
        extra=f'<logFile directory="{logs}" period="Daily" '
        'logExtFileFlags="Date, Time, ClientIP, UserName, Method, UriStem, FtpStatus, '
        'BytesRecv, Session" />'
    )
    client = server.ftps()
    client.storbinary("STOR up load.txt", io.BytesIO(b"12345"))
    client.quit()
    server.process.stop()
    files = list((logs / "FTPSVC1").glob("u_ex*.log"))
    assert len(files) == 1
    lines = _lines(files[0])
    assert lines[0] == "#Software: ftps7"
    assert (
        lines[3]
        == "#Fields: date time c-ip cs-username cs-method cs-uri-stem sc-status cs-bytes x-session"
    )
    body = [line.split(" ") for line in lines[4:]]
    methods = [(fields[4], fields[5], fields[6]) for fields in body]
    assert ("PASS", "***", "230") in methods
    assert ("STOR", "/up+load.txt", "226") in methods
    stor = next(fields for fields in body if fields[4] == "STOR")
    assert stor[3] == "alice" and stor[7] == "5"
    assert "alice-pw" not in files[0].read_text()
