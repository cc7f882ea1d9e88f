"""The avatar: one logged-on user's view of a site's files.

Every operation checks, in this order, request filtering (hidden segments,
denied sequences, extensions), the jail (the path resolves inside a virtual
directory's physicalPath, symlinks included), and the ``<authorization>``
rules, and only then touches the file system. All of it runs in the I/O thread
pool: a `stat` on a slow mount, a 100,000-entry directory or a ``fsync`` must
never stall other sessions. Methods return Deferreds; failures are
`FTPError`s carrying the reply to send.

Uploads never write in place (``fileHandling``): data goes to a hidden
temporary file in the target's directory, renamed over the target only when the
transfer ended cleanly. APPE and REST+STOR first copy the existing bytes into the
temporary file (``copy_file_range``, in the kernel), so an aborted append leaves
the original file exactly as it was.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import operator
import os
import secrets
import stat as statmod
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from twisted.internet import defer

from ftps7.auth.identity import Identity
from ftps7.config.model import FileHandling, Permission, RequestFiltering
from ftps7.core import listing, paths
from ftps7.core.authz import (
    Authorizer,
    extension_allowed,
    filters_extensions,
    request_filter_allows,
)
from ftps7.core.namespace import Resolved, SiteNamespace
from ftps7.core.replies import FTPError, R
from ftps7.server.transfers import CHUNK, MemorySource

#: Temporary upload files carry this prefix; they are hidden from listings and
#: unreachable by clients.
PARTIAL_PREFIX = ".ftps7-part-"
#: Files of at most this many bytes (from the REST offset) are read whole when
#: opened for RETR, in the same pool job.
WHOLE_READ = CHUNK

RunInPool = Callable[..., "defer.Deferred[Any]"]


def os_error_reply(exc: OSError, missing: R = R.FILE_UNAVAILABLE) -> FTPError:
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        return FTPError(missing)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return FTPError(R.ACCESS_DENIED)
    if code == errno.EEXIST:
        return FTPError(R.ALREADY_EXISTS)
    if code == errno.ENOTEMPTY:
        return FTPError(R.DIRECTORY_NOT_EMPTY)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return FTPError(R.NO_SPACE)
    if code == errno.ENAMETOOLONG:
        return FTPError(R.BAD_FILENAME)
    if code == errno.EISDIR:
        return FTPError(R.NOT_A_FILE)
    return FTPError(R.LOCAL_ERROR)


@dataclass(frozen=True)
class Listing:
    """A directory's entries plus the directory's own entry (for MLSD ``cdir``).

    The entries are two parallel sequences, sorted by name, for the batch
    formatters of :mod:`ftps7.core.listing` (see there why not one object
    per entry).
    """

    path: str
    directory: listing.Entry
    names: Sequence[str]
    #: ``stat`` results of `names`, symlinks followed.
    stats: Sequence[os.stat_result]
    #: Names that are there only as virtual directories (no folder on disk):
    #: LIST shows them only with ``showFlags="DisplayVirtualDirectories"``.
    virtual_names: frozenset[str] = frozenset()
    #: MLSx ``unique`` facts of virtual directory segments with no folder.
    uniques: Mapping[str, str] = field(default_factory=dict)


class UploadTarget:
    """A temporary file that becomes the target only on `commit`."""

    def __init__(
        self,
        final_path: str,
        temp_path: str,
        handle: Any,
        keep_partial: bool,
        initial_size: int = 0,
    ) -> None:
        self.initial_size = initial_size  # bytes copied from the existing file (APPE, REST)
        self.final_path = final_path
        self.temp_path = temp_path
        self.handle = handle
        self.keep_partial = keep_partial
        self.finished = False

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def commit(self) -> None:
        """Make the upload visible: flush, sync and rename into place atomically."""
        self.finished = True
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
        finally:
            self.handle.close()
        os.replace(self.temp_path, self.final_path)

    def discard(self) -> bool:
        """Drop a failed upload; returns whether a partial file was kept.

        With ``keepPartialUploads`` the partial data becomes the target only if
        there is no file there: a partial upload never replaces a good file.
        """
        if self.finished:
            return False
        self.finished = True
        with contextlib.suppress(OSError):
            self.handle.close()
        if self.keep_partial and not os.path.lexists(self.final_path):
            try:
                os.rename(self.temp_path, self.final_path)
                return True
            except OSError:
                pass
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)
        return False


_MODE = operator.attrgetter("st_mode")


#: Whether `_encoded` may encode names all at once (it always may on Linux
#: with a UTF-8 locale or Python's UTF-8 mode).
_FS_UTF8 = (
    codecs.lookup(sys.getfilesystemencoding()).name == "utf-8"
    and sys.getfilesystemencodeerrors() == "surrogateescape"
)


def _encoded(names: list[str]) -> list[str] | list[bytes]:
    """``names`` as the file system takes them, encoded in one call: ``lstat``
    of a str encodes it first, a tenth of the call's cost."""
    if not names or not _FS_UTF8:
        return names
    return "\0".join(names).encode("utf-8", "surrogateescape").split(b"\0")


def _lstat_or_none(name: str, folder: int) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=folder)
    except OSError:
        return None


def _copy_prefix(source: str, target_fd: int, length: int) -> None:
    """Copy the first ``length`` bytes of ``source`` into ``target_fd``."""
    with open(source, "rb") as src:
        copied = 0
        while copied < length:
            try:
                n = os.copy_file_range(src.fileno(), target_fd, length - copied)
            except OSError:
                n = 0
            if n == 0:
                data = src.read(min(1 << 20, length - copied))
                if not data:
                    break
                os.write(target_fd, data)
                n = len(data)
            copied += n
    if copied != length:
        raise OSError(errno.EIO, "short copy of existing file")


class SiteShell:
    """A user's session on a site: namespace, rules and file operations."""

    def __init__(
        self,
        *,
        site_name: str,
        identity: Identity,
        namespace: SiteNamespace,
        authorizer: Authorizer,
        request_filtering: RequestFiltering,
        file_handling: FileHandling,
        run: RunInPool,
        home: str = "/",
    ) -> None:
        self.site_name = site_name
        self.identity = identity
        self.namespace = namespace
        self.authorizer = authorizer
        self.request_filtering = request_filtering
        self.file_handling = file_handling
        self.run = run
        self.home = home

    # ---------------------------------------------------------------- checks
    def permissions(self, user_path: str) -> Permission:
        site_path = self.namespace.to_site_path(user_path)
        return self.authorizer.permissions(
            self.site_name,
            site_path,
            self.identity.name,
            self.identity.groups,
            self.identity.anonymous,
        )

    def _filter(self, user_path: str) -> None:
        """Request filtering of a path, all but ``fileExtensions`` (`_filter_extension`)."""
        if any(segment.startswith(PARTIAL_PREFIX) for segment in paths.segments(user_path)):
            raise FTPError(R.FILE_UNAVAILABLE)
        reason = request_filter_allows(user_path, self.request_filtering, check_extension=False)
        if reason is not None:
            raise FTPError(R.FILE_UNAVAILABLE)

    def _filter_extension(self, user_path: str, real_path: str | None) -> None:
        """``fileExtensions``, for files: a folder has no extension to allow.

        Without this distinction ``allowUnlisted="false"`` (a list of allowed
        extensions) would refuse every CWD, listing, MKD and RMD. ``real_path``
        None: the caller knows the path is a file (or will be one); otherwise
        an existing directory there passes.
        """
        filtering = self.request_filtering
        if not filters_extensions(filtering):
            return
        if real_path is not None and os.path.isdir(real_path):
            return
        if not extension_allowed(paths.basename(user_path), filtering):
            raise FTPError(R.FILE_UNAVAILABLE)

    def _need(self, user_path: str, permission: Permission) -> None:
        if not self.permissions(user_path) & permission:
            raise FTPError(R.ACCESS_DENIED)

    def _resolve(self, user_path: str, *, for_create: bool = False) -> Resolved:
        try:
            return self.namespace.physical(user_path, for_create=for_create)
        except paths.PathError:
            raise FTPError(R.PATH_UNAVAILABLE) from None

    def _checked(
        self,
        user_path: str,
        permission: Permission,
        *,
        for_create: bool = False,
        kind: Literal["file", "dir", "any"] = "file",
    ) -> Resolved:
        """Filtered, permitted and resolved; ``kind``: what the command works on.

        ``"file"`` and ``"any"`` (a file, or a directory already there) are
        subject to ``fileExtensions``, ``"dir"`` is not.
        """
        self._filter(user_path)
        self._need(user_path, permission)
        resolved = self._resolve(user_path, for_create=for_create)
        if kind != "dir":
            self._filter_extension(user_path, resolved.real_path if kind == "any" else None)
        return resolved

    def _is_virtual_dir(self, user_path: str) -> bool:
        return self.namespace.is_virtual(user_path)

    # ---------------------------------------------------------- navigation
    def change_directory(self, user_path: str) -> defer.Deferred[str]:
        def work() -> str:
            self._filter(user_path)
            if not self.permissions(user_path) & (Permission.READ | Permission.WRITE):
                raise FTPError(R.ACCESS_DENIED)
            if self._is_virtual_dir(user_path):
                return user_path
            resolved = self._resolve(user_path)
            if not os.path.isdir(resolved.real_path):
                if os.path.exists(resolved.real_path):
                    raise FTPError(R.NOT_A_DIRECTORY)
                raise FTPError(R.PATH_UNAVAILABLE)
            if not os.access(resolved.real_path, os.X_OK):
                raise FTPError(R.ACCESS_DENIED)
            return user_path

        return self.run(work)

    # ------------------------------------------------------------ metadata
    def _entry(self, name: str, resolved: Resolved) -> listing.Entry:
        return listing.entry_from_stat(name, os.stat(resolved.real_path))

    def stat(self, user_path: str) -> defer.Deferred[listing.Entry]:
        def work() -> listing.Entry:
            self._filter(user_path)
            self._need(user_path, Permission.READ)
            name = paths.basename(user_path) or "/"
            if self._is_virtual_dir(user_path):
                try:
                    return self._entry(name, self._resolve(user_path))
                except (OSError, FTPError):
                    return listing.directory_entry(name, time.time())
            resolved = self._resolve(user_path)
            self._filter_extension(user_path, resolved.real_path)
            try:
                return self._entry(name, resolved)
            except OSError as exc:
                raise os_error_reply(exc) from None

        return self.run(work)

    def list_directory(self, user_path: str) -> defer.Deferred[Listing]:
        """The entries of a directory, virtual directories included (see `Listing`)."""
        return self.run(self.read_directory, user_path)

    def read_directory(self, user_path: str) -> Listing:
        """`list_directory`'s work, for callers already in the I/O pool."""
        self._filter(user_path)
        self._need(user_path, Permission.READ)
        names: list[str] = []
        stats: list[os.stat_result] = []
        directory: listing.Entry | None = None
        with self._unless_virtual(user_path):
            real = self._resolve(user_path).real_path
            st = os.stat(real)
            directory = listing.entry_from_stat(".", st)
            if not statmod.S_ISDIR(st.st_mode):
                raise FTPError(R.NOT_A_DIRECTORY)
            names, stats = self._read_folder(user_path, real)
        if directory is None:
            directory = listing.directory_entry(".", time.time())
        virtual = self.namespace.virtual_children(user_path)
        if not virtual:
            return Listing(user_path, directory, tuple(names), tuple(stats))
        by_name = dict(zip(names, stats, strict=True))
        virtual_names: set[str] = set()
        uniques: dict[str, str] = {}
        for name in virtual:
            if name not in by_name:
                virtual_names.add(name)
                child = paths.join(user_path, name)
                try:
                    by_name[name] = os.stat(self.namespace.physical(child).real_path)
                except (OSError, paths.PathError):
                    by_name[name] = listing.virtual_directory_stat(time.time())
                    uniques[name] = listing.virtual_unique(name)
        ordered = sorted(by_name)
        return Listing(
            user_path,
            directory,
            tuple(ordered),
            tuple(by_name[name] for name in ordered),
            frozenset(virtual_names),
            uniques,
        )

    @contextlib.contextmanager
    def _unless_virtual(self, user_path: str) -> Iterator[None]:
        """A folder that cannot be read is an error reply, unless it is a virtual
        directory: that one still lists its virtual children."""
        try:
            yield
        except FTPError:
            if not self._is_virtual_dir(user_path):
                raise
        except OSError as exc:
            if not self._is_virtual_dir(user_path):
                raise os_error_reply(exc, R.PATH_UNAVAILABLE) from None

    def read_names(self, user_path: str) -> list[str]:
        """The names `read_directory` would list, sorted, without a ``stat`` per entry (NLST).

        The same names: the folder's entries are read with their types
        (``scandir``, from the directory itself on the usual file systems),
        so only symlinks need a ``stat`` (dangling ones, and those leading out
        of the jail, are left out) and ``fileExtensions`` still knows files
        from folders. An entry that vanishes meanwhile may still be named.
        """
        self._filter(user_path)
        self._need(user_path, Permission.READ)
        names: list[str] = []
        with self._unless_virtual(user_path):
            real = self._resolve(user_path).real_path
            if not statmod.S_ISDIR(os.stat(real).st_mode):
                raise FTPError(R.NOT_A_DIRECTORY)
            names = self._read_folder_names(user_path, real)
        virtual = self.namespace.virtual_children(user_path)
        if virtual:
            names = sorted({*names, *virtual})
        return names

    def _read_folder_names(self, user_path: str, real: str) -> list[str]:
        folder = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with os.scandir(folder) as scan:
                entries = {entry.name: entry for entry in scan}
            names = self._visible_names(user_path, list(entries))
            names.sort()
            extensions = filters_extensions(self.request_filtering)
            if not extensions and not any(entries[name].is_symlink() for name in names):
                return names
            kept: list[str] = []
            for name in names:
                entry = entries[name]
                try:
                    if entry.is_symlink():
                        is_dir = statmod.S_ISDIR(os.stat(name, dir_fd=folder).st_mode)
                        self.namespace.physical(paths.join(user_path, name))
                    else:
                        is_dir = entry.is_dir(follow_symlinks=False)
                except (OSError, paths.PathError):
                    continue  # dangling, vanished, or leads outside the jail
                if is_dir or not extensions or extension_allowed(name, self.request_filtering):
                    kept.append(name)
            return kept
        finally:
            os.close(folder)

    def _read_folder(self, user_path: str, real: str) -> tuple[list[str], list[os.stat_result]]:
        """The listable entries of the folder ``real`` (the user's
        ``user_path``): names, sorted, and their ``stat`` results.

        Left out: temporary upload files, hidden segments and whatever else
        request filtering refuses, names no client could use, entries that
        vanished or are dangling symlinks, and symlinks leading out of the
        jail. One ``lstat`` relative to the open folder per entry, in a list
        comprehension (an explicit loop cost a fifth more than the calls
        themselves); only symlinks need more (``stat``, then the jail).
        """
        names, stats = self._read_folder_entries(user_path, real)
        if not filters_extensions(self.request_filtering):
            return names, stats
        # fileExtensions hides files only; a folder has no extension to allow.
        filtering = self.request_filtering
        kept = [
            (name, st)
            for name, st in zip(names, stats, strict=True)
            if statmod.S_ISDIR(st.st_mode) or extension_allowed(name, filtering)
        ]
        return [name for name, _ in kept], [st for _, st in kept]

    def _read_folder_entries(
        self, user_path: str, real: str
    ) -> tuple[list[str], list[os.stat_result]]:
        """`_read_folder` but for ``fileExtensions``."""
        folder = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            names = self._visible_names(user_path, os.listdir(folder))
            names.sort()
            lstat = os.lstat
            try:
                stats = [lstat(name, dir_fd=folder) for name in _encoded(names)]
            except OSError:  # something vanished meanwhile: one by one
                found = [_lstat_or_none(name, folder) for name in names]
                return self._follow_links(user_path, folder, names, found)
            if any(map(statmod.S_ISLNK, map(_MODE, stats))):
                return self._follow_links(user_path, folder, names, stats)
            return names, stats
        finally:
            os.close(folder)

    def _follow_links(
        self,
        user_path: str,
        folder: int,
        names: list[str],
        stats: Sequence[os.stat_result | None],
    ) -> tuple[list[str], list[os.stat_result]]:
        """`_read_folder` for a folder with symlinks or vanished entries."""
        kept_names: list[str] = []
        kept_stats: list[os.stat_result] = []
        for name, st in zip(names, stats, strict=True):
            if st is None:
                continue
            if statmod.S_ISLNK(st.st_mode):
                try:
                    st = os.stat(name, dir_fd=folder)
                    self.namespace.physical(paths.join(user_path, name))
                except (OSError, paths.PathError):
                    continue  # dangling, or leads outside the jail
            kept_names.append(name)
            kept_stats.append(st)
        return kept_names, kept_stats

    def _visible_names(self, user_path: str, names: list[str]) -> list[str]:
        """The ``names`` found in ``user_path`` that a listing may show.

        Each test that is rarely true scans all names at once in C first
        ("/" cannot occur in a name, so it separates them).
        """
        joined = "/" + "/".join(names)
        if listing.has_control(joined):
            names = [name for name in names if listing.is_listable(name)]
        if "/" + PARTIAL_PREFIX in joined:
            names = [name for name in names if not name.startswith(PARTIAL_PREFIX)]
        filtering = self.request_filtering
        # Hidden names: the namespace's and request filtering's hiddenSegments
        # (a name is one segment). Lower-casing never makes a "/", so a hidden
        # name is in the list only if "/<name>/" is in the joined names.
        hidden = self.namespace.hidden_names | {s.lower() for s in filtering.hidden_segments}
        if hidden:
            bounded = joined.lower() + "/"
            if any(f"/{name}/" in bounded for name in hidden):
                names = [name for name in names if name.lower() not in hidden]
        base = paths.join(user_path)
        prefix = "" if base == "/" else base
        if filtering.deny_url_sequences:
            return [
                name
                for name in names
                if request_filter_allows(f"{prefix}/{name}", filtering, check_extension=False)
                is None
            ]
        # Otherwise only the name's own segment (above) and the length of
        # "<base>/<name>" can fail request filtering: the folder itself passed
        # it (`_filter`). (fileExtensions needs to know files from folders:
        # `_read_folder`.)
        longest = filtering.max_url - len(prefix.encode("utf-8", "surrogateescape")) - 1
        # A character is at most 4 bytes in UTF-8: encode only when a name may be too long.
        if max(map(len, names), default=0) * 4 > longest:
            names = [
                name for name in names if len(name.encode("utf-8", "surrogateescape")) <= longest
            ]
        return names

    def free_bytes(self, user_path: str) -> defer.Deferred[int]:
        def work() -> int:
            st = os.statvfs(self._resolve(user_path).real_path)
            return st.f_bavail * st.f_frsize

        return self.run(work)

    # ----------------------------------------------------- file management
    def make_directory(self, user_path: str) -> defer.Deferred[None]:
        def work() -> None:
            resolved = self._checked(user_path, Permission.WRITE, for_create=True, kind="dir")
            try:
                os.mkdir(resolved.real_path)
            except OSError as exc:
                raise os_error_reply(exc, R.PATH_UNAVAILABLE) from None

        return self.run(work)

    def remove_directory(self, user_path: str) -> defer.Deferred[None]:
        def work() -> None:
            if self._is_virtual_dir(user_path) or user_path == "/":
                raise FTPError(R.ACCESS_DENIED)
            resolved = self._checked(user_path, Permission.WRITE, for_create=True, kind="dir")
            if os.path.islink(resolved.real_path):
                raise FTPError(R.NOT_A_DIRECTORY)
            try:
                os.rmdir(resolved.real_path)
            except OSError as exc:
                raise os_error_reply(exc, R.PATH_UNAVAILABLE) from None

        return self.run(work)

    def remove_file(self, user_path: str) -> defer.Deferred[None]:
        def work() -> None:
            resolved = self._checked(user_path, Permission.WRITE, for_create=True)
            target = resolved.real_path
            if os.path.isdir(target) and not os.path.islink(target):
                raise FTPError(R.NOT_A_FILE)
            try:
                os.unlink(target)
            except OSError as exc:
                raise os_error_reply(exc) from None

        return self.run(work)

    def check_rename_source(self, user_path: str) -> defer.Deferred[None]:
        def work() -> None:
            if self._is_virtual_dir(user_path) or user_path == "/":
                raise FTPError(R.ACCESS_DENIED)
            resolved = self._checked(user_path, Permission.WRITE, for_create=True, kind="any")
            if not os.path.lexists(resolved.real_path):
                raise FTPError(R.FILE_UNAVAILABLE)

        return self.run(work)

    def rename(self, source: str, target: str) -> defer.Deferred[None]:
        def work() -> None:
            if self._is_virtual_dir(source) or self._is_virtual_dir(target):
                raise FTPError(R.ACCESS_DENIED)
            src = self._checked(source, Permission.WRITE, for_create=True, kind="any")
            # A folder keeps being a folder; a file's new name must be allowed too.
            moves_folder = os.path.isdir(src.real_path) and not os.path.islink(src.real_path)
            dst = self._checked(
                target, Permission.WRITE, for_create=True, kind="dir" if moves_folder else "file"
            )
            if not os.path.lexists(src.real_path):
                raise FTPError(R.FILE_UNAVAILABLE)
            if os.path.lexists(dst.real_path) and not self.file_handling.allow_replace_on_rename:
                raise FTPError(R.ALREADY_EXISTS)
            try:
                os.rename(src.real_path, dst.real_path)
            except OSError as exc:
                raise os_error_reply(exc, R.PATH_UNAVAILABLE) from None

        return self.run(work)

    # ------------------------------------------------------------ transfers
    def open_for_reading(self, user_path: str, offset: int) -> defer.Deferred[tuple[Any, int]]:
        """Open a file for RETR at ``offset``; returns (file, size)."""

        def work() -> tuple[Any, int]:
            resolved = self._checked(user_path, Permission.READ)
            try:
                handle = open(resolved.real_path, "rb")  # noqa: SIM115 - closed by the transfer
            except IsADirectoryError:
                raise FTPError(R.NOT_A_FILE) from None
            except OSError as exc:
                raise os_error_reply(exc) from None
            st = os.fstat(handle.fileno())
            if not statmod.S_ISREG(st.st_mode):
                handle.close()
                raise FTPError(R.NOT_A_FILE)
            if offset > st.st_size:
                handle.close()
                raise FTPError(R.INVALID_RESTART)
            if offset:
                handle.seek(offset)
            if st.st_size - offset <= WHOLE_READ:
                # Read now, in this same pool job (transfers.MemorySource): the
                # size the 150 reply names.
                with handle:
                    return MemorySource(handle.read(st.st_size - offset)), st.st_size
            return handle, st.st_size

        return self.run(work)

    def open_for_writing(
        self, user_path: str, *, append: bool = False, offset: int = 0, unique: bool = False
    ) -> defer.Deferred[UploadTarget]:
        """Prepare an upload (STOR, APPE, REST+STOR, STOU) into a temporary file."""

        def work() -> UploadTarget:
            resolved = self._checked(user_path, Permission.WRITE, for_create=True)
            final = resolved.real_path
            directory = os.path.dirname(final)
            existing: os.stat_result | None
            try:
                existing = os.stat(final)
            except FileNotFoundError:
                existing = None
            except OSError as exc:
                raise os_error_reply(exc, R.PATH_UNAVAILABLE) from None
            if existing is not None:
                if unique:
                    raise FTPError(R.ALREADY_EXISTS)
                if not statmod.S_ISREG(existing.st_mode):
                    raise FTPError(R.NOT_A_FILE)
            if offset and (existing is None or offset > existing.st_size):
                raise FTPError(R.INVALID_RESTART)
            temp = os.path.join(directory, PARTIAL_PREFIX + secrets.token_hex(8))
            mode = statmod.S_IMODE(existing.st_mode) if existing is not None else 0o644
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            except OSError as exc:
                raise os_error_reply(exc, R.PATH_UNAVAILABLE) from None
            try:
                if existing is not None and (append or offset):
                    _copy_prefix(final, fd, existing.st_size if append else offset)
                handle = os.fdopen(fd, "wb", buffering=0)
            except OSError as exc:
                os.close(fd)
                os.unlink(temp)
                raise os_error_reply(exc) from None
            keep = self.file_handling.keep_partial_uploads
            copied = existing.st_size if (existing is not None and append) else 0
            return UploadTarget(final, temp, handle, keep, copied)

        return self.run(work)

    def unique_name(self, directory: str, hint: str | None) -> defer.Deferred[str]:
        """A name in ``directory`` that does not exist yet (STOU, RFC 1123 §4.1.2.9)."""

        def work() -> str:
            resolved = self._checked(directory, Permission.WRITE, kind="dir")
            base = hint or "ftps7"
            for _ in range(100):
                name = f"{base}.{secrets.token_hex(4)}"
                if not os.path.lexists(os.path.join(resolved.real_path, name)):
                    return name
            raise FTPError(R.LOCAL_ERROR)

        return self.run(work)
