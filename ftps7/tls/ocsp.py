"""OCSP (RFC 6960): a client certificate's revocation status from its CA's responder.

Windows, and so IIS, asks the OCSP responder that a certificate names in its
Authority Information Access extension before it downloads CRLs. ftps7 does
the same for every certificate of the chain that names an ``http://``
responder (``revocation._check``):

* a definitive answer (good or revoked) in a response that verifies decides
  (a certificate that a CRL the server already holds lists as revoked stays
  revoked whatever the responder says);
* anything else is no answer: no responder named, unreachable, an error
  status, ``unknown``, a response that does not verify or is out of date.
  The CRLs decide then, and when they cannot either the certificate is
  refused (fail closed) with both reasons.

A response counts when its status is ``successful``; it holds a single
response for the certificate's CertID (serial, issuer name hash, issuer key
hash, with whatever hash the responder used); it is signed by the issuer
itself, or by a responder certificate included in the response that the
issuer signed directly, that has the id-kp-OCSPSigning extended key usage and
is valid now (§4.2.2.2; the responder certificate's own revocation is not
checked, as id-pkix-ocsp-nocheck advises); ``thisUpdate`` is at most
``OCSP_CLOCK_SKEW`` in the future and ``nextUpdate`` has not passed. A
response without ``nextUpdate`` (what ``openssl ocsp`` sends by default) is
current for ``UNDATED_LIFETIME`` after its ``thisUpdate``.

Requests are POSTs of a SHA-1 CertID without a nonce (RFC 5019's profile,
which responders serving precomputed responses expect), one per certificate
at a time however many sessions ask, within ``revocationUrlRetrievalTimeout``.
Answers are kept in memory until they stop being current; with
``revocationFreshnessTime`` > 0 one obtained longer ago than that is asked
again (and still used while current if the responder does not answer). A
responder that did not answer is not asked again for ``FAILED_FETCH_BACKOFF``
seconds, so a dead responder does not make every logon wait for the timeout.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.tls.clientcert import RevocationState, RevocationStatus
from ftps7.tls.fetch import SAFE_URL, HttpFetcher, SharedFetches, error_text

__all__ = [
    "MAX_OCSP_SIZE",
    "OCSP_CLOCK_SKEW",
    "UNDATED_LIFETIME",
    "HttpOcspPoster",
    "OcspCache",
    "ocsp_request",
    "ocsp_urls",
    "response_status",
]

_log = Logger(observer=logfilter.observer)

MAX_OCSP_SIZE = 64 * 1024
OCSP_CLOCK_SKEW = datetime.timedelta(minutes=5)
UNDATED_LIFETIME = datetime.timedelta(minutes=5)
# A responder that did not answer is not asked again for this long.
FAILED_FETCH_BACKOFF = 60.0
# Answers held at most (one per client or CA certificate seen), oldest dropped first.
MAX_ANSWERS = 10_000

_HASHES = (hashes.SHA1, hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)


def ocsp_urls(cert: x509.Certificate) -> tuple[str, ...]:
    """The ``http://`` OCSP responders named in ``cert``'s Authority Information Access."""
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    urls: list[str] = []
    for description in access:
        location = description.access_location
        if (
            description.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(location, x509.UniformResourceIdentifier)
            and SAFE_URL.fullmatch(location.value)
            and location.value not in urls
        ):
            urls.append(location.value)
    return tuple(urls)


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """The DER OCSP request for ``cert`` (SHA-1 CertID, no nonce)."""
    # SHA-1 names the certificate here; it protects nothing (RFC 5019 §2.1.1).
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303
    return builder.build().public_bytes(serialization.Encoding.DER)


def _verify_signature(
    key: Any, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> None:
    """Raise InvalidSignature unless ``key`` signed ``data``."""
    if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
        key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key.verify(signature, data)
    else:
        raise InvalidSignature("unsupported key or signature algorithm")


def _key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the certificate's subjectPublicKey: a ResponderID byKey."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _names_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    return response.responder_key_hash == _key_hash(cert)


def _signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime.datetime
) -> x509.Certificate | str:
    """The certificate that may have signed ``response``, or why there is none."""
    if _names_responder(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _names_responder(response, candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return "its responder certificate was not issued by the certificate's CA"
        try:
            usages = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (x509.ExtensionNotFound, ValueError):
            usages = None
        if usages is None or ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            return "its responder certificate is not allowed to sign OCSP responses"
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            return "its responder certificate is not valid now"
        return candidate
    return "it is signed neither by the certificate's CA nor by a responder it authorised"


def response_status(
    data: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime.datetime,
    source: str,
) -> tuple[RevocationStatus, datetime.datetime] | str:
    """What the DER OCSP response ``data`` says about ``cert``, and until when.

    A definitive status (good or revoked) with the moment it stops being
    current, or why the response is no answer.
    """
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError as error:
        return f"not an OCSP response ({error})"
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"the responder answered {response.response_status.name.lower()}"
    signer = _signer(response, issuer, now)
    if isinstance(signer, str):
        return f"the response does not verify: {signer}"
    try:
        algorithm = response.signature_hash_algorithm
        _verify_signature(
            signer.public_key(), response.signature, response.tbs_response_bytes, algorithm
        )
    except (InvalidSignature, ValueError, TypeError, x509.UnsupportedGeneralNameType):
        return "the response's signature does not verify"
    except Exception:  # noqa: BLE001 - e.g. an unsupported signature algorithm
        return "the response's signature algorithm is not supported"
    single = _single_for(response, cert, issuer)
    if single is None:
        return "the response is about another certificate"
    this_update = single.this_update_utc
    if this_update > now + OCSP_CLOCK_SKEW:
        return f"the response is dated in the future ({this_update.isoformat()})"
    until = single.next_update_utc or this_update + UNDATED_LIFETIME
    if now >= until:
        return f"the response is out of date (current until {until.isoformat()})"
    state = single.certificate_status
    if state is ocsp.OCSPCertStatus.GOOD:
        return RevocationStatus.good(source=source), until
    if state is ocsp.OCSPCertStatus.REVOKED:
        return (
            RevocationStatus.revoked(
                source=source,
                reason=single.revocation_reason,
                revocation_date=single.revocation_time_utc,
            ),
            until,
        )
    return "the responder does not know the certificate"


def _single_for(
    response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> Any:
    """The response's SingleResponse for ``cert``'s CertID (any supported hash), or None."""
    for single in response.responses:
        if single.serial_number != cert.serial_number:
            continue
        algorithm = single.hash_algorithm
        if not isinstance(algorithm, _HASHES):
            continue
        expected = (
            ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, type(algorithm)()).build()
        )
        if (single.issuer_name_hash, single.issuer_key_hash) == (
            expected.issuer_name_hash,
            expected.issuer_key_hash,
        ):
            return single
    return None


class HttpOcspPoster:
    """POSTs OCSP requests over ``http://`` (``fetch.HttpFetcher``): no thread, bounded size."""

    def __init__(self, reactor: Any, *, max_size: int = MAX_OCSP_SIZE) -> None:
        self._http = HttpFetcher(reactor, max_size=max_size, what="OCSP response")

    def __call__(self, url: str, request: bytes) -> defer.Deferred[bytes]:
        return self._http.post(
            url, request, b"application/ocsp-request", b"application/ocsp-response"
        )


@dataclass
class _Answer:
    status: RevocationStatus
    until: datetime.datetime  # current until then (certificate time)
    obtained: float  # clock seconds


class OcspCache:
    """Definitive OCSP answers a server process holds, and asking responders for more.

    ``poster`` None means no responder is ever asked (answers are only ever
    None then: no OCSP, the CRLs decide).
    """

    def __init__(self, clock: IReactorTime, poster: Any = None) -> None:
        self._clock = clock
        self._poster = poster
        self._answers: dict[tuple[bytes, int], _Answer] = {}
        self._failed_at: dict[str, float] = {}
        self._fetches = SharedFetches(clock)

    @staticmethod
    def _key(cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes, int]:
        return _key_hash(issuer), cert.serial_number

    def _current(
        self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime.datetime
    ) -> _Answer | None:
        key = self._key(cert, issuer)
        answer = self._answers.get(key)
        if answer is not None and now >= answer.until:
            del self._answers[key]
            return None
        return answer

    def status_cached(
        self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime.datetime
    ) -> RevocationStatus | None:
        """A held answer that is still current (``CertChainRevocationCheckCacheOnly``)."""
        answer = self._current(cert, issuer, now)
        return answer.status if answer is not None else None

    def status(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        now: datetime.datetime,
        *,
        freshness_time: float,
        retrieval_timeout: float,
    ) -> defer.Deferred[RevocationStatus | None]:
        """The responder's answer: None when ``cert`` names none, UNKNOWN when it gave none.

        Never fails.
        """
        return defer.ensureDeferred(
            self._status(cert, issuer, now, freshness_time, retrieval_timeout)
        )

    async def _status(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        now: datetime.datetime,
        freshness_time: float,
        retrieval_timeout: float,
    ) -> RevocationStatus | None:
        urls = ocsp_urls(cert)
        if not urls or self._poster is None:
            return None
        try:
            return await self._answer(cert, issuer, now, urls, freshness_time, retrieval_timeout)
        except Exception as error:  # the CRLs decide then
            _log.failure("OCSP check failed unexpectedly")
            return RevocationStatus.unknown(f"OCSP: internal error: {error!r}")

    async def _answer(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        now: datetime.datetime,
        urls: tuple[str, ...],
        freshness_time: float,
        retrieval_timeout: float,
    ) -> RevocationStatus:
        held = self._current(cert, issuer, now)
        if held is not None and not (
            freshness_time > 0 and self._clock.seconds() - held.obtained > freshness_time
        ):
            return held.status
        notes: list[str] = []
        for url in urls:
            failed_at = self._failed_at.get(url)
            if failed_at is not None and self._clock.seconds() - failed_at < FAILED_FETCH_BACKOFF:
                notes.append(f"{url}: did not answer a moment ago")
                continue
            result = await self._ask(url, cert, issuer, now, retrieval_timeout)
            if not isinstance(result, str):
                status, until = result
                key = self._key(cert, issuer)
                self._answers.pop(key, None)  # newest last: the oldest go first
                self._answers[key] = _Answer(status, until, self._clock.seconds())
                while len(self._answers) > MAX_ANSWERS:
                    del self._answers[next(iter(self._answers))]
                return status
            notes.append(f"{url}: {result}")
        if held is not None:
            return held.status
        return RevocationStatus.unknown("OCSP: " + "; ".join(notes))

    async def _ask(
        self,
        url: str,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        now: datetime.datetime,
        timeout: float,
    ) -> tuple[RevocationStatus, datetime.datetime] | str:
        request = ocsp_request(cert, issuer)
        poster = self._poster
        try:
            data = await self._fetches.fetch((url, request), lambda: poster(url, request), timeout)
        except Exception as error:  # noqa: BLE001 - any failure is reported, never raised
            self._failed_at[url] = self._clock.seconds()
            problem = error_text(error)
            _log.warn("OCSP request to {url} failed: {problem}", url=url, problem=problem)
            return problem
        self._failed_at.pop(url, None)
        result = response_status(data, cert, issuer, now, f"OCSP {url}")
        if isinstance(result, str):
            _log.warn("OCSP response from {url} not used: {problem}", url=url, problem=result)
        return result


def is_definitive(status: RevocationStatus | None) -> bool:
    """Whether an OCSP answer decides (good or revoked)."""
    return status is not None and status.state is not RevocationState.UNKNOWN
