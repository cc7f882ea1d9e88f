"""W3C site logs: buffered like IIS's, written out within FLUSH_DELAY and at close."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.task import Clock

from ftps7.config.model import LogFileSettings, LogPeriod, Site, SiteFtpServer
from ftps7.server.w3clog import FLUSH_DELAY, Entry, SiteLog

DAY = 86_400


def make_log(directory: Path, clock: Clock) -> SiteLog:
    settings = LogFileSettings(
        directory=str(directory),
        period=LogPeriod.DAILY,
        log_ext_file_flags=("Date", "Time", "Method", "UriStem", "FtpStatus"),
    )
    site = Site("S", 7, True, (), (), SiteFtpServer(log_file=settings))
    return SiteLog(site, settings, clock)


def entry(method: str, uri: str = "/a b") -> Entry:
    return Entry(
        client_ip="127.0.0.1",
        client_port=1,
        user="alice",
        server_ip="127.0.0.1",
        server_port=21,
        method=method,
        uri=uri,
        status=226,
        session="s",
    )


def body(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def test_lines_reach_the_file_within_the_flush_delay(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(20 * 365 * DAY + 3661.5)  # 2-digit fields, not the epoch
    site_log = make_log(tmp_path, clock)
    site_log.write(entry("STOR"))
    site_log.write(entry("RETR"))
    (path,) = (tmp_path / "FTPSVC7").glob("u_ex*.log")
    assert body(path) == []  # buffered: no write system call per command
    clock.advance(FLUSH_DELAY)
    assert body(path) == [
        "1989-12-27 01:01:01 STOR /a+b 226",
        "1989-12-27 01:01:01 RETR /a+b 226",
    ]
    assert not clock.getDelayedCalls()  # nothing left to flush: no timer


def test_the_time_field_follows_the_clock_and_close_flushes(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(DAY - 1)
    site_log = make_log(tmp_path, clock)
    site_log.write(entry("USER"))
    clock.advance(1)  # next second, next day: a new daily file
    site_log.write(entry("PASS"))
    site_log.close()
    files = sorted((tmp_path / "FTPSVC7").glob("u_ex*.log"))
    assert [p.name for p in files] == ["u_ex700101.log", "u_ex700102.log"]
    assert body(files[0]) == ["1970-01-01 23:59:59 USER /a+b 226"]
    assert body(files[1]) == ["1970-01-02 00:00:00 PASS /a+b 226"]
    assert not clock.getDelayedCalls()


def test_a_line_logged_after_close_is_written_at_once(tmp_path: Path) -> None:
    # A session whose connection ends after shutdown closed the logs still
    # gets its ControlChannelClosed line, with no timer left behind.
    clock = Clock()
    site_log = make_log(tmp_path, clock)
    site_log.write(entry("QUIT"))
    site_log.close()
    site_log.write(entry("ControlChannelClosed", uri=""))
    (path,) = (tmp_path / "FTPSVC7").glob("u_ex*.log")
    assert [line.split(" ")[2] for line in body(path)] == ["QUIT", "ControlChannelClosed"]
    assert not clock.getDelayedCalls()
    assert site_log._fd is None  # and the file is closed again


def test_max_size_logs_roll_over_within_one_second(tmp_path: Path) -> None:
    # The file name is worked out once per second; a roll-over inside that
    # second must stick, not go back to the full file.
    clock = Clock()
    clock.advance(20 * 365 * DAY)
    settings = LogFileSettings(
        directory=str(tmp_path),
        period=LogPeriod.MAX_SIZE,
        truncate_size=300,
        log_ext_file_flags=("Method", "UriStem"),
    )
    site = Site("S", 7, True, (), (), SiteFtpServer(log_file=settings))
    site_log = SiteLog(site, settings, clock)
    for index in range(40):
        site_log.write(entry("RETR", f"/file{index:02d}"))
    site_log.close()

    files = sorted((tmp_path / "FTPSVC7").glob("u_extend*.log"), key=lambda p: int(p.stem[8:]))
    assert len(files) >= 3
    lines = [line for path in files for line in body(path)]
    assert lines == [f"RETR /file{index:02d}" for index in range(40)]
    for path in files:
        assert path.stat().st_size < 300 + 100
