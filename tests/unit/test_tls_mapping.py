"""altSecurityIdentities strings and the UPN, against certificates with known fields."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ftps7.config.model import CertificateMappingMethod as M
from ftps7.tls.mapping import ad_dn, mapping_strings, upn
from tests.pki import Issued, make_ca, make_client, make_leaf, name, upn_other_name

SKI = bytes.fromhex("c1bc0123456789abcdef0011223344556677aabb")


@pytest.fixture(scope="module")
def issuing_ca() -> Issued:
    root = make_ca("Example Root CA")
    return make_ca(subject=name("Example Issuing CA", dcs=("com", "example")), issuer=root)


@pytest.fixture(scope="module")
def alice(issuing_ca: Issued) -> Issued:
    return make_client(
        issuing_ca,
        subject=name("alice", dcs=("com", "example")),
        serial=0x0A0B0C0D0E,
        ski=SKI,
        emails=("alice@example.com", "a.smith@example.com"),
        upn="alice@example.com",
    )


def test_issuer_serial_in_ad_order_with_reversed_serial(alice: Issued) -> None:
    values = mapping_strings(alice.cert)[M.ISSUER_SERIAL]
    assert values[0] == "X509:<I>DC=com,DC=example,CN=Example Issuing CA<SR>0e0d0c0b0a"
    assert values[1] == "X509:<I>DC=com,DC=example,CN=Example Issuing CA<SR>0a0b0c0d0e"
    assert len(values) == 2


def test_serial_with_high_bit_offers_sign_byte_variants(issuing_ca: Issued) -> None:
    cert = make_client(issuing_ca, serial=0x8001).cert  # DER INTEGER content: 00 80 01
    serials = [v.split("<SR>")[1] for v in mapping_strings(cert)[M.ISSUER_SERIAL]]
    assert serials == ["018000", "008001", "0180", "8001"]


def test_ski_and_sha1_public_key(alice: Issued) -> None:
    strings = mapping_strings(alice.cert)
    assert strings[M.SKI] == ["X509:<SKI>" + SKI.hex()]

    public = alice.cert.public_key()
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert strings[M.SHA1_PUBLIC_KEY] == [
        "X509:<SHA1-PUKEY>" + hashlib.sha1(point).hexdigest(),  # noqa: S324
        "X509:<SHA1-PUKEY>" + hashlib.sha1(spki).hexdigest(),  # noqa: S324
    ]


def test_weak_forms(alice: Issued) -> None:
    strings = mapping_strings(alice.cert)
    assert strings[M.ISSUER_SUBJECT] == [
        "X509:<I>DC=com,DC=example,CN=Example Issuing CA<S>DC=com,DC=example,CN=alice"
    ]
    assert strings[M.SUBJECT] == ["X509:<S>DC=com,DC=example,CN=alice"]
    assert strings[M.RFC822] == [
        "X509:<RFC822>alice@example.com",
        "X509:<RFC822>a.smith@example.com",
    ]


def test_every_string_method_is_a_key_and_hex_is_lower_case(issuing_ca: Issued) -> None:
    cert = make_client(issuing_ca, upn=None, emails=()).cert
    strings = mapping_strings(cert)
    assert set(strings) == {
        M.ISSUER_SERIAL, M.SKI, M.SHA1_PUBLIC_KEY, M.ISSUER_SUBJECT, M.SUBJECT, M.RFC822
    }
    assert strings[M.RFC822] == []
    for value in strings[M.ISSUER_SERIAL] + strings[M.SKI] + strings[M.SHA1_PUBLIC_KEY]:
        tail = value.rsplit(">", 1)[1]
        assert tail == tail.lower()


def test_no_ski_extension_means_no_ski_string(issuing_ca: Issued) -> None:
    from cryptography.hazmat.primitives import hashes

    from tests.pki import make_key

    key = make_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("bare"))
        .issuer_name(issuing_ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(issuing_ca.cert.not_valid_before_utc)
        .not_valid_after(issuing_ca.cert.not_valid_after_utc)
        .sign(issuing_ca.key, hashes.SHA256())
    )
    assert mapping_strings(cert)[M.SKI] == []
    assert upn(cert) is None


def test_dn_rendering_cryptoapi_and_rfc4514() -> None:
    dn = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Washington")]
            ),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc.")]
            ),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IT"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Bob"),
                ]
            ),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.EMAIL_ADDRESS, "bob@example.com")]
            ),
        ]
    )
    assert ad_dn(dn) == 'C=US,S=Washington,O="Example, Inc.",OU=IT+CN=Bob,E=bob@example.com'
    assert ad_dn(dn, style="rfc4514") == (
        "C=US,S=Washington,O=Example\\, Inc.,OU=IT+CN=Bob,E=bob@example.com"
    )


def test_quoted_dn_offers_the_rfc4514_spelling_too(issuing_ca: Issued) -> None:
    ca = make_ca(subject=name("Issuing CA", org="Example, Inc."))
    cert = make_client(ca, serial=1).cert
    values = mapping_strings(cert)[M.ISSUER_SERIAL]
    assert values == [
        'X509:<I>O="Example, Inc.",CN=Issuing CA<SR>01',
        "X509:<I>O=Example\\, Inc.,CN=Issuing CA<SR>01",
    ]


def test_upn_from_other_name(alice: Issued) -> None:
    assert upn(alice.cert) == "alice@example.com"


def test_upn_long_and_non_ascii(issuing_ca: Issued) -> None:
    long_upn = "j" * 150 + "ürgen@example.com"  # > 127 bytes: long-form DER length
    cert = make_client(issuing_ca, upn=long_upn).cert
    assert upn(cert) == long_upn


def test_upn_absent_or_malformed(issuing_ca: Issued) -> None:
    assert upn(make_client(issuing_ca, upn=None).cert) is None
    assert upn(make_leaf(issuing_ca).cert) is None  # no otherName at all

    other = upn_other_name("x@example.com")
    assert other.value[0] == 0x0C  # UTF8String, the form AD CS writes
    bogus = x509.OtherName(other.type_id, b"\x04\x03abc")  # an OCTET STRING
    cert = _with_san(issuing_ca, [bogus])
    assert upn(cert) is None


def _with_san(ca: Issued, names: list[x509.GeneralName]) -> x509.Certificate:
    from cryptography.hazmat.primitives import hashes

    from tests.pki import make_key

    key = make_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name("odd"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(ca.cert.not_valid_before_utc)
        .not_valid_after(ca.cert.not_valid_after_utc)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
