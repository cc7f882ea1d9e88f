"""The batch formatters give exactly the reference per-entry output."""

from __future__ import annotations

import datetime
import itertools
import os
import random
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ftps7.config.model import ShowFlags
from ftps7.core.listing import (
    SUPPORTED_FACTS,
    Entry,
    batch_list_lines,
    batch_mlsd_lines,
    directory_entry,
    entry_from_stat,
    list_lines,
    listing_payload,
    mlsx_line,
    nlst_lines,
    virtual_directory_stat,
    virtual_unique,
)

UTC = datetime.UTC
NOW = datetime.datetime(2021, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp() + 0.3


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def fake_stat(*, mtime: float, size: int = 0, is_dir: bool = False, ino: int = 1) -> os.stat_result:
    mode = (stat.S_IFDIR | 0o755) if is_dir else (stat.S_IFREG | 0o640)
    whole = int(mtime) if -1e18 < mtime < 1e18 else 0
    return os.stat_result(
        (mode, ino, 0x801, 3 if is_dir else 1, 0, 0, size, whole, whole, whole),
        {"st_atime": mtime, "st_mtime": mtime, "st_ctime": mtime},
    )


#: Times the shortcuts must get right: clusters within one second, fractions
#: that round into the next second, before 1970, past the clamping limits,
#: the second of "now", the future, other years.
AWKWARD_TIMES = [
    ts(2021, 1, 20, 10, 35),
    ts(2021, 1, 20, 10, 35) + 0.25,
    ts(2021, 1, 20, 10, 35) + 0.9999994,
    ts(2021, 1, 20, 10, 35) + 0.9999996,
    ts(2021, 1, 20, 10, 35) + 0.999999,
    ts(2021, 1, 20, 23, 59, 59) + 0.9999999,
    ts(2020, 12, 31, 23, 59, 59) + 0.9999999,
    ts(2019, 7, 3, 8, 0),
    NOW - 1.0,
    NOW - 0.3,
    NOW - 0.1,
    NOW,
    NOW + 0.1,
    NOW + 1.0,
    ts(2021, 9, 1),
    ts(2022, 1, 1),
    0.0,
    0.5,
    -0.5,
    -100.25,
    -1e20,
    1e20,
    253402041599.5,
    ts(9999, 12, 29, 23, 59, 59),
]


Directory = tuple[list[str], list[os.stat_result], dict[str, str]]


def varied_directory(seed: int = 7) -> Directory:
    """Names, stat results and unique overrides of files and folders with
    awkward times and names, including a virtual directory and a name that
    is not UTF-8."""
    rng = random.Random(seed)
    choices = ["a.txt", "B", "with space", "ünïcode", "日本語", "x" * 200]
    choices.append(b"bad\xff\xfename".decode("utf-8", "surrogateescape"))
    entries: dict[str, os.stat_result] = {}
    for index, mtime in enumerate(AWKWARD_TIMES * 2):
        name = f"{rng.choice(choices)}-{index:03d}"
        is_dir = rng.random() < 0.3
        size = rng.choice([0, 1, 999, 1234, 10**12, 2**63 - 1])
        entries[name] = fake_stat(mtime=mtime, size=size, is_dir=is_dir, ino=index + 1)
    entries["vdir"] = virtual_directory_stat(ts(2021, 5, 5, 5, 5, 5) + 0.5)
    names = sorted(entries)
    return names, [entries[name] for name in names], {"vdir": virtual_unique("vdir")}


def reference_entries(directory: Directory) -> list[Entry]:
    names, stats, uniques = directory
    entries = [entry_from_stat(name, st) for name, st in zip(names, stats, strict=True)]
    return [replace(e, unique=uniques[e.name]) if e.name in uniques else e for e in entries]


UNLISTABLE = {
    "evil\r\n226 fake": fake_stat(mtime=ts(2021, 1, 1)),
    "": fake_stat(mtime=ts(2021, 1, 1)),
}


def with_unlistable(directory: Directory) -> Directory:
    names, stats, uniques = directory
    return names + list(UNLISTABLE), stats + list(UNLISTABLE.values()), uniques


TIME_ZONES = [
    UTC,
    datetime.timezone(datetime.timedelta(hours=5, minutes=45)),
    datetime.timezone(-datetime.timedelta(hours=3, minutes=30)),
    datetime.timezone(datetime.timedelta(hours=14)),
]


@pytest.fixture
def odd_local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "NPT-5:45")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ---------------------------------------------------------------- entries


def test_virtual_directory_stat_and_unique_make_directory_entry() -> None:
    mtime = ts(2021, 1, 20, 10, 35) + 0.5
    entry = replace(
        entry_from_stat("vdir", virtual_directory_stat(mtime)), unique=virtual_unique("vdir")
    )
    assert entry == directory_entry("vdir", mtime)
    assert entry.is_dir and entry.mtime == mtime and entry.unique == "virtual-76646972"


# ---------------------------------------------------------------- MLSD


FACT_SETS = [
    set(SUPPORTED_FACTS),
    {"TYPE", "Size", "modify", "perm", "unique", "bogus"},
    set(),
    *({fact} for fact in SUPPORTED_FACTS),
    {"type", "size", "modify", "perm"},
    {"size", "unique"},
    {"modify", "perm"},
]


@pytest.mark.parametrize("facts", FACT_SETS, ids=lambda facts: ";".join(sorted(facts)) or "none")
def test_batch_mlsd_matches_mlsx_line(facts: set[str]) -> None:
    directory = varied_directory()
    names, stats, uniques = directory
    perms = {names[3]: "r", "vdir": "el"}
    expected = [
        mlsx_line(entry, facts, perms.get(entry.name, "cdeflmp" if entry.is_dir else "adfrw"))
        for entry in reference_entries(directory)
    ]
    got = batch_mlsd_lines(
        names, stats, facts, file_perm="adfrw", dir_perm="cdeflmp", perms=perms, uniques=uniques
    )
    assert got == expected


@pytest.mark.parametrize("facts", FACT_SETS[:2], ids=["all", "all-mixed-case"])
def test_batch_mlsd_without_overrides(facts: set[str]) -> None:
    names, stats, _ = varied_directory(seed=3)
    expected = [
        mlsx_line(entry_from_stat(name, st), facts, "el" if stat.S_ISDIR(st.st_mode) else "r")
        for name, st in zip(names, stats, strict=True)
    ]
    assert batch_mlsd_lines(names, stats, facts, file_perm="r", dir_perm="el") == expected


def test_batch_mlsd_with_only_times_after_1970() -> None:
    # all times in range (one pass for all, unless a fraction may round up), or just before 1970
    in_range = [t for t in AWKWARD_TIMES if 0 <= t < 2e11]
    for times in (in_range, [ts(2021, 1, 1), NOW], [ts(2021, 1, 1), -0.5, -100.25]):
        names = [f"f{index}" for index in range(len(times))]
        stats = [fake_stat(mtime=mtime, ino=index) for index, mtime in enumerate(times)]
        facts = set(SUPPORTED_FACTS)
        expected = [
            mlsx_line(entry_from_stat(name, st), facts, "r")
            for name, st in zip(names, stats, strict=True)
        ]
        assert batch_mlsd_lines(names, stats, facts, file_perm="r", dir_perm="el") == expected


def test_batch_mlsd_of_real_files(tmp_path: Path) -> None:
    for index in range(30):
        (tmp_path / f"f{index}").write_bytes(b"x" * index)
    (tmp_path / "sub").mkdir()
    names = sorted(os.listdir(tmp_path))
    stats = [os.stat(tmp_path / name) for name in names]
    facts = set(SUPPORTED_FACTS)
    expected = [
        mlsx_line(entry_from_stat(name, st), facts, "el" if stat.S_ISDIR(st.st_mode) else "r")
        for name, st in zip(names, stats, strict=True)
    ]
    assert batch_mlsd_lines(names, stats, facts, file_perm="r", dir_perm="el") == expected


@pytest.mark.parametrize("facts", [set(SUPPORTED_FACTS), {"type"}], ids=["all", "type"])
def test_batch_mlsd_leaves_out_unlistable_names(facts: set[str]) -> None:
    names, stats, _ = with_unlistable(varied_directory())
    lines = batch_mlsd_lines(names, stats, facts, file_perm="r", dir_perm="el")
    assert len(lines) == len(names) - len(UNLISTABLE)
    assert not any("\r" in line or "\n" in line for line in lines)


# ---------------------------------------------------------------- LIST / NLST


LIST_FLAGS = [
    ShowFlags.NONE,
    ShowFlags.LONG_DATE,
    ShowFlags.STYLE_UNIX,
    ShowFlags.STYLE_UNIX | ShowFlags.LONG_DATE | ShowFlags.DISPLAY_VIRTUAL_DIRECTORIES,
]


@pytest.mark.parametrize(
    ("flags", "tz"),
    list(itertools.product(LIST_FLAGS, TIME_ZONES)),
    ids=lambda value: str(value),
)
def test_batch_list_matches_list_lines(flags: ShowFlags, tz: datetime.tzinfo) -> None:
    directory = with_unlistable(varied_directory())
    expected = list_lines(reference_entries(directory), flags, now=NOW, tz=tz)
    assert batch_list_lines(directory[0], directory[1], flags, now=NOW, tz=tz) == expected
    assert len(expected) == len(directory[0]) - len(UNLISTABLE)


@pytest.mark.usefixtures("odd_local_zone")
@pytest.mark.parametrize("flags", LIST_FLAGS, ids=str)
def test_batch_list_matches_list_lines_in_local_time(flags: ShowFlags) -> None:
    directory = varied_directory(seed=11)
    expected = list_lines(reference_entries(directory), flags, now=NOW)
    assert batch_list_lines(directory[0], directory[1], flags, now=NOW) == expected


def test_batch_list_without_now_uses_the_clock() -> None:
    old = fake_stat(mtime=ts(2001, 2, 3, 4, 5))
    line = batch_list_lines(["r"], [old], ShowFlags.STYLE_UNIX, tz=UTC)[0]
    assert line == list_lines([entry_from_stat("r", old)], ShowFlags.STYLE_UNIX, tz=UTC)[0]
    assert line.endswith("Feb  3  2001 r")


def test_nlst_lines_skip_unlistable_names() -> None:
    names = with_unlistable(varied_directory())[0]
    assert nlst_lines(names) == [name for name in names if name not in UNLISTABLE]
    assert nlst_lines(iter(["a", "b"])) == ["a", "b"]


# ---------------------------------------------------------------- payload


def test_listing_payload() -> None:
    lines = ["a", "b c", b"bad\xff".decode("utf-8", "surrogateescape"), "ü"]
    expected = "".join(line + "\r\n" for line in lines).encode("utf-8", "surrogateescape")
    assert listing_payload(lines) == expected
    assert listing_payload([]) == b""


@pytest.mark.parametrize("devices", [1, 2], ids=["one-device", "two-devices"])
def test_batch_mlsd_unique_on_one_and_on_several_devices(devices: int) -> None:
    # One device has its own fast path (the device part formatted once).
    names = [f"n{index}" for index in range(6)]
    stats = [
        fake_stat(mtime=ts(2021, 1, 1), is_dir=index % 2 == 0, ino=1000 + index)
        for index in range(6)
    ]
    if devices == 2:
        fields = list(stats[3])
        fields[2] = 0xABC
        stats[3] = os.stat_result(fields, {"st_mtime": stats[3].st_mtime})
    facts = set(SUPPORTED_FACTS)
    expected = [
        mlsx_line(entry_from_stat(name, st), facts, "el" if stat.S_ISDIR(st.st_mode) else "r")
        for name, st in zip(names, stats, strict=True)
    ]
    got = batch_mlsd_lines(names, stats, facts, file_perm="r", dir_perm="el")
    assert got == expected
    assert ("unique=abc-3eb" in got[3]) is (devices == 2)
