"""Per-site W3C extended log files, in the shape IIS FTP writes them.

``<logFile directory>/FTPSVC<site id>/u_ex<period>.log``: one line per FTP
command with the fields chosen by ``logExtFileFlags``, headed by ``#Software``,
``#Version``, ``#Date`` and ``#Fields`` lines, UTF-8 (IIS's ``u_`` prefix).
Files roll over by ``period`` (UTC unless ``localTimeRollover``) or, for
``MaxSize``, at ``truncateSize`` bytes. Passwords are never written: PASS is
logged as ``***``, as IIS does.

Appending a line to a local file is the same kind of work twisted.logger's
file observer does on the reactor thread. Lines wait at most FLUSH_DELAY and
are written whole, in one ``write`` to a file opened for appending, so the
worker processes of ``<process workers>`` can share a site's file.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.config.model import LogFileSettings, LogPeriod, Site

log = Logger(observer=logfilter.observer)

#: logExtFileFlags name → W3C field name (IIS FTP).
#: Seconds a logged line may wait in the buffer before it is written out.
FLUSH_DELAY = 1.0
#: Bytes of lines written out at once, whatever the delay.
FLUSH_BYTES = 1 << 16

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
        self._fd: int | None = None
        self._name: str | None = None
        self._pending: list[str] = []
        self._pending_size = 0
        self._computer = socket.gethostname()
        # Date and time fields and the file name of the current second,
        # formatted once per second.
        self._second: int | None = None
        self._stamp: tuple[datetime.datetime, str, str] | None = None
        self._period_name = ""
        self._flush_call: Any = None
        self._closed = False  # see close()

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

    def _switch(self, name: str, now: datetime.datetime) -> None:
        """Append to the file ``name`` from now on (created with its header if missing)."""
        self._close_file()
        os.makedirs(self.folder, mode=0o750, exist_ok=True)
        header = (
            "#Software: ftps7\n#Version: 1.0\n"
            f"#Date: {now.strftime('%Y-%m-%d %H:%M:%S')}\n"
            "#Fields: " + " ".join(self.fields) + "\n"
        )
        self._fd = _open_appending(os.path.join(self.folder, name), header.encode("utf-8"))
        # (For maxSize logs: the file rolled over to stays the name until the
        # next second looks again.)
        self._name = self._period_name = name

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
            if self._fd is None or self._period_name != self._name:
                self.flush()  # what is pending belongs to the previous file
                self._switch(self._period_name, now)
            elif self.settings.period is LogPeriod.MAX_SIZE and (
                os.fstat(self._fd).st_size + self._pending_size >= self.settings.truncate_size
            ):
                self.flush()
                self._switch(self._max_size_name(), now)
        except OSError as error:
            self._cannot_write(error)
            return
        self._pending.append(line)
        self._pending_size += len(line)
        if self._closed:
            self.close()
        elif self._pending_size >= FLUSH_BYTES:
            self.flush()
        elif self._flush_call is None:
            # Buffered like IIS's own W3C logging: one write system call per
            # FLUSH_DELAY at most, instead of one per command.
            self._flush_call = self.clock.callLater(FLUSH_DELAY, self.flush)  # type: ignore[attr-defined]

    def flush(self) -> None:
        """Write out what is buffered (at most FLUSH_DELAY after a line, and at close).

        In one ``write`` to a file opened for appending: whole lines only, so
        worker processes that log to the same file never split each other's.
        """
        call, self._flush_call = self._flush_call, None
        if call is not None and call.active():
            call.cancel()
        if not self._pending or self._fd is None:
            return
        data = "".join(self._pending).encode("utf-8", "replace")
        self._pending.clear()
        self._pending_size = 0
        try:
            _append(self._fd, data)
        except OSError as error:
            self._cannot_write(error)

    def _cannot_write(self, error: OSError) -> None:
        log.error("cannot write the log of site {site}: {error}", site=self.site.name, error=error)

    def _close_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Write out what is pending and close the file.

        A line logged after this (a session whose connection ends after
        the logs closed, at shutdown or after a reload replaced them) is
        written at once: no timer is left to flush it.
        """
        self._closed = True
        self.flush()
        self._close_file()


def _open_appending(path: str, header: bytes) -> int:
    """``path`` opened for appending; a missing file is created holding ``header``.

    Worker processes append to the same file. The header comes with the
    file itself (written to a temporary file that is then linked to the
    name, which fails if another process was first), so no process can
    append a line before it.
    """
    if not os.path.exists(path):
        folder, name = os.path.split(path)
        temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            _append(fd, header)
            os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)


def _append(fd: int, data: bytes) -> None:
    """Write all of ``data`` (a regular file takes it in one call unless the disk is full)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
