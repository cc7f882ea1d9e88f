"""Client-certificate chain validation (no revocation I/O): paths, dates, usages, verdicts."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU

from ftps7.config.model import ValidationFlags as F
from ftps7.tls.clientcert import (
    Reason,
    RevocationStatus,
    ValidationResult,
    apply_revocation,
    build_chain,
    describe_certificate,
    revocation_pairs,
    validate_client_certificate,
)
from tests.pki import (
    Issued,
    key_usage,
    make_ca_cert,
    make_cert,
    make_client_cert,
    make_key,
    name,
    resign_sha1,
)

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def root() -> Issued:
    return make_ca_cert(None, "Test Root CA")


@pytest.fixture(scope="module")
def issuing(root: Issued) -> Issued:
    return make_ca_cert(root, "Test Issuing CA")


@pytest.fixture(scope="module")
def alice(issuing: Issued) -> Issued:
    return make_client_cert(issuing, "alice")


def check(
    leaf: Issued,
    root: Issued,
    *,
    sent: tuple[Issued, ...] = (),
    ca_folder: tuple[Issued, ...] = (),
    flags: F = F.NONE,
    now: datetime.datetime = NOW,
    roots: tuple[Issued, ...] | None = None,
) -> ValidationResult:
    return build_chain(
        leaf.cert,
        [c.cert for c in sent],
        roots=[c.cert for c in (roots if roots is not None else (root,))],
        intermediates=[c.cert for c in ca_folder],
        flags=flags,
        now=now,
    )


# ---------------------------------------------------------------- good chains


def test_intermediate_sent_by_client(alice: Issued, issuing: Issued, root: Issued) -> None:
    result = check(alice, root, sent=(issuing,))
    assert result.ok, result.text
    assert result.reason is None and result.code == "ok"
    assert result.chain == (alice.cert, issuing.cert, root.cert)


def test_intermediate_from_ca_folder(alice: Issued, issuing: Issued, root: Issued) -> None:
    result = check(alice, root, ca_folder=(issuing,))
    assert result.ok, result.text
    assert result.chain == (alice.cert, issuing.cert, root.cert)


def test_client_may_send_its_leaf_and_the_root_too(
    alice: Issued, issuing: Issued, root: Issued
) -> None:
    result = check(alice, root, sent=(alice, issuing, root, issuing))
    assert result.ok, result.text
    assert result.chain == (alice.cert, issuing.cert, root.cert)


def test_leaf_issued_directly_by_root(root: Issued) -> None:
    leaf = make_client_cert(root, "bob")
    result = check(leaf, root)
    assert result.ok, result.text
    assert result.chain == (leaf.cert, root.cert)


def test_ca_without_key_usage_is_accepted() -> None:
    """Many private CAs carry no KeyUsage; the Web PKI profile's refusal is relaxed."""
    root = make_cert(None, "Bare Root", ca=True)
    leaf = make_client_cert(root)
    assert check(leaf, root).ok


def test_pinned_self_signed_certificate_in_root() -> None:
    pinned = make_cert(None, "pinned client", ca=None, eku=(EKU.CLIENT_AUTH,))
    assert check(pinned, pinned).ok
    assert check(pinned, pinned).chain == (pinned.cert,)


# ---------------------------------------------------------------- trust


def test_missing_intermediate_is_untrusted(alice: Issued, root: Issued) -> None:
    result = check(alice, root)
    assert not result.ok
    assert result.reason is Reason.UNTRUSTED_ISSUER
    assert "Test Issuing CA" in result.text


def test_other_root_is_untrusted(alice: Issued, issuing: Issued) -> None:
    other = make_ca_cert(None, "Some Other Root")
    result = check(alice, other, sent=(issuing,))
    assert result.reason is Reason.UNTRUSTED_ISSUER
    assert "Test Root CA" in result.text
    assert result.subject == issuing.cert


def test_self_signed_not_in_root_is_untrusted(root: Issued) -> None:
    stranger = make_cert(None, "stranger", ca=None, eku=(EKU.CLIENT_AUTH,))
    result = check(stranger, root)
    assert result.reason is Reason.UNTRUSTED_ISSUER
    assert "self-signed" in result.text


def test_empty_root_store_trusts_nothing(alice: Issued, issuing: Issued, root: Issued) -> None:
    result = check(alice, root, sent=(issuing,), roots=())
    assert result.reason is Reason.UNTRUSTED_ISSUER
    assert "ROOT" in result.text


def test_intermediate_in_root_folder_is_a_trust_anchor(
    alice: Issued, issuing: Issued, root: Issued
) -> None:
    result = check(alice, root, roots=(issuing,))
    assert result.ok, result.text
    assert result.chain == (alice.cert, issuing.cert)


def test_cache_only_url_retrieval_ignores_intermediates_sent_by_client(
    alice: Issued, issuing: Issued, root: Issued
) -> None:
    flags = F.CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL
    refused = check(alice, root, sent=(issuing,), flags=flags)
    assert refused.reason is Reason.UNTRUSTED_ISSUER
    assert "CertChainCacheOnlyUrlRetrieval" in refused.text
    # The same intermediate from the store's CA folder is fine.
    assert check(alice, root, sent=(issuing,), ca_folder=(issuing,), flags=flags).ok


# ---------------------------------------------------------------- signatures, structure


def test_forged_signature(issuing: Issued, root: Issued) -> None:
    forged = make_client_cert(issuing, "mallory", signing_key=make_key())
    result = check(forged, root, sent=(issuing,))
    assert result.reason is Reason.BAD_SIGNATURE
    assert result.subject == forged.cert


def test_issuer_that_is_not_a_ca(root: Issued) -> None:
    not_ca = make_cert(root, "Not A CA", ca=False, key_usage=key_usage(key_cert_sign=True))
    leaf = make_client_cert(not_ca)
    result = check(leaf, root, sent=(not_ca,))
    assert not result.ok
    assert result.reason is Reason.INVALID_CHAIN


def test_issuer_without_basic_constraints(root: Issued) -> None:
    no_bc = make_cert(root, "No BC", ca=None)
    leaf = make_client_cert(no_bc)
    assert check(leaf, root, sent=(no_bc,)).reason is Reason.INVALID_CHAIN


def test_issuer_whose_key_usage_forbids_cert_signing(root: Issued) -> None:
    bad = make_ca_cert(root, "Signing-only CA", key_usage=key_usage(digital_signature=True))
    leaf = make_client_cert(bad)
    result = check(leaf, root, sent=(bad,))
    assert result.reason is Reason.INVALID_CHAIN
    assert "keyCertSign" in result.text


def test_path_length_constraint(root: Issued) -> None:
    constrained = make_ca_cert(None, "Constrained Root", path_length=0)
    sub = make_ca_cert(constrained, "Sub CA")
    leaf = make_client_cert(sub)
    assert check(leaf, constrained, sent=(sub,)).reason is Reason.INVALID_CHAIN


def test_unknown_critical_extension_is_refused(issuing: Issued, root: Issued) -> None:
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    leaf = make_client_cert(issuing, extensions=((odd, True),))
    assert check(leaf, root, sent=(issuing,)).reason is Reason.INVALID_CHAIN
    tolerated = make_client_cert(issuing, extensions=((odd, False),))
    assert check(tolerated, root, sent=(issuing,)).ok


# ---------------------------------------------------------------- dates


def test_expired_leaf(alice: Issued, issuing: Issued, root: Issued) -> None:
    result = check(alice, root, sent=(issuing,), now=NOW + 400 * DAY)
    assert result.reason is Reason.EXPIRED
    assert result.subject == alice.cert
    assert "expired on" in result.text


def test_leaf_that_expired_yesterday(issuing: Issued, root: Issued) -> None:
    old = make_client_cert(issuing, not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    assert check(old, root, sent=(issuing,)).reason is Reason.EXPIRED


def test_not_yet_valid_leaf(issuing: Issued, root: Issued) -> None:
    future = make_client_cert(issuing, not_before=NOW + DAY, not_after=NOW + 30 * DAY)
    result = check(future, root, sent=(issuing,))
    assert result.reason is Reason.NOT_YET_VALID
    assert result.subject == future.cert


def test_expired_intermediate_names_the_intermediate(root: Issued) -> None:
    old_ca = make_ca_cert(root, "Old Issuing CA", not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    leaf = make_client_cert(old_ca)
    result = check(leaf, root, sent=(old_ca,))
    assert result.reason is Reason.EXPIRED
    assert result.subject == old_ca.cert
    assert "Old Issuing CA" in result.text


def test_expired_root() -> None:
    old_root = make_ca_cert(None, "Old Root", not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    leaf = make_client_cert(old_root, not_before=NOW - 2 * DAY)
    result = check(leaf, old_root)
    assert result.reason is Reason.EXPIRED
    assert result.subject == old_root.cert


def test_renewed_intermediate_with_same_name_and_key_is_found(root: Issued) -> None:
    """Of two intermediates with one name, the valid one completes the chain."""
    key = make_key()
    subject = name("Rolling CA")
    renewed_old = Issued(_issue_ca(subject, key, root, NOW - 30 * DAY, NOW - DAY), key)
    renewed_new = Issued(_issue_ca(subject, key, root, NOW - DAY, NOW + 30 * DAY), key)
    leaf = make_client_cert(renewed_new)
    result = check(leaf, root, sent=(renewed_old, renewed_new))
    assert result.ok, result.text
    assert result.chain[1] == renewed_new.cert


def _issue_ca(
    subject: x509.Name,
    key: object,
    issuer: Issued,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.Certificate:
    from cryptography.hazmat.primitives import hashes

    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    return builder.sign(issuer.key, hashes.SHA256())


# ---------------------------------------------------------------- usage


def test_server_auth_only_leaf_is_refused(issuing: Issued, root: Issued) -> None:
    server_only = make_client_cert(issuing, "ftp.example.com", eku=(EKU.SERVER_AUTH,))
    result = check(server_only, root, sent=(issuing,))
    assert result.reason is Reason.NO_CLIENT_AUTH_USAGE
    assert "serverAuth" in result.text
    assert result.chain  # the chain itself was fine


def test_server_auth_only_leaf_accepted_with_no_usage_check(issuing: Issued, root: Issued) -> None:
    server_only = make_client_cert(issuing, "ftp.example.com", eku=(EKU.SERVER_AUTH,))
    assert check(server_only, root, sent=(issuing,), flags=F.CERT_NO_USAGE_CHECK).ok


def test_leaf_without_eku_is_valid_for_client_auth(issuing: Issued, root: Issued) -> None:
    no_eku = make_client_cert(issuing, eku=None)
    assert check(no_eku, root, sent=(issuing,)).ok


def test_any_extended_key_usage_counts(issuing: Issued, root: Issued) -> None:
    any_eku = make_client_cert(issuing, eku=(EKU.ANY_EXTENDED_KEY_USAGE,))
    assert check(any_eku, root, sent=(issuing,)).ok


def test_client_auth_among_other_usages(issuing: Issued, root: Issued) -> None:
    several = make_client_cert(
        issuing,
        eku=(
            EKU.EMAIL_PROTECTION,
            EKU.CLIENT_AUTH,
            x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.2"),
        ),
    )
    assert check(several, root, sent=(issuing,)).ok


def test_key_usage_without_digital_signature(issuing: Issued, root: Issued) -> None:
    encipher_only = make_client_cert(issuing, key_usage=key_usage(key_encipherment=True))
    result = check(encipher_only, root, sent=(issuing,))
    assert result.reason is Reason.NO_CLIENT_AUTH_USAGE
    assert "digitalSignature" in result.text
    assert check(encipher_only, root, sent=(issuing,), flags=F.CERT_NO_USAGE_CHECK).ok


def test_leaf_without_key_usage_is_fine(issuing: Issued, root: Issued) -> None:
    assert check(make_client_cert(issuing, key_usage=None), root, sent=(issuing,)).ok


def test_issuing_ca_restricted_to_server_auth(root: Issued) -> None:
    tls_ca = make_ca_cert(root, "TLS Server CA", eku=(EKU.SERVER_AUTH,))
    leaf = make_client_cert(tls_ca)
    result = check(leaf, root, sent=(tls_ca,))
    assert result.reason is Reason.NO_CLIENT_AUTH_USAGE
    assert result.subject == tls_ca.cert
    assert check(leaf, root, sent=(tls_ca,), flags=F.CERT_NO_USAGE_CHECK).ok


# ---------------------------------------------------------------- revocation folding


def test_revocation_pairs_skip_the_root(alice: Issued, issuing: Issued, root: Issued) -> None:
    chain = check(alice, root, sent=(issuing,)).chain
    assert revocation_pairs(chain) == [(alice.cert, issuing.cert), (issuing.cert, root.cert)]
    assert revocation_pairs(chain[:1]) == []


class Lookup:
    """A synchronous revocation source: statuses by certificate, calls recorded."""

    def __init__(self, statuses: dict[x509.Certificate, RevocationStatus] | None = None) -> None:
        self.statuses = statuses or {}
        self.calls: list[tuple[x509.Certificate, x509.Certificate]] = []

    def __call__(self, cert: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        self.calls.append((cert, issuer))
        return self.statuses.get(cert, RevocationStatus.good("test"))


def validate(
    leaf: Issued, issuing: Issued, root: Issued, lookup: Lookup | None, flags: F = F.NONE
) -> ValidationResult:
    return validate_client_certificate(
        leaf.cert,
        [issuing.cert],
        roots=[root.cert],
        intermediates=[],
        flags=flags,
        now=NOW,
        revocation=lookup,
    )


def test_every_certificate_but_the_root_is_checked(
    alice: Issued, issuing: Issued, root: Issued
) -> None:
    lookup = Lookup()
    result = validate(alice, issuing, root, lookup)
    assert result.ok, result.text
    assert lookup.calls == [(alice.cert, issuing.cert), (issuing.cert, root.cert)]
    assert len(result.revocation) == 2


def test_revoked_leaf(alice: Issued, issuing: Issued, root: Issued) -> None:
    when = NOW - DAY
    lookup = Lookup(
        {
            alice.cert: RevocationStatus.revoked(
                source="CRL/issuing.crl",
                reason=x509.ReasonFlags.key_compromise,
                revocation_date=when,
            )
        }
    )
    result = validate(alice, issuing, root, lookup)
    assert result.reason is Reason.REVOKED
    assert "keyCompromise" in result.text and "CRL/issuing.crl" in result.text


def test_revoked_intermediate_names_it(alice: Issued, issuing: Issued, root: Issued) -> None:
    lookup = Lookup({issuing.cert: RevocationStatus.revoked(source="root.crl")})
    result = validate(alice, issuing, root, lookup)
    assert result.reason is Reason.REVOKED
    assert result.subject == issuing.cert
    assert "Test Issuing CA" in result.text


def test_unknown_status_fails_closed(alice: Issued, issuing: Issued, root: Issued) -> None:
    lookup = Lookup({alice.cert: RevocationStatus.unknown("CRL server unreachable")})
    result = validate(alice, issuing, root, lookup)
    assert result.reason is Reason.REVOCATION_UNKNOWN
    assert "CRL server unreachable" in result.text


def test_no_revocation_source_fails_closed(alice: Issued, issuing: Issued, root: Issued) -> None:
    assert validate(alice, issuing, root, None).reason is Reason.REVOCATION_UNKNOWN


def test_no_revocation_check_skips_the_lookup(alice: Issued, issuing: Issued, root: Issued) -> None:
    lookup = Lookup({alice.cert: RevocationStatus.revoked()})
    result = validate(alice, issuing, root, lookup, flags=F.NO_REVOCATION_CHECK)
    assert result.ok
    assert lookup.calls == []


def test_chain_failure_is_not_sent_to_revocation(issuing: Issued) -> None:
    other_root = make_ca_cert(None, "Unrelated Root")
    lookup = Lookup()
    leaf = make_client_cert(issuing)
    result = validate(leaf, issuing, other_root, lookup)
    assert result.reason is Reason.UNTRUSTED_ISSUER
    assert lookup.calls == []


def test_apply_revocation_with_missing_status_fails_closed(
    alice: Issued, issuing: Issued, root: Issued
) -> None:
    chain_ok = check(alice, root, sent=(issuing,))
    assert apply_revocation(chain_ok, [RevocationStatus.good()]).reason is (
        Reason.REVOCATION_UNKNOWN
    )
    assert apply_revocation(chain_ok, [RevocationStatus.good()] * 2).ok


# ---------------------------------------------------------------- log lines


def test_describe_certificate_has_subject_issuer_and_serial(issuing: Issued) -> None:
    cert = make_client_cert(issuing, "carol", serial=0xABC)
    text = describe_certificate(cert.cert)
    assert "subject='CN=carol'" in text
    assert "issuer='CN=Test Issuing CA'" in text
    assert "serial=0ABC" in text


def test_describe_certificate_escapes_control_characters(issuing: Issued) -> None:
    sneaky = make_client_cert(issuing, subject=name("eve\nrefused: forged line"))
    text = describe_certificate(sneaky.cert)
    assert "\n" not in text
    assert "\\x0a" in text


def test_refusal_log_line(alice: Issued, issuing: Issued, root: Issued) -> None:
    line = check(alice, root, sent=(issuing,), now=NOW + 400 * DAY).log_text()
    assert "subject='CN=alice'" in line
    assert "issuer='CN=Test Issuing CA'" in line
    digits = f"{alice.cert.serial_number:X}"
    assert f"serial={digits.zfill(len(digits) + len(digits) % 2)}" in line
    assert "refused, expired" in line


def test_refusal_log_line_names_the_ca_concerned(root: Issued) -> None:
    old_ca = make_ca_cert(root, "Old CA", not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    line = check(make_client_cert(old_ca), root, sent=(old_ca,)).log_text()
    assert "certificate concerned: subject='CN=Old CA'" in line


def test_accepted_log_line(alice: Issued, issuing: Issued, root: Issued) -> None:
    assert check(alice, root, sent=(issuing,)).log_text().endswith(": accepted")


def test_naive_now_is_taken_as_utc(alice: Issued, issuing: Issued, root: Issued) -> None:
    assert check(alice, root, sent=(issuing,), now=NOW.replace(tzinfo=None)).ok
    naive_future = (NOW + 400 * DAY).replace(tzinfo=None)
    assert check(alice, root, sent=(issuing,), now=naive_future).reason is Reason.EXPIRED


def test_sha1_signature_is_refused() -> None:
    rsa_root = make_ca_cert(None, "RSA Root", key_type="rsa-2048")
    modern = make_client_cert(rsa_root, "legacy")
    assert check(modern, rsa_root).ok
    legacy = Issued(resign_sha1(modern.cert, rsa_root.key), modern.key)  # type: ignore[arg-type]
    result = check(legacy, rsa_root)
    assert result.reason is Reason.INVALID_CHAIN
    assert "sha1WithRSAEncryption" in result.text


def test_short_rsa_client_key_is_refused(issuing: Issued, root: Issued) -> None:
    weak = make_client_cert(issuing, key_type="rsa-1024")
    result = check(weak, root, sent=(issuing,))
    assert result.reason is Reason.INVALID_CHAIN
    assert "1024 bits" in result.text
    assert check(make_client_cert(issuing, key_type="rsa-2048"), root, sent=(issuing,)).ok


def test_malformed_extension_is_refused_not_raised(root: Issued) -> None:
    from cryptography.x509.oid import ExtensionOID

    garbage = x509.UnrecognizedExtension(ExtensionOID.EXTENDED_KEY_USAGE, b"\x04\x02zz")
    broken = make_cert(root, "broken", eku=None, extensions=((garbage, False),))
    result = check(broken, root)
    assert result.reason is Reason.INVALID_CHAIN
    assert "malformed" in result.text
