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

Two ways in: the per-entry functions (:func:`mlsx_line`, :func:`msdos_line`,
:func:`unix_line`, taking an :class:`Entry`) serve single entries (MLST,
STAT of a file) and are the reference; the batch formatters
(:func:`batch_mlsd_lines`, :func:`batch_list_lines`) format a whole
directory from its names and ``stat`` results and must produce exactly the
same text. A 10,000-entry MLSD spent more time building one frozen
dataclass per entry and re-deciding the same branches than in ``stat``
itself, so the batch path keeps the ``stat`` results, decides everything
that does not vary per entry once (fact templates, perm strings), and
formats each distinct timestamp second only once (file times in a folder
cluster heavily). Any entry the shortcut could get wrong (a time before
1970 or past 9999, or within a microsecond of the next second, where
rounding could carry) goes through the reference code instead.

Names and ``stat`` results travel as two parallel sequences, not one tuple
per entry: tuples are objects the cyclic garbage collector tracks (``str``
and ``stat_result`` are not), and 10,000 of them surviving a listing
triggered a full collection of the server's heap every few MLSDs (40 ms
with the GIL held on the benchmark machine: every session stalled).
"""

from __future__ import annotations

import datetime
import operator
import os
import re
import stat
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ftps7.config.model import ShowFlags

__all__ = [
    "FEAT_MLST",
    "SUPPORTED_FACTS",
    "Entry",
    "available_bytes_text",
    "batch_list_lines",
    "batch_mlsd_lines",
    "directory_entry",
    "entry_from_stat",
    "has_control",
    "is_listable",
    "list_lines",
    "listing_payload",
    "mdtm",
    "mlst_feature",
    "mlsx_line",
    "msdos_line",
    "nlst_lines",
    "perm_string",
    "select_facts",
    "unix_line",
    "virtual_directory_stat",
    "virtual_unique",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_MIN_TS = datetime.datetime(1, 1, 2, tzinfo=datetime.UTC).timestamp()
_MAX_TS = datetime.datetime(9999, 12, 30, tzinfo=datetime.UTC).timestamp()
#: Batch formatters format a time once per whole second only for entries with
#: 0 <= mtime < this (clamping never applies) ...
_FAST_MAX_TS = int(_MAX_TS) - 1
#: ... and whose fraction of a second stays below this: datetime rounds to
#: microseconds, so a fraction of .9999995 or more would carry into the next
#: second. The margin makes the test independent of how that rounding is done.
_FAST_MAX_FRACTION = 0.999999

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
    return replace(
        entry_from_stat(name, virtual_directory_stat(mtime)), unique=virtual_unique(name)
    )


def virtual_directory_stat(mtime: float) -> os.stat_result:
    """The ``stat`` result of :func:`directory_entry` (for the batch formatters)."""
    whole = int(mtime) if abs(mtime) < 1e18 else 0
    return os.stat_result(
        (stat.S_IFDIR | 0o755, 0, 0, 1, 0, 0, 0, whole, whole, whole),
        {"st_atime": mtime, "st_mtime": mtime, "st_ctime": mtime},
    )


def virtual_unique(name: str) -> str:
    """The MLSx ``unique`` fact of :func:`directory_entry`."""
    return f"virtual-{name.encode('utf-8', 'surrogateescape').hex()}"


def is_listable(name: str) -> bool:
    """Whether a name may appear in a listing (no control characters, not empty)."""
    return bool(name) and not _CONTROL.search(name)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (what makes a name unlistable).

    ``str.isprintable`` answers for the usual text in one C pass, several
    times faster than the regular expression over a folder's 10,000 names;
    the expression decides only for text with other unprintable characters
    (some spaces, undecodable bytes).
    """
    return not text.isprintable() and _CONTROL.search(text) is not None


def _clamp(mtime: float) -> float:
    return min(max(mtime, _MIN_TS), _MAX_TS)


def _local(mtime: float, tz: datetime.tzinfo | None) -> datetime.datetime:
    moment = datetime.datetime.fromtimestamp(_clamp(mtime), tz=datetime.UTC)
    return moment.astimezone(tz) if tz is not None else moment.astimezone()


# --------------------------------------------------------------------------
# LIST


def _msdos_stamp(mtime: float, long_date: bool, tz: datetime.tzinfo | None) -> str:
    """The date and time columns of an MS-DOS line: ``01-20-21  10:35AM``."""
    moment = _local(mtime, tz)
    year = f"{moment.year:04d}" if long_date else f"{moment.year % 100:02d}"
    hour = moment.hour % 12 or 12
    half = "PM" if moment.hour >= 12 else "AM"
    return f"{moment.month:02d}-{moment.day:02d}-{year}  {hour:02d}:{moment.minute:02d}{half}"


def msdos_line(entry: Entry, *, long_date: bool = False, tz: datetime.tzinfo | None = None) -> str:
    """One IIS MS-DOS style LIST line."""
    stamp = _msdos_stamp(entry.mtime, long_date, tz)
    # "<DIR>" sits 7 columns after the time and the size field (20 wide)
    # ends 21 columns after it, so names start in the same column.
    if entry.is_dir:
        return f"{stamp}       <DIR>          {entry.name}"
    return f"{stamp} {entry.size:>20} {entry.name}"


def _unix_date(mtime: float, current: datetime.datetime, tz: datetime.tzinfo | None) -> str:
    """The date columns of a Unix line: ``Jan 20 10:35`` or ``Jun 15  2024``."""
    moment = _local(mtime, tz)
    if moment.year == current.year and moment <= current:
        when = f"{moment.hour:02d}:{moment.minute:02d}"
    else:
        when = f"{moment.year}"
    return f"{_MONTHS[moment.month - 1]} {moment.day:>2} {when:>5}"


def unix_line(entry: Entry, *, now: float | None = None, tz: datetime.tzinfo | None = None) -> str:
    """One IIS Unix style LIST line (see the module docstring for the layout)."""
    current = _local(time.time() if now is None else now, tz)
    date = _unix_date(entry.mtime, current, tz)
    mode = stat.filemode(entry.mode)
    size = 0 if entry.is_dir else entry.size
    return (
        f"{mode}{entry.nlink:>4} {entry.owner:<8} {entry.group:<8} {size:>12} {date} {entry.name}"
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
    names = list(names)
    if _all_listable(names):
        return names
    return [name for name in names if is_listable(name)]


def _all_listable(names: Sequence[str]) -> bool:
    """Whether every name is listable: one scan of all names for control
    characters instead of one per name."""
    return "" not in names and not has_control("".join(names))


def listing_payload(lines: Sequence[str]) -> bytes:
    """The bytes of a listing on the data connection: CRLF after every line,
    UTF-8, undecodable names (``surrogateescape``) restored to their bytes."""
    if not lines:
        return b""
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")


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


# --------------------------------------------------------------------------
# Batch formatters: a whole directory at once


def batch_list_lines(
    names: Sequence[str],
    stats: Sequence[os.stat_result],
    show_flags: ShowFlags,
    *,
    now: float | None = None,
    tz: datetime.tzinfo | None = None,
) -> list[str]:
    """:func:`list_lines` for a directory, byte for byte: ``stats[i]`` is
    the ``stat`` result of ``names[i]`` (see :func:`entry_from_stat`).

    Owner and group are the literal words, as :func:`entry_from_stat` gives
    them. Each distinct second is converted to local time once.
    """
    names, stats = _listable(names, stats)
    if ShowFlags.STYLE_UNIX in show_flags:
        return _unix_batch(names, stats, time.time() if now is None else now, tz)
    return _msdos_batch(names, stats, ShowFlags.LONG_DATE in show_flags, tz)


def _listable(
    names: Sequence[str], stats: Sequence[os.stat_result]
) -> tuple[Sequence[str], Sequence[os.stat_result]]:
    """``names`` and ``stats`` without the unlistable names (the server
    already left them out when it read the directory)."""
    if _all_listable(names):
        return names, stats
    kept = [index for index, name in enumerate(names) if is_listable(name)]
    return [names[index] for index in kept], [stats[index] for index in kept]


def _whole_second(mtime: float) -> int | None:
    """``mtime``'s second when that alone decides its formatted time (in the fast
    range, and no fraction that could round up), else None: the caller then
    formats this time on its own instead of from a per-second cache."""
    if 0.0 <= mtime < _FAST_MAX_TS and mtime - int(mtime) < _FAST_MAX_FRACTION:
        return int(mtime)
    return None


def _msdos_batch(
    names: Sequence[str],
    stats: Sequence[os.stat_result],
    long_date: bool,
    tz: datetime.tzinfo | None,
) -> list[str]:
    stamps: dict[int, str] = {}
    lines: list[str] = []
    append = lines.append
    is_dir = stat.S_ISDIR
    for name, st in zip(names, stats, strict=True):
        mtime = st.st_mtime
        second = _whole_second(mtime)
        if second is None:
            stamp = _msdos_stamp(mtime, long_date, tz)
        else:
            cached = stamps.get(second)
            if cached is None:
                cached = stamps[second] = _msdos_stamp(second, long_date, tz)
            stamp = cached
        if is_dir(st.st_mode):
            append(f"{stamp}       <DIR>          {name}")
        else:
            append(f"{stamp} {st.st_size:>20} {name}")
    return lines


def _unix_batch(
    names: Sequence[str],
    stats: Sequence[os.stat_result],
    now: float,
    tz: datetime.tzinfo | None,
) -> list[str]:
    current = _local(now, tz)
    dates: dict[int, str] = {}
    lines: list[str] = []
    append = lines.append
    is_dir = stat.S_ISDIR
    filemode = stat.filemode
    for name, st in zip(names, stats, strict=True):
        mtime = st.st_mtime
        second = _whole_second(mtime)
        # A whole second before ``now`` is entirely in the past, so whether
        # it shows a time or a year depends on the second alone.
        if second is None or second + 1 > now:
            date = _unix_date(mtime, current, tz)
        else:
            cached = dates.get(second)
            if cached is None:
                cached = dates[second] = _unix_date(second, current, tz)
            date = cached
        mode = st.st_mode
        size = 0 if is_dir(mode) else st.st_size
        append(f"{filemode(mode)}{st.st_nlink:>4} owner    group    {size:>12} {date} {name}")
    return lines


def batch_mlsd_lines(
    names: Sequence[str],
    stats: Sequence[os.stat_result],
    facts: Collection[str],
    *,
    file_perm: str,
    dir_perm: str,
    perms: Mapping[str, str] | None = None,
    uniques: Mapping[str, str] | None = None,
) -> list[str]:
    """:func:`mlsx_line` for every entry of a directory, byte for byte (the
    ``cdir`` line is the caller's): ``stats[i]`` is the ``stat`` result of
    ``names[i]``.

    ``file_perm`` and ``dir_perm`` are the ``perm`` facts of files and
    directories; ``perms`` gives it for the names that have their own (rules
    below the listed folder, virtual directories), ``uniques`` the ``unique``
    fact where it is not ``<st_dev>-<st_ino>`` (:func:`virtual_unique`).
    """
    names, stats = _listable(names, stats)
    perms = perms or {}
    uniques = uniques or {}
    wanted = {fact.lower() for fact in facts}
    if not wanted.issuperset(SUPPORTED_FACTS):
        return _mlsd_some_facts(names, stats, wanted, file_perm, dir_perm, perms, uniques)
    modifies = _modify_facts(stats)
    is_dir = stat.S_ISDIR
    # The default fact set (no OPTS MLST) as one f-string per entry in a
    # comprehension: the common case, and most of an MLSD's CPU after ``lstat``.
    # The device part of ``unique`` is formatted once per device (usually one).
    device = {dev: f"{dev:x}-" for dev in set(map(_DEVICE, stats))}
    lines = [
        f"type=dir;modify={modify};perm={dir_perm};unique={device[st.st_dev]}{st.st_ino:x}; {name}"
        if is_dir(st.st_mode)
        else f"type=file;size={st.st_size};modify={modify};perm={file_perm};"
        f"unique={device[st.st_dev]}{st.st_ino:x}; {name}"
        for name, st, modify in zip(names, stats, modifies, strict=True)
    ]
    if perms or uniques:  # then the few entries with a perm or unique fact of their own
        own = perms.keys() | uniques.keys()
        templates = (_mlsd_template(False, SUPPORTED_FACTS), _mlsd_template(True, SUPPORTED_FACTS))
        for index, name in enumerate(names):
            if name in own:
                st = stats[index]
                folder = is_dir(st.st_mode)
                perm = perms.get(name, dir_perm if folder else file_perm)
                unique = uniques.get(name) or f"{st.st_dev:x}-{st.st_ino:x}"
                lines[index] = templates[folder].format(
                    st.st_size, modifies[index], unique, name, perm
                )
    return lines


_MTIME = operator.attrgetter("st_mtime")
_DEVICE = operator.attrgetter("st_dev")
#: ``stat_result[8]``: the whole seconds of ``st_mtime``, an int the result already holds.
_MTIME_SECONDS = operator.itemgetter(8)


def _modify_facts(stats: Sequence[os.stat_result]) -> list[str]:
    """The ``modify`` fact (:func:`mdtm`) of every stat result.

    Each distinct second is formatted once. When every time is in the fast
    range (the usual case) that takes a few passes in C over the list, with
    the whole seconds the stat results already hold; otherwise each time is
    checked on its own.
    """
    mtimes = list(map(_MTIME, stats))
    if mtimes and min(mtimes) >= 0.0 and max(mtimes) < _FAST_MAX_TS:
        seconds = list(map(_MTIME_SECONDS, stats))
        fractions = list(map(operator.sub, mtimes, seconds))
        if min(fractions) >= 0.0 and max(fractions) < _FAST_MAX_FRACTION:
            stamps = {second: _utc_stamp(second) for second in set(seconds)}
            return list(map(stamps.__getitem__, seconds))
    cache: dict[int, str] = {}
    texts = []
    for mtime in mtimes:
        second = _whole_second(mtime)
        if second is None:
            text = mdtm(mtime)
        else:
            cached = cache.get(second)
            if cached is None:
                cached = cache[second] = _utc_stamp(second)
            text = cached
        texts.append(text)
    return texts


def _utc_stamp(second: int) -> str:
    """:func:`mdtm` for a whole second in the fast range (``time.gmtime`` is
    about twice as quick as ``datetime``; numeric fields only, so no locale)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(second))


def _mlsd_template(is_dir: bool, wanted: Collection[str]) -> str:
    """A ``str.format`` template for one kind of entry and a fact selection:
    ``{0}`` size, ``{1}`` modify, ``{2}`` unique, ``{3}`` name, ``{4}`` perm."""
    parts = []
    if "type" in wanted:
        parts.append("type=dir;" if is_dir else "type=file;")
    if "size" in wanted and not is_dir:
        parts.append("size={0};")
    if "modify" in wanted:
        parts.append("modify={1};")
    if "perm" in wanted:
        parts.append("perm={4};")
    if "unique" in wanted:
        parts.append("unique={2};")
    return "".join(parts) + " {3}"


def _mlsd_some_facts(
    names: Sequence[str],
    stats: Sequence[os.stat_result],
    wanted: Collection[str],
    file_perm: str,
    dir_perm: str,
    perms: Mapping[str, str],
    uniques: Mapping[str, str],
) -> list[str]:
    """Any other fact selection (OPTS MLST): a template per kind of entry."""
    templates = (_mlsd_template(False, wanted), _mlsd_template(True, wanted))
    modifies = _modify_facts(stats) if "modify" in wanted else [""] * len(stats)
    want_unique = "unique" in wanted
    lines = []
    is_dir = stat.S_ISDIR
    for name, st, modify in zip(names, stats, modifies, strict=True):
        folder = is_dir(st.st_mode)
        perm = perms.get(name, dir_perm if folder else file_perm)
        unique = ""
        if want_unique:
            unique = uniques.get(name) or f"{st.st_dev:x}-{st.st_ino:x}"
        lines.append(templates[folder].format(st.st_size, modify, unique, name, perm))
    return lines
