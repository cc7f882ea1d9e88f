"""The local accounts file (``<ftps7><localAccounts path="...">``).

IIS basic authentication checks Windows accounts; on Linux ftps7 keeps its own
accounts in one UTF-8 text file, one account a line::

    # name:argon2id-hash:group1,group2
    alice:$argon2id$v=19$m=65536,t=3,p=4$...$...:editors,staff

Blank lines and ``#`` comments are allowed and survive every rewrite. Names
are compared case-insensitively (Unicode NFC, then case-folded) as Windows
compares account names; the file keeps the spelling it was created with.

Reading: :meth:`AccountsFile.lookup` stats the file on every call and reloads
it when (mtime_ns, size, inode, device) changed, so ``ftps7 user`` changes
take effect on the next logon without a restart. A file that fails to parse
is never half-used: lookups raise :class:`AccountsFileError` until it is
fixed (fail closed), and a missing file means "no accounts".

Writing (``add``, ``set_password``, ``set_groups``, ``delete``,
``upgrade_hash``) takes an exclusive ``fcntl`` lock on a sidecar
``<path>.lock`` file, re-reads the file under the lock, writes the new content
to a temporary file (mode 0600) in the same directory, fsyncs it, gives it the
old file's mode and ownership when it replaced one, renames it into place
(``os.replace``) and fsyncs the directory. Two ``ftps7 user`` commands cannot lose
each other's update, and a failure at any point leaves the old file intact.

Hashes are argon2id (argon2-cffi ``PasswordHasher``). The parameters are
pinned to RFC 9106's "low memory" profile (t=3, m=64 MiB, p=4, 16-byte salt,
32-byte hash) rather than taken from the library's current default, so a
library upgrade does not silently change them. One verification costs about
0.1 s of CPU and 64 MiB of memory, which is why it only ever runs in a thread
pool, and why the pool size bounds the memory a logon flood can use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.logger import Logger

from ftps7 import logfilter

HASH_PREFIX = "$argon2id$"
MAX_NAME_LENGTH = 256

#: The argon2id parameters new hashes use (RFC 9106 low-memory profile).
HASH_PARAMETERS = argon2.profiles.RFC_9106_LOW_MEMORY

#: Characters a name may not contain beyond whitespace and control characters:
#: ':' and ',' are the file's separators; '/' would escape the user-isolation
#: folder (LocalUser/<name>); '\\' and '|' are the DOMAIN\\user and host|user
#: separators of the USER command, so such a name could never log on.
FORBIDDEN_NAME_CHARACTERS = frozenset(":,/\\|")

_log = Logger(observer=logfilter.observer)


class AccountsError(Exception):
    """Base of every accounts-file error; the message is fit for a user."""


class AccountsFileError(AccountsError):
    """The file cannot be read or does not follow the format (path:line)."""


class InvalidAccountNameError(AccountsError, ValueError):
    """A user or group name that the format does not allow."""


class InvalidPasswordError(AccountsError, ValueError):
    """A password that may not be stored (empty, or not text)."""


class DuplicateAccountError(AccountsError):
    """``add`` of a name that exists (case-insensitively)."""


class UnknownAccountError(AccountsError):
    """A change to a name that does not exist."""


def make_hasher() -> argon2.PasswordHasher:
    """The hasher for new hashes, with the pinned :data:`HASH_PARAMETERS`."""
    return argon2.PasswordHasher.from_parameters(HASH_PARAMETERS)


def name_key(name: str) -> str:
    """The case-insensitive key of a user name (NFC, then case-folded)."""
    return unicodedata.normalize("NFC", name).casefold()


def name_problem(name: str, what: str = "user name") -> str | None:
    """Why ``name`` is not a valid user or group name, or None when it is."""
    if not name:
        return f"the {what} is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"the {what} is longer than {MAX_NAME_LENGTH} characters"
    if name in (".", ".."):
        return f"the {what} may not be '.' or '..'"
    if name.startswith("#"):
        return f"the {what} may not start with '#'"
    for ch in name:
        if ch in FORBIDDEN_NAME_CHARACTERS:
            return f"the {what} may not contain {ch!r}"
        if ch.isspace() or not ch.isprintable():
            return f"the {what} may not contain whitespace or control characters ({ch!r})"
    return None


def check_name(name: str, what: str = "user name") -> str:
    """Return ``name`` if valid, else raise :class:`InvalidAccountNameError`."""
    if not isinstance(name, str):
        raise InvalidAccountNameError(f"the {what} must be text")
    problem = name_problem(name, what)
    if problem is not None:
        raise InvalidAccountNameError(f"{problem}: {name!r}")
    return name


def check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """Validate group names and drop case-insensitive duplicates (first wins)."""
    result: list[str] = []
    seen: set[str] = set()
    for group in groups:
        group = check_name(group.strip(), "group name")
        key = name_key(group)
        if key not in seen:
            seen.add(key)
            result.append(group)
    return tuple(result)


def parse_groups(text: str) -> tuple[str, ...]:
    """``"a, b,c"`` → ``("a", "b", "c")`` (empty items ignored), validated."""
    return check_groups(item for item in text.split(",") if item.strip())


def _password_bytes(password: bytes | str) -> bytes:
    if isinstance(password, str):
        password = password.encode("utf-8")
    if not isinstance(password, bytes):
        raise InvalidPasswordError("the password must be text")
    if not password:
        raise InvalidPasswordError("the password is empty")
    return password


@dataclass(frozen=True)
class Account:
    """One line of the accounts file. The hash is kept out of ``repr``."""

    name: str
    password_hash: str = field(repr=False)
    groups: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return name_key(self.name)

    def format(self) -> str:
        """The account's line in the file (no newline)."""
        return f"{self.name}:{self.password_hash}:{','.join(self.groups)}"


_Signature = tuple[int, int, int, int]


@dataclass(frozen=True)
class _Document:
    """A parsed file: its lines (each a comment/blank str or an Account)."""

    lines: tuple[str | Account, ...] = ()

    def accounts(self) -> Iterator[Account]:
        for line in self.lines:
            if isinstance(line, Account):
                yield line

    def index(self) -> dict[str, Account]:
        return {account.key: account for account in self.accounts()}

    def render(self) -> bytes:
        text = "".join(
            (line.format() if isinstance(line, Account) else line) + "\n" for line in self.lines
        )
        return text.encode("utf-8")


#: A change applied under the write lock: new document (None = no write), result.
_Change = Callable[[_Document], tuple[_Document | None, Account]]
#: A change to one account: the new account, or None to leave the file alone.
_Update = Callable[[Account], Account | None]


@dataclass(frozen=True)
class _Snapshot:
    """What one successful load saw; swapped in whole so readers never see half."""

    signature: _Signature | None
    index: dict[str, Account]


def _parse_line(path: str, number: int, raw: str) -> str | Account:
    text = raw.strip()
    if not text or text.startswith("#"):
        return raw
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise AccountsFileError(
            f"{path}:{number}: expected name:hash:groups, found {len(parts)} field(s)"
        )
    name = parts[0]
    problem = name_problem(name)
    if problem is not None:
        raise AccountsFileError(f"{path}:{number}: {problem}")
    password_hash = parts[1]
    if not password_hash.startswith(HASH_PREFIX):
        raise AccountsFileError(f"{path}:{number}: the hash of {name!r} is not argon2id")
    try:
        argon2.extract_parameters(password_hash)
    except InvalidHashError:
        raise AccountsFileError(f"{path}:{number}: the hash of {name!r} is malformed") from None
    try:
        groups = parse_groups(parts[2]) if len(parts) == 3 else ()
    except InvalidAccountNameError as error:
        raise AccountsFileError(f"{path}:{number}: {error}") from None
    return Account(name=name, password_hash=password_hash, groups=groups)


def parse_accounts(data: bytes, path: str = "<accounts>") -> _Document:
    """Parse the file's bytes; raise :class:`AccountsFileError` with path:line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise AccountsFileError(f"{path}:{line}: not valid UTF-8") from None
    text = text.removeprefix("\ufeff")
    raw_lines = text.split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    lines: list[str | Account] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(raw_lines, start=1):
        parsed = _parse_line(path, number, raw.removesuffix("\r"))
        if isinstance(parsed, Account):
            first = seen.setdefault(parsed.key, number)
            if first != number:
                raise AccountsFileError(
                    f"{path}:{number}: {parsed.name!r} duplicates the account on line {first}"
                )
        lines.append(parsed)
    return _Document(tuple(lines))


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


class AccountsFile:
    """The accounts file: cached, reloaded on change, rewritten atomically.

    Safe to use from several threads: loads are serialised by a lock, writes
    by the same lock plus the inter-process ``fcntl`` lock.
    """

    def __init__(self, path: str, hasher: argon2.PasswordHasher | None = None) -> None:
        self.path = os.path.abspath(path)
        self.lock_path = self.path + ".lock"
        self.hasher = hasher if hasher is not None else make_hasher()
        self._lock = threading.RLock()
        self._snapshot: _Snapshot | None = None
        self._dummy_lock = threading.Lock()
        self._dummy_hash: str | None = None

    # -- reading ---------------------------------------------------------------

    def _stat(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise AccountsFileError(f"{self.path}: {error.strerror}") from None

    def _read(self) -> tuple[_Document, _Signature | None]:
        """Read and parse the file now; a missing file is an empty document."""
        try:
            with open(self.path, "rb") as stream:
                st = os.fstat(stream.fileno())
                data = stream.read()
        except FileNotFoundError:
            return _Document(), None
        except OSError as error:
            raise AccountsFileError(f"{self.path}: {error.strerror}") from None
        return parse_accounts(data, self.path), _signature(st)

    def _install(self, document: _Document, signature: _Signature | None) -> _Snapshot:
        snapshot = _Snapshot(signature, document.index())
        self._snapshot = snapshot
        return snapshot

    def _load(self) -> _Snapshot:
        with self._lock:
            # Until a good load succeeds, nothing from a broken file is used.
            self._snapshot = None
            document, signature = self._read()
            return self._install(document, signature)

    def load(self) -> None:
        """(Re)load now. Raises :class:`AccountsFileError`; keeps nothing half-read."""
        self._load()

    def _current(self) -> _Snapshot:
        """The snapshot matching the file as it is now, reloading if needed."""
        st = self._stat()
        signature = None if st is None else _signature(st)
        snapshot = self._snapshot
        if snapshot is not None and snapshot.signature == signature:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and snapshot.signature == signature:
                return snapshot
            return self._load()

    def lookup(self, name: str) -> Account | None:
        """The account called ``name`` (case-insensitive), or None.

        Does a ``stat`` and, when the file changed, a reload: blocking I/O,
        so the server calls it in its thread pool.
        """
        return self._current().index.get(name_key(name))

    def list(self) -> list[Account]:
        """Every account, in file order, read now."""
        with self._lock:
            document, signature = self._read()
            self._install(document, signature)
            return list(document.accounts())

    def groups_for(self, name: str) -> frozenset[str]:
        """Groups of ``name`` from the last loaded copy, without any I/O.

        For ``normalize_avatar_id`` on the reactor thread: the roles of users
        authenticated by a third-party checker. May be a little stale.
        """
        snapshot = self._snapshot
        account = snapshot.index.get(name_key(name)) if snapshot is not None else None
        return frozenset(group.lower() for group in account.groups) if account else frozenset()

    # -- passwords -------------------------------------------------------------

    def hash_password(self, password: bytes | str) -> str:
        """A new argon2id hash of ``password`` (slow: call in a thread)."""
        return self.hasher.hash(_password_bytes(password))

    def verify(self, password_hash: str, password: bytes | str) -> bool:
        """Check ``password`` against a stored hash (slow: call in a thread)."""
        try:
            return bool(self.hasher.verify(password_hash, password))
        except VerificationError:
            return False
        except InvalidHashError:
            _log.error("an argon2 hash in {path} is malformed", path=self.path)
            return False

    def verify_unknown(self, password: bytes | str) -> bool:
        """Spend the time of a real verification, for a name that does not exist.

        Keeps "no such user" and "wrong password" indistinguishable by timing.
        Always False.
        """
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash(os.urandom(16))
            dummy = self._dummy_hash
        self.verify(dummy, password)
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a stored hash uses other parameters than new hashes do."""
        try:
            return bool(self.hasher.check_needs_rehash(password_hash))
        except InvalidHashError:
            return True

    # -- writing ---------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the thread lock and the inter-process lock on ``<path>.lock``.

        The lock file holds nothing secret; it is created 0644 and opened
        read-only so a process that can only read it can still take the lock.
        """
        with self._lock:
            try:
                fd = os.open(self.lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise AccountsFileError(f"{self.lock_path}: {error.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock

    def _write(self, document: _Document) -> None:
        """Atomically replace the file with ``document`` (under ``_locked``)."""
        directory = os.path.dirname(self.path)
        old = self._stat()
        fd, temp_path = tempfile.mkstemp(
            prefix="." + os.path.basename(self.path) + ".", suffix=".tmp", dir=directory
        )
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(document.render())
                stream.flush()
                os.fsync(stream.fileno())
                if old is not None:
                    _copy_ownership(stream.fileno(), old)
            os.replace(temp_path, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            raise
        _fsync_directory(directory)
        st = self._stat()
        self._install(document, None if st is None else _signature(st))

    def _modify(self, change: _Change) -> Account | None:
        """Read under the lock, apply ``change``, write; return its result."""
        try:
            with self._locked():
                document, _ = self._read()
                new_document, result = change(document)
                if new_document is not None:
                    self._write(new_document)
                return result
        except OSError as error:
            raise AccountsFileError(f"{self.path}: {error.strerror or error}") from None

    def add(self, name: str, password: bytes | str, groups: Iterable[str] = ()) -> Account:
        """Create an account; :class:`DuplicateAccountError` if the name exists."""
        check_name(name)
        group_names = check_groups(groups)
        account = Account(name, self.hash_password(password), group_names)

        def change(document: _Document) -> tuple[_Document, Account]:
            existing = document.index().get(account.key)
            if existing is not None:
                raise DuplicateAccountError(f"the account {existing.name!r} already exists")
            return _Document((*document.lines, account)), account

        result = self._modify(change)
        assert result is not None
        return result

    def _replace(self, name: str, update: _Update) -> Account:
        key = name_key(name)

        def change(document: _Document) -> tuple[_Document | None, Account]:
            for position, line in enumerate(document.lines):
                if isinstance(line, Account) and line.key == key:
                    updated = update(line)
                    if updated is None:
                        return None, line
                    lines = list(document.lines)
                    lines[position] = updated
                    return _Document(tuple(lines)), updated
            raise UnknownAccountError(f"there is no account {name!r}")

        result = self._modify(change)
        assert result is not None
        return result

    def set_password(self, name: str, password: bytes | str) -> Account:
        """Give ``name`` a new password (a new salt, so cached logons end)."""
        new_hash = self.hash_password(password)
        return self._replace(
            name, lambda old: Account(old.name, new_hash, old.groups)
        )

    def set_groups(self, name: str, groups: Iterable[str]) -> Account:
        """Replace the groups of ``name``."""
        group_names = check_groups(groups)
        return self._replace(
            name, lambda old: Account(old.name, old.password_hash, group_names)
        )

    def upgrade_hash(self, name: str, old_hash: str, password: bytes | str) -> bool:
        """Re-hash with the current parameters if the stored hash is still ``old_hash``.

        Called after a successful verification of ``password``; the
        compare-and-swap on ``old_hash`` keeps a concurrent ``ftps7 user
        passwd`` from being overwritten. Returns whether the file changed.
        """
        new_hash = self.hash_password(password)
        changed = False

        def update(old: Account) -> Account | None:
            nonlocal changed
            if old.password_hash != old_hash:
                return None
            changed = True
            return Account(old.name, new_hash, old.groups)

        try:
            self._replace(name, update)
        except UnknownAccountError:
            return False
        return changed

    def delete(self, name: str) -> Account:
        """Remove ``name``; :class:`UnknownAccountError` if it does not exist."""
        key = name_key(name)

        def change(document: _Document) -> tuple[_Document, Account]:
            for position, line in enumerate(document.lines):
                if isinstance(line, Account) and line.key == key:
                    lines = document.lines[:position] + document.lines[position + 1 :]
                    return _Document(lines), line
            raise UnknownAccountError(f"there is no account {name!r}")

        result = self._modify(change)
        assert result is not None
        return result


def _copy_ownership(fd: int, old: os.stat_result) -> None:
    """Give the new file the old one's permission bits, owner and group.

    Administrators set the file up once (e.g. ``root:ftps7 0640`` so the
    server can read it); an ``ftps7 user`` run as root must not leave it
    0600 root-only behind. chown may be refused to an unprivileged writer;
    the file then keeps that writer's ownership, which is what it would get
    from any editor too.
    """
    os.fchmod(fd, stat.S_IMODE(old.st_mode))
    try:
        os.fchown(fd, old.st_uid, old.st_gid)
    except PermissionError:
        with contextlib.suppress(PermissionError):
            os.fchown(fd, -1, old.st_gid)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable, best effort.

    The new file is already in place when this runs, so a failure here (some
    filesystems refuse a directory fsync) must not report the change as failed.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as error:
        _log.warn("could not fsync {directory}: {error}", directory=directory, error=error)
    finally:
        os.close(fd)
