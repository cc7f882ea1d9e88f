"""Self-signed certificates as IIS Manager makes them, and ``autoCreate``."""

from __future__ import annotations

import datetime
import ipaddress
import socket
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ftps7.tls.certgen import ensure_self_signed, new_self_signed
from ftps7.tls.store import CertificateStore

E = TypeVar("E", bound=x509.ExtensionType)


def ext(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(kind)


@pytest.mark.parametrize(
    ("key_type", "key_class", "size"),
    [
        ("ecdsa-p256", ec.EllipticCurvePrivateKey, 256),
        ("rsa-2048", rsa.RSAPrivateKey, 2048),
        ("rsa-3072", rsa.RSAPrivateKey, 3072),
    ],
)
def test_key_types_and_profile(key_type: str, key_class: type, size: int) -> None:
    cert, key = new_self_signed(
        "My FTP Certificate", ["ftp.example.com"], ["192.0.2.10"], key_type=key_type, days=30
    )

    assert isinstance(key, key_class) and key.key_size == size
    assert cert.public_key() == key.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "My FTP Certificate"
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)  # really self-signed

    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ftp.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.10")]
    assert ext(cert, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH]
    )
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert usage.value.key_encipherment is isinstance(key, rsa.RSAPrivateKey)
    assert not usage.value.key_cert_sign
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest
    assert 0 < cert.serial_number < 2**128

    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=30) <= lifetime <= datetime.timedelta(days=30, minutes=10)


def test_defaults_name_this_host_and_loopback() -> None:
    cert, _ = new_self_signed("test")
    san = ext(cert, x509.SubjectAlternativeName).value
    dns = san.get_values_for_type(x509.DNSName)
    assert "localhost" in dns
    assert socket.gethostname().lower() in dns
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime >= datetime.timedelta(days=365)


def test_explicit_names_replace_the_defaults() -> None:
    cert, _ = new_self_signed("x", dns_names=["FTP.Example.com.", "ftp.example.com"])
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ftp.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == []


def test_serials_are_random() -> None:
    serials = {new_self_signed("x", ["a.example"])[0].serial_number for _ in range(4)}
    assert len(serials) == 4


def test_not_yet_valid_is_avoided() -> None:
    now = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
    cert, _ = new_self_signed("x", ["a.example"], now=now)
    assert cert.not_valid_before_utc < now


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_type": "dsa-1024"}, "key type"),
        ({"days": 0}, "days"),
        ({"dns_names": ["bad name"]}, "DNS"),
        ({"ip_addresses": ["300.1.1.1"]}, "300.1.1.1"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        new_self_signed("x", **kwargs)


def test_ensure_self_signed_creates_once(tmp_path: Path) -> None:
    store = CertificateStore(str(tmp_path / "certs"))

    first = ensure_self_signed(store, "ftps7 autoCreate")
    second = ensure_self_signed(store, "ftps7 autoCreate")

    assert first.thumbprint == second.thumbprint
    assert first.has_key and first.key_type == "ecdsa-p256"
    assert (tmp_path / "certs" / "MY" / "ftps7 autoCreate.pem").is_file()
    assert store.find("MY", first.thumbprint) is not None


def test_ensure_self_signed_uses_an_existing_certificate(tmp_path: Path) -> None:
    store = CertificateStore(str(tmp_path))
    cert, key = new_self_signed("Mine", ["ftp.example.com"])
    existing = store.add("MY", cert, (), key, "Mine")
    assert ensure_self_signed(store, "mine").thumbprint == existing.thumbprint
