"""SiteShell.read_directory / list_directory: what a listing shows, and the stat results."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from ftps7.auth.identity import Identity
from ftps7.config.model import (
    AccessType,
    AuthorizationRule,
    AuthorizationSection,
    FileExtensionRule,
    FileHandling,
    LocationKey,
    Permission,
    RequestFiltering,
    VirtualDirectory,
)
from ftps7.core import listing
from ftps7.core.authz import Authorizer
from ftps7.core.namespace import SiteNamespace
from ftps7.core.replies import FTPError, R
from ftps7.server import shell as shell_module
from ftps7.server.shell import PARTIAL_PREFIX, WHOLE_READ, Listing, SiteShell
from ftps7.server.transfers import MemorySource

NOT_UTF8 = b"caf\xe9".decode("utf-8", "surrogateescape")


def run_now(function: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    return defer.maybeDeferred(function, *args)


def make_shell(
    root: Path,
    *,
    filtering: RequestFiltering | None = None,
    vdirs: tuple[VirtualDirectory, ...] = (),
) -> SiteShell:
    filtering = filtering or RequestFiltering()
    namespace = SiteNamespace(
        [VirtualDirectory("/", str(root)), *vdirs], "/", filtering.hidden_segments
    )
    everyone = AuthorizationRule(
        AccessType.ALLOW, frozenset({"*"}), frozenset(), Permission.READ | Permission.WRITE
    )
    authorizer = Authorizer([(LocationKey(None, "/"), AuthorizationSection(rules=(everyone,)))])
    return SiteShell(
        site_name="site",
        identity=Identity("user"),
        namespace=namespace,
        authorizer=authorizer,
        request_filtering=filtering,
        file_handling=FileHandling(),
        run=run_now,
    )


def names(result: Listing) -> list[str]:
    assert len(result.names) == len(result.stats)
    return list(result.names)


def stats(result: Listing) -> dict[str, os.stat_result]:
    return dict(zip(result.names, result.stats, strict=True))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """site/dir with files, a folder, odd names and symlinks; outside/ beyond the jail."""
    site = tmp_path / "site"
    folder = site / "dir"
    folder.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_bytes(b"s")
    for name in ["b.txt", "A.TXT", "with space", "ünï", NOT_UTF8, "x.exe", "a..b", "Hidden"]:
        (folder / name).write_bytes(name.encode("utf-8", "surrogateescape"))
    (folder / f"{PARTIAL_PREFIX}upload").write_bytes(b"partial")
    (folder / "bad\nname").write_bytes(b"")
    (folder / "sub").mkdir()
    os.symlink("b.txt", folder / "link-file")
    os.symlink("sub", folder / "link-dir")
    os.symlink("missing", folder / "dangling")
    os.symlink(str(tmp_path / "outside"), folder / "link-out")
    return site


def read(shell: SiteShell, path: str) -> Listing:
    return shell.read_directory(path)


def test_names_are_sorted_with_stat_results_of_link_targets(tree: Path) -> None:
    result = read(make_shell(tree), "/dir")
    assert names(result) == sorted(
        ["A.TXT", "Hidden", "a..b", "b.txt", "link-dir", "link-file", "sub", "with space",
         "x.exe", "ünï", NOT_UTF8]
    )  # fmt: skip
    found = stats(result)
    assert found["b.txt"] == os.stat(tree / "dir" / "b.txt")
    assert found["link-file"].st_ino == found["b.txt"].st_ino
    assert stat.S_ISDIR(found["link-dir"].st_mode)
    assert result.uniques == {}
    assert result.virtual_names == frozenset()
    assert result.directory.name == "." and result.directory.is_dir


def test_partial_uploads_unlistable_names_dangling_and_escaping_links_are_left_out(
    tree: Path,
) -> None:
    shown = names(read(make_shell(tree), "/dir"))
    for name in [f"{PARTIAL_PREFIX}upload", "bad\nname", "dangling", "link-out"]:
        assert name not in shown


def test_hidden_segments_are_left_out(tree: Path) -> None:
    filtering = RequestFiltering(hidden_segments=("hidden", "SUB"))
    shown = names(read(make_shell(tree, filtering=filtering), "/dir"))
    assert "Hidden" not in shown and "sub" not in shown and "b.txt" in shown


def test_a_hidden_name_hides_only_itself(tmp_path: Path) -> None:
    for name in ("secret", "SECRET.txt", "my-secret", "Secret"):
        (tmp_path / name).write_bytes(b"")
    filtering = RequestFiltering(hidden_segments=("secret",))
    shown = names(read(make_shell(tmp_path, filtering=filtering), "/"))
    assert shown == ["SECRET.txt", "my-secret"]


@pytest.mark.parametrize(
    ("filtering", "gone"),
    [
        (RequestFiltering(deny_url_sequences=("..",)), {"a..b"}),
        # a sequence across the folder/name boundary ("/dir/b.txt")
        (RequestFiltering(deny_url_sequences=("r/b",)), {"b.txt"}),
        (RequestFiltering(file_extensions=(FileExtensionRule(".exe", False),)), {"x.exe"}),
        # "/dir/" is 5 bytes: names of more than 6 bytes exceed maxUrl 11
        (RequestFiltering(max_url=11), {"link-dir", "link-file", "with space"}),
        # ... and of more than 4 bytes maxUrl 9 ("ünï" is 5 bytes in UTF-8, NOT_UTF8 4)
        (
            RequestFiltering(max_url=9),
            {"link-dir", "link-file", "with space", "Hidden", "ünï", "A.TXT", "b.txt", "x.exe"},
        ),
    ],
)
def test_request_filtering_applies_to_every_entry(
    tree: Path, filtering: RequestFiltering, gone: set[str]
) -> None:
    everything = set(names(read(make_shell(tree), "/dir")))
    shown = set(names(read(make_shell(tree, filtering=filtering), "/dir")))
    assert everything - shown == gone


def test_unlisted_extensions_are_left_out(tmp_path: Path) -> None:
    for name in ["a.txt", "B.TXT", "c.exe", "noext", "d.txt.bak"]:
        (tmp_path / name).write_bytes(b"")
    filtering = RequestFiltering(
        file_extensions_allow_unlisted=False, file_extensions=(FileExtensionRule(".txt", True),)
    )
    assert names(read(make_shell(tmp_path, filtering=filtering), "/")) == ["B.TXT", "a.txt"]


def _outcome(deferred: defer.Deferred[Any]) -> Any:
    """The result of a shell call run synchronously (``run_now``), or its FTPError."""
    box: list[Any] = []
    deferred.addBoth(box.append)
    (value,) = box
    if hasattr(value, "trap"):
        return value.trap(FTPError) and value.value
    return value


def test_allowed_extensions_restrict_files_only(tmp_path: Path) -> None:
    """With a list of allowed extensions, folders stay visible and usable."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "sub.d").mkdir()  # a folder whose name looks like it has an extension
    (tmp_path / "docs" / "in.txt").write_bytes(b"")
    (tmp_path / "a.txt").write_bytes(b"a")
    (tmp_path / "c.exe").write_bytes(b"c")
    filtering = RequestFiltering(
        file_extensions_allow_unlisted=False, file_extensions=(FileExtensionRule(".txt", True),)
    )
    shell = make_shell(tmp_path, filtering=filtering)
    assert names(read(shell, "/")) == ["a.txt", "docs", "sub.d"]
    assert names(read(shell, "/docs")) == ["in.txt"]
    assert _outcome(shell.change_directory("/sub.d")) == "/sub.d"
    assert _outcome(shell.stat("/docs")).is_dir
    assert _outcome(shell.make_directory("/new")) is None
    assert _outcome(shell.remove_directory("/new")) is None
    assert _outcome(shell.rename("/docs", "/papers")) is None  # a folder keeps no extension
    denied = R.FILE_UNAVAILABLE
    assert _outcome(shell.stat("/c.exe")).reply is denied
    assert _outcome(shell.open_for_reading("/c.exe", 0)).reply is denied
    assert _outcome(shell.open_for_writing("/d.exe")).reply is denied
    assert _outcome(shell.rename("/a.txt", "/a.exe")).reply is denied  # no way around it
    assert _outcome(shell.check_rename_source("/c.exe")).reply is denied
    assert (tmp_path / "a.txt").exists() and (tmp_path / "papers").is_dir()


def test_a_long_name_is_left_out_only_when_the_path_is_too_long(tmp_path: Path) -> None:
    (tmp_path / ("é" * 100)).write_bytes(b"")  # 100 characters, 200 bytes
    (tmp_path / ("e" * 150)).write_bytes(b"")
    shell = make_shell(tmp_path, filtering=RequestFiltering(max_url=180))
    assert names(read(shell, "/")) == ["e" * 150]
    shell = make_shell(tmp_path, filtering=RequestFiltering(max_url=201))
    assert len(names(read(shell, "/"))) == 2


def test_an_entry_that_vanishes_while_listing_is_left_out(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_lstat = os.lstat

    def lstat(path: Any, *, dir_fd: int | None = None) -> os.stat_result:
        if os.fsdecode(path) == "A.TXT":
            raise FileNotFoundError(errno.ENOENT, "gone")
        return real_lstat(path, dir_fd=dir_fd)

    monkeypatch.setattr(shell_module.os, "lstat", lstat)
    shown = names(read(make_shell(tree), "/dir"))
    assert "A.TXT" not in shown
    assert "b.txt" in shown and "link-file" in shown and "dangling" not in shown


def test_a_folder_without_symlinks(tmp_path: Path) -> None:
    for index in range(20):
        (tmp_path / f"f{index:02d}").write_bytes(b"x" * index)
    result = read(make_shell(tmp_path), "/")
    assert names(result) == [f"f{index:02d}" for index in range(20)]
    assert [st.st_size for st in result.stats] == list(range(20))


def test_virtual_directories_are_merged(tree: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    vdirs = (
        VirtualDirectory("/dir/mounted", str(elsewhere)),
        VirtualDirectory("/dir/deep/inside", str(elsewhere)),
        VirtualDirectory("/dir/sub", str(elsewhere)),  # over a folder on disk
    )
    result = read(make_shell(tree, vdirs=vdirs), "/dir")
    found = stats(result)
    assert names(result) == sorted(found)
    assert result.virtual_names == frozenset({"mounted", "deep"})
    assert found["mounted"].st_ino == os.stat(elsewhere).st_ino
    assert "mounted" not in result.uniques
    deep = listing.entry_from_stat("deep", found["deep"])  # no folder on disk: synthetic
    assert result.uniques["deep"] == listing.virtual_unique("deep")
    assert deep.is_dir and deep.size == 0


def test_a_virtual_directory_with_no_folder_lists_its_children(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    shell = make_shell(tmp_path / "site", vdirs=(VirtualDirectory("/a/b", str(target)),))
    (tmp_path / "site").mkdir()
    result = read(shell, "/a")
    assert names(result) == ["b"] and result.virtual_names == frozenset({"b"})
    assert result.directory.unique.startswith("virtual-")


def test_errors(tree: Path) -> None:
    shell = make_shell(tree)
    with pytest.raises(FTPError) as raised:
        read(shell, "/dir/b.txt")
    assert raised.value.reply is R.NOT_A_DIRECTORY
    with pytest.raises(FTPError) as raised:
        read(shell, "/nothing")
    assert raised.value.reply is R.PATH_UNAVAILABLE


def test_list_directory_runs_the_same_work_in_the_pool(tree: Path) -> None:
    shell = make_shell(tree)
    results: list[Listing] = []
    shell.list_directory("/dir").addCallback(results.append)
    assert results == [read(shell, "/dir")]


# ------------------------------------------- read_names (NLST): the same names, no lstat

_EXE = (FileExtensionRule(".exe", False),)
_TXT_ONLY = (FileExtensionRule(".txt", True),)


@pytest.mark.parametrize(
    "filtering",
    [
        RequestFiltering(),
        RequestFiltering(hidden_segments=("hidden", "SUB")),
        RequestFiltering(deny_url_sequences=("..",)),
        RequestFiltering(file_extensions=_EXE),
        RequestFiltering(file_extensions_allow_unlisted=False, file_extensions=_TXT_ONLY),
        RequestFiltering(max_url=11),
    ],
)
def test_read_names_lists_what_read_directory_lists(
    tree: Path, tmp_path: Path, filtering: RequestFiltering
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    vdirs = (
        VirtualDirectory("/dir/mounted", str(elsewhere)),
        VirtualDirectory("/dir/sub", str(elsewhere)),
    )
    (tree / "dir" / "sub.d").mkdir()  # a folder that looks like it has an extension
    os.symlink("x.exe", tree / "dir" / "link-exe")
    shell = make_shell(tree, filtering=filtering, vdirs=vdirs)

    def outcome(function: Callable[[], Any]) -> Any:
        try:
            return function()
        except FTPError as error:
            return error.reply

    for path in ("/dir", "/", "/dir/sub"):
        expected = outcome(lambda: names(read(shell, path)))  # noqa: B023
        assert outcome(lambda: shell.read_names(path)) == expected, path  # noqa: B023


def test_read_names_stats_nothing_but_symlinks(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_stat, real_lstat = os.stat, os.lstat

    def counted(real: Any) -> Any:
        def call(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            if kwargs.get("dir_fd") is not None:  # an entry of the folder being read
                calls.append(os.fsdecode(path))
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(shell_module.os, "stat", counted(real_stat))
    monkeypatch.setattr(shell_module.os, "lstat", counted(real_lstat))
    shown = make_shell(tree).read_names("/dir")
    assert "b.txt" in shown and "dangling" not in shown and "link-out" not in shown
    assert sorted(calls) == ["dangling", "link-dir", "link-file", "link-out"]


def test_read_names_errors_and_virtual_parents(tree: Path, tmp_path: Path) -> None:
    shell = make_shell(tree)
    with pytest.raises(FTPError) as raised:
        shell.read_names("/dir/b.txt")
    assert raised.value.reply is R.NOT_A_DIRECTORY
    with pytest.raises(FTPError) as raised:
        shell.read_names("/nothing")
    assert raised.value.reply is R.PATH_UNAVAILABLE
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "bare").mkdir()
    virtual = make_shell(tmp_path / "bare", vdirs=(VirtualDirectory("/a/b", str(target)),))
    assert virtual.read_names("/a") == ["b"]


def test_a_small_file_is_read_whole_when_opened_for_retr(tmp_path: Path) -> None:
    """At most WHOLE_READ bytes from the offset: read in the opening pool job."""
    (tmp_path / "small.txt").write_bytes(b"0123456789")
    (tmp_path / "big.bin").write_bytes(b"b" * (WHOLE_READ + 1))
    shell = make_shell(tmp_path)
    source, size = _outcome(shell.open_for_reading("/small.txt", 4))
    assert isinstance(source, MemorySource) and size == 10
    assert source.read(100) == b"456789" and source.read(100) == b""
    source, size = _outcome(shell.open_for_reading("/big.bin", 0))
    assert not isinstance(source, MemorySource) and size == WHOLE_READ + 1
    source.close()
    source, _ = _outcome(shell.open_for_reading("/big.bin", 1))  # the rest is small
    assert isinstance(source, MemorySource) and source.read(WHOLE_READ + 1) == b"b" * WHOLE_READ
