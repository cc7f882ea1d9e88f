"""LocalAccountsChecker and AnonymousChecker: results, timing hygiene, the cache."""

from __future__ import annotations

import queue
from pathlib import Path

import argon2
import pytest
from twisted.cred import credentials, portal
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool
from zope.interface import Interface, implementer

from ftps7.auth.accounts import AccountsFile
from ftps7.auth.cache import CredentialsCache
from ftps7.auth.checkers import AnonymousChecker, LocalAccountsChecker
from ftps7.auth.credentials import FTPAnonymous, FTPUsernamePassword
from ftps7.auth.identity import Identity


def fast_hasher(time_cost: int = 1) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(time_cost=time_cost, memory_cost=8, parallelism=1)


def run_now(f, *args):
    """A synchronous stand-in for deferToThreadPool."""
    return defer.maybeDeferred(f, *args)


def result_of(deferred):
    results = []
    deferred.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


class CountingAccounts(AccountsFile):
    """Counts argon2 verifications (real or dummy)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, hasher=fast_hasher())
        self.verifications = 0

    def verify(self, password_hash, password):
        self.verifications += 1
        return super().verify(password_hash, password)


@pytest.fixture
def accounts(tmp_path):
    accounts = CountingAccounts(str(tmp_path / "users"))
    accounts.add("Alice", "s3cret", ["Editors", "staff"])
    accounts.verifications = 0
    return accounts


@pytest.fixture
def clock():
    return Clock()


def checker_for(accounts, cache=None):
    return LocalAccountsChecker(accounts, None, None, cache, run_in_thread=run_now)


def login(checker, user: bytes, password: bytes):
    return result_of(checker.requestAvatarId(FTPUsernamePassword(user, password)))


def test_success_gives_identity_with_groups(accounts):
    identity = login(checker_for(accounts), b"alice", b"s3cret")
    assert identity == Identity("Alice", frozenset({"editors", "staff"}), source="local")


def test_stock_username_password_works(accounts):
    checker = checker_for(accounts)
    result = result_of(
        checker.requestAvatarId(credentials.UsernamePassword(b"ALICE", b"s3cret"))
    )
    assert result.name == "Alice"


@pytest.mark.parametrize(
    ("user", "password"),
    [(b"alice", b"wrong"), (b"nobody", b"s3cret"), (b"\xff\xfe", b"s3cret"), (b"alice", b"")],
)
def test_failures_are_uniform_and_cost_one_verification(accounts, user, password):
    failure = login(checker_for(accounts), user, password)
    assert failure.check(UnauthorizedLogin)
    assert str(failure.value) == "invalid user name or password"
    assert accounts.verifications == 1


def test_broken_file_fails_closed(accounts):
    with open(accounts.path, "a", encoding="utf-8") as stream:
        stream.write("garbage line\n")
    failure = login(checker_for(accounts), b"alice", b"s3cret")
    assert failure.check(UnauthorizedLogin)


def test_wrong_credentials_type_is_refused(accounts):
    failure = result_of(checker_for(accounts).requestAvatarId(FTPAnonymous()))
    assert failure.check(UnauthorizedLogin)


def test_cache_skips_the_second_verification(accounts, clock):
    checker = checker_for(accounts, CredentialsCache(clock, 60))
    assert login(checker, b"alice", b"s3cret").name == "Alice"
    assert login(checker, b"ALICE", b"s3cret").name == "Alice"
    assert accounts.verifications == 1
    assert login(checker, b"alice", b"wrong").check(UnauthorizedLogin)
    assert accounts.verifications == 2


def test_cache_expires_with_the_flush_interval(accounts, clock):
    checker = checker_for(accounts, CredentialsCache(clock, 60))
    login(checker, b"alice", b"s3cret")
    clock.advance(61)
    assert login(checker, b"alice", b"s3cret").name == "Alice"
    assert accounts.verifications == 2


def test_password_change_invalidates_the_cache(accounts, clock):
    checker = checker_for(accounts, CredentialsCache(clock, 60))
    login(checker, b"alice", b"s3cret")
    AccountsFile(accounts.path, hasher=fast_hasher()).set_password("alice", "n3w")
    assert login(checker, b"alice", b"s3cret").check(UnauthorizedLogin)
    assert login(checker, b"alice", b"n3w").name == "Alice"


def test_deleted_and_recreated_account_is_not_served_from_cache(accounts, clock):
    checker = checker_for(accounts, CredentialsCache(clock, 60))
    login(checker, b"alice", b"s3cret")
    other = AccountsFile(accounts.path, hasher=fast_hasher())
    other.delete("alice")
    assert login(checker, b"alice", b"s3cret").check(UnauthorizedLogin)
    other.add("alice", "s3cret", [])
    before = accounts.verifications
    identity = login(checker, b"alice", b"s3cret")
    assert identity.name == "alice" and identity.groups == frozenset()
    assert accounts.verifications == before + 1


def test_upgrade_hashes_rehashes_old_parameters(tmp_path):
    path = str(tmp_path / "users")
    AccountsFile(path, hasher=fast_hasher(time_cost=1)).add("alice", "pw")
    current = AccountsFile(path, hasher=fast_hasher(time_cost=2))
    checker = LocalAccountsChecker(current, None, None, run_in_thread=run_now, upgrade_hashes=True)
    assert login(checker, b"alice", b"pw").name == "alice"
    stored = AccountsFile(path).lookup("alice").password_hash
    assert "t=2" in stored
    assert login(checker, b"alice", b"pw").name == "alice"


def test_no_upgrade_by_default(tmp_path):
    path = str(tmp_path / "users")
    AccountsFile(path, hasher=fast_hasher(time_cost=1)).add("alice", "pw")
    before = Path(path).read_bytes()
    current = AccountsFile(path, hasher=fast_hasher(time_cost=2))
    login(LocalAccountsChecker(current, None, None, run_in_thread=run_now), b"alice", b"pw")
    assert Path(path).read_bytes() == before


def test_needs_a_pool_or_a_runner(accounts):
    with pytest.raises(ValueError):
        LocalAccountsChecker(accounts, None, None)


class ThreadReactor:
    """Just enough reactor for deferToThreadPool: results come back via a queue."""

    def __init__(self) -> None:
        self.calls: queue.Queue = queue.Queue()

    def callFromThread(self, f, *args, **kwargs):
        self.calls.put((f, args, kwargs))

    def wait(self, deferred, timeout: float = 30.0):
        results = []
        deferred.addBoth(results.append)
        while not results:
            f, args, kwargs = self.calls.get(timeout=timeout)
            f(*args, **kwargs)
        return results[0]


def test_with_a_real_thread_pool_and_a_clock(accounts, clock):
    reactor = ThreadReactor()
    pool = ThreadPool(minthreads=1, maxthreads=2, name="test-auth")
    pool.start()
    try:
        checker = LocalAccountsChecker(accounts, pool, reactor, CredentialsCache(clock, 60))
        creds = FTPUsernamePassword(b"alice", b"s3cret", client_address=("127.0.0.1", 1))
        assert reactor.wait(checker.requestAvatarId(creds)).name == "Alice"
        # The cache answers the second logon after one pool hop (the lookup).
        assert reactor.wait(checker.requestAvatarId(creds)).name == "Alice"
        assert accounts.verifications == 1
        wrong = FTPUsernamePassword(b"alice", b"nope")
        assert reactor.wait(checker.requestAvatarId(wrong)).check(UnauthorizedLogin)
    finally:
        pool.stop()


def test_anonymous_checker():
    checker = AnonymousChecker()
    identity = result_of(checker.requestAvatarId(FTPAnonymous(email="a@b")))
    assert identity == Identity("IUSR", anonymous=True, source="local")
    named = result_of(AnonymousChecker("ftpguest").requestAvatarId(credentials.Anonymous()))
    assert named.name == "ftpguest" and named.anonymous
    failure = result_of(checker.requestAvatarId(FTPUsernamePassword(b"a", b"b")))
    assert failure.check(UnauthorizedLogin)


def test_portal_routes_by_credentials_type(accounts):
    class IAvatar(Interface):
        pass

    @implementer(portal.IRealm)
    class Realm:
        def requestAvatar(self, avatar_id, mind, *interfaces):
            return interfaces[0], avatar_id, lambda: None

    the_portal = portal.Portal(Realm(), [checker_for(accounts), AnonymousChecker()])
    creds = FTPUsernamePassword(b"alice", b"s3cret")
    _i, user, _l = result_of(the_portal.login(creds, None, IAvatar))
    assert user.name == "Alice" and not user.anonymous
    _i, anon, _l = result_of(the_portal.login(FTPAnonymous(), None, IAvatar))
    assert anon.anonymous
