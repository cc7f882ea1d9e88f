"""Navigation and file management: PWD CWD CDUP MKD RMD DELE RNFR RNTO SIZE MDTM MLST."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from ftps7.config.model import Permission
from ftps7.core import listing, paths
from ftps7.core.replies import FTPError, R, Reply, format_reply, framed_reply

if TYPE_CHECKING:
    from ftps7.server.protocol import FTPSession


def quote(path: str) -> str:
    """RFC 959 appendix II: a double quote inside a quoted path is doubled."""
    return path.replace('"', '""')


class FileCommands:
    def path_argument(self: FTPSession, argument: str) -> str:
        """The absolute user path for a client argument, or 550/553."""
        try:
            return paths.resolve(self.state.cwd, argument)
        except paths.PathError:
            raise FTPError(R.BAD_FILENAME) from None

    def ftp_PWD(self: FTPSession, argument: str) -> Reply:
        return format_reply(R.CURRENT_DIRECTORY, path=quote(self.state.cwd))

    def ftp_CWD(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        target = self.path_argument(argument or self.state.shell.home)

        def changed(path: str) -> Reply:
            self.state.cwd = path
            return format_reply(R.FILE_ACTION_OK, command="CWD")

        return self.state.shell.change_directory(target).addCallback(changed)

    def ftp_CDUP(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        return self.ftp_CWD("..")

    def ftp_MKD(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        target = self.path_argument(argument)
        return self.state.shell.make_directory(target).addCallback(
            lambda _: format_reply(R.PATH_CREATED, path=quote(target))
        )

    def ftp_RMD(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        target = self.path_argument(argument)
        return self.state.shell.remove_directory(target).addCallback(
            lambda _: format_reply(R.FILE_ACTION_OK, command="RMD")
        )

    def ftp_DELE(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        target = self.path_argument(argument)
        return self.state.shell.remove_file(target).addCallback(
            lambda _: format_reply(R.FILE_ACTION_OK, command="DELE")
        )

    def ftp_RNFR(self: FTPSession, argument: str) -> defer.Deferred[R]:
        source = self.path_argument(argument)
        self.state.rename_from = None

        def pending(_: object) -> R:
            self.state.rename_from = source
            return R.RENAME_PENDING

        return self.state.shell.check_rename_source(source).addCallback(pending)

    def ftp_RNTO(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        source = self.state.rename_from
        self.state.rename_from = None
        if source is None:
            raise FTPError(R.RNFR_FIRST)
        target = self.path_argument(argument)
        return self.state.shell.rename(source, target).addCallback(
            lambda _: format_reply(R.FILE_ACTION_OK, command="RNTO")
        )

    def ftp_SIZE(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        # The size on disk in every TYPE, as IIS and vsftpd answer: RFC 3659 §4
        # would want the ASCII transfer size in TYPE A, which means reading the
        # whole file; clients (ftplib's size() among them) ask in TYPE A anyway.
        target = self.path_argument(argument)

        def size(entry: listing.Entry) -> Reply:
            if entry.is_dir:
                raise FTPError(R.NOT_A_FILE)
            return format_reply(R.FILE_STATUS, value=entry.size)

        return self.state.shell.stat(target).addCallback(size)

    def ftp_MDTM(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        target = self.path_argument(argument)

        def modified(entry: listing.Entry) -> Reply:
            if entry.is_dir:
                raise FTPError(R.NOT_A_FILE)
            return format_reply(R.FILE_STATUS, value=listing.mdtm(entry.mtime))

        return self.state.shell.stat(target).addCallback(modified)

    def perm_for(self: FTPSession, path: str, is_dir: bool) -> str:
        granted = self.state.shell.permissions(path)
        return listing.perm_string(
            is_dir, bool(granted & Permission.READ), bool(granted & Permission.WRITE)
        )

    def ftp_MLST(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        target = self.path_argument(argument) if argument.strip() else self.state.cwd

        def facts(entry: listing.Entry) -> Reply:
            line = listing.mlsx_line(
                replace(entry, name=target),
                set(self.state.mlst_facts),
                self.perm_for(target, entry.is_dir),
            )
            return framed_reply(R.MLST_BEGIN, after=(" " + line, R.MLST_END.template), path=target)

        return self.state.shell.stat(target).addCallback(facts)

    def stat_path(self: FTPSession, argument: str) -> defer.Deferred[Any]:
        """STAT <path>: a LIST over the control channel (RFC 959 §4.1.3)."""
        from ftps7.server.cmd_transfer import list_arguments

        target = self.path_argument(list_arguments(argument))

        def render(lines: list[str]) -> Reply:
            return framed_reply(
                R.DIRECTORY_STATUS, after=(*lines, R.STAT_END.template), path=target
            )

        return self.listing_lines("LIST", target).addCallback(render)
