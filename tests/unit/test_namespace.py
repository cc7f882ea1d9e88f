from __future__ import annotations

import os
from pathlib import Path

import pytest

from ftps7.config.model import VirtualDirectory
from ftps7.core.namespace import (
    JailError,
    PathNotFoundError,
    SiteNamespace,
    VirtualDirectoryError,
)
from ftps7.core.paths import PathError


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """root/ (the "/" vdir), pub/ (the "/pub" vdir), outside/ (never reachable)."""
    root = tmp_path / "root"
    pub = tmp_path / "pub"
    outside = tmp_path / "outside"
    for folder in (root, pub, outside, root / "docs", root / "pub"):
        folder.mkdir()
    (root / "readme.txt").write_text("hello")
    (root / "docs" / "a.txt").write_text("a")
    (root / "pub" / "shadowed.txt").write_text("physical pub")
    (pub / "file.txt").write_text("vdir pub")
    (outside / "secret.txt").write_text("secret")
    return {"root": root, "pub": pub, "outside": outside, "base": tmp_path}


def site(tree: dict[str, Path], *extra: VirtualDirectory) -> list[VirtualDirectory]:
    return [
        VirtualDirectory("/", str(tree["root"])),
        VirtualDirectory("/pub", str(tree["pub"])),
        *extra,
    ]


def test_root_maps_to_root_physical_path(tree: dict[str, Path]) -> None:
    ns = SiteNamespace(site(tree))
    resolved = ns.physical("/docs/a.txt", must_exist=True)
    assert resolved.physical_path == str(tree["root"] / "docs" / "a.txt")
    assert resolved.real_path == os.path.realpath(tree["root"] / "docs" / "a.txt")
    assert resolved.site_path == "/docs/a.txt"
    assert resolved.user_path == "/docs/a.txt"
    assert resolved.vdir.path == "/"
    assert not resolved.is_mount


def test_longest_virtual_directory_prefix_wins(tree: dict[str, Path]) -> None:
    ns = SiteNamespace(site(tree))
    resolved = ns.physical("/pub/file.txt", must_exist=True)
    assert resolved.real_path == os.path.realpath(tree["pub"] / "file.txt")
    assert resolved.vdir.path == "/pub"
    # the physical root/pub folder is shadowed by the virtual directory
    with pytest.raises(PathNotFoundError):
        ns.physical("/pub/shadowed.txt", must_exist=True)


def test_virtual_directory_match_ignores_case(tree: dict[str, Path]) -> None:
    ns = SiteNamespace(site(tree))
    resolved = ns.physical("/PUB/file.txt")
    assert resolved.vdir.path == "/pub"
    assert resolved.site_path == "/pub/file.txt"
    assert ns.to_site_path("/Pub/x") == "/pub/x"


def test_dot_dot_cannot_climb_out(tree: dict[str, Path]) -> None:
    ns = SiteNamespace(site(tree))
    resolved = ns.physical("/../../outside/secret.txt")
    assert resolved.user_path == "/outside/secret.txt"
    assert resolved.real_path.startswith(os.path.realpath(tree["root"]) + os.sep)
    with pytest.raises(PathNotFoundError):
        ns.physical("/../outside/secret.txt", must_exist=True)


def test_symlink_inside_the_root_is_followed(tree: dict[str, Path]) -> None:
    os.symlink(tree["root"] / "docs", tree["root"] / "docs-link")
    os.symlink("readme.txt", tree["root"] / "readme-link")
    ns = SiteNamespace(site(tree))
    assert ns.physical("/docs-link/a.txt", must_exist=True).real_path == os.path.realpath(
        tree["root"] / "docs" / "a.txt"
    )
    assert ns.physical("/readme-link").real_path == os.path.realpath(tree["root"] / "readme.txt")


def test_symlink_to_a_file_outside_is_refused(tree: dict[str, Path]) -> None:
    os.symlink(tree["outside"] / "secret.txt", tree["root"] / "leak.txt")
    ns = SiteNamespace(site(tree))
    with pytest.raises(JailError):
        ns.physical("/leak.txt")
    assert not ns.exists("/leak.txt")


def test_symlinked_parent_directory_outside_is_refused(tree: dict[str, Path]) -> None:
    os.symlink(tree["outside"], tree["root"] / "escape")
    ns = SiteNamespace(site(tree))
    with pytest.raises(JailError):
        ns.physical("/escape/secret.txt")
    with pytest.raises(JailError):
        ns.physical("/escape/new.txt", for_create=True)
    with pytest.raises(JailError):
        ns.physical("/escape")
    assert not ns.is_dir("/escape")


def test_symlink_into_another_virtual_directory_is_refused(tree: dict[str, Path]) -> None:
    # The jail is the owning virtual directory, not "somewhere in the site".
    os.symlink(tree["pub"], tree["root"] / "pub-link")
    ns = SiteNamespace(site(tree))
    with pytest.raises(JailError):
        ns.physical("/pub-link/file.txt")


def test_dangling_symlink_pointing_outside_is_refused(tree: dict[str, Path]) -> None:
    os.symlink(tree["outside"] / "created-later", tree["root"] / "trap")
    ns = SiteNamespace(site(tree))
    with pytest.raises(JailError):
        ns.physical("/trap")
    with pytest.raises(JailError):
        ns.physical("/trap", for_create=True)


def test_for_create_resolves_the_parent(tree: dict[str, Path]) -> None:
    os.symlink(tree["root"] / "docs", tree["root"] / "docs-link")
    ns = SiteNamespace(site(tree))
    resolved = ns.physical("/docs-link/new.txt", for_create=True)
    assert resolved.real_path == os.path.join(os.path.realpath(tree["root"] / "docs"), "new.txt")


def test_for_create_keeps_an_inside_symlink_itself(tree: dict[str, Path]) -> None:
    os.symlink("readme.txt", tree["root"] / "readme-link")
    ns = SiteNamespace(site(tree))
    resolved = ns.physical("/readme-link", for_create=True)
    # DELE / RNFR act on the link, not on its target
    assert resolved.real_path == os.path.join(os.path.realpath(tree["root"]), "readme-link")


def test_mount_points_cannot_be_created_or_removed(tree: dict[str, Path]) -> None:
    ns = SiteNamespace(site(tree))
    for path in ("/", "/pub", "/PUB"):
        with pytest.raises(VirtualDirectoryError):
            ns.physical(path, for_create=True)
    assert ns.physical("/pub").is_mount
    assert ns.physical("/").is_mount


def test_must_exist(tree: dict[str, Path]) -> None:
    ns = SiteNamespace(site(tree))
    with pytest.raises(PathNotFoundError):
        ns.physical("/missing.txt", must_exist=True)
    assert ns.physical("/missing.txt").real_path.endswith("missing.txt")
    assert issubclass(PathNotFoundError, PathError)
    assert issubclass(JailError, PathError)


def test_control_characters_never_reach_the_filesystem(tree: dict[str, Path]) -> None:
    ns = SiteNamespace(site(tree))
    with pytest.raises(PathError):
        ns.physical("/readme.txt\x00.jpg")


def test_intermediate_virtual_segments_are_navigable(tree: dict[str, Path]) -> None:
    deep = tree["base"] / "deep"
    deep.mkdir()
    (deep / "x.txt").write_text("x")
    ns = SiteNamespace(site(tree, VirtualDirectory("/a/b", str(deep))))
    assert ns.virtual_children("/") == ["a", "pub"]
    assert ns.virtual_children("/a") == ["b"]
    assert ns.virtual_children("/a/b") == []
    assert ns.is_dir("/a")
    assert ns.is_virtual("/a")
    assert ns.exists("/A")
    resolved = ns.physical("/a", must_exist=True)
    assert resolved.is_intermediate and not resolved.is_mount
    assert ns.physical("/a/b/x.txt", must_exist=True).real_path == os.path.realpath(deep / "x.txt")
    with pytest.raises(VirtualDirectoryError):
        ns.physical("/a", for_create=True)


def test_hidden_names_are_left_out_of_virtual_children(tree: dict[str, Path]) -> None:
    ns = SiteNamespace(site(tree), hidden=("PUB",))
    assert ns.virtual_children("/") == []
    assert ns.is_hidden("pub")
    assert not ns.is_hidden("docs")


def test_relative_physical_path_is_rejected() -> None:
    with pytest.raises(ValueError):
        SiteNamespace([VirtualDirectory("/", "relative/path")])


def test_root_outside_every_virtual_directory_is_rejected(tree: dict[str, Path]) -> None:
    with pytest.raises(ValueError):
        SiteNamespace([VirtualDirectory("/pub", str(tree["pub"]))])


# ---------------------------------------------------------------- isolation


@pytest.fixture
def homes(tree: dict[str, Path]) -> dict[str, Path]:
    local = tree["root"] / "LocalUser"
    for name in ("alice", "bob", "Public"):
        (local / name).mkdir(parents=True)
    (local / "alice" / "mine.txt").write_text("alice")
    (local / "bob" / "bobs.txt").write_text("bob")
    return {"alice": local / "alice", "bob": local / "bob"}


def test_isolated_root_is_the_users_folder(tree: dict[str, Path], homes: dict[str, Path]) -> None:
    ns = SiteNamespace(site(tree), root="/LocalUser/alice")
    resolved = ns.physical("/mine.txt", must_exist=True)
    assert resolved.real_path == os.path.realpath(homes["alice"] / "mine.txt")
    assert resolved.site_path == "/LocalUser/alice/mine.txt"
    assert resolved.user_path == "/mine.txt"
    assert ns.physical("/").is_mount
    assert ns.root == "/LocalUser/alice"
    # climbing stays at the user's root
    assert ns.physical("/../bob/bobs.txt").site_path == "/LocalUser/alice/bob/bobs.txt"
    with pytest.raises(PathNotFoundError):
        ns.physical("/../bob/bobs.txt", must_exist=True)


def test_isolated_symlink_to_another_users_folder_is_refused(
    tree: dict[str, Path], homes: dict[str, Path]
) -> None:
    os.symlink(homes["bob"], homes["alice"] / "bob")
    ns = SiteNamespace(site(tree), root="/LocalUser/alice")
    with pytest.raises(JailError):
        ns.physical("/bob/bobs.txt")


def test_isolated_home_symlinked_outside_is_refused(
    tree: dict[str, Path], homes: dict[str, Path]
) -> None:
    os.symlink(tree["outside"], tree["root"] / "LocalUser" / "mallory")
    ns = SiteNamespace(site(tree), root="/LocalUser/mallory")
    with pytest.raises(JailError):
        ns.physical("/secret.txt")


def test_global_virtual_directories_visible_only_when_asked(
    tree: dict[str, Path], homes: dict[str, Path]
) -> None:
    hidden_ns = SiteNamespace(site(tree), root="/LocalUser/alice")
    assert hidden_ns.virtual_children("/") == []
    with pytest.raises(PathNotFoundError):
        hidden_ns.physical("/pub/file.txt", must_exist=True)

    ns = SiteNamespace(site(tree), root="/LocalUser/alice", global_vdirs_visible=True)
    assert ns.virtual_children("/") == ["pub"]
    resolved = ns.physical("/pub/file.txt", must_exist=True)
    assert resolved.real_path == os.path.realpath(tree["pub"] / "file.txt")
    assert resolved.site_path == "/pub/file.txt"
    assert ns.to_site_path("/pub/file.txt") == "/pub/file.txt"
    assert ns.to_site_path("/mine.txt") == "/LocalUser/alice/mine.txt"


def test_other_users_virtual_homes_are_never_global(
    tree: dict[str, Path], homes: dict[str, Path]
) -> None:
    carol = tree["base"] / "carol-home"
    carol.mkdir()
    vdirs = site(tree, VirtualDirectory("/LocalUser/carol", str(carol)))
    ns = SiteNamespace(vdirs, root="/LocalUser/alice", global_vdirs_visible=True)
    assert ns.virtual_children("/") == ["pub"]
    assert not ns.is_virtual("/LocalUser")
    assert not ns.exists("/LocalUser/carol")


def test_virtual_directories_under_the_users_root_are_mounted(
    tree: dict[str, Path], homes: dict[str, Path]
) -> None:
    share = tree["base"] / "share"
    share.mkdir()
    (share / "s.txt").write_text("s")
    vdirs = site(tree, VirtualDirectory("/LocalUser/alice/share", str(share)))
    ns = SiteNamespace(vdirs, root="/LocalUser/alice")
    assert ns.virtual_children("/") == ["share"]
    resolved = ns.physical("/share/s.txt", must_exist=True)
    assert resolved.real_path == os.path.realpath(share / "s.txt")
    assert resolved.site_path == "/LocalUser/alice/share/s.txt"
    # another user does not see it
    bob = SiteNamespace(vdirs, root="/LocalUser/bob", global_vdirs_visible=True)
    assert bob.virtual_children("/") == ["pub"]


def test_virtual_home_folder(tree: dict[str, Path]) -> None:
    home = tree["base"] / "dave-home"
    home.mkdir()
    (home / "d.txt").write_text("d")
    vdirs = site(tree, VirtualDirectory("/LocalUser/dave", str(home)))
    ns = SiteNamespace(vdirs, root="/LocalUser/dave")
    assert ns.physical("/d.txt", must_exist=True).real_path == os.path.realpath(home / "d.txt")
    assert ns.physical("/").vdir.path == "/LocalUser/dave"
