"""USER/PASS against the host's own accounts through PAM.

``<localAccounts source="pam" service="ftps7" />`` makes basic authentication
use PAM service ``service`` (``/etc/pam.d/ftps7``), as IIS uses the Windows
accounts, and the account's Unix groups become its roles. It needs the
``python-pam`` package (``pip install 'ftps7[pam]'``); it is imported when a
:class:`PamChecker` is built, so a missing package is a clear start-up error
and costs nothing when PAM is not configured.

PAM calls block (and ``pam_faildelay`` deliberately sleeps on failure), so
every call runs in the thread pool; each call gets its own PAM handle, which
python-pam makes safe across threads. python-pam runs ``pam_authenticate``
then ``pam_acct_mgmt`` (expired or locked accounts fail); we skip
``pam_setcred`` because the server does not take on the user's credentials.

Three refusals happen before PAM is asked: empty passwords (``nullok`` would
otherwise let password-less accounts in), names that are not valid UTF-8 or
hold NUL/control characters, and, unless ``allow_root``, accounts with uid 0
(vsftpd keeps root out through /etc/ftpusers; we do it by default).

The credentials cache is not used for PAM: we cannot see the stored hash, so
a cached entry could not be tied to the current password.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Callable
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import Interface, implementer

from ftps7 import logfilter
from ftps7.auth.checkers import (
    LOGON_FAILED,
    RunInThread,
    credential_bytes,
    credential_text,
    thread_runner,
)
from ftps7.auth.identity import Identity

#: ``authenticate(user, password, service) -> bool``
Authenticate = Callable[[str, bytes, str], bool]


class PamUnavailableError(RuntimeError):
    """PAM was configured but python-pam cannot be imported."""


def python_pam_authenticate() -> Authenticate:
    """An :data:`Authenticate` backed by python-pam; imports it now."""
    try:
        import pam as python_pam
    except ImportError as error:
        raise PamUnavailableError(
            "PAM accounts (<localAccounts source=\"pam\">) need the python-pam package: "
            "pip install 'ftps7[pam]'"
        ) from error

    def authenticate(user: str, password: bytes, service: str) -> bool:
        # A fresh authenticator per call: python-pam's objects are not shared
        # between threads.
        authenticator = python_pam.pam()
        return bool(authenticator.authenticate(user, password, service=service, resetcreds=False))

    return authenticate


def unix_user(name: str) -> tuple[str, int, frozenset[str]]:
    """The canonical name, uid and group names (lower-cased) of a Unix user.

    Raises ``KeyError`` when the user does not exist.
    """
    entry = pwd.getpwnam(name)
    groups: set[str] = set()
    for gid in os.getgrouplist(entry.pw_name, entry.pw_gid):
        try:
            groups.add(grp.getgrgid(gid).gr_name.lower())
        except KeyError:
            continue  # a gid without a name
    return entry.pw_name, entry.pw_uid, frozenset(groups)


def _usable_name(name: str | None) -> bool:
    return bool(name) and all(ch.isprintable() and not ch.isspace() for ch in name or "")


@implementer(ICredentialsChecker)
class PamChecker:
    """Checks USER/PASS with PAM service ``service``; groups from the system."""

    credentialInterfaces: tuple[type[Interface], ...] = (IUsernamePassword,)
    log = Logger(observer=logfilter.observer)

    def __init__(
        self,
        service: str,
        pool: ThreadPool | None,
        reactor: Any,
        *,
        run_in_thread: RunInThread | None = None,
        authenticate: Authenticate | None = None,
        user_info: Callable[[str], tuple[str, int, frozenset[str]]] = unix_user,
        allow_root: bool = False,
    ) -> None:
        if run_in_thread is None:
            if pool is None:
                raise ValueError("a thread pool or run_in_thread is needed")
            run_in_thread = thread_runner(reactor, pool)
        self.service = service
        self._run = run_in_thread
        self._authenticate = authenticate if authenticate is not None else python_pam_authenticate()
        self._user_info = user_info
        self._allow_root = allow_root

    def _check(self, name: str | None, password: bytes) -> Identity | None:
        """In the pool: PAM, then the account's canonical name and groups."""
        if name is None or not _usable_name(name) or not password or b"\0" in password:
            return None
        try:
            if not self._authenticate(name, password, self.service):
                return None
            canonical, uid, groups = self._user_info(name)
        except KeyError:
            self.log.warn("PAM accepted {name!r} but it has no passwd entry", name=name)
            return None
        except Exception as error:  # a PAM or NSS failure must not crash the logon
            self.log.error("PAM check for {name!r} failed: {error}", name=name, error=str(error))
            return None
        if uid == 0 and not self._allow_root:
            self.log.warn("refused a PAM logon as {name!r}: uid 0", name=canonical)
            return None
        return Identity(name=canonical, groups=groups, source="pam")

    # twisted.cred types avatar ids as bytes; ours are Identity objects, which the
    # Portal passes through untouched (the realm normalises every kind).
    def requestAvatarId(  # type: ignore[override]
        self, credentials: object
    ) -> defer.Deferred[Identity]:
        if not IUsernamePassword.providedBy(credentials):
            return defer.fail(UnauthorizedLogin("not username/password credentials"))
        name = credential_text(credentials.username)
        password = credential_bytes(credentials.password)
        checked: defer.Deferred[Identity | None] = self._run(self._check, name, password)
        return checked.addCallback(self._result, name)

    def _result(self, identity: Identity | None, name: str | None) -> Identity:
        if identity is None:
            self.log.info("PAM logon failed for {name!r}", name=name)
            raise UnauthorizedLogin(LOGON_FAILED)
        return identity
