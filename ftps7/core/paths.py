"""FTP path arithmetic: pure string operations on ``/``-separated paths.

Every path a client sends is turned into one canonical form here before
anything else looks at it: absolute, ``/``-separated, no ``.`` or ``..``
segments, no repeated or trailing slash ("/" or "/a/b"). Doing the ``..``
arithmetic *textually* first means the later stages (virtual directory
lookup, authorization, the symlink jail in :mod:`ftps7.core.namespace`) never
see a path that climbs; ``..`` above the root simply stays at the root, as
IIS and vsftpd answer ``CWD ..`` at ``/``.

Backslash is an ordinary character: on Linux ``a\\b`` is one file name, not
two segments, and treating it as a separator (as IIS does on Windows) would
make names that really exist on disk unreachable. Names with control
characters (U+0000-U+001F, U+007F) are refused outright: they cannot be
typed on a Telnet-style command line without ambiguity, NUL truncates C
strings, and CR/LF inside a name could forge extra lines in a listing.
"""

from __future__ import annotations

import re

__all__ = [
    "PathError",
    "basename",
    "check_name",
    "is_within",
    "join",
    "normalize",
    "parent",
    "relative_segments",
    "resolve",
    "segments",
]

_CONTROL = re.compile("[\x00-\x1f\x7f]")


class PathError(ValueError):
    """A client-supplied path that can never name anything on this server."""


def _check_controls(text: str) -> None:
    if _CONTROL.search(text):
        raise PathError("path contains a control character")


def resolve(cwd: str, arg: str) -> str:
    """The canonical absolute path for ``arg`` as typed by a client in ``cwd``.

    ``arg`` starting with ``/`` is absolute; otherwise it is taken relative to
    ``cwd`` (itself an absolute path). ``.`` segments and empty segments
    (repeated slashes) vanish, ``..`` removes the previous segment and is
    clamped at the root. An empty ``arg`` names ``cwd`` itself.
    """
    _check_controls(arg)
    _check_controls(cwd)
    parts: list[str] = [] if arg.startswith("/") else list(segments(cwd))
    for piece in arg.split("/"):
        if piece in ("", "."):
            continue
        if piece == "..":
            if parts:
                parts.pop()
            continue
        parts.append(piece)
    return "/" + "/".join(parts)


def normalize(path: str) -> str:
    """``path`` in canonical form, relative paths being taken from the root."""
    return resolve("/", path)


def segments(path: str) -> tuple[str, ...]:
    """The names along ``path``: ``"/a/b"`` gives ``("a", "b")``, ``"/"`` gives ``()``.

    Purely textual: empty segments are dropped but ``.``/``..`` are kept, so
    call it on canonical paths (see :func:`resolve`).
    """
    return tuple(piece for piece in path.split("/") if piece)


def check_name(name: str) -> str:
    """Return ``name`` if it is one plain path segment, else raise :class:`PathError`.

    Used where a segment comes from somewhere other than a client path (an
    account name that becomes an isolation folder, a directory entry) and
    must not be able to add, remove or climb segments.
    """
    if name in ("", ".", "..") or "/" in name:
        raise PathError(f"not a plain file name: {name!r}")
    _check_controls(name)
    return name


def join(base: str, *names: str) -> str:
    """``base`` (canonical) extended by plain segment ``names`` (see :func:`check_name`)."""
    parts = list(segments(base))
    parts.extend(check_name(name) for name in names)
    return "/" + "/".join(parts)


def parent(path: str) -> str:
    """The canonical parent of canonical ``path``; the root is its own parent."""
    parts = segments(path)
    return "/" + "/".join(parts[:-1])


def basename(path: str) -> str:
    """The last segment of ``path``; ``""`` for the root."""
    parts = segments(path)
    return parts[-1] if parts else ""


def _fold(parts: tuple[str, ...], ignore_case: bool) -> tuple[str, ...]:
    return tuple(part.lower() for part in parts) if ignore_case else parts


def relative_segments(
    path: str, ancestor: str, *, ignore_case: bool = False
) -> tuple[str, ...] | None:
    """The segments of ``path`` below ``ancestor``, or None if it is not below it.

    The comparison is segment-wise, so ``/pub`` is not an ancestor of
    ``/public``. ``path`` equal to ``ancestor`` gives ``()``.
    """
    path_parts = segments(path)
    anc_parts = segments(ancestor)
    if len(path_parts) < len(anc_parts):
        return None
    head = path_parts[: len(anc_parts)]
    if _fold(head, ignore_case) != _fold(anc_parts, ignore_case):
        return None
    return path_parts[len(anc_parts) :]


def is_within(path: str, ancestor: str, *, ignore_case: bool = False) -> bool:
    """Whether ``path`` is ``ancestor`` or lies below it (segment-wise)."""
    return relative_segments(path, ancestor, ignore_case=ignore_case) is not None
