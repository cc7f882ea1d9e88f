"""IIS FTP user isolation: which subtree a user sees and where the session starts.

The folder conventions are IIS's own (``userIsolation mode``; the "FTP User
Isolation" feature page and the settings schema):

=========================  ===================================================
mode                       effect
=========================  ===================================================
None                       root ``/``, start in ``/``.
StartInUsersDirectory      root ``/`` (no isolation); start in ``/<name>`` if
                           that folder exists, else ``/``. Anonymous sessions
                           start in ``/default`` if it exists (IIS: "create a
                           physical or virtual directory folder named default").
IsolateRootDirectoryOnly   IIS "User name physical directory (enable global
                           virtual directories)": root is the user's folder;
                           the site's other virtual directories stay visible.
IsolateAllDirectories      IIS "User name directory (disable global virtual
                           directories)": root is the user's folder and only
                           what lies under it is reachable.
ActiveDirectory            root is ``msIIS-FTPRoot`` + ``msIIS-FTPDir`` of the
                           account (a physical folder outside the site tree).
=========================  ===================================================

The user's folder, for both "Isolate" modes, is ``/LocalUser/<name>`` for
local accounts, ``/LocalUser/Public`` for anonymous sessions and
``/<DOMAIN>/<name>`` for domain accounts (site paths, so they may be
physical folders under the root virtual directory or virtual directories).
When the folder does not exist the logon is refused - IIS answers ``530 User
cannot log in, home directory inaccessible.`` - signalled here by
:class:`IsolationError`. Names are used exactly as given: Linux folders are
case-sensitive, so ``/LocalUser/Alice`` does not serve the account ``alice``.

Everything here is pure: whether a folder exists is asked of the caller's
``exists`` callback (typically ``SiteNamespace(site_vdirs).is_dir``, run on a
worker thread).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from ftps7.config.model import UserIsolationMode, VirtualDirectory
from ftps7.core import paths
from ftps7.core.namespace import SiteNamespace
from ftps7.core.paths import PathError

__all__ = [
    "ANONYMOUS_FOLDER",
    "ANONYMOUS_START_FOLDER",
    "LOCAL_USER_FOLDER",
    "IsolationError",
    "IsolationPlan",
    "plan",
]

LOCAL_USER_FOLDER = "LocalUser"
ANONYMOUS_FOLDER = "Public"
ANONYMOUS_START_FOLDER = "default"


class IsolationError(Exception):
    """The user has no usable home folder: refuse the logon (530)."""


@dataclass(frozen=True)
class IsolationPlan:
    """Where a session lives.

    ``root`` is a site path shown to the user as ``/``; ``start`` is the
    initial working directory as a *user* path. In ActiveDirectory mode
    ``physical_root`` is the home folder and the session's namespace is that
    folder alone (``root`` is then ``/`` of that namespace).
    """

    root: str
    start: str
    global_vdirs_visible: bool
    physical_root: str | None = None

    def namespace(
        self, virtual_directories: Sequence[VirtualDirectory], hidden: Collection[str] = ()
    ) -> SiteNamespace:
        """The :class:`SiteNamespace` this plan gives the session."""
        if self.physical_root is not None:
            home = VirtualDirectory(path="/", physical_path=self.physical_root)
            return SiteNamespace([home], "/", hidden)
        return SiteNamespace(
            virtual_directories,
            self.root,
            hidden,
            global_vdirs_visible=self.global_vdirs_visible,
        )


def _folder_exists(
    site_path: str, exists: Callable[[str], bool], vdir_paths: Sequence[str]
) -> bool:
    """A folder exists physically (per ``exists``) or because a virtual directory
    is declared at or below it."""
    if exists(site_path):
        return True
    return any(paths.is_within(vpath, site_path, ignore_case=True) for vpath in vdir_paths)


def _segment(name: str, what: str) -> str:
    try:
        return paths.check_name(name)
    except PathError as exc:
        raise IsolationError(f"{what} {name!r} cannot name a home folder") from exc


def _home_folder(identity_name: str, domain: str | None, anonymous: bool) -> str:
    if anonymous:
        return paths.join("/", LOCAL_USER_FOLDER, ANONYMOUS_FOLDER)
    name = _segment(identity_name, "account name")
    if domain:
        return paths.join("/", _segment(domain, "domain"), name)
    return paths.join("/", LOCAL_USER_FOLDER, name)


def _active_directory_home(
    ad_root: str | None, ad_dir: str | None, exists: Callable[[str], bool]
) -> str:
    if not ad_root or not ad_dir:
        raise IsolationError("msIIS-FTPRoot or msIIS-FTPDir is not set for this account")
    if not os.path.isabs(ad_root):
        raise IsolationError(f"msIIS-FTPRoot {ad_root!r} is not an absolute path")
    # The attributes are written for Windows, so "\" separates folders in msIIS-FTPDir.
    parts = [part for part in re.split(r"[\\/]", ad_dir) if part not in ("", ".")]
    for part in parts:
        _segment(part, "msIIS-FTPDir segment")
    home = os.path.join(ad_root, *parts)
    if not exists(home):
        raise IsolationError(f"home folder {home!r} does not exist")
    return home


def plan(
    mode: UserIsolationMode,
    identity_name: str,
    domain: str | None,
    anonymous: bool,
    namespace_dirs: Sequence[VirtualDirectory],
    exists: Callable[[str], bool],
    ad_root: str | None = None,
    ad_dir: str | None = None,
) -> IsolationPlan:
    """Compute the root and start folder for one logon.

    ``identity_name`` is the bare account name (without ``DOMAIN\\``);
    ``domain`` is set for domain accounts only. ``exists(path)`` answers
    whether a folder exists: given a site path in every mode except
    ActiveDirectory, where it is given the physical home folder
    (``ad_root`` joined with ``ad_dir``, the account's msIIS-FTPRoot and
    msIIS-FTPDir). Raises :class:`IsolationError` when the logon must be
    refused.
    """
    vdir_paths = [paths.normalize(vdir.path) for vdir in namespace_dirs]
    if mode is UserIsolationMode.NONE:
        return IsolationPlan(root="/", start="/", global_vdirs_visible=True)
    if mode is UserIsolationMode.START_IN_USERS_DIRECTORY:
        try:
            folder = ANONYMOUS_START_FOLDER if anonymous else paths.check_name(identity_name)
        except PathError:
            return IsolationPlan(root="/", start="/", global_vdirs_visible=True)
        start = paths.join("/", folder)
        if not _folder_exists(start, exists, vdir_paths):
            start = "/"
        return IsolationPlan(root="/", start=start, global_vdirs_visible=True)
    if mode is UserIsolationMode.ACTIVE_DIRECTORY:
        home = _active_directory_home(ad_root, ad_dir, exists)
        return IsolationPlan(root="/", start="/", global_vdirs_visible=False, physical_root=home)
    root = _home_folder(identity_name, domain, anonymous)
    if not _folder_exists(root, exists, vdir_paths):
        raise IsolationError(f"home folder {root} does not exist")
    return IsolationPlan(
        root=root,
        start="/",
        global_vdirs_visible=mode is UserIsolationMode.ISOLATE_ROOT_DIRECTORY_ONLY,
    )
