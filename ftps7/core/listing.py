"""Directory listing lines: IIS's MS-DOS and Unix LIST styles, NLST, MLSx facts.

LIST formats (``directoryBrowse showFlags``), reproduced from real IIS
transcripts::

    01-20-21  10:35AM       <DIR>          folder          (MS-DOS, the default)
    01-20-21  10:35AM                 1234 file.txt
    01-20-2021  10:35AM       <DIR>          folder        (MS-DOS + LongDate)
    drwxr-xr-x   1 owner    group               0 Jan 20 10:35 folder   (StyleUnix)
    -rw-r--r--   1 owner    group            1234 Jun 15  2024 file.txt

- MS-DOS: ``MM-DD-YY``, two spaces, 12-hour ``HH:MM`` with ``AM``/``PM``,
  then either ``<DIR>`` padded to the name column or the size right-aligned
  in 20 columns, so the name starts 22 columns after the time either way.
  ``LongDate`` only widens the year to four digits.
- Unix: the mode string, the link count in 4 columns, then ``owner`` and
  ``group`` *literally* (IIS has no Unix owners to show and prints those two
  words; we do the same rather than expose local account names), the size
  right-aligned in 12 columns, and ``Mon DD`` followed by the time
  ``HH:MM`` for entries of the current year or the year for older (and, our
  addition, future) ones - IIS's documented rule ("the year when the date of
  the file is different from the year of the FTP server"), not ``ls``'s
  six-month rule. IIS writes the hour space-padded (`` 0:45``); we write
  ``00:45``, which every listing parser accepts. The mode string is the
  real one (``stat.filemode``), where IIS derives it from the read-only
  attribute. IIS documents LongDate as affecting only the MS-DOS style, so
  it changes nothing here.

Times: IIS prints LIST dates in the server's local time unless the
``UseGmtTime`` flag (value 64 in IIS's schema) is set; the formatters take a
``tz`` (None = the server's local zone, ``datetime.timezone.utc`` for GMT).
MLSx ``modify`` and MDTM are always UTC (RFC 3659 §2.3).

Names holding control characters cannot be named by a client
(:mod:`ftps7.core.paths` refuses them) and a CR/LF would forge listing
lines, so such entries are left out of every listing.

``DisplayAvailableBytes``: the server appends :func:`available_bytes_text`
as the text of a ``226-`` line before the final ``226`` of a LIST (the free
space of the listed directory's filesystem, ``os.statvfs``: ``f_bavail *
f_frsize``). No IIS transcript of this line was found, so its wording is ours.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from ftps7.config.model import ShowFlags

__all__ = [
    "FEAT_MLST",
    "SUPPORTED_FACTS",
    "Entry",
    "available_bytes_text",
    "directory_entry",
    "entry_from_stat",
    "is_listable",
    "list_lines",
    "mdtm",
    "mlst_feature",
    "mlsx_line",
    "msdos_line",
    "nlst_lines",
    "perm_string",
    "select_facts",
    "unix_line",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_MIN_TS = datetime.datetime(1, 1, 2, tzinfo=datetime.UTC).timestamp()
_MAX_TS = datetime.datetime(9999, 12, 30, tzinfo=datetime.UTC).timestamp()

#: The MLSx facts this server can produce, in output order (RFC 3659 §7.5).
SUPPORTED_FACTS: tuple[str, ...] = ("type", "size", "modify", "perm", "unique")


@dataclass(frozen=True)
class Entry:
    """One directory entry as listings need it."""

    name: str
    is_dir: bool
    size: int
    mtime: float  # seconds since the epoch (UTC)
    mode: int  # st_mode
    nlink: int
    owner: str
    group: str
    unique: str  # stable identity for MLSx "unique": "<dev>-<ino>" in hex
    is_link: bool = False


def entry_from_stat(name: str, st: os.stat_result) -> Entry:
    """An :class:`Entry` from a ``stat``/``lstat`` result.

    Owner and group are the literal words ``owner`` and ``group``, as IIS
    prints them. ``is_link`` is only ever true for an ``lstat`` result.
    """
    return Entry(
        name=name,
        is_dir=stat.S_ISDIR(st.st_mode),
        size=st.st_size,
        mtime=st.st_mtime,
        mode=st.st_mode,
        nlink=st.st_nlink,
        owner="owner",
        group="group",
        unique=f"{st.st_dev:x}-{st.st_ino:x}",
        is_link=stat.S_ISLNK(st.st_mode),
    )


def directory_entry(name: str, mtime: float) -> Entry:
    """A synthetic directory entry, for an intermediate segment of a virtual
    directory that has no folder on disk (IIS uses the current date there)."""
    return Entry(
        name=name,
        is_dir=True,
        size=0,
        mtime=mtime,
        mode=stat.S_IFDIR | 0o755,
        nlink=1,
        owner="owner",
        group="group",
        unique=f"virtual-{name.encode('utf-8', 'surrogateescape').hex()}",
    )


def is_listable(name: str) -> bool:
    """Whether a name may appear in a listing (no control characters, not empty)."""
    return bool(name) and not _CONTROL.search(name)


def _clamp(mtime: float) -> float:
    return min(max(mtime, _MIN_TS), _MAX_TS)


def _local(mtime: float, tz: datetime.tzinfo | None) -> datetime.datetime:
    moment = datetime.datetime.fromtimestamp(_clamp(mtime), tz=datetime.UTC)
    return moment.astimezone(tz) if tz is not None else moment.astimezone()


# --------------------------------------------------------------------------
# LIST


def msdos_line(entry: Entry, *, long_date: bool = False, tz: datetime.tzinfo | None = None) -> str:
    """One IIS MS-DOS style LIST line."""
    moment = _local(entry.mtime, tz)
    year = f"{moment.year:04d}" if long_date else f"{moment.year % 100:02d}"
    hour = moment.hour % 12 or 12
    half = "PM" if moment.hour >= 12 else "AM"
    stamp = f"{moment.month:02d}-{moment.day:02d}-{year}  {hour:02d}:{moment.minute:02d}{half}"
    # "<DIR>" sits 7 columns after the time and the size field (20 wide)
    # ends 21 columns after it, so names start in the same column.
    if entry.is_dir:
        return f"{stamp}       <DIR>          {entry.name}"
    return f"{stamp} {entry.size:>20} {entry.name}"


def unix_line(entry: Entry, *, now: float | None = None, tz: datetime.tzinfo | None = None) -> str:
    """One IIS Unix style LIST line (see the module docstring for the layout)."""
    moment = _local(entry.mtime, tz)
    current = _local(time.time() if now is None else now, tz)
    if moment.year == current.year and moment <= current:
        when = f"{moment.hour:02d}:{moment.minute:02d}"
    else:
        when = f"{moment.year}"
    mode = stat.filemode(entry.mode)
    size = 0 if entry.is_dir else entry.size
    return (
        f"{mode}{entry.nlink:>4} {entry.owner:<8} {entry.group:<8} {size:>12} "
        f"{_MONTHS[moment.month - 1]} {moment.day:>2} {when:>5} {entry.name}"
    )


def list_lines(
    entries: Iterable[Entry],
    show_flags: ShowFlags,
    *,
    now: float | None = None,
    tz: datetime.tzinfo | None = None,
) -> list[str]:
    """LIST output for ``entries`` in the style ``show_flags`` selects.

    Entries are emitted in the order given (the server sorts); unlistable
    names are skipped.
    """
    unix = ShowFlags.STYLE_UNIX in show_flags
    long_date = ShowFlags.LONG_DATE in show_flags
    lines = []
    for entry in entries:
        if not is_listable(entry.name):
            continue
        if unix:
            lines.append(unix_line(entry, now=now, tz=tz))
        else:
            lines.append(msdos_line(entry, long_date=long_date, tz=tz))
    return lines


def nlst_lines(names: Iterable[str]) -> list[str]:
    """NLST output: one name per line, unlistable names skipped."""
    return [name for name in names if is_listable(name)]


def available_bytes_text(free: int) -> str:
    """The DisplayAvailableBytes text, e.g. ``"1,234,567 bytes free."``."""
    return f"{max(free, 0):,} bytes free."


# --------------------------------------------------------------------------
# MDTM and MLSx (RFC 3659)


def mdtm(mtime: float) -> str:
    """``YYYYMMDDHHMMSS`` in UTC, for MDTM replies and the ``modify`` fact."""
    moment = datetime.datetime.fromtimestamp(_clamp(mtime), tz=datetime.UTC)
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    )


def perm_string(is_dir: bool, can_read: bool, can_write: bool) -> str:
    """The RFC 3659 ``perm`` fact from the user's Read/Write permissions.

    Files: ``r`` (RETR) with Read; ``a``, ``d``, ``f``, ``w`` (APPE, DELE,
    rename, STOR) with Write. Directories: ``e``, ``l`` (CWD, LIST) with Read;
    ``c``, ``d``, ``f``, ``m``, ``p`` (create files, delete, rename, MKD,
    purge) with Write.
    """
    letters: set[str] = set()
    if is_dir:
        if can_read:
            letters.update("el")
        if can_write:
            letters.update("cdfmp")
    else:
        if can_read:
            letters.add("r")
        if can_write:
            letters.update("adfw")
    return "".join(sorted(letters))


def mlsx_line(
    entry: Entry, facts: Collection[str], perm: str, type_override: str | None = None
) -> str:
    """One MLSD line or MLST body line: ``fact=value;...; name``.

    Only the requested ``facts`` (lower-case names from
    :data:`SUPPORTED_FACTS`) are emitted, in the standard order; ``size`` is
    given for files only. ``type_override`` is ``"cdir"``/``"pdir"`` for the
    listed directory and its parent. For MLST pass an entry whose name is
    the full path.
    """
    wanted = {fact.lower() for fact in facts}
    parts = []
    for fact in SUPPORTED_FACTS:
        if fact not in wanted:
            continue
        if fact == "type":
            parts.append(f"type={type_override or ('dir' if entry.is_dir else 'file')}")
        elif fact == "size":
            if not entry.is_dir:
                parts.append(f"size={entry.size}")
        elif fact == "modify":
            parts.append(f"modify={mdtm(entry.mtime)}")
        elif fact == "perm":
            parts.append(f"perm={perm}")
        elif fact == "unique":
            parts.append(f"unique={entry.unique}")
    return "".join(f"{part};" for part in parts) + f" {entry.name}"


def mlst_feature(selected: Collection[str] = SUPPORTED_FACTS) -> str:
    """The FEAT line for MLST: every supported fact, ``*`` on the selected ones."""
    chosen = {fact.lower() for fact in selected}
    return "MLST " + "".join(f"{fact}{'*' if fact in chosen else ''};" for fact in SUPPORTED_FACTS)


#: ``MLST type*;size*;modify*;perm*;unique*;`` - the FEAT line with the defaults.
FEAT_MLST = mlst_feature()


def select_facts(argument: str) -> tuple[str, ...]:
    """The facts chosen by ``OPTS MLST <argument>`` (``type;size;``), supported
    ones only, in standard order; an empty argument selects none (RFC 3659 §7.9)."""
    asked = {part.strip().lower() for part in argument.split(";") if part.strip()}
    return tuple(fact for fact in SUPPORTED_FACTS if fact in asked)
