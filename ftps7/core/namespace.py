"""A user's view of a site: virtual directories, the isolation root, and the jail.

IIS builds an FTP site's namespace from ``<virtualDirectory path
physicalPath>`` entries; the longest virtual-directory prefix of a path
decides which physical folder serves it. User isolation then shows each user
only a subtree of that namespace (their "root"), which the user sees as
``/``. :class:`SiteNamespace` does both translations:

    user path  --(root, global virtual directories)-->  site path
    site path  --(longest virtual directory prefix)-->  physical path

and then enforces the **jail**: the physical path is resolved with
``os.path.realpath`` (every symlink along it followed) and refused unless the
result stays inside the real folder the path was mapped into. A symlink
inside a root that points elsewhere inside it is fine; one that leads out of
it - as the final component or as any parent directory - is refused, so no
client path, however spelled, reaches a file outside every physicalPath.

Comparisons of virtual-directory paths ignore case, as IIS does (the
remainder below a virtual directory is passed to the case-sensitive Linux
filesystem unchanged); :mod:`ftps7.core.authz` compares location paths the
same way, so a rule and the folder it protects always agree.

This module touches the filesystem (``realpath``, ``stat``) and therefore runs
on a worker thread, never on the reactor thread. Symlink checks are made at
resolution time: a local user who can swap a directory for a symlink between
the check and the server's use of the path (a TOCTOU race) is outside what a
path check can stop; the server should still open files with ``O_NOFOLLOW``
where it can.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ftps7.config.model import VirtualDirectory
from ftps7.core import paths
from ftps7.core.paths import PathError

__all__ = [
    "JailError",
    "PathNotFoundError",
    "Resolved",
    "SiteNamespace",
    "VirtualDirectoryError",
]

_Key = tuple[str, ...]


class JailError(PathError):
    """The path resolves (through symlinks) outside the folder it belongs to."""


class PathNotFoundError(PathError):
    """``must_exist`` was asked for and nothing is there."""


class VirtualDirectoryError(PathError):
    """A mount point (a virtual directory or the user's root) or an intermediate
    segment above one cannot be created, removed or renamed through FTP: those
    paths exist because of configuration, not because of a folder."""


@dataclass(frozen=True)
class Resolved:
    """Where one user path leads.

    ``real_path`` is what the server should operate on. For reads it is the
    fully resolved target; for ``for_create`` resolutions it is the real parent
    directory joined with the final name, i.e. the directory entry itself
    (DELE/RNFR of a symlink act on the link, STOR writes through an in-jail
    link).
    """

    user_path: str  # canonical path as the user sees it
    site_path: str  # the same place in the site namespace (authorization, logs)
    physical_path: str  # textual mapping onto the filesystem, before symlinks
    real_path: str  # after symlinks (see above), inside ``jail``
    vdir: VirtualDirectory  # the virtual directory that owns the path
    jail: str  # the real folder this path may not leave
    is_mount: bool  # the path is a virtual directory or the user's root itself
    is_intermediate: bool  # only an intermediate segment of a deeper virtual directory


@dataclass(frozen=True)
class _Mount:
    user_path: str
    site_path: str
    base: str  # physical folder the mount point maps to
    vdir: VirtualDirectory
    nested_in_vdir: bool  # base lies below vdir.physical_path (the isolation root)


def _key(path: str) -> _Key:
    return tuple(part.lower() for part in paths.segments(path))


def _inside(real: str, jail: str) -> bool:
    if jail == os.sep:
        return True
    return real == jail or real.startswith(jail + os.sep)


class SiteNamespace:
    """The FTP namespace one session sees.

    ``root`` is the user's isolation root as a site path (``"/"`` without
    isolation). With ``global_vdirs_visible`` (IIS "IsolateRootDirectoryOnly"),
    the site's other virtual directories stay reachable at their own paths,
    except those inside the isolation container (the root's first segment,
    ``/LocalUser`` or ``/<DOMAIN>``), so one user never reaches another
    user's home through a "global" directory. ``hidden`` names (request
    filtering hiddenSegments) are left out of :meth:`virtual_children`.
    """

    def __init__(
        self,
        virtual_directories: Sequence[VirtualDirectory],
        root: str = "/",
        hidden: Collection[str] = (),
        *,
        global_vdirs_visible: bool = False,
    ) -> None:
        self._root = paths.normalize(root)
        self._global_vdirs_visible = global_vdirs_visible
        self._hidden = frozenset(name.lower() for name in hidden)
        declared = [(paths.normalize(vdir.path), vdir) for vdir in virtual_directories]
        for _, vdir in declared:
            if not os.path.isabs(vdir.physical_path):
                raise ValueError(f"physicalPath must be absolute: {vdir.physical_path!r}")
        self._mounts: dict[_Key, _Mount] = {}
        self._add_root_mount(declared)
        for vpath, vdir in declared:
            below = paths.relative_segments(vpath, self._root, ignore_case=True)
            if below:
                self._add_mount(paths.join("/", *below), vpath, vdir)
        if global_vdirs_visible and self._root != "/":
            container = "/" + paths.segments(self._root)[0]
            for vpath, vdir in declared:
                if vpath == "/" or paths.is_within(vpath, container, ignore_case=True):
                    continue
                self._add_mount(vpath, vpath, vdir)
        self._intermediates: dict[_Key, str] = {}
        self._children: dict[_Key, dict[str, str]] = {}
        for key, mount in self._mounts.items():
            if not key:
                continue
            self._add_child(mount.user_path)
            for depth in range(1, len(key)):
                ancestor = "/" + "/".join(paths.segments(mount.user_path)[:depth])
                if key[:depth] not in self._mounts:
                    self._intermediates.setdefault(key[:depth], ancestor)
                self._add_child(ancestor)

    # ------------------------------------------------------------------ setup

    def _add_root_mount(self, declared: list[tuple[str, VirtualDirectory]]) -> None:
        best: tuple[int, str, VirtualDirectory] | None = None
        for vpath, vdir in declared:
            if paths.is_within(self._root, vpath, ignore_case=True):
                depth = len(paths.segments(vpath))
                if best is None or depth > best[0]:
                    best = (depth, vpath, vdir)
        if best is None:
            raise ValueError(f"{self._root!r} is not inside any virtual directory")
        _, vpath, vdir = best
        rest = paths.relative_segments(self._root, vpath, ignore_case=True) or ()
        base = os.path.join(vdir.physical_path, *rest)
        self._mounts[()] = _Mount("/", self._root, base, vdir, bool(rest))

    def _add_mount(self, user_path: str, site_path: str, vdir: VirtualDirectory) -> None:
        # First declaration wins: the user's own subtree is added before global
        # directories, so a home folder's own virtual directory shadows a global one.
        self._mounts.setdefault(
            _key(user_path), _Mount(user_path, site_path, vdir.physical_path, vdir, False)
        )

    def _add_child(self, user_path: str) -> None:
        siblings = self._children.setdefault(_key(paths.parent(user_path)), {})
        name = paths.basename(user_path)
        siblings.setdefault(name.lower(), name)

    # ------------------------------------------------------------- properties

    @property
    def root(self) -> str:
        """The site path the user sees as ``/``."""
        return self._root

    @property
    def global_vdirs_visible(self) -> bool:
        return self._global_vdirs_visible

    # ---------------------------------------------------------- pure lookups

    def _mount_for(self, user_path: str) -> tuple[_Mount, tuple[str, ...]]:
        parts = paths.segments(user_path)
        key = tuple(part.lower() for part in parts)
        for depth in range(len(key), -1, -1):
            mount = self._mounts.get(key[:depth])
            if mount is not None:
                return mount, parts[depth:]
        raise JailError("path is outside every virtual directory")  # pragma: no cover

    def to_site_path(self, user_path: str) -> str:
        """The site path for a user path (where authorization rules apply)."""
        mount, rest = self._mount_for(paths.normalize(user_path))
        return paths.join(mount.site_path, *rest)

    def is_virtual(self, user_path: str) -> bool:
        """Whether the path exists because of configuration alone: a mount
        point or an intermediate segment above one."""
        key = _key(paths.normalize(user_path))
        return key in self._mounts or key in self._intermediates

    def virtual_children(self, user_path: str) -> list[str]:
        """Names of virtual directories (or their intermediate segments) directly
        below ``user_path``, sorted; listings show them as directories."""
        siblings = self._children.get(_key(paths.normalize(user_path)), {})
        return sorted(name for lower, name in siblings.items() if lower not in self._hidden)

    def is_hidden(self, name: str) -> bool:
        """Whether a directory entry called ``name`` is hidden from listings."""
        return name.lower() in self._hidden

    @property
    def hidden_names(self) -> frozenset[str]:
        """The names (lower case) that `is_hidden` hides."""
        return self._hidden

    # ---------------------------------------------------------- filesystem

    def physical(
        self, user_path: str, *, must_exist: bool = False, for_create: bool = False
    ) -> Resolved:
        """Map a user path onto the filesystem and enforce the jail.

        ``for_create`` is for operations on the directory entry itself
        (STOR, APPE, STOU, MKD, DELE, RMD, RNFR, RNTO): the parent directory
        is resolved and jailed, and if the final name is an existing symlink
        its target must be inside the jail as well. ``must_exist`` raises
        :class:`PathNotFoundError` when nothing is there (intermediate
        segments of virtual directories always exist).
        """
        canonical = paths.normalize(user_path)
        mount, rest = self._mount_for(canonical)
        physical = os.path.join(mount.base, *rest)
        jail = os.path.realpath(mount.base)
        if mount.nested_in_vdir and not _inside(jail, os.path.realpath(mount.vdir.physical_path)):
            raise JailError("the home folder resolves outside its virtual directory")
        is_mount = not rest
        key = _key(canonical)
        is_intermediate = key in self._intermediates
        if for_create:
            if is_mount or is_intermediate:
                raise VirtualDirectoryError(f"{canonical} is a virtual directory")
            real_parent = os.path.realpath(os.path.dirname(physical))
            if not _inside(real_parent, jail):
                raise JailError("the parent directory resolves outside the jail")
            real = os.path.join(real_parent, rest[-1])
            if os.path.islink(real) and not _inside(os.path.realpath(real), jail):
                raise JailError("the symlink points outside the jail")
        else:
            real = os.path.realpath(physical)
            if not _inside(real, jail):
                raise JailError("the path resolves outside the jail")
        if must_exist and not is_intermediate and not os.path.exists(real):
            raise PathNotFoundError(f"{canonical} does not exist")
        return Resolved(
            user_path=canonical,
            site_path=paths.join(mount.site_path, *rest),
            physical_path=physical,
            real_path=real,
            vdir=mount.vdir,
            jail=jail,
            is_mount=is_mount,
            is_intermediate=is_intermediate,
        )

    def is_dir(self, user_path: str) -> bool:
        """Whether the path names a directory the user may enter (virtual or real).

        Suitable as the ``exists`` callback of :func:`ftps7.core.isolation.plan`
        when built with the site's virtual directories and root ``/``.
        """
        try:
            resolved = self.physical(user_path)
        except PathError:
            return False
        return resolved.is_intermediate or os.path.isdir(resolved.real_path)

    def exists(self, user_path: str) -> bool:
        """Whether anything (file, directory, virtual directory) is at the path."""
        try:
            resolved = self.physical(user_path)
        except PathError:
            return False
        return resolved.is_intermediate or os.path.exists(resolved.real_path)
