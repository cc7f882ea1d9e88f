"""Revocation of client certificates: CRLs from the store and from distribution points.

(OCSP, asked first when a certificate names a responder, is ``ftps7.tls.ocsp``.)

IIS checks every certificate of a client's chain (except the root) against
CRLs, unless ``validationFlags`` says ``NoRevocationCheck``; with
``CertChainRevocationCheckCacheOnly`` it uses only CRLs it already has.
``revocationFreshnessTime`` and ``revocationUrlRetrievalTimeout`` govern
downloads. ftps7 does the same with two sources:

* the store's ``CRL`` folder (``*.crl``/``*.pem``, DER or PEM): CRLs an
  administrator (or a cron job) puts there; reloaded when a file changes;
* the certificate's CRL distribution points (``http://`` only; LDAP, HTTPS
  and indirect CRL issuers are not fetched), downloaded with Twisted's
  ``Agent`` — never blocking the reactor —, at most ``MAX_CRL_SIZE`` bytes,
  within ``revocationUrlRetrievalTimeout``, one download per URL however many
  sessions ask at once. Downloads are kept in memory only (per process): the
  ``CRL`` folder stays the administrator's, and a server that may run without
  write access to its store has nothing to get wrong there.

A CRL counts for a certificate only if it is a complete CRL (not a delta, not
indirect, not limited to some reasons) of the certificate's issuer —
same issuer name, matching AKI when present, signature verified with the
issuer's key, issuer allowed to sign CRLs — whose scope (Issuing Distribution
Point) covers the certificate, and which is current (``thisUpdate`` not in the
future beyond a small skew, ``nextUpdate`` present and not passed). Of those,
the most recent one decides.

Freshness, as IIS documents it: ``revocationFreshnessTime`` 0 uses a cached
CRL until its ``nextUpdate``; a positive value also fetches a newer one when
the latest usable CRL of that issuer was obtained (downloaded, or loaded
from the folder) longer ago than that; if that download fails, the cached
CRL is used while it is current, and the URL is not tried again for
``FAILED_FETCH_BACKOFF`` seconds (so a dead CRL server does not make every
logon wait for the timeout). A download that brings nothing newer still
counts as a check, so a folder CRL newer than the published one does not
cause a download at every logon.

Fail closed: no usable CRL means UNKNOWN, and the caller refuses.
Times: certificate and CRL dates are compared with the ``now`` datetime the
caller passes (wall clock); download ages and timeouts use the ``clock``
(``IReactorTime``) given to ``CrlCache``, so tests can drive them.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.config.model import ClientCertificateSettings, ValidationFlags
from ftps7.tls.clientcert import (
    Reason,
    RevocationState,
    RevocationStatus,
    ValidationResult,
    apply_revocation,
    build_chain,
    revocation_pairs,
    utc,
)
from ftps7.tls.fetch import SAFE_URL, FetchError, HttpFetcher, SharedFetches, error_text
from ftps7.tls.ocsp import OcspCache, is_definitive
from ftps7.tls.store import CertificateStore, CertificateStoreError

__all__ = [
    "CRL_CLOCK_SKEW",
    "FAILED_FETCH_BACKOFF",
    "MAX_CRL_SIZE",
    "CrlCache",
    "CrlFetchError",
    "CrlFetcher",
    "HttpCrlFetcher",
    "RevocationState",
    "RevocationStatus",
    "check_client_certificate",
    "crl_urls",
]

_log = Logger(observer=logfilter.observer)

MAX_CRL_SIZE = 10 * 1024 * 1024
# A failed download is not retried for this long while a usable CRL is cached.
FAILED_FETCH_BACKOFF = 60.0
# A CRL whose thisUpdate is at most this far in the future is still accepted.
CRL_CLOCK_SKEW = datetime.timedelta(minutes=5)

_CRL_SUFFIXES = (".crl", ".pem")
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)

# CRL extensions we understand; a critical one outside this set makes the CRL unusable.
_KNOWN_CRL_EXTENSIONS = {
    x509.CRLNumber,
    x509.AuthorityKeyIdentifier,
    x509.IssuingDistributionPoint,
    x509.DeltaCRLIndicator,
    x509.FreshestCRL,
    x509.AuthorityInformationAccess,
}
_KNOWN_ENTRY_EXTENSIONS = {x509.CRLReason, x509.InvalidityDate}

# Fetch a CRL: the URL in, the body out (a Deferred that errbacks on failure).
CrlFetcher = Callable[[str], "defer.Deferred[bytes]"]


#: A CRL download that did not produce a body (status, size, scheme).
CrlFetchError = FetchError


def crl_urls(cert: x509.Certificate) -> tuple[str, ...]:
    """The ``http://`` URLs of ``cert``'s CRL distribution points, in order.

    Distribution points naming a separate CRL issuer (indirect CRLs) are
    skipped, as are other schemes (``ldap://`` is what AD CS lists first; its
    ``http://`` URL is normally listed too).
    """
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    urls: list[str] = []
    for point in points:
        if point.crl_issuer or not point.full_name:
            continue
        for general_name in point.full_name:
            if isinstance(general_name, x509.UniformResourceIdentifier):
                url = general_name.value
                if SAFE_URL.fullmatch(url) and url not in urls:
                    urls.append(url)
    return tuple(urls)


# --------------------------------------------------------------------------
# Downloading


class HttpCrlFetcher:
    """Downloads CRLs over ``http://`` (``fetch.HttpFetcher``): no thread, bounded size.

    The caller applies the overall timeout by cancelling the returned
    Deferred, which aborts the connection.
    """

    def __init__(
        self,
        reactor: Any,
        *,
        max_size: int = MAX_CRL_SIZE,
        connect_timeout: float | None = None,
    ) -> None:
        self._http = HttpFetcher(
            reactor, max_size=max_size, what="CRL", connect_timeout=connect_timeout
        )

    def __call__(self, url: str) -> defer.Deferred[bytes]:
        return self._http.get(url, b"application/pkix-crl, */*")


# --------------------------------------------------------------------------
# The cache


@dataclass
class _Crl:
    """One CRL we hold, where it came from and when we got it (clock seconds)."""

    crl: x509.CertificateRevocationList
    source: str
    obtained_at: float
    # issuer SubjectPublicKeyInfo DER -> whether the signature verifies with it
    signature_checked: dict[bytes, bool] = field(default_factory=dict)

    def signed_by(self, issuer: x509.Certificate) -> bool:
        key_der = issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        known = self.signature_checked.get(key_der)
        if known is None:
            try:
                known = self.crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError):
                known = False
            self.signature_checked[key_der] = known
        return known


@dataclass(frozen=True)
class _FolderFile:
    signature: tuple[int, int]
    crls: tuple[_Crl, ...]
    problem: str | None


def _parse_crls(data: bytes, source: str) -> list[x509.CertificateRevocationList]:
    """Every CRL in a PEM file, or the one CRL of a DER file."""
    if b"-----BEGIN" in data:
        blocks = _PEM_CRL.findall(data)
        if not blocks:
            raise ValueError(f"{source}: no X509 CRL block in the PEM file")
        return [x509.load_pem_x509_crl(block) for block in blocks]
    return [x509.load_der_x509_crl(data)]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _key_identifier(issuer: x509.Certificate) -> bytes:
    try:
        return issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest


def _cdp_names(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [name for point in points for name in (point.full_name or ())]


def _recency(held: _Crl) -> tuple[datetime.datetime, int, float]:
    """Orders CRLs of one issuer: thisUpdate, then CRL number, then the later copy."""
    try:
        number = held.crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except (x509.ExtensionNotFound, ValueError):
        number = -1
    return (held.crl.last_update_utc, number, held.obtained_at)


def _when(moment: datetime.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%SZ}"


def _unusable(
    held: _Crl, cert: x509.Certificate, issuer: x509.Certificate, now: datetime.datetime
) -> str | None:
    """Why ``held`` cannot decide about ``cert`` (issued by ``issuer``), or None if it can."""
    crl = held.crl
    if crl.issuer != cert.issuer:
        return "issued by another CA"
    try:
        extensions = list(crl.extensions)
    except ValueError as error:
        return f"has a malformed extension ({error})"
    for extension in extensions:
        if extension.critical and type(extension.value) not in _KNOWN_CRL_EXTENSIONS:
            return f"has an unsupported critical extension {extension.oid.dotted_string}"
    values = {type(e.value): e.value for e in extensions}
    aki = values.get(x509.AuthorityKeyIdentifier)
    if (
        isinstance(aki, x509.AuthorityKeyIdentifier)
        and aki.key_identifier is not None
        and aki.key_identifier != _key_identifier(issuer)
    ):
        return "was signed with another key of the CA (authority key identifier differs)"
    if x509.DeltaCRLIndicator in values:
        return "is a delta CRL (only complete CRLs are used)"
    idp = values.get(x509.IssuingDistributionPoint)
    if isinstance(idp, x509.IssuingDistributionPoint):
        scope = _idp_problem(idp, cert)
        if scope is not None:
            return scope
    try:
        ku = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is not None and not ku.crl_sign:
        return "comes from a CA whose key usage does not allow signing CRLs"
    if not held.signed_by(issuer):
        return "has a signature that does not verify with the CA's key"
    next_update = crl.next_update_utc
    if next_update is None:
        return "has no nextUpdate (RFC 5280 requires one)"
    if now >= next_update:
        return f"expired on {_when(next_update)}"
    if crl.last_update_utc > now + CRL_CLOCK_SKEW:
        return f"is not valid before {_when(crl.last_update_utc)}"
    return None


def _idp_problem(idp: x509.IssuingDistributionPoint, cert: x509.Certificate) -> str | None:
    """Whether an Issuing Distribution Point limits the CRL so that it does not cover ``cert``."""
    if idp.indirect_crl:
        return "is an indirect CRL (not supported)"
    if idp.only_some_reasons:
        return "covers only some revocation reasons (not a complete CRL)"
    if idp.only_contains_attribute_certs:
        return "covers only attribute certificates"
    if idp.only_contains_user_certs and _is_ca(cert):
        return "covers only end-entity certificates"
    if idp.only_contains_ca_certs and not _is_ca(cert):
        return "covers only CA certificates"
    if idp.relative_name is not None:
        return "has a relative distribution point name (not supported)"
    if idp.full_name:
        names = _cdp_names(cert)
        if not any(name in names for name in idp.full_name):
            return "is a partitioned CRL for a distribution point the certificate does not name"
    return None


class CrlCache:
    """The CRLs a server knows, by source, and the revocation verdicts drawn from them.

    One instance serves the whole process (every site); ``freshness_time``
    and ``retrieval_timeout`` are defaults that ``status`` lets a site
    override. ``fetcher`` None means nothing is ever downloaded.
    """

    def __init__(
        self,
        store_crl_dir: str,
        clock: IReactorTime,
        fetcher: CrlFetcher | None = None,
        freshness_time: float = 0.0,
        retrieval_timeout: float = 60.0,
    ) -> None:
        self.crl_dir = Path(store_crl_dir)
        self._clock = clock
        self._fetcher = fetcher
        self.freshness_time = freshness_time
        self.retrieval_timeout = retrieval_timeout
        self._folder: dict[str, _FolderFile] = {}
        self._downloaded: dict[str, _Crl] = {}
        self._failed_at: dict[str, float] = {}
        self._fetches = SharedFetches(clock)

    # ------------------------------------------------------------- the folder

    def reload(self) -> None:
        """Re-read the CRL folder's changed files and forget removed ones.

        Called before every lookup: a stat per file; only changed files are
        parsed again. A file that does not parse is skipped (see ``problems``).
        """
        seen: set[str] = set()
        try:
            with os.scandir(self.crl_dir) as entries:
                paths = sorted(
                    entry.path
                    for entry in entries
                    if entry.name.lower().endswith(_CRL_SUFFIXES)
                    and not entry.name.startswith(".")
                    and entry.is_file()
                )
        except OSError:
            paths = []
        for path in paths:
            seen.add(path)
            try:
                st = os.stat(path)
            except OSError:
                continue
            signature = (st.st_mtime_ns, st.st_size)
            cached = self._folder.get(path)
            if cached is not None and cached.signature == signature:
                continue
            self._folder[path] = self._load_file(path, signature)
        for path in [p for p in self._folder if p not in seen]:
            del self._folder[path]

    def _load_file(self, path: str, signature: tuple[int, int]) -> _FolderFile:
        try:
            crls = _parse_crls(Path(path).read_bytes(), path)
        except (OSError, ValueError) as error:
            _log.warn("CRL file {path} skipped: {error}", path=path, error=error)
            return _FolderFile(signature, (), f"skipped {path}: {error}")
        now = self._clock.seconds()
        return _FolderFile(signature, tuple(_Crl(c, path, now) for c in crls), None)

    def problems(self) -> list[str]:
        """Why files of the CRL folder were skipped at the latest reload."""
        return sorted(f.problem for f in self._folder.values() if f.problem)

    # -------------------------------------------------------------- lookups

    def _held(self) -> list[_Crl]:
        held = [crl for f in self._folder.values() for crl in f.crls]
        return held + list(self._downloaded.values())

    def _best(
        self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime.datetime
    ) -> tuple[_Crl | None, float | None, list[str]]:
        """The most recent usable CRL for ``cert``, when we last obtained a usable
        one (clock seconds; the freshness clock), and why the others were not usable.

        The two can differ: a download may bring a CRL no newer than one in
        the folder; it still counts as "checked just now" for freshness.
        """
        best: _Crl | None = None
        last_obtained: float | None = None
        notes: list[str] = []
        for held in self._held():
            if held.crl.issuer != cert.issuer:
                continue
            problem = _unusable(held, cert, issuer, now)
            if problem is not None:
                notes.append(f"the CRL from {held.source} {problem}")
                continue
            if best is None or _recency(held) > _recency(best):
                best = held
            if last_obtained is None or held.obtained_at > last_obtained:
                last_obtained = held.obtained_at
        return best, last_obtained, notes

    @staticmethod
    def _verdict(held: _Crl, cert: x509.Certificate) -> RevocationStatus:
        entry = held.crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is None:
            return RevocationStatus.good(held.source)
        reason: x509.ReasonFlags | None = None
        try:
            extensions = list(entry.extensions)
        except ValueError as error:
            return RevocationStatus.unknown(
                f"the CRL from {held.source} lists the certificate with a malformed "
                f"extension ({error})"
            )
        for extension in extensions:
            if isinstance(extension.value, x509.CRLReason):
                reason = extension.value.reason
            elif extension.critical and type(extension.value) not in _KNOWN_ENTRY_EXTENSIONS:
                return RevocationStatus.unknown(
                    f"the CRL from {held.source} lists the certificate with an "
                    f"unsupported critical extension {extension.oid.dotted_string}"
                )
        if reason is x509.ReasonFlags.remove_from_crl:
            return RevocationStatus.good(held.source)
        return RevocationStatus.revoked(
            source=held.source, reason=reason, revocation_date=entry.revocation_date_utc
        )

    @staticmethod
    def _nothing_usable(cert: x509.Certificate, notes: Sequence[str]) -> RevocationStatus:
        if notes:
            return RevocationStatus.unknown("; ".join(notes))
        urls = crl_urls(cert)
        where = (
            "the certificate names no http:// CRL distribution point"
            if not urls
            else "no CRL from " + ", ".join(urls) + " is cached"
        )
        return RevocationStatus.unknown(f"no CRL of its issuer in the CRL folder and {where}")

    def status_cached(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        now: datetime.datetime | None = None,
    ) -> RevocationStatus:
        """The verdict from CRLs already held (folder and memory); never downloads.

        This is ``CertChainRevocationCheckCacheOnly``; it is synchronous and
        cheap (signature checks are remembered per CRL and issuer key).
        """
        now = utc(now) if now is not None else datetime.datetime.now(datetime.UTC)
        try:
            self.reload()
            best, _, notes = self._best(cert, issuer, now)
            if best is None:
                return self._nothing_usable(cert, notes)
            return self._verdict(best, cert)
        except Exception as error:
            _log.failure("revocation check failed unexpectedly")
            return RevocationStatus.unknown(f"internal error: {error!r}")

    def status(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        now: datetime.datetime | None = None,
        *,
        freshness_time: float | None = None,
        retrieval_timeout: float | None = None,
    ) -> defer.Deferred[RevocationStatus]:
        """The verdict, downloading the issuer's CRL when none is held or it is not fresh.

        Never fails: problems become an UNKNOWN status saying what went wrong.
        """
        return defer.ensureDeferred(
            self._status_or_unknown(
                cert,
                issuer,
                utc(now) if now is not None else datetime.datetime.now(datetime.UTC),
                self.freshness_time if freshness_time is None else freshness_time,
                self.retrieval_timeout if retrieval_timeout is None else retrieval_timeout,
            )
        )

    async def _status_or_unknown(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        now: datetime.datetime,
        freshness_time: float,
        retrieval_timeout: float,
    ) -> RevocationStatus:
        try:
            return await self._status(cert, issuer, now, freshness_time, retrieval_timeout)
        except Exception as error:
            _log.failure("revocation check failed unexpectedly")
            return RevocationStatus.unknown(f"internal error: {error!r}")

    async def _status(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        now: datetime.datetime,
        freshness_time: float,
        retrieval_timeout: float,
    ) -> RevocationStatus:
        self.reload()
        best, last_obtained, notes = self._best(cert, issuer, now)
        urls = crl_urls(cert)
        if (
            self._fetcher is not None
            and urls
            and self._wants_download(last_obtained, freshness_time)
        ):
            for url in urls:
                if best is not None and self._recently_failed(url):
                    continue
                problem = await self._download(url, issuer, now, retrieval_timeout)
                if problem is None:
                    break
                notes.append(f"{url}: {problem}")
            best, _, more = self._best(cert, issuer, now)
            notes.extend(n for n in more if n not in notes)
        if best is None:
            return self._nothing_usable(cert, notes)
        return self._verdict(best, cert)

    def _wants_download(self, last_obtained: float | None, freshness_time: float) -> bool:
        """No usable CRL, or (freshness > 0) none obtained within the freshness time."""
        if last_obtained is None:
            return True
        age = self._clock.seconds() - last_obtained
        return freshness_time > 0 and age > freshness_time

    def _recently_failed(self, url: str) -> bool:
        failed_at = self._failed_at.get(url)
        return failed_at is not None and self._clock.seconds() - failed_at < FAILED_FETCH_BACKOFF

    async def _download(
        self, url: str, issuer: x509.Certificate, now: datetime.datetime, timeout: float
    ) -> str | None:
        """Fetch ``url`` and keep the CRL if ``issuer`` made it and it is current.

        Returns None on success, else why not (also logged).
        """
        try:
            data = await self._shared_fetch(url, timeout)
            crls = _parse_crls(data, url)
        except Exception as error:  # noqa: BLE001 - any failure is reported, never raised
            problem = error_text(error)
        else:
            held = _Crl(crls[0], url, self._clock.seconds())
            if held.crl.issuer != issuer.subject:
                problem = "the CRL served there was issued by another CA"
            elif not held.signed_by(issuer):
                problem = "the CRL served there does not verify with the CA's key"
            elif held.crl.next_update_utc is not None and now >= held.crl.next_update_utc:
                problem = f"the CRL served there expired on {_when(held.crl.next_update_utc)}"
            else:
                self._downloaded[url] = held
                self._failed_at.pop(url, None)
                return None
        self._failed_at[url] = self._clock.seconds()
        _log.warn("CRL download from {url} failed: {problem}", url=url, problem=problem)
        return problem

    def _shared_fetch(self, url: str, timeout: float) -> defer.Deferred[bytes]:
        """One download per URL at a time, cancelled for everybody at the timeout."""
        fetcher = self._fetcher
        assert fetcher is not None
        return self._fetches.fetch(url, lambda: fetcher(url), timeout)


# --------------------------------------------------------------------------
# What the server calls


def check_client_certificate(
    leaf: x509.Certificate,
    presented_chain: Sequence[x509.Certificate],
    store: CertificateStore,
    settings: ClientCertificateSettings,
    crl_cache: CrlCache,
    now: datetime.datetime | None = None,
    ocsp_cache: OcspCache | None = None,
) -> defer.Deferred[ValidationResult]:
    """Validate a client certificate with the site's settings, revocation included.

    Chain and usage first (synchronous, ``ftps7.tls.clientcert``); then,
    unless ``NoRevocationCheck``, the revocation status of each certificate
    of the chain but the root, looked up concurrently: from its OCSP
    responder first when ``ocsp_cache`` is given (``ftps7.tls.ocsp``), then
    from CRLs; from held answers and CRLs only with
    ``CertChainRevocationCheckCacheOnly``. Distribution-point and responder
    URLs are only ever taken from certificates whose chain has already
    validated, so a client cannot make the server fetch URLs of its choosing. The Deferred
    never fails; ``result.log_text()`` is the line to log.
    """
    return defer.ensureDeferred(
        _check_or_refuse(leaf, presented_chain, store, settings, crl_cache, now, ocsp_cache)
    )


async def _check_or_refuse(
    leaf: x509.Certificate,
    presented_chain: Sequence[x509.Certificate],
    store: CertificateStore,
    settings: ClientCertificateSettings,
    crl_cache: CrlCache,
    now: datetime.datetime | None,
    ocsp_cache: OcspCache | None = None,
) -> ValidationResult:
    """``_check``, failing closed on anything unexpected (logged with its traceback)."""
    try:
        return await _check(leaf, presented_chain, store, settings, crl_cache, now, ocsp_cache)
    except Exception as error:
        _log.failure("client certificate check failed unexpectedly")
        return ValidationResult(
            ok=False,
            leaf=leaf,
            reason=Reason.INVALID_CHAIN,
            text=f"the certificate could not be checked: {error!r}",
            subject=leaf,
        )


async def _check(
    leaf: x509.Certificate,
    presented_chain: Sequence[x509.Certificate],
    store: CertificateStore,
    settings: ClientCertificateSettings,
    crl_cache: CrlCache,
    now: datetime.datetime | None,
    ocsp_cache: OcspCache | None = None,
) -> ValidationResult:
    now = utc(now) if now is not None else datetime.datetime.now(datetime.UTC)
    flags = settings.validation_flags
    try:
        roots = store.trusted_roots()
        intermediates = store.intermediates()
    except CertificateStoreError as error:
        _log.error("cannot read the trust store: {error}", error=error)
        return ValidationResult(
            ok=False,
            leaf=leaf,
            reason=Reason.UNTRUSTED_ISSUER,
            text=f"the certificate store cannot be read: {error}",
            subject=leaf,
        )
    result = build_chain(
        leaf, presented_chain, roots=roots, intermediates=intermediates, flags=flags, now=now
    )
    if not result.ok or ValidationFlags.NO_REVOCATION_CHECK in flags:
        return result
    pairs = revocation_pairs(result.chain)
    if ValidationFlags.CERT_CHAIN_REVOCATION_CHECK_CACHE_ONLY in flags:
        statuses = [
            _combined(
                ocsp_cache.status_cached(cert, issuer, now) if ocsp_cache is not None else None,
                crl_cache.status_cached(cert, issuer, now),
            )
            for cert, issuer in pairs
        ]
    else:
        statuses = await defer.gatherResults(
            [
                defer.ensureDeferred(_status(cert, issuer, now, settings, crl_cache, ocsp_cache))
                for cert, issuer in pairs
            ]
        )
    return apply_revocation(result, statuses)


async def _status(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime.datetime,
    settings: ClientCertificateSettings,
    crl_cache: CrlCache,
    ocsp_cache: OcspCache | None,
) -> RevocationStatus:
    """OCSP first (as Windows), then CRLs; see ``ftps7.tls.ocsp``."""
    answer = None
    if ocsp_cache is not None:
        answer = await ocsp_cache.status(
            cert,
            issuer,
            now,
            freshness_time=settings.revocation_freshness_time,
            retrieval_timeout=settings.revocation_url_retrieval_timeout,
        )
    if is_definitive(answer):
        # Without a download: a CRL already held may still know better.
        return _combined(answer, crl_cache.status_cached(cert, issuer, now))
    crl = await crl_cache.status(
        cert,
        issuer,
        now,
        freshness_time=settings.revocation_freshness_time,
        retrieval_timeout=settings.revocation_url_retrieval_timeout,
    )
    return _combined(answer, crl)


def _combined(answer: RevocationStatus | None, crl: RevocationStatus) -> RevocationStatus:
    """One verdict from an OCSP answer (None: no responder) and a CRL verdict.

    Revoked by either is revoked; else a definitive OCSP answer decides; else
    the CRLs, and when neither knows, both reasons are given.
    """
    if crl.state is RevocationState.REVOKED or answer is None:
        return crl
    if answer.state is not RevocationState.UNKNOWN:
        return answer
    if crl.state is RevocationState.UNKNOWN:
        return RevocationStatus.unknown(f"{answer.detail}; {crl.detail}")
    return crl
