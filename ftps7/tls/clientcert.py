"""Client-certificate validation, done in code after the TLS handshake.

The TLS layer requests a client certificate and accepts whatever comes
(``ftps7.tls.contexts``): a handshake must not fail on a policy that is
per-site, and IIS reports certificate problems as FTP replies and log
lines, not as TLS alerts. This module then judges the certificate the way
IIS asks CryptoAPI to (``sslClientCertificates validationFlags``), without
any I/O, so it runs on the reactor thread and is tested without sockets:

1. ``build_chain``: a path from the leaf to a CA in the store's ``ROOT``
   folder, using intermediates from ``CA`` and those the client sent; every
   signature, validity period, basicConstraints, pathLen, nameConstraints and
   unknown critical extension is checked by ``cryptography.x509.verification``
   (with extension policies relaxed from the Web PKI profile to what
   enterprise client certificates look like). Then the usage checks: EKU
   clientAuth and KeyUsage digitalSignature, unless ``CertNoUsageCheck``.
2. ``apply_revocation``: the revocation status of every certificate of that
   chain except the trust anchor. Looking that status up may need the network
   (CRL distribution points); ``ftps7.tls.revocation`` does that
   asynchronously and calls back in here. ``validate_client_certificate`` is
   the synchronous whole, for callers with a synchronous lookup (the cache).

Decisions where IIS/CryptoAPI and our means differ (see
docs/client-certificates.md):

* ``CertChainCacheOnlyUrlRetrieval`` ("look intermediate certificates up only
  in local caches"): ftps7 never fetches certificates from AIA URLs, so read
  literally the flag would do nothing. We give it the nearest useful meaning:
  only the store (``ROOT`` and ``CA``) may supply the chain; intermediates the
  client sends are ignored unless the same certificate is in ``CA``. That lets
  an administrator pin which issuing CAs are accepted below a trusted root.
  As in CryptoAPI, it does not change revocation checking.
* A leaf without an EKU extension is valid for every usage (RFC 5280 §4.2.1.12,
  and what Windows does); ``anyExtendedKeyUsage`` counts as clientAuth. A CA
  in the chain whose EKU extension lacks clientAuth (and any) restricts the
  whole branch, as Windows' EKU nesting does.
* A certificate that is itself in ``ROOT`` is trusted as it is (a pinned,
  possibly self-signed, client certificate); nothing above it is checked.
* Failures are classified by our own look at the chain (``_diagnose``), not
  by parsing the verifier's error text, which is not a stable API; the text
  is kept for humans.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from ftps7.config.model import ValidationFlags

__all__ = [
    "MAX_CHAIN_DEPTH",
    "MAX_PRESENTED",
    "MIN_RSA_BITS",
    "Reason",
    "RevocationLookup",
    "RevocationState",
    "RevocationStatus",
    "ValidationResult",
    "apply_revocation",
    "build_chain",
    "describe_certificate",
    "revocation_pairs",
    "utc",
    "validate_client_certificate",
]

# Certificates in a path, leaf and anchor included (the verifier's default too).
MAX_CHAIN_DEPTH = 8
# The smallest RSA key accepted, for CAs (the verifier's own rule) and the leaf.
MIN_RSA_BITS = 2048
# At most this many certificates sent by the client are considered: real
# clients send one to three, and each extra one costs signature checks.
MAX_PRESENTED = 16
# Signature checks the diagnosis may spend: a client can send certificates
# that all sign each other, and a refusal must stay cheap.
_DIAGNOSIS_BUDGET = 200


class Reason(enum.StrEnum):
    """Why a client certificate was refused: short, stable codes for logs and tests."""

    UNTRUSTED_ISSUER = "untrusted-issuer"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    BAD_SIGNATURE = "bad-signature"
    INVALID_CHAIN = "invalid-chain"
    NO_CLIENT_AUTH_USAGE = "no-client-auth-usage"
    REVOKED = "revoked"
    REVOCATION_UNKNOWN = "revocation-unknown"


class RevocationState(enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RevocationStatus:
    """What a CRL says about one certificate (or why nothing could be said).

    ``source`` names the CRL used (a file or a URL); ``detail`` says why the
    status is UNKNOWN. ``reason`` is the CRL entry's reason code, if any.
    """

    state: RevocationState
    detail: str = ""
    source: str = ""
    reason: x509.ReasonFlags | None = None
    revocation_date: datetime.datetime | None = None

    @classmethod
    def good(cls, source: str = "") -> RevocationStatus:
        return cls(RevocationState.GOOD, source=source)

    @classmethod
    def revoked(
        cls,
        *,
        source: str = "",
        reason: x509.ReasonFlags | None = None,
        revocation_date: datetime.datetime | None = None,
    ) -> RevocationStatus:
        return cls(
            RevocationState.REVOKED,
            source=source,
            reason=reason,
            revocation_date=revocation_date,
        )

    @classmethod
    def unknown(cls, detail: str) -> RevocationStatus:
        return cls(RevocationState.UNKNOWN, detail=detail)

    @property
    def is_good(self) -> bool:
        return self.state is RevocationState.GOOD

    def describe(self) -> str:
        """One phrase for a log line."""
        if self.state is RevocationState.GOOD:
            return f"not revoked ({self.source})" if self.source else "not revoked"
        if self.state is RevocationState.REVOKED:
            parts = ["revoked"]
            if self.revocation_date is not None:
                parts.append(f"on {self.revocation_date:%Y-%m-%d %H:%M:%SZ}")
            if self.reason is not None:
                parts.append(f"({self.reason.value})")
            if self.source:
                parts.append(f"per {self.source}")
            return " ".join(parts)
        return f"revocation status unknown: {self.detail}"


# The synchronous form of a revocation lookup: (certificate, its issuer) -> status.
RevocationLookup = Callable[[x509.Certificate, x509.Certificate], RevocationStatus]


@dataclass(frozen=True)
class ValidationResult:
    """The verdict on one client certificate.

    ``chain`` is the validated path, leaf first and trust anchor last (empty
    when no path was found). ``subject`` is the certificate a refusal is
    about (the leaf, or the CA that expired, was revoked, ...).
    """

    ok: bool
    leaf: x509.Certificate
    reason: Reason | None = None
    text: str = ""
    chain: tuple[x509.Certificate, ...] = ()
    subject: x509.Certificate | None = None
    revocation: tuple[RevocationStatus, ...] = field(default=())

    @property
    def code(self) -> str:
        """``ok`` or the refusal reason's code."""
        return "ok" if self.reason is None else self.reason.value

    def log_text(self) -> str:
        """The log line: who presented what, and the verdict with its reason.

        Every refusal names the leaf's subject, issuer and serial; when the
        problem is another certificate of the chain, that one is named too.
        """
        line = f"client certificate {describe_certificate(self.leaf)}"
        if self.ok:
            return f"{line}: accepted"
        line = f"{line}: refused, {self.code}: {self.text}"
        if self.subject is not None and self.subject != self.leaf:
            line += f" [certificate concerned: {describe_certificate(self.subject)}]"
        return line


def _printable(text: str) -> str:
    """``text`` safe for one log line: control characters shown as escapes.

    Subjects come from certificates anybody can make, refused ones included;
    a CN with a newline must not forge a second log line.
    """
    return "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
        for ch in text
    )


def _name_text(name: x509.Name) -> str:
    try:
        return _printable(name.rfc4514_string())
    except ValueError:  # pragma: no cover - undecodable attribute values
        return "<unprintable name>"


def describe_certificate(cert: x509.Certificate) -> str:
    """``subject='CN=alice', issuer='CN=Issuing CA', serial=0A1B2C`` for log lines."""
    serial = cert.serial_number
    digits = f"{abs(serial):X}"
    serial_hex = ("-" if serial < 0 else "") + ("0" * (len(digits) % 2)) + digits
    return (
        f"subject='{_name_text(cert.subject)}', issuer='{_name_text(cert.issuer)}', "
        f"serial={serial_hex}"
    )


def utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def _short(cert: x509.Certificate) -> str:
    return f"'{_name_text(cert.subject)}'"


def _when(moment: datetime.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%SZ}"


# --------------------------------------------------------------------------
# Step 1: the chain.


def _require_key_cert_sign(
    policy: verification.Policy, cert: x509.Certificate, ku: x509.KeyUsage | None
) -> None:
    """An issuer whose KeyUsage is present must allow certificate signing (RFC 5280)."""
    if ku is not None and not ku.key_cert_sign:
        raise ValueError("the CA's KeyUsage does not include keyCertSign")


# CAs: any extension may be present (enterprise CAs carry Microsoft ones, and
# many private CAs have no KeyUsage at all, which the Web PKI profile
# refuses), but basicConstraints must say CA (checked by the verifier itself)
# and a KeyUsage, when present, must allow keyCertSign. Leaves: anything;
# the usage checks that matter for client authentication are ours, below, so
# that CertNoUsageCheck can switch them off and refusals say which it was.
# Unknown *critical* extensions are still refused by the verifier.
_CA_POLICY = (
    verification.ExtensionPolicy.permit_all()
    .require_present(x509.BasicConstraints, verification.Criticality.AGNOSTIC, None)
    .may_be_present(x509.KeyUsage, verification.Criticality.AGNOSTIC, _require_key_cert_sign)
)
_EE_POLICY = verification.ExtensionPolicy.permit_all()


def _verifier(
    roots: Sequence[x509.Certificate], now: datetime.datetime
) -> verification.ClientVerifier:
    return (
        verification.PolicyBuilder()
        .store(verification.Store(list(roots)))
        .time(now)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )


def _unique(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    result: list[x509.Certificate] = []
    for cert in certs:
        if cert not in result:
            result.append(cert)
    return result


def _failure(
    leaf: x509.Certificate,
    reason: Reason,
    text: str,
    *,
    subject: x509.Certificate | None = None,
    chain: Sequence[x509.Certificate] = (),
) -> ValidationResult:
    return ValidationResult(
        ok=False,
        leaf=leaf,
        reason=reason,
        text=text,
        chain=tuple(chain),
        subject=subject if subject is not None else leaf,
    )


def build_chain(
    leaf: x509.Certificate,
    presented_chain: Sequence[x509.Certificate],
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    flags: ValidationFlags,
    now: datetime.datetime,
) -> ValidationResult:
    """Step 1: path to a trusted root, validity, constraints and usage; no revocation.

    ``presented_chain`` is what the client sent besides the leaf (the leaf
    itself and duplicates are tolerated); ``roots`` and ``intermediates`` come
    from the store's ``ROOT`` and ``CA`` folders; ``now`` is an aware UTC
    datetime. An ``ok`` result is not final until ``apply_revocation`` (unless
    the caller skips revocation for ``NoRevocationCheck``).
    """
    now = utc(now)
    try:
        return _build_chain(leaf, presented_chain, roots, intermediates, flags, now)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        # cryptography parses extensions and keys lazily and more strictly
        # than OpenSSL did during the handshake: a malformed certificate ends
        # up here, and is refused rather than crashing the check.
        return _failure(
            leaf, Reason.INVALID_CHAIN, f"a certificate of the chain is malformed: {error}"
        )


def _build_chain(
    leaf: x509.Certificate,
    presented_chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    flags: ValidationFlags,
    now: datetime.datetime,
) -> ValidationResult:
    own_pool = _unique(c for c in intermediates if c != leaf)
    if ValidationFlags.CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL in flags:
        pool = own_pool
    else:
        presented = [c for c in presented_chain[:MAX_PRESENTED] if c != leaf]
        pool = _unique([*own_pool, *presented])
    trusted = _unique(roots)
    if not trusted:
        return _failure(
            leaf,
            Reason.UNTRUSTED_ISSUER,
            "no CA is trusted for client certificates: the store's ROOT folder is empty",
        )
    try:
        verified = _verifier(trusted, now).verify(leaf, pool)
    except verification.VerificationError as error:
        return _diagnose(leaf, pool, trusted, now, str(error), presented_chain, flags)
    chain = tuple(verified.chain)
    weak = _weak_key(leaf)
    if weak is not None:
        return _failure(leaf, Reason.INVALID_CHAIN, weak, chain=chain)
    if ValidationFlags.CERT_NO_USAGE_CHECK not in flags:
        problem = _usage_problem(chain)
        if problem is not None:
            text, concerned = problem
            return _failure(leaf, Reason.NO_CLIENT_AUTH_USAGE, text, subject=concerned, chain=chain)
    return ValidationResult(ok=True, leaf=leaf, chain=chain)


def _weak_key(leaf: x509.Certificate) -> str | None:
    """The verifier holds CA keys to RSA >= 2048 bits; the client's own key too."""
    key = leaf.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return (
            f"the certificate's RSA key has {key.key_size} bits; "
            f"at least {MIN_RSA_BITS} are required"
        )
    return None


def _eku_allows_client_auth(cert: x509.Certificate) -> tuple[bool, list[str]]:
    """(allowed, names of the listed usages); no EKU extension allows everything."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True, []
    usages = list(eku)
    allowed = (
        ExtendedKeyUsageOID.CLIENT_AUTH in usages
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages
    )
    return allowed, [getattr(oid, "_name", None) or oid.dotted_string for oid in usages]


def _usage_problem(
    chain: Sequence[x509.Certificate],
) -> tuple[str, x509.Certificate] | None:
    """Why the chain may not be used for client authentication, or None."""
    leaf = chain[0]
    allowed, names = _eku_allows_client_auth(leaf)
    if not allowed:
        return (
            "the certificate's extended key usage ("
            + ", ".join(names)
            + ") does not include client authentication (clientAuth)",
            leaf,
        )
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is not None and not ku.digital_signature:
        return (
            "the certificate's key usage does not include digitalSignature, "
            "which a TLS client key needs",
            leaf,
        )
    for ca in chain[1:]:
        allowed, names = _eku_allows_client_auth(ca)
        if not allowed:
            return (
                f"issuing CA {_short(ca)} is restricted to extended key usages "
                f"({', '.join(names)}) that exclude client authentication",
                ca,
            )
    return None


# --------------------------------------------------------------------------
# Why the verifier said no.


@dataclass
class _Search:
    """What a path search ran into, for the refusal text."""

    paths: list[list[x509.Certificate]] = field(default_factory=list)
    bad_signature: tuple[x509.Certificate, x509.Certificate] | None = None
    unusable_signature: tuple[x509.Certificate, str] | None = None
    dead_end: x509.Certificate | None = None
    dead_end_depth: int = -1
    budget: int = _DIAGNOSIS_BUDGET


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool | str | None:
    """Whether ``issuer`` signed ``child``.

    True or False; None when the names do not even match; a string saying
    why when the signature cannot be checked at all (an algorithm that is not
    accepted, such as SHA-1).
    """
    if child.issuer != issuer.subject:
        return None
    try:
        child.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        oid = child.signature_algorithm_oid
        algorithm = getattr(oid, "_name", None) or oid.dotted_string
        return f"its signature algorithm {algorithm} is not accepted ({error})"
    return True


def _walk(
    path: list[x509.Certificate],
    pool: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    search: _Search,
) -> Iterator[list[x509.Certificate]]:
    """Every signature-correct path from ``path[-1]`` up to a root, ignoring dates."""
    cert = path[-1]
    if cert in roots:
        yield list(path)
        return
    if len(path) >= MAX_CHAIN_DEPTH:
        return
    found_name = False
    for candidate in [*roots, *pool]:
        if candidate in path or candidate.subject != cert.issuer:
            continue
        if search.budget <= 0:
            return
        search.budget -= 1
        signed = _issued_by(cert, candidate)
        if signed is None:
            continue
        found_name = True
        if isinstance(signed, str):
            if search.unusable_signature is None:
                search.unusable_signature = (cert, signed)
            continue
        if not signed:
            if search.bad_signature is None:
                search.bad_signature = (cert, candidate)
            continue
        yield from _walk([*path, candidate], pool, roots, search)
    if not found_name and len(path) > search.dead_end_depth:
        search.dead_end = cert
        search.dead_end_depth = len(path)


def _diagnose(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    now: datetime.datetime,
    verifier_text: str,
    presented_chain: Sequence[x509.Certificate],
    flags: ValidationFlags,
) -> ValidationResult:
    """Turn a verifier refusal into a reason code and a sentence that helps."""
    search = _Search()
    for path in _walk([leaf], pool, roots, search):
        search.paths.append(path)
        if len(search.paths) >= 16:
            break
    if not search.paths:
        if search.bad_signature is not None:
            child, issuer = search.bad_signature
            return _failure(
                leaf,
                Reason.BAD_SIGNATURE,
                f"the signature on {_short(child)} does not verify with the key of "
                f"{_short(issuer)}",
                subject=child,
            )
        if search.unusable_signature is not None:
            child, why = search.unusable_signature
            return _failure(leaf, Reason.INVALID_CHAIN, f"{_short(child)}: {why}", subject=child)
        stuck = search.dead_end or leaf
        text = (
            f"no chain to a trusted root: the issuer '{_name_text(stuck.issuer)}' of "
            f"{_short(stuck)} is neither in ROOT nor in CA"
        )
        if stuck.issuer == stuck.subject:
            text = f"no chain to a trusted root: self-signed {_short(stuck)} is not in ROOT"
        elif ValidationFlags.CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL in flags and any(
            c.subject == stuck.issuer for c in presented_chain
        ):
            text += (
                " (the client sent it, but CertChainCacheOnlyUrlRetrieval uses only "
                "intermediates from the store's CA folder)"
            )
        return _failure(leaf, Reason.UNTRUSTED_ISSUER, text, subject=stuck)
    # A path exists if dates are ignored: report the first date problem on it.
    for path in search.paths:
        for cert in path:
            if now < cert.not_valid_before_utc:
                return _failure(
                    leaf,
                    Reason.NOT_YET_VALID,
                    f"{_short(cert)} is not valid before {_when(cert.not_valid_before_utc)}",
                    subject=cert,
                )
            if now > cert.not_valid_after_utc:
                return _failure(
                    leaf,
                    Reason.EXPIRED,
                    f"{_short(cert)} expired on {_when(cert.not_valid_after_utc)}",
                    subject=cert,
                )
    return _failure(
        leaf,
        Reason.INVALID_CHAIN,
        f"the chain to {_short(search.paths[0][-1])} is not acceptable: {verifier_text}",
    )


# --------------------------------------------------------------------------
# Step 2: revocation.


def revocation_pairs(
    chain: Sequence[x509.Certificate],
) -> list[tuple[x509.Certificate, x509.Certificate]]:
    """(certificate, issuer) for every certificate whose revocation must be checked.

    That is every certificate of the validated chain except the trust anchor
    (a root is trusted by being in ROOT, not by a CRL); a leaf that is itself
    in ROOT has nothing to check.
    """
    return [(chain[i], chain[i + 1]) for i in range(len(chain) - 1)]


def apply_revocation(
    result: ValidationResult, statuses: Sequence[RevocationStatus]
) -> ValidationResult:
    """Step 2: fold the statuses of ``revocation_pairs(result.chain)`` into the verdict.

    Fail closed: a certificate whose status is UNKNOWN (no usable CRL) or
    missing from ``statuses`` refuses the whole chain, as a revoked one does.
    """
    if not result.ok:
        return result
    pairs = revocation_pairs(result.chain)
    statuses = tuple(statuses)
    for index, (cert, _issuer) in enumerate(pairs):
        status = statuses[index] if index < len(statuses) else None
        which = "the certificate" if index == 0 else f"issuing CA {_short(cert)}"
        if status is None:
            return _failure(
                result.leaf,
                Reason.REVOCATION_UNKNOWN,
                f"the revocation status of {which} was not checked",
                subject=cert,
                chain=result.chain,
            )
        if status.state is RevocationState.REVOKED:
            failed = _failure(
                result.leaf,
                Reason.REVOKED,
                f"{which} is {status.describe()}",
                subject=cert,
                chain=result.chain,
            )
            return dataclasses.replace(failed, revocation=statuses)
        if status.state is RevocationState.UNKNOWN:
            failed = _failure(
                result.leaf,
                Reason.REVOCATION_UNKNOWN,
                f"the revocation status of {which} cannot be determined: {status.detail}",
                subject=cert,
                chain=result.chain,
            )
            return dataclasses.replace(failed, revocation=statuses)
    return ValidationResult(ok=True, leaf=result.leaf, chain=result.chain, revocation=statuses)


def validate_client_certificate(
    leaf: x509.Certificate,
    presented_chain: Sequence[x509.Certificate],
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    flags: ValidationFlags,
    now: datetime.datetime,
    revocation: RevocationLookup | None = None,
) -> ValidationResult:
    """The whole check with a synchronous revocation lookup (e.g. a CRL cache).

    ``revocation`` is asked about each (certificate, issuer) of the chain;
    it is not needed with ``NoRevocationCheck``. Without it, and without that
    flag, a chain that needs a revocation check is refused (fail closed).
    The server uses ``ftps7.tls.revocation.check_client_certificate``, which
    may fetch CRLs; this function is its synchronous core.
    """
    result = build_chain(
        leaf,
        presented_chain,
        roots=roots,
        intermediates=intermediates,
        flags=flags,
        now=now,
    )
    if not result.ok or ValidationFlags.NO_REVOCATION_CHECK in flags:
        return result
    statuses: list[RevocationStatus] = []
    for cert, issuer in revocation_pairs(result.chain):
        if revocation is None:
            status = RevocationStatus.unknown("no revocation source was given")
        else:
            status = revocation(cert, issuer)
        statuses.append(status)
        if not status.is_good:
            break
    return apply_revocation(result, statuses)
