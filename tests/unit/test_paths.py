from __future__ import annotations

import pytest

from ftps7.core import paths
from ftps7.core.paths import PathError


@pytest.mark.parametrize(
    ("cwd", "arg", "expected"),
    [
        ("/", "", "/"),
        ("/a/b", "", "/a/b"),
        ("/", "pub", "/pub"),
        ("/pub", "docs/readme.txt", "/pub/docs/readme.txt"),
        ("/pub", "/etc/passwd", "/etc/passwd"),
        ("/a/b", "..", "/a"),
        ("/a/b", "../..", "/"),
        ("/a/b", "../../../../..", "/"),
        ("/", "..", "/"),
        ("/", "/../../etc", "/etc"),
        ("/a", "./x/./y", "/a/x/y"),
        ("/a", "x//y///z", "/a/x/y/z"),
        ("/a", "x/", "/a/x"),
        ("/a", "x/..", "/a"),
        ("/a", "//", "/"),
        ("/a", "...", "/a/..."),
        ("/a", "~", "/a/~"),
    ],
)
def test_resolve(cwd: str, arg: str, expected: str) -> None:
    assert paths.resolve(cwd, arg) == expected


def test_backslash_is_an_ordinary_character() -> None:
    assert paths.resolve("/", "a\\b") == "/a\\b"
    assert paths.resolve("/x", "..\\..\\etc") == "/x/..\\..\\etc"
    assert paths.segments("/a\\b/c") == ("a\\b", "c")


@pytest.mark.parametrize("bad", ["a\x00b", "a\r\nDELE x", "x\n", "\x1f", "del\x7f", "\t"])
def test_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(PathError):
        paths.resolve("/", bad)


def test_path_error_is_a_value_error() -> None:
    assert issubclass(PathError, ValueError)


def test_normalize() -> None:
    assert paths.normalize("a/../b/") == "/b"
    assert paths.normalize("") == "/"


def test_segments_parent_basename() -> None:
    assert paths.segments("/") == ()
    assert paths.segments("/a/b") == ("a", "b")
    assert paths.parent("/a/b") == "/a"
    assert paths.parent("/a") == "/"
    assert paths.parent("/") == "/"
    assert paths.basename("/a/b") == "b"
    assert paths.basename("/") == ""


def test_join_accepts_plain_names_only() -> None:
    assert paths.join("/", "LocalUser", "alice") == "/LocalUser/alice"
    assert paths.join("/a/b") == "/a/b"
    for bad in ("..", ".", "", "a/b", "x\x00"):
        with pytest.raises(PathError):
            paths.join("/", bad)


def test_check_name() -> None:
    assert paths.check_name("report.txt") == "report.txt"
    with pytest.raises(PathError):
        paths.check_name("../bob")


def test_is_within_is_segment_wise() -> None:
    assert paths.is_within("/pub/x", "/pub")
    assert paths.is_within("/pub", "/pub")
    assert paths.is_within("/anything", "/")
    assert not paths.is_within("/public", "/pub")
    assert not paths.is_within("/PUB/x", "/pub")
    assert paths.is_within("/PUB/x", "/pub", ignore_case=True)


def test_relative_segments() -> None:
    assert paths.relative_segments("/a/b/c", "/a") == ("b", "c")
    assert paths.relative_segments("/a", "/a") == ()
    assert paths.relative_segments("/a", "/a/b") is None
    assert paths.relative_segments("/A/B", "/a", ignore_case=True) == ("B",)
