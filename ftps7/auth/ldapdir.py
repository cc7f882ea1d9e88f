"""Active Directory over LDAP with ldap3: the only module that imports ldap3.

ldap3 is blocking, so - like ``twisted.enterprise.adbapi`` (DESIGN habit 8) -
every LDAP exchange runs in a thread pool the caller dedicates to it, through
``deferToThreadPool``; the reactor thread only builds filters and keeps a
little state. Give the directory its own pool (``ThreadPool(1, 4,
name="ftps7-ldap")``) so that a slow directory cannot starve other work.

Connections
    A few *service* connections (bound as ``bindDn`` with the password read
    from ``bindPasswordFile`` each time one is opened, or anonymous) are kept
    between requests and reused. A reused connection that fails (the server
    restarted, an idle timeout closed it) is discarded and the request is
    retried once on a fresh one. Password checks bind a separate, short-lived
    connection *as the user* and never read a password attribute. Every socket
    has ``timeout`` as its connect and receive timeout.

Outages
    When a fresh connection cannot be opened the directory is "down": requests
    then fail at once with :class:`~ftps7.auth.directory.DirectoryUnavailable`
    (before taking a thread) except for one probe at a time, allowed every
    ``retry_interval`` seconds. The first probe that succeeds brings the
    directory back, so logons recover by themselves when the server returns.

TLS
    ``ldaps://`` and ``startTls="true"`` verify the server certificate against
    ``caFile`` (the system trust store when absent) with Python's ``ssl``
    module: ``CERT_REQUIRED``, TLS 1.2 or later, and the host of the ``url``
    checked against the certificate's subjectAltName (DNS names; IP addresses
    for an IP URL; never the subject CN). ldap3's own host-name check is bypassed because on
    Python 3.12+ it falls back to a copy of ``match_hostname`` that ignores IP
    addresses.

Filters
    Every value placed in a filter goes through ``escape_filter_chars`` (text)
    or ``escape_bytes`` (DER); nothing user-supplied is formatted in raw.
    What the server returns is checked again in code with the same rules as
    the in-memory directory (:func:`~ftps7.auth.directory.certificate_matches`,
    ``userAccountControl``), so a server's looser matching never widens a
    mapping - and on OpenLDAP, which has no AD bit-AND matching rule, the
    disabled-account check in code is the one that works.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from string import hexdigits
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPCommunicationError,
    LDAPException,
    LDAPInvalidDnError,
    LDAPResponseTimeoutError,
    LDAPSSLConfigurationError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_bytes, escape_filter_chars
from ldap3.utils.dn import parse_dn
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from ftps7 import logfilter
from ftps7.auth.directory import (
    ACCOUNTDISABLE,
    DirectoryAccount,
    DirectoryError,
    DirectoryUnavailable,
    IDirectory,
    LogonName,
    certificate_matches,
)
from ftps7.config.model import (
    ActiveDirectorySettings,
    CertificateMappingMethod,
    UserCertificateMatch,
)
from ftps7.tls.mapping import STRING_METHODS, mapping_strings, upn

__all__ = [
    "Ldap3Directory",
    "account_filter",
    "certificate_filter",
    "fetch_compare_filter",
    "first_rdn_value",
    "gser_certificate_assertion",
    "group_filter",
    "logon_filter",
]

T = TypeVar("T")

# LDAP result codes (RFC 4511 appendix A).
SUCCESS = 0
SIZE_LIMIT_EXCEEDED = 4
NO_SUCH_OBJECT = 32
INVALID_CREDENTIALS = 49

#: rootDSE supportedCapabilities of AD DS and AD LDS: the AD matching rules exist.
AD_CAPABILITIES = frozenset({"1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1851"})
#: AD's LDAP_MATCHING_RULE_BIT_AND and LDAP_MATCHING_RULE_IN_CHAIN.
BIT_AND_RULE = "1.2.840.113556.1.4.803"
IN_CHAIN_RULE = "1.2.840.113556.1.4.1941"
NOT_DISABLED = f"(!(userAccountControl:{BIT_AND_RULE}:={ACCOUNTDISABLE}))"

ACCOUNT_ATTRIBUTES = (
    "sAMAccountName",
    "userPrincipalName",
    "userAccountControl",
    "memberOf",
    "msIIS-FTPRoot",
    "msIIS-FTPDir",
)
# AD returns userCertificate raw; OpenLDAP wants the ;binary transfer option.
CERTIFICATE_ATTRIBUTES = (
    *ACCOUNT_ATTRIBUTES,
    "altSecurityIdentities",
    "userCertificate",
    "userCertificate;binary",
)

#: Entries asked for when a certificate or a name should find exactly one.
MAPPING_SIZE_LIMIT = 10
#: fetch-compare reads every account with a userCertificate; OpenLDAP's default limit.
FETCH_COMPARE_LIMIT = 500
GROUP_SIZE_LIMIT = 1000

# Failures that mean "the directory is not reachable as configured".
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    LDAPCommunicationError,
    LDAPStartTLSError,
    LDAPCertificateError,
    LDAPResponseTimeoutError,
    OSError,  # includes ssl.SSLError and socket timeouts
)


# ---------------------------------------------------------------------------
# Filters: pure functions, every value escaped.


def account_filter(condition: str, *, exclude_disabled: bool) -> str:
    """``condition`` restricted to accounts (entries with a sAMAccountName).

    ``exclude_disabled`` adds AD's bit-AND test of ACCOUNTDISABLE; only for
    servers that have the matching rule (elsewhere it would match nothing).
    """
    disabled = NOT_DISABLED if exclude_disabled else ""
    return f"(&(sAMAccountName=*){disabled}{condition})"


def logon_filter(logon: LogonName) -> str:
    """The account a logon name names (sAMAccountName or userPrincipalName)."""
    return account_filter(
        f"({logon.attribute}={escape_filter_chars(logon.value)})", exclude_disabled=False
    )


def gser_certificate_assertion(cert: x509.Certificate) -> str:
    """RFC 4523 CertificateExactAssertion in GSER, as OpenLDAP's certificateExactMatch takes it."""
    issuer = cert.issuer.rfc4514_string().replace('"', '""')
    return f'{{ serialNumber {cert.serial_number}, issuer rdnSequence:"{issuer}" }}'


def certificate_filter(
    cert: x509.Certificate,
    methods: Iterable[CertificateMappingMethod],
    user_certificate_match: UserCertificateMatch,
    *,
    exclude_disabled: bool,
) -> str | None:
    """One search for every enabled mapping of ``cert``: an OR of its values.

    None when no enabled method can be expressed as a filter for this
    certificate (``fetch-compare`` has its own search: see
    :func:`fetch_compare_filter`).
    """
    strings = mapping_strings(cert)
    terms: list[str] = []
    for method in dict.fromkeys(methods):
        if method in STRING_METHODS:
            terms += [
                f"(altSecurityIdentities={escape_filter_chars(value)})"
                for value in strings.get(method, [])
            ]
        elif method is CertificateMappingMethod.UPN:
            name = upn(cert)
            if name:
                terms.append(f"(userPrincipalName={escape_filter_chars(name)})")
        elif method is CertificateMappingMethod.USER_CERTIFICATE:
            if user_certificate_match is UserCertificateMatch.OCTET:
                der = cert.public_bytes(serialization.Encoding.DER)
                terms.append(f"(userCertificate={escape_bytes(der)})")
            elif user_certificate_match is UserCertificateMatch.GSER:
                assertion = escape_filter_chars(gser_certificate_assertion(cert))
                terms.append(f"(userCertificate:certificateExactMatch:={assertion})")
    if not terms:
        return None
    return account_filter("(|" + "".join(terms) + ")", exclude_disabled=exclude_disabled)


def fetch_compare_filter(*, exclude_disabled: bool) -> str:
    """The candidates of ``userCertificateMatch="fetch-compare"``: accounts with a certificate."""
    return account_filter("(userCertificate=*)", exclude_disabled=exclude_disabled)


def group_filter(member_dn: str, *, in_chain: bool) -> str:
    """Groups that list ``member_dn`` as a member (AD ``group`` or ``groupOfNames``).

    ``in_chain`` (AD only) also finds the groups of those groups, as the
    Windows logon token would hold them.
    """
    rule = f":{IN_CHAIN_RULE}:" if in_chain else ""
    return (
        "(&(|(objectClass=group)(objectClass=groupOfNames))"
        f"(member{rule}={escape_filter_chars(member_dn)}))"
    )


def _unescape_dn_value(value: str) -> str:
    """An RFC 4514 attribute value with its ``\\XX`` and ``\\c`` escapes undone."""
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1 : index + 3]
            if len(pair) == 2 and all(c in hexdigits for c in pair):
                out.append(int(pair, 16))
                index += 3
                continue
            out += value[index + 1].encode("utf-8")
            index += 2
            continue
        out += char.encode("utf-8")
        index += 1
    return out.decode("utf-8", errors="replace")


def first_rdn_value(dn: str) -> str | None:
    """``Editors`` for ``CN=Editors,OU=Groups,DC=example,DC=com`` (None if not a DN)."""
    try:
        parts = parse_dn(dn)
    except LDAPInvalidDnError:
        return None
    if not parts:
        return None
    return _unescape_dn_value(parts[0][1]) or None


# ---------------------------------------------------------------------------
# Search results.


@dataclass(frozen=True)
class _Entry:
    """One search result entry: attribute names lower-cased, options dropped."""

    dn: str
    values: dict[str, list[bytes]]

    @classmethod
    def from_response(cls, item: dict[str, Any]) -> _Entry:
        values: dict[str, list[bytes]] = {}
        for name, raw in (item.get("raw_attributes") or {}).items():
            key = name.split(";", 1)[0].lower()
            bucket = values.setdefault(key, [])
            for value in raw:
                if value not in bucket:
                    bucket.append(value)
        return cls(str(item.get("dn", "")), values)

    def raw(self, name: str) -> list[bytes]:
        return self.values.get(name.lower(), [])

    def texts(self, name: str) -> list[str]:
        return [value.decode("utf-8", errors="replace") for value in self.raw(name)]

    def text(self, name: str) -> str | None:
        found = self.texts(name)
        return found[0] if found else None


def _disabled(user_account_control: str | None) -> bool:
    """ACCOUNTDISABLE set; an unreadable value counts as disabled (fail closed)."""
    if user_account_control is None:
        return False
    try:
        return bool(int(user_account_control) & ACCOUNTDISABLE)
    except ValueError:
        return True


def _describe(error: BaseException) -> str:
    """``Type: message`` for the log, unwrapping the tuple reprs ldap3 nests messages in."""
    text = str(error).strip()
    for _depth in range(4):  # ('("socket ssl wrapping error: ...",)',)
        if not (text.startswith("(") and text.endswith(",)")):
            break
        try:
            value = ast.literal_eval(text)  # literals only: never evaluates code
        except (ValueError, SyntaxError):
            break
        if not (isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], str)):
            break
        text = value[0].strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _result_text(result: dict[str, Any]) -> str:
    description = result.get("description") or f"result {result.get('result')}"
    message = (result.get("message") or "").strip()
    return f"{description} ({message})" if message else str(description)


@dataclass(frozen=True)
class _ServerInfo:
    """What the rootDSE told us once: the search base and whether it is AD."""

    base_dn: str
    is_ad: bool


# ---------------------------------------------------------------------------
# TLS and outages.


class _VerifyingTls(ldap3.Tls):
    """ldap3's Tls, but wrapping sockets with the ssl module's own verification."""

    def __init__(self, ca_file: str | None, host: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = True
        context.hostname_checks_common_name = False  # subjectAltName only (RFC 6125)
        context.verify_mode = ssl.CERT_REQUIRED
        self._context = context
        self._host = host

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=self._host,
        )


class _OutageGate:
    """Fail fast while the directory is down, letting one probe through at a time.

    ``admit`` runs on the reactor thread before a request takes a pool thread;
    the outcome is reported from the pool thread, hence the lock.
    """

    def __init__(self, retry_interval: float, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._retry_interval = retry_interval
        self._clock = clock
        self._down = False
        self._failed_at = 0.0
        self._probing = False
        self._reason = ""

    @property
    def down(self) -> bool:
        return self._down

    def admit(self) -> bool:
        """True when this request is the probe; raises while requests must fail fast."""
        with self._lock:
            if not self._down:
                return False
            waited = self._clock() - self._failed_at
            if self._probing or waited < self._retry_interval:
                raise DirectoryUnavailable(f"directory unavailable: {self._reason}")
            self._probing = True
            return True

    def probe_done(self) -> None:
        with self._lock:
            self._probing = False

    def succeeded(self) -> bool:
        """Mark the directory up; True when it had been down."""
        with self._lock:
            was_down, self._down = self._down, False
            return was_down

    def failed(self, reason: str) -> bool:
        """Mark the directory down; True when it had been up."""
        with self._lock:
            was_up = not self._down
            self._down = True
            self._failed_at = self._clock()
            self._reason = reason
            return was_up


# ---------------------------------------------------------------------------
# The directory.


@implementer(IDirectory)
class Ldap3Directory:
    """:class:`~ftps7.auth.directory.IDirectory` over LDAP (Active Directory or OpenLDAP)."""

    log = Logger(observer=logfilter.observer)

    def __init__(
        self,
        settings: ActiveDirectorySettings,
        pool: ThreadPool | None,
        reactor: Any,
        *,
        run_in_thread: Callable[..., defer.Deferred[Any]] | None = None,
        retry_interval: float = 1.0,
        max_idle: int = 4,
        max_idle_time: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Raises :class:`DirectoryError` for settings that can never work (bad caFile)."""
        if run_in_thread is None:
            if pool is None:
                raise ValueError("a thread pool or run_in_thread is needed")
            run_in_thread = functools.partial(deferToThreadPool, reactor, pool)
        self._settings = settings
        self._run = run_in_thread
        self._clock = clock
        self._gate = _OutageGate(retry_interval, clock)
        self._max_idle = max_idle
        self._max_idle_time = max_idle_time
        self._lock = threading.Lock()
        self._idle: list[tuple[ldap3.Connection, float]] = []
        self._closed = False
        self._info: _ServerInfo | None = None
        # ldap3 packs the receive timeout into SO_RCVTIMEO as whole seconds.
        self._time_limit = max(1, math.ceil(settings.timeout))

        parts = urlsplit(settings.url)
        use_ssl = parts.scheme.lower() == "ldaps"
        host = parts.hostname or ""
        port = parts.port or (636 if use_ssl else 389)
        tls = None
        if use_ssl or settings.start_tls:
            try:
                tls = _VerifyingTls(settings.ca_file, host)
            except (OSError, ssl.SSLError, LDAPSSLConfigurationError) as error:
                raise DirectoryError(
                    f"cannot use caFile {settings.ca_file!r}: {_describe(error)}"
                ) from None
        else:
            self.log.warn(
                "activeDirectory {url} is plain LDAP without startTls: domain logon "
                "passwords cross the network in clear",
                url=settings.url,
            )
        # A new ldap3 Server per connection: a shared one would remember an
        # address as unavailable for a while after a failure (our own outage
        # gate decides when to try again) and is mutable state across threads.
        # IPv4 first, then IPv6: ldap3's system default tries only the first address.
        self._new_server = functools.partial(
            ldap3.Server,
            host,
            port=port,
            use_ssl=use_ssl,
            tls=tls,
            get_info=ldap3.NONE,
            mode=ldap3.IP_V4_PREFERRED,
            connect_timeout=settings.timeout,
        )

    # -- IDirectory (reactor side) ---------------------------------------------

    def find_by_certificate(
        self,
        cert: x509.Certificate,
        methods: Sequence[CertificateMappingMethod],
        user_certificate_match: UserCertificateMatch,
    ) -> defer.Deferred[list[DirectoryAccount]]:
        if not methods:
            return defer.succeed([])
        return self._submit(self._find_by_certificate, cert, tuple(methods), user_certificate_match)

    def authenticate(
        self, logon: LogonName, password: bytes
    ) -> defer.Deferred[DirectoryAccount | None]:
        if not password:
            # An LDAP bind with a DN and no password is an "unauthenticated
            # bind" that some servers answer with success: never send one.
            return defer.succeed(None)
        return self._submit(self._authenticate, logon, password)

    def lookup(self, logon: LogonName) -> defer.Deferred[DirectoryAccount | None]:
        return self._submit(self._lookup, logon)

    def close(self) -> None:
        """Unbind the idle service connections (call before stopping the pool)."""
        with self._lock:
            self._closed = True
        self._drop_idle()

    @property
    def available(self) -> bool:
        """False while the last attempt to reach the directory failed."""
        return not self._gate.down

    def _submit(self, function: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        try:
            probe = self._gate.admit()
        except DirectoryUnavailable as error:
            return defer.fail(error)
        return self._run(self._guarded, probe, function, *args)

    def _guarded(self, probe: bool, function: Callable[..., T], *args: Any) -> T:
        try:
            return function(*args)
        finally:
            if probe:
                self._gate.probe_done()

    # -- operations (pool side) ------------------------------------------------

    def _find_by_certificate(
        self,
        cert: x509.Certificate,
        methods: tuple[CertificateMappingMethod, ...],
        match: UserCertificateMatch,
    ) -> list[DirectoryAccount]:
        def operation(connection: ldap3.Connection) -> list[DirectoryAccount]:
            info = self._server_info(connection)
            found: dict[str, _Entry] = {}
            search = certificate_filter(cert, methods, match, exclude_disabled=info.is_ad)
            if search is not None:
                entries, _complete = self._search(
                    connection, info.base_dn, search, CERTIFICATE_ATTRIBUTES, MAPPING_SIZE_LIMIT
                )
                found.update((entry.dn.lower(), entry) for entry in entries)
            if (
                CertificateMappingMethod.USER_CERTIFICATE in methods
                and match is UserCertificateMatch.FETCH_COMPARE
            ):
                entries, complete = self._search(
                    connection,
                    info.base_dn,
                    fetch_compare_filter(exclude_disabled=info.is_ad),
                    CERTIFICATE_ATTRIBUTES,
                    FETCH_COMPARE_LIMIT,
                )
                if not complete:
                    raise DirectoryError(
                        f"userCertificateMatch fetch-compare: more than {FETCH_COMPARE_LIMIT} "
                        "accounts hold a userCertificate; use gser (OpenLDAP) or octet (AD)"
                    )
                for entry in entries:
                    found.setdefault(entry.dn.lower(), entry)
            return self._mapped_accounts(connection, info, cert, methods, found.values())

        return self._with_service(operation)

    def _mapped_accounts(
        self,
        connection: ldap3.Connection,
        info: _ServerInfo,
        cert: x509.Certificate,
        methods: tuple[CertificateMappingMethod, ...],
        entries: Iterable[_Entry],
    ) -> list[DirectoryAccount]:
        accounts: list[DirectoryAccount] = []
        for entry in entries:
            matched = certificate_matches(
                cert,
                methods,
                alt_security_identities=entry.texts("altSecurityIdentities"),
                user_principal_name=entry.text("userPrincipalName"),
                user_certificates=entry.raw("userCertificate"),
            )
            if not matched:
                continue  # a fetch-compare candidate, or a looser server-side match
            account = self._account(connection, info, entry)
            if account is None:
                continue
            if account.disabled:
                self.log.info(
                    "certificate maps to disabled account {dn}; ignored", dn=account.dn
                )
                continue
            self.log.debug(
                "certificate maps to {dn} by {methods}",
                dn=account.dn,
                methods=", ".join(method.value for method in matched),
            )
            accounts.append(account)
        return accounts

    def _lookup(self, logon: LogonName) -> DirectoryAccount | None:
        def operation(connection: ldap3.Connection) -> DirectoryAccount | None:
            info = self._server_info(connection)
            entries, complete = self._search(
                connection, info.base_dn, logon_filter(logon), ACCOUNT_ATTRIBUTES, 2
            )
            entries = [
                entry
                for entry in entries
                if logon.matches(
                    entry.text("sAMAccountName") or "", entry.text("userPrincipalName")
                )
            ]
            if len(entries) > 1 or not complete:
                self.log.warn(
                    "{attribute}={value!r} names several directory accounts; refused",
                    attribute=logon.attribute,
                    value=logon.value,
                )
                return None
            return self._account(connection, info, entries[0]) if entries else None

        return self._with_service(operation)

    def _authenticate(self, logon: LogonName, password: bytes) -> DirectoryAccount | None:
        account = self._lookup(logon)
        if account is None:
            return None
        if account.disabled:
            self.log.info("directory account {dn} is disabled; logon refused", dn=account.dn)
            return None
        return account if self._bind_as(account.dn, password) else None

    # -- LDAP plumbing (pool side) ---------------------------------------------

    def _with_service(self, operation: Callable[[ldap3.Connection], T]) -> T:
        """Run ``operation`` on a service connection.

        When a *reused* connection fails, the server probably closed it (idle
        timeout, restart) and the other idle ones with it: they are all
        dropped and the operation is tried once more on a fresh connection.
        """
        for attempt in (1, 2):
            connection, reused = self._checkout(fresh=attempt == 2)
            try:
                result = operation(connection)
            except _TRANSPORT_ERRORS as error:
                self._close(connection)
                if reused and attempt == 1:
                    self._drop_idle()
                    continue
                raise self._unavailable(_describe(error)) from None
            except (LDAPException, DirectoryError) as error:
                self._close(connection)
                if isinstance(error, DirectoryError):
                    raise
                raise DirectoryError(f"LDAP error: {_describe(error)}") from None
            except Exception as error:
                self._close(connection)
                raise self._unexpected(error) from None
            self._checkin(connection)
            self._reachable()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _checkout(self, *, fresh: bool = False) -> tuple[ldap3.Connection, bool]:
        """(connection, reused): an idle service connection, or a new one."""
        now = self._clock()
        stale: list[ldap3.Connection] = []
        reused: ldap3.Connection | None = None
        with self._lock:
            while self._idle and not fresh:
                connection, since = self._idle.pop()
                if now - since <= self._max_idle_time:
                    reused = connection
                    break
                stale.append(connection)
        for connection in stale:
            self._close(connection)
        if reused is not None:
            return reused, True
        return self._open_service(), False

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection, _since in idle:
            self._close(connection)

    def _checkin(self, connection: ldap3.Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append((connection, self._clock()))
                return
        self._close(connection)

    def _open_service(self) -> ldap3.Connection:
        bind_dn = self._settings.bind_dn
        password = self._service_password() if bind_dn is not None else None
        try:
            connection, result = self._connect(bind_dn, password)
        except _TRANSPORT_ERRORS as error:
            raise self._unavailable(_describe(error)) from None
        except LDAPException as error:
            raise self._unavailable(_describe(error)) from None
        except Exception as error:
            raise self._unexpected(error) from None
        if result.get("result") != SUCCESS:
            self._close(connection)
            who = f"as {bind_dn!r}" if bind_dn else "anonymously"
            # Counted as an outage: retrying a refused service bind on every
            # logon could lock the service account out.
            raise self._unavailable(f"binding {who} was refused: {_result_text(result)}")
        self._reachable()
        return connection

    def _service_password(self) -> bytes:
        path = self._settings.bind_password_file
        if path is None:
            raise DirectoryError("bindDn is set but bindPasswordFile is not")
        try:
            with open(path, "rb") as handle:
                secret = handle.read()
        except OSError as error:
            raise DirectoryError(
                f"cannot read bindPasswordFile {path!r}: {error.strerror}"
            ) from None
        secret = secret.rstrip(b"\r\n")
        if not secret:
            raise DirectoryError(f"bindPasswordFile {path!r} is empty")
        return secret

    def _connect(
        self, user: str | None, password: bytes | None
    ) -> tuple[ldap3.Connection, dict[str, Any]]:
        """Open, secure (StartTLS) and bind one connection; raises ldap3/OS errors."""
        connection = ldap3.Connection(
            self._new_server(),
            user=user,
            password=password,
            authentication=ldap3.SIMPLE if user else ldap3.ANONYMOUS,
            client_strategy=ldap3.SAFE_SYNC,
            auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=self._time_limit,
            auto_referrals=False,
            read_only=True,
            raise_exceptions=False,
            check_names=False,
            auto_escape=False,
            return_empty_attributes=False,
        )
        try:
            connection.open(read_server_info=False)
            if self._settings.start_tls:
                connection.start_tls(read_server_info=False)
            _status, result, _response, _request = connection.bind(read_server_info=False)
        except BaseException:
            self._close(connection)
            raise
        return connection, result or {}

    def _bind_as(self, dn: str, password: bytes) -> bool:
        """Whether ``password`` binds as ``dn`` (on a connection of its own)."""
        try:
            connection, result = self._connect(dn, password)
        except _TRANSPORT_ERRORS as error:
            raise self._unavailable(_describe(error)) from None
        except LDAPException as error:
            raise DirectoryError(f"LDAP error binding as {dn!r}: {_describe(error)}") from None
        except Exception as error:
            raise self._unexpected(error) from None
        self._close(connection)
        self._reachable()
        code = result.get("result")
        if code == SUCCESS:
            return True
        # AD explains a refusal in the message ("data 52e" bad password,
        # "data 533" disabled, "data 775" locked out): worth logging.
        self.log.info("bind as {dn} refused: {result}", dn=dn, result=_result_text(result))
        return False

    def _search(
        self,
        connection: ldap3.Connection,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        size_limit: int,
    ) -> tuple[list[_Entry], bool]:
        """(entries, complete): ``complete`` is False when the size limit cut the result."""
        _status, result, response, _request = connection.search(
            base,
            search_filter,
            search_scope=ldap3.SUBTREE,
            attributes=list(attributes),
            size_limit=size_limit,
            time_limit=self._time_limit,
        )
        result = result or {}
        code = result.get("result")
        if code == NO_SUCH_OBJECT:
            raise DirectoryError(f"the search base {base!r} does not exist")
        if code not in (SUCCESS, SIZE_LIMIT_EXCEEDED):
            raise DirectoryError(f"search refused: {_result_text(result)}")
        entries = [
            _Entry.from_response(item)
            for item in response or []
            if item.get("type") == "searchResEntry"
        ]
        return entries, code == SUCCESS

    def _server_info(self, connection: ldap3.Connection) -> _ServerInfo:
        """Search base and AD-ness, from the settings and the rootDSE (read once)."""
        with self._lock:
            if self._info is not None:
                return self._info
        _status, result, response, _request = connection.search(
            "",
            "(objectClass=*)",
            search_scope=ldap3.BASE,
            attributes=["supportedCapabilities", "defaultNamingContext", "namingContexts"],
            time_limit=self._time_limit,
        )
        root = next(
            (
                _Entry.from_response(item)
                for item in response or []
                if item.get("type") == "searchResEntry"
            ),
            _Entry("", {}),
        )
        is_ad = bool(AD_CAPABILITIES & set(root.texts("supportedCapabilities")))
        base = self._settings.base_dn or root.text("defaultNamingContext") or ""
        if not base:
            contexts = root.texts("namingContexts")
            if len(contexts) != 1:
                raise DirectoryError(
                    "baseDn is not set and the directory does not name a single naming "
                    f"context ({', '.join(contexts) or 'rootDSE unreadable'}); set baseDn"
                )
            base = contexts[0]
        info = _ServerInfo(base_dn=base, is_ad=is_ad)
        with self._lock:
            self._info = info
        self.log.info(
            "directory {url}: base {base}, Active Directory: {ad}",
            url=self._settings.url,
            base=base,
            ad=is_ad,
        )
        return info

    def _account(
        self, connection: ldap3.Connection, info: _ServerInfo, entry: _Entry
    ) -> DirectoryAccount | None:
        sam = entry.text("sAMAccountName")
        if not sam:
            return None
        groups = {name for name in map(first_rdn_value, entry.texts("memberOf")) if name}
        members, complete = self._search(
            connection, info.base_dn, group_filter(entry.dn, in_chain=info.is_ad), ["cn"],
            GROUP_SIZE_LIMIT,
        )
        if not complete:
            self.log.warn(
                "{dn} is in more than {limit} groups; only the first are used",
                dn=entry.dn,
                limit=GROUP_SIZE_LIMIT,
            )
        groups.update(name for name in (first_rdn_value(group.dn) for group in members) if name)
        return DirectoryAccount(
            dn=entry.dn,
            sam_account_name=sam,
            user_principal_name=entry.text("userPrincipalName"),
            domain=self._settings.domain,
            disabled=_disabled(entry.text("userAccountControl")),
            groups=frozenset(groups),
            ftp_root=entry.text("msIIS-FTPRoot"),
            ftp_dir=entry.text("msIIS-FTPDir"),
        )

    # -- state -----------------------------------------------------------------

    def _unexpected(self, error: Exception) -> DirectoryError:
        """An exception ldap3 should not raise: logged with its traceback (call it in
        the ``except`` block), then turned into a DirectoryError."""
        self.log.failure("unexpected error from the LDAP client", Failure())
        return DirectoryError(f"unexpected LDAP client error: {_describe(error)}")

    def _unavailable(self, reason: str) -> DirectoryUnavailable:
        if self._gate.failed(reason):
            self.log.error(
                "directory {url} unavailable: {reason}", url=self._settings.url, reason=reason
            )
        return DirectoryUnavailable(f"directory unavailable: {reason}")

    def _reachable(self) -> None:
        if self._gate.succeeded():
            self.log.info("directory {url} is reachable again", url=self._settings.url)

    @staticmethod
    def _close(connection: ldap3.Connection) -> None:
        with contextlib.suppress(LDAPException, OSError):
            connection.unbind()
