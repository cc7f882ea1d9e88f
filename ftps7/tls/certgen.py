"""IIS Manager's "Create Self-Signed Certificate", for ``ftps7 cert new`` and ``autoCreate``.

A self-signed certificate is what an administrator uses to try FTPS before a
CA-issued one arrives, so it must work with strict modern clients out of the
box: serverAuth EKU, the host names in the SAN (clients ignore the CN), a
random 128-bit serial, CA:false, and SKI/AKI so chain builders are happy.
ECDSA P-256 is the default because signing is what a TLS server pays for at
every full handshake, and P-256 signs many times faster than RSA-2048.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import socket
from collections.abc import Iterable, Sequence
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ftps7.tls.store import (
    MY,
    CertificateStore,
    CertificateStoreError,
    StoredCertificate,
)

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_KEY_TYPE",
    "KEY_TYPES",
    "default_dns_names",
    "ensure_self_signed",
    "generate_key",
    "new_self_signed",
]

KEY_TYPES = ("ecdsa-p256", "rsa-2048", "rsa-3072")
DEFAULT_KEY_TYPE = "ecdsa-p256"
DEFAULT_DAYS = 365
DEFAULT_IP_ADDRESSES = ("127.0.0.1", "::1")
# Issue slightly in the past so a client whose clock is a little behind
# does not reject a certificate made a second ago as "not yet valid".
_BACKDATE = datetime.timedelta(minutes=5)

SelfSignedKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_T = TypeVar("_T")


def generate_key(key_type: str = DEFAULT_KEY_TYPE) -> SelfSignedKey:
    """A new private key of one of ``KEY_TYPES``."""
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def default_dns_names() -> list[str]:
    """The machine's host name (and FQDN when it differs) plus ``localhost``."""
    names: list[str] = []
    for candidate in (socket.gethostname(), socket.getfqdn()):
        candidate = candidate.strip().rstrip(".").lower()
        if candidate and candidate.isascii() and candidate not in names:
            names.append(candidate)
    if "localhost" not in names:
        names.append("localhost")
    return names


def new_self_signed(
    name: str,
    dns_names: Sequence[str] | None = None,
    ip_addresses: Sequence[str | ipaddress.IPv4Address | ipaddress.IPv6Address] | None = None,
    key_type: str = DEFAULT_KEY_TYPE,
    days: int = DEFAULT_DAYS,
    *,
    now: datetime.datetime | None = None,
) -> tuple[x509.Certificate, SelfSignedKey]:
    """Make a self-signed server certificate whose CN is ``name``.

    When neither ``dns_names`` nor ``ip_addresses`` is given, the SAN holds
    the host name, ``localhost``, 127.0.0.1 and ::1 (what a local test
    needs); when either is given, the SAN holds exactly what was given.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if not name.strip():
        raise ValueError("the certificate name must not be empty")
    if dns_names is None and ip_addresses is None:
        dns_names = default_dns_names()
        ip_addresses = list(DEFAULT_IP_ADDRESSES)
    dns_list = _unique(d.strip().rstrip(".").lower() for d in (dns_names or ()))
    ips = _unique(ipaddress.ip_address(ip) for ip in (ip_addresses or ()))
    for dns in dns_list:
        if not dns or not dns.isascii() or any(ch.isspace() for ch in dns):
            raise ValueError(f"invalid DNS name {dns!r} (use the A-label form for IDNs)")

    key = generate_key(key_type)
    public_key = key.public_key()
    start = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    san: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_list]
    san += [x509.IPAddress(ip) for ip in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(_random_serial())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(key, hashes.SHA256()), key


def ensure_self_signed(
    store: CertificateStore,
    name: str,
    *,
    key_type: str = DEFAULT_KEY_TYPE,
    days: int = DEFAULT_DAYS,
) -> StoredCertificate:
    """The certificate stored as ``MY/<name>.pem``, created (self-signed) if absent.

    Used for ``<certificateStore autoCreate="NAME">``. Several worker
    processes may start at once: whoever loses the race to create the files
    reads the winner's certificate instead of failing.
    """
    existing = store.by_name(MY, name)
    if existing is not None:
        return existing
    cert, key = new_self_signed(name, key_type=key_type, days=days)
    try:
        return store.add(MY, cert, (), key, name)
    except CertificateStoreError:
        winner = store.by_name(MY, name)
        if winner is None:
            raise
        return winner


def _random_serial() -> int:
    """A positive, non-zero 128-bit random serial (RFC 5280 allows up to 20 octets)."""
    while True:
        serial = secrets.randbits(128)
        if serial:
            return serial


def _unique(items: Iterable[_T]) -> list[_T]:
    result: list[_T] = []
    for item in items:
        if item not in result:
            result.append(item)
    return result
