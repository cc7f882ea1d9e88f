"""twisted.cred checkers for anonymous logons and the local accounts file.

Both return an :class:`~ftps7.auth.identity.Identity` as the avatar id.

``LocalAccountsChecker`` never blocks the reactor: reading the accounts file
(a ``stat``, and a reload when it changed) and the argon2id verification run
in a thread pool (DESIGN habit 8). Only the credentials-cache lookup, an
HMAC of microseconds, runs on the reactor thread, between the two::

    pool: lookup(name) ─▶ reactor: cache hit? ─yes─▶ Identity
                                     │no
                                     ▼
                          pool: argon2 verify ─▶ reactor: cache.put, Identity

An unknown name is verified against a dummy hash so that the time taken does
not reveal which names exist; both failures raise the same
``UnauthorizedLogin``. The password is never logged.

The thread hop is a seam (``run_in_thread``): by default
``deferToThreadPool(reactor, pool, ...)``; tests pass a synchronous runner.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IAnonymous, IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import Interface, implementer

from ftps7 import logfilter
from ftps7.auth.accounts import Account, AccountsError, AccountsFile
from ftps7.auth.cache import CredentialsCache
from ftps7.auth.identity import DEFAULT_ANONYMOUS_NAME, Identity

#: Runs ``f(*args)`` away from the reactor thread; fires with its result.
RunInThread = Callable[..., "defer.Deferred[Any]"]

#: The one message every failed password logon gets, whatever the reason.
LOGON_FAILED = "invalid user name or password"


def thread_runner(reactor: Any, pool: ThreadPool) -> RunInThread:
    """The default :data:`RunInThread`: ``deferToThreadPool`` on ``pool``."""
    return functools.partial(deferToThreadPool, reactor, pool)


def credential_text(value: bytes | str) -> str | None:
    """A user name from credentials as text; None when it is not UTF-8."""
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def credential_bytes(value: bytes | str) -> bytes:
    """A password from credentials as bytes (stock credentials may hold str)."""
    return value.encode("utf-8") if isinstance(value, str) else value


@implementer(ICredentialsChecker)
class AnonymousChecker:
    """Anonymous logons run as IIS's anonymous account (``userName``, IUSR).

    Whether anonymous logons are allowed at all is the site's
    ``anonymousAuthentication enabled``; the portal only gets this checker
    when it is.
    """

    credentialInterfaces: tuple[type[Interface], ...] = (IAnonymous,)

    def __init__(self, user_name: str = DEFAULT_ANONYMOUS_NAME) -> None:
        self.user_name = user_name

    # twisted.cred types avatar ids as bytes; ours are Identity objects, which the
    # Portal passes through untouched (the realm normalises every kind).
    def requestAvatarId(  # type: ignore[override]
        self, credentials: object
    ) -> defer.Deferred[Identity]:
        if not IAnonymous.providedBy(credentials):
            return defer.fail(UnauthorizedLogin("not anonymous credentials"))
        return defer.succeed(Identity(name=self.user_name, anonymous=True, source="local"))


@implementer(ICredentialsChecker)
class LocalAccountsChecker:
    """USER/PASS against the local accounts file, with argon2id and the cache.

    ``upgrade_hashes`` re-hashes, after a successful logon, a password whose
    stored hash uses older argon2 parameters. It is off by default because it
    makes the server write the accounts file, which it may not be allowed to.
    """

    credentialInterfaces: tuple[type[Interface], ...] = (IUsernamePassword,)
    log = Logger(observer=logfilter.observer)

    def __init__(
        self,
        accounts: AccountsFile,
        pool: ThreadPool | None,
        reactor: Any,
        cache: CredentialsCache | None = None,
        *,
        run_in_thread: RunInThread | None = None,
        upgrade_hashes: bool = False,
    ) -> None:
        if run_in_thread is None:
            if pool is None:
                raise ValueError("a thread pool or run_in_thread is needed")
            run_in_thread = thread_runner(reactor, pool)
        self._accounts = accounts
        self._cache = cache
        self._run = run_in_thread
        self._upgrade_hashes = upgrade_hashes

    # -- pool side -------------------------------------------------------------

    def _lookup(self, name: str | None) -> Account | None:
        if name is None:
            return None
        try:
            return self._accounts.lookup(name)
        except AccountsError as error:
            # Fail closed: a broken file authenticates nobody until fixed.
            self.log.error("local accounts unavailable: {error}", error=str(error))
            return None

    def _verify(self, account: Account | None, password: bytes) -> bool:
        if account is None:
            return self._accounts.verify_unknown(password)
        return self._accounts.verify(account.password_hash, password)

    def _upgrade(self, account: Account, password: bytes) -> None:
        try:
            if self._accounts.upgrade_hash(account.name, account.password_hash, password):
                self.log.info("re-hashed the password of {name}", name=account.name)
        except AccountsError as error:
            self.log.warn(
                "could not re-hash the password of {name}: {error}",
                name=account.name,
                error=str(error),
            )

    # -- reactor side ----------------------------------------------------------

    # twisted.cred types avatar ids as bytes; ours are Identity objects, which the
    # Portal passes through untouched (the realm normalises every kind).
    def requestAvatarId(  # type: ignore[override]
        self, credentials: object
    ) -> defer.Deferred[Identity]:
        if not IUsernamePassword.providedBy(credentials):
            return defer.fail(UnauthorizedLogin("not username/password credentials"))
        name = credential_text(credentials.username)
        password = credential_bytes(credentials.password)
        # An empty password is never valid (the accounts file refuses them);
        # look nobody up, but still spend the verification time.
        lookup_name = name if password else None
        lookup: defer.Deferred[Account | None] = self._run(self._lookup, lookup_name)
        return lookup.addCallback(self._check, name, password)

    def _check(
        self, account: Account | None, name: str | None, password: bytes
    ) -> defer.Deferred[Identity]:
        if (
            account is not None
            and self._cache is not None
            and self._cache.get(account.name, account.password_hash, password)
        ):
            return defer.succeed(self._identity(account))
        verified: defer.Deferred[bool] = self._run(self._verify, account, password)
        return verified.addCallback(self._verified, account, name, password)

    def _verified(
        self, ok: bool, account: Account | None, name: str | None, password: bytes
    ) -> Identity:
        if not ok or account is None:
            self.log.info("local logon failed for {name!r}", name=name)
            raise UnauthorizedLogin(LOGON_FAILED)
        if self._cache is not None:
            self._cache.put(account.name, account.password_hash, password)
        if self._upgrade_hashes and self._accounts.needs_rehash(account.password_hash):
            upgraded = self._run(self._upgrade, account, password)
            upgraded.addErrback(self._upgrade_failed)
        return self._identity(account)

    def _upgrade_failed(self, failure: Failure) -> None:
        self.log.failure("re-hashing a password failed", failure)

    @staticmethod
    def _identity(account: Account) -> Identity:
        return Identity(name=account.name, groups=frozenset(account.groups), source="local")
