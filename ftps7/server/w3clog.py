"""Per-site W3C extended log files, in the shape IIS FTP writes them.

``<logFile directory>/FTPSVC<site id>/u_ex<period>.log``: one line per FTP
command with the fields chosen by ``logExtFileFlags``, headed by ``#Software``,
``#Version``, ``#Date`` and ``#Fields`` lines, UTF-8 (IIS's ``u_`` prefix).
Files roll over by ``period`` (UTC unless ``localTimeRollover``) or, for
``MaxSize``, at ``truncateSize`` bytes. Passwords are never written: PASS is
logged as ``***``, as IIS does.

Appending a line to a local file is the same kind of work twisted.logger's
file observer does on the reactor thread; the file is line-buffered so a crash
loses nothing that was answered.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from dataclasses import dataclass
from typing import IO, Any

from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.config.model import LogFileSettings, LogPeriod, Site

log = Logger(observer=logfilter.observer)

#: logExtFileFlags name → W3C field name (IIS FTP).
#: Seconds a logged line may wait in the buffer before it is written out.
FLUSH_DELAY = 1.0

FIELDS = {
    "Date": "date",
    "Time": "time",
    "ClientIP": "c-ip",
    "ClientPort": "c-port",
    "UserName": "cs-username",
    "SiteName": "s-sitename",
    "ComputerName": "s-computername",
    "ServerIP": "s-ip",
    "ServerPort": "s-port",
    "Method": "cs-method",
    "UriStem": "cs-uri-stem",
    "FtpStatus": "sc-status",
    "Win32Status": "sc-win32-status",
    "FtpSubStatus": "sc-substatus",
    "BytesSent": "sc-bytes",
    "BytesRecv": "cs-bytes",
    "TimeTaken": "time-taken",
    "Host": "cs-host",
    "Session": "x-session",
    "FullPath": "x-fullpath",
    "Info": "x-debug",
}


#: The win32 status IIS writes for a channel that did not end cleanly
#: (ERROR_NETNAME_DELETED: the connection was reset or aborted).
CHANNEL_NOT_CLEAN = 64


@dataclass(frozen=True)
class Entry:
    """One logged command."""

    client_ip: str
    client_port: int
    user: str
    server_ip: str
    server_port: int
    method: str
    uri: str
    status: int | None  # None: "-", the channel events (ControlChannelOpened, ...)
    session: str
    full_path: str = "-"
    host: str = "-"
    bytes_sent: int = 0
    bytes_received: int = 0
    time_taken_ms: int = 0
    win32_status: int = 0
    sub_status: int = 0
    info: str = "-"


def _field(text: str) -> str:
    """W3C fields are space-separated: spaces become '+', empty becomes '-'."""
    if not text:
        return "-"
    if text.isprintable() and " " not in text:
        return text
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned.replace(" ", "+")


class SiteLog:
    """The log file of one site."""

    def __init__(self, site: Site, settings: LogFileSettings, clock: object) -> None:
        assert settings.directory is not None
        self.site = site
        self.settings = settings
        self.clock = clock
        self.folder = os.path.join(settings.directory, f"FTPSVC{site.id}")
        self.fields = [FIELDS[name] for name in settings.log_ext_file_flags if name in FIELDS]
        self._file: IO[str] | None = None
        self._name: str | None = None
        self._computer = socket.gethostname()
        # Date and time fields and the file name of the current second,
        # formatted once per second.
        self._second: int | None = None
        self._stamp: tuple[datetime.datetime, str, str] | None = None
        self._period_name = ""
        self._flush_call: Any = None

    def _file_name(self, now: datetime.datetime) -> str:
        moment = now.astimezone() if self.settings.local_time_rollover else now
        period = self.settings.period
        if period is LogPeriod.HOURLY:
            stamp = moment.strftime("%y%m%d%H")
        elif period is LogPeriod.DAILY:
            stamp = moment.strftime("%y%m%d")
        elif period is LogPeriod.WEEKLY:
            stamp = moment.strftime("%y%m") + f"{(moment.day - 1) // 7 + 1:02d}"
        elif period is LogPeriod.MONTHLY:
            stamp = moment.strftime("%y%m")
        else:
            return self._max_size_name()
        return f"u_ex{stamp}.log"

    def _max_size_name(self) -> str:
        index = 1
        while True:
            name = f"u_extend{index}.log"
            path = os.path.join(self.folder, name)
            if not os.path.exists(path) or os.path.getsize(path) < self.settings.truncate_size:
                return name
            index += 1

    def _open(self, now: datetime.datetime) -> IO[str]:
        name = self._period_name
        if self._file is not None and name == self._name:
            if self.settings.period is not LogPeriod.MAX_SIZE:
                return self._file
            if self._file.tell() < self.settings.truncate_size:
                return self._file
            name = self._max_size_name()
        self.close()
        os.makedirs(self.folder, mode=0o750, exist_ok=True)
        path = os.path.join(self.folder, name)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        handle = open(path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115 - kept open
        if new:
            handle.write("#Software: ftps7\n#Version: 1.0\n")
            handle.write(f"#Date: {now.strftime('%Y-%m-%d %H:%M:%S')}\n")
            handle.write("#Fields: " + " ".join(self.fields) + "\n")
        self._file = handle
        # (For maxSize logs: the file rolled over to stays the name until the
        # next second looks again.)
        self._name = self._period_name = name
        return handle

    def _current(self) -> tuple[datetime.datetime, str, str]:
        seconds = self.clock.seconds()  # type: ignore[attr-defined]
        whole = int(seconds)
        if self._stamp is None or whole != self._second:
            now = datetime.datetime.fromtimestamp(whole, datetime.UTC)
            self._second = whole
            self._stamp = (now, now.strftime("%Y-%m-%d"), now.strftime("%H:%M:%S"))
            self._period_name = self._file_name(now)
        return self._stamp

    def write(self, entry: Entry) -> None:
        now, date, time = self._current()
        values = {
            "date": date,
            "time": time,
            "c-ip": entry.client_ip,
            "c-port": str(entry.client_port),
            "cs-username": _field(entry.user),
            "s-sitename": f"FTPSVC{self.site.id}",
            "s-computername": self._computer,
            "s-ip": entry.server_ip,
            "s-port": str(entry.server_port),
            "cs-method": _field(entry.method),
            "cs-uri-stem": _field(entry.uri),
            "sc-status": "-" if entry.status is None else str(entry.status),
            "sc-win32-status": str(entry.win32_status),
            "sc-substatus": str(entry.sub_status),
            "sc-bytes": str(entry.bytes_sent),
            "cs-bytes": str(entry.bytes_received),
            "time-taken": str(entry.time_taken_ms),
            "cs-host": _field(entry.host),
            "x-session": entry.session,
            "x-fullpath": _field(entry.full_path),
            "x-debug": _field(entry.info),
        }
        line = " ".join(values[name] for name in self.fields) + "\n"
        try:
            self._open(now).write(line)
        except OSError as error:
            log.error(
                "cannot write the log of site {site}: {error}", site=self.site.name, error=error
            )
            return
        if self._flush_call is None:
            # Buffered like IIS's own W3C logging: one write system call per
            # FLUSH_DELAY at most, instead of one per command.
            self._flush_call = self.clock.callLater(FLUSH_DELAY, self.flush)  # type: ignore[attr-defined]

    def flush(self) -> None:
        """Write out what is buffered (at most FLUSH_DELAY after a line, and at close)."""
        call, self._flush_call = self._flush_call, None
        if call is not None and call.active():
            call.cancel()
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as error:
                log.error(
                    "cannot write the log of site {site}: {error}", site=self.site.name, error=error
                )

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            handle, self._file = self._file, None
            with contextlib.suppress(OSError):
                handle.close()


class SiteLogs:
    """All sites' logs; sites without a log directory get none."""

    def __init__(self, sites: tuple[Site, ...], clock: object) -> None:
        self.logs: dict[str, SiteLog] = {}
        for site in sites:
            settings = site.ftp_server.log_file
            if settings.enabled and settings.directory:
                self.logs[site.name] = SiteLog(site, settings, clock)

    def write(self, site: Site | None, entry: Entry) -> None:
        if site is None:
            return
        site_log = self.logs.get(site.name)
        if site_log is not None:
            site_log.write(entry)

    def close(self) -> None:
        for site_log in self.logs.values():
            site_log.close()
