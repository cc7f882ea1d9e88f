"""twisted.cred checkers over :class:`~ftps7.auth.directory.IDirectory`.

* :class:`CertificateMappingChecker` - IIS ``useActiveDirectoryMapping``: a
  client certificate (already validated by the TLS code) maps to exactly one
  enabled directory account, and the USER name must name that account.
* :class:`DirectoryPasswordChecker` - IIS basic authentication of domain
  accounts: ``DOMAIN\\user``, ``user@upnSuffix`` or, with
  ``defaultLogonDomain``, a bare name; the password is proved by binding to
  the directory as the user.
* :class:`DomainRoutingChecker` - one ``IUsernamePassword`` checker for a
  Portal (which holds one checker per interface): domain names go to the
  directory only, every other name to the local accounts only, as Windows'
  ``LogonUser`` picks the domain from the name.

All return an :class:`~ftps7.auth.identity.Identity`. Failures are
``UnauthorizedLogin``; two subclasses tell the server *why* without it
parsing messages: :class:`NotDomainLogon` (this checker does not handle the
name: try another) and :class:`DirectoryUnavailableLogin` (the directory
could not be asked: log "directory unavailable", answer 530).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from ftps7 import logfilter
from ftps7.auth.checkers import LOGON_FAILED, credential_bytes, credential_text
from ftps7.auth.credentials import ICertificateCredentials
from ftps7.auth.directory import (
    DEFAULT_MAPPING,
    DirectoryAccount,
    DirectoryError,
    IDirectory,
    LogonName,
)
from ftps7.auth.identity import Identity
from ftps7.config.model import CertificateMappingMethod, UserCertificateMatch

__all__ = [
    "CertificateMappingChecker",
    "DirectoryPasswordChecker",
    "DirectoryUnavailableLogin",
    "DomainRoutingChecker",
    "NotDomainLogon",
    "identity_for",
]

#: The refusal of every certificate logon that does not map, whatever the reason.
CERTIFICATE_REFUSED = "the client certificate does not map to this user"


class DirectoryUnavailableLogin(UnauthorizedLogin):
    """The directory could not be asked (down, misconfigured): the logon is refused."""


class NotDomainLogon(UnauthorizedLogin):
    """The user name is not a domain logon; another checker may handle it."""


def identity_for(account: DirectoryAccount, source: str) -> Identity:
    """The session identity of a directory account (its sAMAccountName, groups, home)."""
    return Identity(
        name=account.sam_account_name,
        groups=account.groups,
        domain=account.domain,
        source=source,
        ftp_root=account.ftp_root,
        ftp_dir=account.ftp_dir,
    )


def _directory_failed(failure: Failure, log: Logger, what: str) -> Failure:
    """DirectoryError → DirectoryUnavailableLogin (logged); anything else passes on."""
    if failure.check(DirectoryError) is None:
        return failure
    reason = str(failure.value)
    log.error("{what} refused, directory unavailable: {reason}", what=what, reason=reason)
    return Failure(DirectoryUnavailableLogin(reason))


@implementer(ICredentialsChecker)
class CertificateMappingChecker:
    """Client certificate → exactly one enabled directory account named by USER.

    ``methods`` and ``user_certificate_match`` are the
    ``<activeDirectory certificateMapping userCertificateMatch>`` settings.
    A certificate that maps to no account, to a disabled one, to several
    (ambiguous) or to an account the USER name does not name is refused.
    """

    credentialInterfaces: tuple[type[Interface], ...] = (ICertificateCredentials,)
    log = Logger(observer=logfilter.observer)

    def __init__(
        self,
        directory: IDirectory,
        methods: Sequence[CertificateMappingMethod] = DEFAULT_MAPPING,
        user_certificate_match: UserCertificateMatch = UserCertificateMatch.OCTET,
    ) -> None:
        self._directory = directory
        self._methods = tuple(methods)
        self._match = user_certificate_match

    # twisted.cred types avatar ids as bytes; ours are Identity objects, which the
    # Portal passes through untouched (the realm normalises every kind).
    def requestAvatarId(  # type: ignore[override]
        self, credentials: object
    ) -> defer.Deferred[Identity]:
        if not ICertificateCredentials.providedBy(credentials):
            return defer.fail(UnauthorizedLogin("not certificate credentials"))
        cert = credentials.certificate
        raw_user = credentials.username
        user = credential_text(raw_user) if raw_user is not None else None
        if cert is None or not user:
            return defer.fail(UnauthorizedLogin(CERTIFICATE_REFUSED))
        found: defer.Deferred[list[DirectoryAccount]] = self._directory.find_by_certificate(
            cert, self._methods, self._match
        )
        found.addCallbacks(
            self._mapped,
            _directory_failed,
            callbackArgs=(user, cert),
            errbackArgs=(self.log, "certificate logon"),
        )
        return found  # type: ignore[return-value]

    def _mapped(self, accounts: list[DirectoryAccount], user: str, cert: Any) -> Identity:
        subject = cert.subject.rfc4514_string()
        if not accounts:
            self.log.info(
                "certificate {subject} (serial {serial:x}) maps to no enabled account",
                subject=subject,
                serial=cert.serial_number,
            )
            raise UnauthorizedLogin(CERTIFICATE_REFUSED)
        if len(accounts) > 1:
            self.log.warn(
                "certificate {subject} maps to several accounts ({dns}): ambiguous, refused",
                subject=subject,
                dns="; ".join(account.dn for account in accounts),
            )
            raise UnauthorizedLogin(CERTIFICATE_REFUSED)
        account = accounts[0]
        if account.disabled:
            self.log.info("certificate maps to disabled account {dn}", dn=account.dn)
            raise UnauthorizedLogin(CERTIFICATE_REFUSED)
        if not account.named_by(user):
            self.log.info(
                "certificate of {sam} presented for USER {user!r}: refused",
                sam=account.sam_account_name,
                user=user,
            )
            raise UnauthorizedLogin(CERTIFICATE_REFUSED)
        return identity_for(account, "certificate")


@implementer(ICredentialsChecker)
class DirectoryPasswordChecker:
    """USER/PASS of a domain account, proved by an LDAP bind as that account.

    ``domain`` (NetBIOS), ``upn_suffix`` and ``default_logon_domain`` decide
    which names are domain logons (:meth:`LogonName.parse`); other names fail
    with :class:`NotDomainLogon` so a local-accounts checker can take them.
    """

    credentialInterfaces: tuple[type[Interface], ...] = (IUsernamePassword,)
    log = Logger(observer=logfilter.observer)

    def __init__(
        self,
        directory: IDirectory,
        domain: str,
        upn_suffix: str,
        default_logon_domain: str = "",
    ) -> None:
        self._directory = directory
        self._domain = domain
        self._upn_suffix = upn_suffix
        self._default_logon_domain = default_logon_domain

    def logon_name(self, user: bytes | str) -> LogonName | None:
        """What the directory is asked for ``user``, or None when it is not a domain logon."""
        name = credential_text(user)
        if name is None:
            return None
        return LogonName.parse(
            name, self._domain, self._upn_suffix, self._default_logon_domain
        )

    def requestAvatarId(  # type: ignore[override]
        self, credentials: object
    ) -> defer.Deferred[Identity]:
        if not IUsernamePassword.providedBy(credentials):
            return defer.fail(UnauthorizedLogin("not username/password credentials"))
        username = credentials.username
        logon = self.logon_name(username)
        if logon is None:
            return defer.fail(NotDomainLogon("not a domain logon"))
        password = credential_bytes(credentials.password)
        if not password:
            return defer.fail(UnauthorizedLogin(LOGON_FAILED))
        checked: defer.Deferred[DirectoryAccount | None] = self._directory.authenticate(
            logon, password
        )
        checked.addCallbacks(
            self._checked,
            _directory_failed,
            callbackArgs=(logon,),
            errbackArgs=(self.log, "domain logon"),
        )
        return checked  # type: ignore[return-value]

    def _checked(self, account: DirectoryAccount | None, logon: LogonName) -> Identity:
        if account is None or account.disabled:
            self.log.info(
                "domain logon failed for {attribute}={value!r}",
                attribute=logon.attribute,
                value=logon.value,
            )
            raise UnauthorizedLogin(LOGON_FAILED)
        return identity_for(account, "directory")


@implementer(ICredentialsChecker)
class DomainRoutingChecker:
    """Domain names to the directory, all other names to the local checker.

    A name the directory checker calls :class:`NotDomainLogon` goes to
    ``local``; a domain name never falls back to a local account (a local
    ``alice`` must not answer for ``EXAMPLE\\alice``). Without ``local``,
    non-domain names are refused.
    """

    credentialInterfaces: tuple[type[Interface], ...] = (IUsernamePassword,)

    def __init__(
        self, directory: DirectoryPasswordChecker, local: ICredentialsChecker | None
    ) -> None:
        self._directory = directory
        self._local = local

    def requestAvatarId(self, credentials: object) -> defer.Deferred[Any]:
        attempt: defer.Deferred[Any] = self._directory.requestAvatarId(credentials)
        return attempt.addErrback(self._not_domain, credentials)

    def _not_domain(self, failure: Failure, credentials: object) -> Any:
        if failure.check(NotDomainLogon) is None or self._local is None:
            return failure
        return self._local.requestAvatarId(credentials)
