from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ftps7.config.model import UserIsolationMode as Mode
from ftps7.config.model import VirtualDirectory
from ftps7.core.isolation import IsolationError, IsolationPlan, plan
from ftps7.core.namespace import SiteNamespace

ROOT_VDIR = [VirtualDirectory("/", "/srv/ftp")]


def existing(*folders: str) -> Callable[[str], bool]:
    known = set(folders)
    return lambda path: path in known


def test_none_starts_at_the_root() -> None:
    result = plan(Mode.NONE, "alice", None, False, ROOT_VDIR, existing("/alice"))
    assert (result.root, result.start) == ("/", "/")


def test_start_in_users_directory_when_it_exists() -> None:
    result = plan(
        Mode.START_IN_USERS_DIRECTORY, "alice", None, False, ROOT_VDIR, existing("/alice")
    )
    assert (result.root, result.start) == ("/", "/alice")


def test_start_in_users_directory_falls_back_to_root() -> None:
    result = plan(Mode.START_IN_USERS_DIRECTORY, "alice", None, False, ROOT_VDIR, existing())
    assert (result.root, result.start) == ("/", "/")


def test_start_in_users_directory_anonymous_uses_default_folder() -> None:
    result = plan(
        Mode.START_IN_USERS_DIRECTORY, "IUSR", None, True, ROOT_VDIR, existing("/default")
    )
    assert result.start == "/default"
    result = plan(Mode.START_IN_USERS_DIRECTORY, "IUSR", None, True, ROOT_VDIR, existing("/IUSR"))
    assert result.start == "/"


def test_start_in_users_directory_accepts_a_virtual_directory() -> None:
    vdirs = [*ROOT_VDIR, VirtualDirectory("/alice", "/data/alice")]
    result = plan(Mode.START_IN_USERS_DIRECTORY, "alice", None, False, vdirs, existing())
    assert result.start == "/alice"


def test_start_in_users_directory_odd_name_starts_at_root() -> None:
    result = plan(Mode.START_IN_USERS_DIRECTORY, "..", None, False, ROOT_VDIR, lambda _: True)
    assert result.start == "/"


@pytest.mark.parametrize(
    ("mode", "global_visible"),
    [(Mode.ISOLATE_ROOT_DIRECTORY_ONLY, True), (Mode.ISOLATE_ALL_DIRECTORIES, False)],
)
def test_isolated_local_user(mode: Mode, global_visible: bool) -> None:
    result = plan(mode, "alice", None, False, ROOT_VDIR, existing("/LocalUser/alice"))
    assert result.root == "/LocalUser/alice"
    assert result.start == "/"
    assert result.global_vdirs_visible is global_visible


@pytest.mark.parametrize("mode", [Mode.ISOLATE_ROOT_DIRECTORY_ONLY, Mode.ISOLATE_ALL_DIRECTORIES])
def test_isolated_anonymous_uses_public(mode: Mode) -> None:
    result = plan(mode, "IUSR", None, True, ROOT_VDIR, existing("/LocalUser/Public"))
    assert result.root == "/LocalUser/Public"


@pytest.mark.parametrize("mode", [Mode.ISOLATE_ROOT_DIRECTORY_ONLY, Mode.ISOLATE_ALL_DIRECTORIES])
def test_isolated_domain_user(mode: Mode) -> None:
    result = plan(mode, "alice", "EXAMPLE", False, ROOT_VDIR, existing("/EXAMPLE/alice"))
    assert result.root == "/EXAMPLE/alice"


@pytest.mark.parametrize("mode", [Mode.ISOLATE_ROOT_DIRECTORY_ONLY, Mode.ISOLATE_ALL_DIRECTORIES])
def test_missing_home_folder_refuses_logon(mode: Mode) -> None:
    with pytest.raises(IsolationError):
        plan(mode, "alice", None, False, ROOT_VDIR, existing("/alice", "/LocalUser"))
    with pytest.raises(IsolationError):
        plan(mode, "alice", "EXAMPLE", False, ROOT_VDIR, existing("/LocalUser/alice"))


def test_virtual_home_folder_counts_as_existing() -> None:
    vdirs = [*ROOT_VDIR, VirtualDirectory("/LocalUser/alice", "/data/alice")]
    result = plan(Mode.ISOLATE_ALL_DIRECTORIES, "alice", None, False, vdirs, existing())
    assert result.root == "/LocalUser/alice"


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "bob\x00"])
def test_names_that_cannot_be_folders_refuse_logon(name: str) -> None:
    with pytest.raises(IsolationError):
        plan(Mode.ISOLATE_ALL_DIRECTORIES, name, None, False, ROOT_VDIR, lambda _: True)


def test_bad_domain_refuses_logon() -> None:
    with pytest.raises(IsolationError):
        plan(Mode.ISOLATE_ALL_DIRECTORIES, "alice", "..", False, ROOT_VDIR, lambda _: True)


def test_active_directory_home() -> None:
    asked: list[str] = []

    def exists(path: str) -> bool:
        asked.append(path)
        return True

    result = plan(
        Mode.ACTIVE_DIRECTORY, "alice", "EXAMPLE", False, ROOT_VDIR, exists,
        ad_root="/srv/homes", ad_dir="users\\alice",
    )  # fmt: skip
    assert result.physical_root == "/srv/homes/users/alice"
    assert asked == ["/srv/homes/users/alice"]
    assert (result.root, result.start, result.global_vdirs_visible) == ("/", "/", False)


@pytest.mark.parametrize(
    ("ad_root", "ad_dir"),
    [(None, "alice"), ("/srv/homes", None), ("relative", "alice"), ("/srv", "..\\etc")],
)
def test_active_directory_refusals(ad_root: str | None, ad_dir: str | None) -> None:
    with pytest.raises(IsolationError):
        plan(
            Mode.ACTIVE_DIRECTORY, "alice", "EXAMPLE", False, ROOT_VDIR, lambda _: True,
            ad_root=ad_root, ad_dir=ad_dir,
        )  # fmt: skip


def test_active_directory_missing_folder() -> None:
    with pytest.raises(IsolationError):
        plan(
            Mode.ACTIVE_DIRECTORY, "alice", "EXAMPLE", False, ROOT_VDIR, lambda _: False,
            ad_root="/srv/homes", ad_dir="alice",
        )  # fmt: skip


# ------------------------------------------- plans turned into namespaces


def test_plan_with_a_real_site(tmp_path: Path) -> None:
    root = tmp_path / "root"
    pub = tmp_path / "pub"
    (root / "LocalUser" / "alice").mkdir(parents=True)
    (root / "LocalUser" / "alice" / "a.txt").write_text("a")
    pub.mkdir()
    vdirs = [VirtualDirectory("/", str(root)), VirtualDirectory("/pub", str(pub))]
    site_ns = SiteNamespace(vdirs)

    result = plan(Mode.ISOLATE_ROOT_DIRECTORY_ONLY, "alice", None, False, vdirs, site_ns.is_dir)
    ns = result.namespace(vdirs)
    assert ns.physical("/a.txt", must_exist=True).real_path == os.path.realpath(
        root / "LocalUser" / "alice" / "a.txt"
    )
    assert ns.virtual_children("/") == ["pub"]

    result = plan(Mode.ISOLATE_ALL_DIRECTORIES, "alice", None, False, vdirs, site_ns.is_dir)
    assert result.namespace(vdirs).virtual_children("/") == []

    with pytest.raises(IsolationError):
        plan(Mode.ISOLATE_ALL_DIRECTORIES, "bob", None, False, vdirs, site_ns.is_dir)


def test_active_directory_plan_namespace(tmp_path: Path) -> None:
    home = tmp_path / "homes" / "alice"
    home.mkdir(parents=True)
    (home / "h.txt").write_text("h")
    result = plan(
        Mode.ACTIVE_DIRECTORY, "alice", "EXAMPLE", False, ROOT_VDIR, os.path.isdir,
        ad_root=str(tmp_path / "homes"), ad_dir="alice",
    )  # fmt: skip
    ns = result.namespace(ROOT_VDIR)
    assert ns.physical("/h.txt", must_exist=True).real_path == os.path.realpath(home / "h.txt")
    assert ns.virtual_children("/") == []


def test_plan_is_frozen() -> None:
    result = IsolationPlan(root="/", start="/", global_vdirs_visible=False)
    with pytest.raises(AttributeError):
        result.root = "/x"  # type: ignore[misc]
