"""The directory (Active Directory) as the checkers see it, and a fake of it.

The checkers in :mod:`ftps7.auth.dirchecker` talk to a small interface,
:class:`IDirectory`, the way Twisted Conch's ``SSHPublicKeyChecker`` talks to
``IAuthorizedKeysDB`` (DESIGN habit 1). Two implementations pass one shared
conformance suite: :class:`InMemoryDirectory` here (no sockets, for tests and
for reasoning about the semantics) and ``Ldap3Directory`` in
:mod:`ftps7.auth.ldapdir` (the only module that imports ldap3).

The semantics both implement:

* **Certificate mapping** (:meth:`IDirectory.find_by_certificate`): the enabled
  ``certificateMapping`` methods decide which account attributes a validated
  client certificate may match - ``altSecurityIdentities`` strings
  (:func:`ftps7.tls.mapping.mapping_strings`), ``userPrincipalName`` (UPN SAN)
  and ``userCertificate`` (exact DER). Strings compare case-insensitively.
  Disabled accounts (``userAccountControl & 0x2``) are never returned; several
  returned accounts mean the mapping is ambiguous and the caller refuses.
* **Password logons** (:meth:`IDirectory.authenticate`) prove the password by
  an LDAP simple bind *as that user*; no password attribute is ever read.
  An empty password is refused before anything is sent (an LDAP bind with a
  DN and no password is an "unauthenticated bind" that some servers accept).
* **Names** (:class:`LogonName`): ``DOMAIN\\user`` and bare names (with
  ``defaultLogonDomain``) search ``sAMAccountName``; ``user@upnSuffix``
  searches ``userPrincipalName``. Matching is case-insensitive, as in AD.

Failures of the directory itself (down, refusing our service account, TLS
verification failing) raise :class:`DirectoryError` or its subclass
:class:`DirectoryUnavailable` through the Deferreds, never a silent "no such
user", so a logon is refused *and* the log says why.
"""

from __future__ import annotations

import enum
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import defer
from zope.interface import Interface

from ftps7.config.model import CertificateMappingMethod, UserCertificateMatch
from ftps7.tls.mapping import STRING_METHODS, mapping_strings, upn

__all__ = [
    "ACCOUNTDISABLE",
    "DEFAULT_MAPPING",
    "DirectoryAccount",
    "DirectoryError",
    "DirectoryUnavailable",
    "IDirectory",
    "InMemoryAccount",
    "InMemoryDirectory",
    "LogonKind",
    "LogonName",
    "certificate_matches",
    "normalize_identity_string",
]

#: userAccountControl ACCOUNTDISABLE (MS-ADTS 2.2.16).
ACCOUNTDISABLE = 0x2

#: The strong default of ``certificateMapping`` (KB5014754 full enforcement + UPN).
DEFAULT_MAPPING: tuple[CertificateMappingMethod, ...] = (
    CertificateMappingMethod.ISSUER_SERIAL,
    CertificateMappingMethod.SKI,
    CertificateMappingMethod.SHA1_PUBLIC_KEY,
    CertificateMappingMethod.UPN,
)

#: Longest logon name we pass on (AD's userPrincipalName rangeUpper is 1024).
MAX_LOGON_LENGTH = 1024


class DirectoryError(Exception):
    """The directory could not answer (misconfiguration or an LDAP error).

    The message is meant for the server log; it never holds a password.
    """


class DirectoryUnavailable(DirectoryError):  # noqa: N818 - the name the checkers log
    """The directory cannot be reached (down, timed out, TLS failed); retry later."""


@dataclass(frozen=True)
class DirectoryAccount:
    """One directory user account, as the checkers and the realm need it.

    ``groups`` are the lower-cased names (first RDN values) of the groups the
    account is a direct member of, from ``memberOf`` and from groups whose
    ``member`` holds the account's DN. ``domain`` is the NetBIOS domain
    (``<activeDirectory domain>``) used for ``DOMAIN\\user`` and for the
    user-isolation folder ``/<DOMAIN>/<name>``. ``ftp_root``/``ftp_dir`` are
    ``msIIS-FTPRoot``/``msIIS-FTPDir`` (userIsolation ActiveDirectory).
    """

    dn: str
    sam_account_name: str
    user_principal_name: str | None = None
    domain: str = ""
    disabled: bool = False
    groups: frozenset[str] = frozenset()
    ftp_root: str | None = None
    ftp_dir: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "groups", frozenset(group.lower() for group in self.groups if group)
        )

    def named_by(self, user: str) -> bool:
        """Whether a USER argument names this account.

        Accepted: ``sam``, ``DOMAIN\\sam`` (this account's domain) and the
        account's UPN; all case-insensitive. Certificate logons use this: the
        certificate picks the account, the USER name must agree with it.
        """
        wanted = user.casefold()
        sam = self.sam_account_name.casefold()
        if wanted == sam:
            return True
        if self.domain and wanted == f"{self.domain}\\{self.sam_account_name}".casefold():
            return True
        return bool(self.user_principal_name) and wanted == (
            self.user_principal_name or ""
        ).casefold()


class LogonKind(enum.Enum):
    """Which attribute a logon name is looked up by (the value is its LDAP name)."""

    SAM_ACCOUNT_NAME = "sAMAccountName"
    USER_PRINCIPAL_NAME = "userPrincipalName"


def _usable(text: str) -> bool:
    return (
        bool(text)
        and len(text) <= MAX_LOGON_LENGTH
        and text == text.strip()
        and all(ch.isprintable() for ch in text)
    )


@dataclass(frozen=True)
class LogonName:
    """What a domain logon name asks the directory for.

    ``value`` is the raw name (never escaped here: escaping is the LDAP
    directory's job, so an injection attempt reaches it intact and must be
    neutralised there).
    """

    kind: LogonKind
    value: str

    def __post_init__(self) -> None:
        if not _usable(self.value):
            raise ValueError("a logon name must be printable, trimmed and not empty")

    @property
    def attribute(self) -> str:
        return self.kind.value

    @classmethod
    def sam(cls, name: str) -> LogonName:
        return cls(LogonKind.SAM_ACCOUNT_NAME, name)

    @classmethod
    def upn(cls, name: str) -> LogonName:
        return cls(LogonKind.USER_PRINCIPAL_NAME, name)

    @classmethod
    def parse(
        cls, text: str, domain: str, upn_suffix: str, default_logon_domain: str = ""
    ) -> LogonName | None:
        """The directory lookup for a USER name, or None when it is not a domain logon.

        * ``DOMAIN\\user`` - DOMAIN is the configured NetBIOS ``domain`` or the
          ``upnSuffix`` (the DNS domain); searches ``sAMAccountName=user``.
        * ``user@suffix`` - suffix is the ``upnSuffix``; searches
          ``userPrincipalName=user@suffix``.
        * ``user`` - only when ``defaultLogonDomain`` names this domain
          (IIS: bare names log on to the default domain); searches
          ``sAMAccountName=user``.

        Everything else (another domain, a bare name without a default
        domain, ``.\\user``, control characters, surrounding spaces) is None:
        not for the directory, so a local-accounts checker may take it.
        Comparisons of domains and suffixes are case-insensitive.
        """
        if not _usable(text):
            return None
        ours = {name.casefold() for name in (domain, upn_suffix) if name}
        if "\\" in text:
            prefix, _, user = text.partition("\\")
            if prefix.casefold() not in ours or not _usable(user) or "\\" in user:
                return None
            return cls.sam(user)
        if "@" in text:
            user, _, suffix = text.rpartition("@")
            if not upn_suffix or suffix.casefold() != upn_suffix.casefold():
                return None
            if not _usable(user):
                return None
            return cls.upn(text)
        if default_logon_domain and default_logon_domain.casefold() in ours:
            return cls.sam(text)
        return None

    def matches(self, sam_account_name: str, user_principal_name: str | None) -> bool:
        """Case-insensitive equality with the attribute this name searches."""
        if self.kind is LogonKind.SAM_ACCOUNT_NAME:
            return self.value.casefold() == sam_account_name.casefold()
        return user_principal_name is not None and (
            self.value.casefold() == user_principal_name.casefold()
        )


class IDirectory(Interface):
    """Read access to user accounts, and password proof by binding as the user.

    Every method returns a Deferred and never blocks the reactor; directory
    failures errback with :class:`DirectoryError`/:class:`DirectoryUnavailable`.
    """

    # zope interface methods are declared without self (hence the N805 waivers).
    def find_by_certificate(
        cert: x509.Certificate,  # noqa: N805
        methods: Sequence[CertificateMappingMethod],
        user_certificate_match: UserCertificateMatch,
    ) -> defer.Deferred[list[DirectoryAccount]]:
        """The enabled accounts ``cert`` maps to by any of ``methods`` (maybe several)."""

    def authenticate(
        logon: LogonName,  # noqa: N805
        password: bytes,
    ) -> defer.Deferred[DirectoryAccount | None]:
        """The account when ``password`` binds as it; None when refused or disabled."""

    def lookup(logon: LogonName) -> defer.Deferred[DirectoryAccount | None]:  # noqa: N805
        """The account ``logon`` names (disabled ones too), or None when absent/ambiguous."""


# ---------------------------------------------------------------------------
# Matching rules shared by both implementations.


_SPACES = re.compile(r"\s+")


def normalize_identity_string(value: str) -> str:
    """Case-fold and collapse white space, as directory string matching does."""
    return _SPACES.sub(" ", value.strip()).casefold()


def certificate_matches(
    cert: x509.Certificate,
    methods: Iterable[CertificateMappingMethod],
    *,
    alt_security_identities: Iterable[str] = (),
    user_principal_name: str | None = None,
    user_certificates: Iterable[bytes] = (),
) -> list[CertificateMappingMethod]:
    """Which of the enabled ``methods`` map ``cert`` to an account with these values.

    This is the one definition of a certificate match: the fake applies it to
    its accounts, and the LDAP directory re-applies it to what the server
    returned (so a server's looser matching can never widen a mapping, and
    the log can say *how* a certificate mapped).
    """
    enabled = list(dict.fromkeys(methods))
    matched: list[CertificateMappingMethod] = []
    identities = {normalize_identity_string(value) for value in alt_security_identities}
    strings = mapping_strings(cert) if identities else {}
    for method in enabled:
        if method in STRING_METHODS:
            if any(normalize_identity_string(s) in identities for s in strings.get(method, [])):
                matched.append(method)
        elif method is CertificateMappingMethod.UPN:
            cert_upn = upn(cert)
            if cert_upn and user_principal_name and cert_upn.casefold() == (
                user_principal_name.casefold()
            ):
                matched.append(method)
        elif method is CertificateMappingMethod.USER_CERTIFICATE:
            der = cert.public_bytes(serialization.Encoding.DER)
            if any(hmac.compare_digest(der, value) for value in user_certificates):
                matched.append(method)
    return matched


# ---------------------------------------------------------------------------
# The fake.


def _escape_rdn_value(value: str) -> str:
    escaped = "".join("\\" + ch if ch in ',+"\\<>;=' else ch for ch in value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


@dataclass(frozen=True)
class InMemoryAccount:
    """One account of :class:`InMemoryDirectory` (what an AD user entry holds)."""

    sam_account_name: str
    password: bytes | None = field(default=None, repr=False)
    user_principal_name: str | None = None
    dn: str = ""
    alt_security_identities: tuple[str, ...] = ()
    user_certificates: tuple[bytes, ...] = field(default=(), repr=False)  # DER
    disabled: bool = False
    groups: tuple[str, ...] = ()
    ftp_root: str | None = None
    ftp_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.dn:
            object.__setattr__(self, "dn", "CN=" + _escape_rdn_value(self.sam_account_name))


class InMemoryDirectory:
    """An :class:`IDirectory` over a list of accounts, with the LDAP directory's semantics.

    Every Deferred has fired on return. Set ``available = False`` to make
    every call fail with :class:`DirectoryUnavailable` (an outage).
    """

    def __init__(self, *accounts: InMemoryAccount, domain: str = "") -> None:
        self._accounts = list(accounts)
        self.domain = domain
        self.available = True
        #: The names authenticate() was asked about, in order (for tests; no passwords).
        self.authentications: list[LogonName] = []

    def add(self, account: InMemoryAccount) -> None:
        self._accounts.append(account)

    def _account(self, entry: InMemoryAccount) -> DirectoryAccount:
        return DirectoryAccount(
            dn=entry.dn,
            sam_account_name=entry.sam_account_name,
            user_principal_name=entry.user_principal_name,
            domain=self.domain,
            disabled=entry.disabled,
            groups=frozenset(entry.groups),
            ftp_root=entry.ftp_root,
            ftp_dir=entry.ftp_dir,
        )

    def _named(self, logon: LogonName) -> InMemoryAccount | None:
        found = [
            entry
            for entry in self._accounts
            if logon.matches(entry.sam_account_name, entry.user_principal_name)
        ]
        return found[0] if len(found) == 1 else None

    @staticmethod
    def _outage() -> DirectoryUnavailable:
        return DirectoryUnavailable("the in-memory directory is marked unavailable")

    def find_by_certificate(
        self,
        cert: x509.Certificate,
        methods: Sequence[CertificateMappingMethod],
        user_certificate_match: UserCertificateMatch = UserCertificateMatch.OCTET,
    ) -> defer.Deferred[list[DirectoryAccount]]:
        if not self.available:
            return defer.fail(self._outage())
        found = [
            self._account(entry)
            for entry in self._accounts
            if not entry.disabled
            and certificate_matches(
                cert,
                methods,
                alt_security_identities=entry.alt_security_identities,
                user_principal_name=entry.user_principal_name,
                user_certificates=entry.user_certificates,
            )
        ]
        return defer.succeed(found)

    def authenticate(
        self, logon: LogonName, password: bytes
    ) -> defer.Deferred[DirectoryAccount | None]:
        if not self.available:
            return defer.fail(self._outage())
        self.authentications.append(logon)
        entry = self._named(logon)
        if (
            entry is None
            or entry.disabled
            or not password
            or entry.password is None
            or not hmac.compare_digest(entry.password, password)
        ):
            return defer.succeed(None)
        return defer.succeed(self._account(entry))

    def lookup(self, logon: LogonName) -> defer.Deferred[DirectoryAccount | None]:
        if not self.available:
            return defer.fail(self._outage())
        entry = self._named(logon)
        return defer.succeed(None if entry is None else self._account(entry))
