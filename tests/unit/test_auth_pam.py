"""PamChecker with a fake PAM; the python-pam import; Unix group lookup."""

from __future__ import annotations

import grp
import os
import pwd
import sys

import pytest
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer

from ftps7.auth.credentials import FTPAnonymous, FTPUsernamePassword
from ftps7.auth.identity import Identity
from ftps7.auth.pam import PamChecker, PamUnavailableError, python_pam_authenticate, unix_user


def run_now(f, *args):
    return defer.maybeDeferred(f, *args)


def result_of(deferred):
    results = []
    deferred.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


class FakePam:
    def __init__(self, users):
        self.users = users
        self.calls = []

    def __call__(self, user, password, service):
        self.calls.append((user, password, service))
        return self.users.get(user) == password


USERS = {
    "alice": ("alice", 1000, frozenset({"alice", "staff"})),
    "root": ("root", 0, frozenset({"root"})),
    "ghost": None,
}


def user_info(name):
    info = USERS.get(name)
    if info is None:
        raise KeyError(name)
    return info


def checker(pam, **kwargs):
    return PamChecker(
        "ftps7", None, None, run_in_thread=run_now, authenticate=pam, user_info=user_info, **kwargs
    )


def login(the_checker, user: bytes, password: bytes):
    return result_of(the_checker.requestAvatarId(FTPUsernamePassword(user, password)))


def test_success_gives_identity_with_unix_groups():
    pam = FakePam({"alice": b"pw"})
    identity = login(checker(pam), b"alice", b"pw")
    assert identity == Identity("alice", frozenset({"alice", "staff"}), source="pam")
    assert pam.calls == [("alice", b"pw", "ftps7")]


def test_wrong_password_fails():
    assert login(checker(FakePam({"alice": b"pw"})), b"alice", b"no").check(UnauthorizedLogin)


@pytest.mark.parametrize(
    ("user", "password"),
    [(b"alice", b""), (b"\xff", b"pw"), (b"al ice", b"pw"), (b"", b"pw"), (b"alice", b"p\0w")],
)
def test_refused_before_pam(user, password):
    pam = FakePam({"alice": b"pw"})
    assert login(checker(pam), user, password).check(UnauthorizedLogin)
    assert pam.calls == []


def test_root_is_refused_unless_allowed():
    pam = FakePam({"root": b"pw"})
    assert login(checker(pam), b"root", b"pw").check(UnauthorizedLogin)
    assert login(checker(pam, allow_root=True), b"root", b"pw").name == "root"


def test_accepted_by_pam_but_unknown_to_nss_fails():
    assert login(checker(FakePam({"ghost": b"pw"})), b"ghost", b"pw").check(UnauthorizedLogin)


def test_pam_errors_fail_the_logon():
    def broken(user, password, service):
        raise OSError("libpam exploded")

    assert login(checker(broken), b"alice", b"pw").check(UnauthorizedLogin)


def test_wrong_credentials_type():
    failure = result_of(checker(FakePam({})).requestAvatarId(FTPAnonymous()))
    assert failure.check(UnauthorizedLogin)


def test_missing_python_pam_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pam", None)
    with pytest.raises(PamUnavailableError, match=r"ftps7\[pam\]"):
        python_pam_authenticate()
    with pytest.raises(PamUnavailableError):
        PamChecker("ftps7", None, None, run_in_thread=run_now)


def test_python_pam_backend_loads():
    pytest.importorskip("pam")
    assert callable(python_pam_authenticate())


def test_unix_user_for_the_current_user():
    entry = pwd.getpwuid(os.getuid())
    name, uid, groups = unix_user(entry.pw_name)
    assert (name, uid) == (entry.pw_name, entry.pw_uid)
    assert grp.getgrgid(entry.pw_gid).gr_name.lower() in groups
    with pytest.raises(KeyError):
        unix_user("no-such-user-ftps7-test")
