from __future__ import annotations

import datetime
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftps7.config.model import ShowFlags
from ftps7.core.listing import (
    FEAT_MLST,
    SUPPORTED_FACTS,
    Entry,
    available_bytes_text,
    directory_entry,
    entry_from_stat,
    has_control,
    is_listable,
    list_lines,
    mdtm,
    mlst_feature,
    mlsx_line,
    msdos_line,
    nlst_lines,
    perm_string,
    select_facts,
    unix_line,
)

UTC = datetime.UTC


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def entry(
    name: str, *, is_dir: bool = False, size: int = 1234, mtime: float | None = None
) -> Entry:
    return Entry(
        name=name,
        is_dir=is_dir,
        size=size,
        mtime=ts(2021, 1, 20, 10, 35) if mtime is None else mtime,
        mode=(stat.S_IFDIR | 0o755) if is_dir else (stat.S_IFREG | 0o644),
        nlink=1,
        owner="owner",
        group="group",
        unique="801-1a",
    )


# ---------------------------------------------------------------- MS-DOS


def test_msdos_directory_line() -> None:
    assert (
        msdos_line(entry("folder", is_dir=True), tz=UTC)
        == "01-20-21  10:35AM       <DIR>          folder"
    )


def test_msdos_file_line() -> None:
    assert (
        msdos_line(entry("file.txt"), tz=UTC) == "01-20-21  10:35AM                 1234 file.txt"
    )


def test_msdos_names_line_up() -> None:
    folder = msdos_line(entry("d", is_dir=True), tz=UTC)
    big = msdos_line(entry("f", size=12345678901), tz=UTC)
    assert folder.index(" d") + 1 == big.index(" f") + 1 == 39


def test_msdos_long_date() -> None:
    line = msdos_line(entry("file.txt"), long_date=True, tz=UTC)
    assert line == "01-20-2021  10:35AM                 1234 file.txt"


@pytest.mark.parametrize(
    ("hour", "minute", "text"),
    [(0, 5, "12:05AM"), (12, 30, "12:30PM"), (23, 59, "11:59PM"), (9, 0, "09:00AM")],
)
def test_msdos_twelve_hour_clock(hour: int, minute: int, text: str) -> None:
    line = msdos_line(entry("x", mtime=ts(2021, 1, 20, hour, minute)), tz=UTC)
    assert line[10:17] == text


def test_time_zone_is_applied() -> None:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    assert msdos_line(entry("x"), tz=plus_two).startswith("01-20-21  12:35PM")


# ---------------------------------------------------------------- Unix


def test_unix_line_current_year_shows_time() -> None:
    now = ts(2021, 6, 1)
    assert (
        unix_line(entry("folder", is_dir=True), now=now, tz=UTC)
        == "drwxr-xr-x   1 owner    group               0 Jan 20 10:35 folder"
    )


def test_unix_line_other_year_shows_year() -> None:
    old = entry("file.txt", mtime=ts(2019, 7, 3, 8, 0))
    assert (
        unix_line(old, now=ts(2021, 6, 1), tz=UTC)
        == "-rw-r--r--   1 owner    group            1234 Jul  3  2019 file.txt"
    )


def test_unix_line_future_shows_year() -> None:
    future = entry("f", mtime=ts(2021, 9, 1))
    assert unix_line(future, now=ts(2021, 6, 1), tz=UTC).endswith("Sep  1  2021 f")


def test_unix_line_uses_mode_and_link_count() -> None:
    item = Entry("x", False, 5, ts(2021, 1, 1), stat.S_IFREG | 0o600, 12, "owner", "group", "u")
    assert unix_line(item, now=ts(2021, 6, 1), tz=UTC).startswith("-rw-------  12 owner")


def test_list_lines_selects_style_and_skips_unlistable_names() -> None:
    items = [entry("a"), entry("bad\nname"), entry("b\rc"), entry("d", is_dir=True)]
    msdos = list_lines(items, ShowFlags.NONE, tz=UTC)
    assert len(msdos) == 2 and msdos[1].endswith("<DIR>          d")
    long = list_lines(items, ShowFlags.LONG_DATE, tz=UTC)
    assert long[0].startswith("01-20-2021")
    unix = list_lines(items, ShowFlags.STYLE_UNIX | ShowFlags.LONG_DATE, now=ts(2021, 2, 1), tz=UTC)
    assert unix == [
        "-rw-r--r--   1 owner    group            1234 Jan 20 10:35 a",
        "drwxr-xr-x   1 owner    group               0 Jan 20 10:35 d",
    ]


def test_has_control_is_exact_beyond_printable_text() -> None:
    assert not has_control("plain/names with space/ünï")
    assert has_control("a/b\r\n226 fake") and has_control("x\x7f")
    # Not printable, yet no control character: the expression decides.
    assert not has_control("no\u00a0break") and not has_control("caf\udce9")
    assert has_control("caf\udce9\x00")


def test_nlst_lines() -> None:
    assert nlst_lines(["a", "evil\r\n226 fake", "b c"]) == ["a", "b c"]
    assert is_listable("ok") and not is_listable("") and not is_listable("x\x00")


# ---------------------------------------------------------------- entries


def test_entry_from_stat(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"12345")
    st = os.stat(target)
    item = entry_from_stat("f.bin", st)
    assert (item.name, item.is_dir, item.size, item.owner, item.group) == (
        "f.bin", False, 5, "owner", "group",
    )  # fmt: skip
    assert item.unique == f"{st.st_dev:x}-{st.st_ino:x}"
    assert item.mtime == st.st_mtime
    assert not item.is_link
    assert entry_from_stat("d", os.stat(tmp_path)).is_dir
    os.symlink(target, tmp_path / "link")
    assert entry_from_stat("link", os.lstat(tmp_path / "link")).is_link


def test_directory_entry() -> None:
    item = directory_entry("vdir", ts(2021, 1, 20, 10, 35))
    assert item.is_dir
    assert msdos_line(item, tz=UTC) == "01-20-21  10:35AM       <DIR>          vdir"


def test_available_bytes_text() -> None:
    assert available_bytes_text(1234567) == "1,234,567 bytes free."


# ---------------------------------------------------------------- MDTM / MLSx


def test_mdtm_is_utc() -> None:
    assert mdtm(ts(2021, 1, 20, 10, 35, 7)) == "20210120103507"
    assert mdtm(0) == "19700101000000"


def test_out_of_range_times_do_not_crash() -> None:
    assert mdtm(1e20) == "99991230000000"
    assert len(mdtm(-1e20)) == 14
    assert msdos_line(entry("x", mtime=1e20), tz=UTC).startswith("12-30-99")


@pytest.mark.parametrize(
    ("is_dir", "read", "write", "expected"),
    [
        (False, True, True, "adfrw"),
        (False, True, False, "r"),
        (False, False, True, "adfw"),
        (True, True, True, "cdeflmp"),
        (True, True, False, "el"),
        (True, False, False, ""),
    ],
)
def test_perm_string(is_dir: bool, read: bool, write: bool, expected: str) -> None:
    assert perm_string(is_dir, read, write) == expected


def test_mlsx_line_all_facts() -> None:
    assert (
        mlsx_line(entry("file.txt"), set(SUPPORTED_FACTS), "adfrw")
        == "type=file;size=1234;modify=20210120103500;perm=adfrw;unique=801-1a; file.txt"
    )


def test_mlsx_line_selected_facts_and_directories() -> None:
    folder = entry("docs", is_dir=True)
    assert mlsx_line(folder, {"TYPE", "size", "modify"}, "el") == (
        "type=dir;modify=20210120103500; docs"
    )
    assert mlsx_line(folder, {"type"}, "el", type_override="cdir") == "type=cdir; docs"
    assert mlsx_line(entry("x"), set(), "r") == " x"


def test_feat_mlst_line() -> None:
    assert FEAT_MLST == "MLST type*;size*;modify*;perm*;unique*;"
    assert mlst_feature(["type", "size"]) == "MLST type*;size*;modify;perm;unique;"


def test_select_facts() -> None:
    assert select_facts("Size;TYPE;bogus;") == ("type", "size")
    assert select_facts("") == ()


@pytest.fixture
def five_hours_behind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "TST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("five_hours_behind")
def test_list_dates_default_to_server_local_time() -> None:
    # IIS prints LIST dates in local time unless UseGmtTime is set.
    assert msdos_line(entry("x")).startswith("01-20-21  05:35AM")
    assert unix_line(entry("x"), now=ts(2021, 6, 1)).endswith("Jan 20 05:35 x")
    assert mdtm(entry("x").mtime) == "20210120103500"
