"""A tiny in-memory PKI for tests: CAs, server leaves, client certificates.

Every test that needs certificates builds them here instead of shipping PEM
fixtures, so expiry never breaks the suite and each test states the exact
fields it depends on (serial, issuer DN, SKI, UPN, e-mail SANs).

Import it as ``from tests.pki import ...`` (tests/ is a namespace package; the
test modules put the repository root on ``sys.path`` when pytest has not).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")

_NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def name(self) -> x509.Name:
        return self.cert.subject

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return key_pem(self.key)


def make_key(key_type: str = "ecdsa-p256") -> PrivateKey:
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise ValueError(key_type)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def name(common_name: str, *, dcs: Sequence[str] = (), org: str | None = None) -> x509.Name:
    """A DN in X.500 (encoding) order: DC=com, DC=example, [O=...], CN=..."""
    attributes = [x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc) for dc in dcs]
    if org is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def upn_other_name(upn: str) -> x509.OtherName:
    """The Microsoft UPN SAN: otherName 1.3.6.1.4.1.311.20.2.3 holding a UTF8String."""
    raw = upn.encode("utf-8")
    return x509.OtherName(UPN_OID, b"\x0c" + _der_length(len(raw)) + raw)


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def make_ca(
    common_name: str = "Example Root CA",
    *,
    subject: x509.Name | None = None,
    issuer: Issued | None = None,
    key_type: str = "ecdsa-p256",
    serial: int | None = None,
) -> Issued:
    """A root CA (``issuer=None``) or an intermediate signed by ``issuer``."""
    key = make_key(key_type)
    subject = subject or name(common_name)
    signer = issuer.key if issuer is not None else key
    issuer_name = issuer.cert.subject if issuer is not None else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(days=1))
        .not_valid_after(_NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_leaf(
    ca: Issued,
    common_name: str = "ftp.example.com",
    *,
    subject: x509.Name | None = None,
    dns_names: Iterable[str] = ("ftp.example.com",),
    ip_addresses: Iterable[str] = (),
    emails: Iterable[str] = (),
    upn: str | None = None,
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
    key_type: str = "ecdsa-p256",
    serial: int | None = None,
    ski: bytes | None = None,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Issued:
    """An end-entity certificate signed by ``ca``; every mapping-relevant field settable."""
    key = make_key(key_type)
    general_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    general_names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]
    general_names += [x509.RFC822Name(e) for e in emails]
    if upn is not None:
        general_names.append(upn_other_name(upn))
    ski_ext = (
        x509.SubjectKeyIdentifier(ski)
        if ski is not None
        else x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before or _NOW - datetime.timedelta(days=1))
        .not_valid_after(not_after or _NOW + datetime.timedelta(days=365))
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
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(ski_ext, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if general_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def make_client(
    ca: Issued,
    common_name: str = "alice",
    *,
    upn: str | None = "alice@example.com",
    emails: Iterable[str] = ("alice@example.com",),
    **kwargs: object,
) -> Issued:
    """A clientAuth certificate with a UPN otherName and e-mail SANs by default."""
    return make_leaf(
        ca,
        common_name,
        dns_names=(),
        emails=emails,
        upn=upn,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        **kwargs,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Pki:
    """Root → intermediate → server leaf, plus a client certificate from the same root."""

    root: Issued
    intermediate: Issued
    server: Issued
    client: Issued


def make_pki(key_type: str = "ecdsa-p256") -> Pki:
    root = make_ca("Example Root CA")
    intermediate = make_ca("Example Issuing CA", issuer=root)
    server = make_leaf(
        intermediate,
        "ftp.example.com",
        dns_names=("ftp.example.com", "localhost"),
        ip_addresses=("127.0.0.1",),
        key_type=key_type,
    )
    client = make_client(intermediate)
    return Pki(root, intermediate, server, client)


def write_pem_file(
    path: Path,
    certs: Sequence[x509.Certificate],
    key: PrivateKey | None = None,
    *,
    key_first: bool = False,
) -> Path:
    """Write ``certs`` (leaf first) and optionally the key into one PEM file."""
    body = pem(*certs)
    if key is not None:
        body = key_pem(key) + body if key_first else body + key_pem(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


# ---------------------------------------------------------------------------
# In-memory TLS: two pyOpenSSL connections over memory BIOs, no sockets.


def pump(a: SSL.Connection, b: SSL.Connection) -> None:
    """Move bytes between two memory-BIO connections until both are quiet."""
    moved = True
    while moved:
        moved = False
        for source, sink in ((a, b), (b, a)):
            try:
                data = source.bio_read(65536)
            except SSL.WantReadError:
                continue
            if data:
                sink.bio_write(data)
                moved = True


def handshake(client: SSL.Connection, server: SSL.Connection) -> None:
    """Complete a handshake, then exchange one byte each way.

    The exchange matters for TLS 1.3: the client holds a resumable session
    only after it has read the server's NewSessionTicket.
    """
    for _ in range(50):
        done = 0
        for side in (client, server):
            try:
                side.do_handshake()
                done += 1
            except SSL.WantReadError:
                pass
        pump(client, server)
        if done == 2:
            break
    else:  # pragma: no cover - a stuck handshake is a test bug
        raise AssertionError("handshake did not complete")
    server.send(b"s")
    pump(server, client)
    assert client.recv(16) == b"s"
    client.send(b"c")
    pump(client, server)
    assert server.recv(16) == b"c"
    pump(client, server)


def client_context(
    *,
    trust: Sequence[x509.Certificate] = (),
    tmp_dir: Path | None = None,
    max_version: int | None = None,
    min_version: int | None = None,
    ciphers: bytes | None = None,
    identity: Issued | None = None,
    chain: Sequence[x509.Certificate] = (),
) -> SSL.Context:
    """A TLS client context; with ``trust`` (written under ``tmp_dir``) it verifies the server."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if max_version is not None:
        ctx.set_max_proto_version(max_version)
    if min_version is not None:
        ctx.set_min_proto_version(min_version)
    if ciphers is not None:
        ctx.set_cipher_list(ciphers)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    if trust:
        assert tmp_dir is not None, "trust anchors are loaded from a file"
        cafile = tmp_dir / "client-trust.pem"
        cafile.write_bytes(pem(*trust))
        ctx.load_verify_locations(str(cafile))
        ctx.set_verify(SSL.VERIFY_PEER)
    if identity is not None:
        ctx.use_certificate(identity.cert)
        for extra in chain:
            ctx.add_extra_chain_cert(extra)
        ctx.use_privatekey(identity.key)
    return ctx


def connect(
    server_ctx: SSL.Context,
    client_ctx: SSL.Context,
    *,
    session: SSL.Session | None = None,
    server_name: bytes | None = None,
) -> tuple[SSL.Connection, SSL.Connection]:
    """(client, server) connections, handshaken; ``session`` is offered for resumption."""
    return connect_server(
        SSL.Connection(server_ctx, None), client_ctx, session=session, server_name=server_name
    )


def connect_server(
    server: SSL.Connection,
    client_ctx: SSL.Context,
    *,
    session: SSL.Session | None = None,
    server_name: bytes | None = None,
) -> tuple[SSL.Connection, SSL.Connection]:
    """``connect`` with a server connection the caller made."""
    server.set_accept_state()
    client = SSL.Connection(client_ctx, None)
    client.set_connect_state()
    if server_name is not None:
        client.set_tlsext_host_name(server_name)
    if session is not None:
        client.set_session(session)
    handshake(client, server)
    return client, server


def close_quietly(client: SSL.Connection, server: SSL.Connection) -> None:
    """Mark both ends shut down so freeing them does not evict their sessions."""
    for side in (client, server):
        side.set_shutdown(SSL.SENT_SHUTDOWN | SSL.RECEIVED_SHUTDOWN)


# ---------------------------------------------------------------------------
# Arbitrary certificates and CRLs, for chain validation and revocation tests.


def key_usage(**flags: bool) -> x509.KeyUsage:
    """A KeyUsage with the named bits set (``digital_signature=True`` ...), the rest clear."""
    bits = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    unknown = set(flags) - set(bits)
    if unknown:
        raise ValueError(f"unknown KeyUsage bits: {sorted(unknown)}")
    bits.update(flags)
    return x509.KeyUsage(**bits)


def crl_distribution_points(*urls: str) -> x509.CRLDistributionPoints:
    """One distribution point listing ``urls`` (any scheme) as its full name."""
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(u) for u in urls],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def make_cert(
    issuer: Issued | None,
    common_name: str = "cert",
    *,
    subject: x509.Name | None = None,
    ca: bool | None = False,
    path_length: int | None = None,
    key_usage: x509.KeyUsage | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    crl_urls: Sequence[str] = (),
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    key_type: str = "ecdsa-p256",
    serial: int | None = None,
    signing_key: PrivateKey | None = None,
    aki: bool = True,
) -> Issued:
    """Any certificate, every field explicit: nothing is added that is not asked for.

    ``issuer=None`` makes it self-signed. ``ca=None`` leaves BasicConstraints
    out; ``key_usage``/``eku`` None leave those out. ``signing_key`` signs
    with another key than the issuer's (a forged or broken signature) while
    keeping the issuer's name. The SKI is always present; the AKI (from the
    issuer's key) unless ``aki=False`` or self-signed.
    """
    key = make_key(key_type)
    subject = subject or name(common_name)
    issuer_name = issuer.cert.subject if issuer is not None else subject
    signer = signing_key or (issuer.key if issuer is not None else key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before or _NOW - datetime.timedelta(days=1))
        .not_valid_after(not_after or _NOW + datetime.timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if crl_urls:
        builder = builder.add_extension(crl_distribution_points(*crl_urls), critical=False)
    if aki and issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_ca_cert(
    issuer: Issued | None, common_name: str = "Example CA", **kwargs: object
) -> Issued:
    """A CA (root when ``issuer`` is None) with keyCertSign + cRLSign; options as ``make_cert``."""
    kwargs.setdefault("ca", True)
    kwargs.setdefault("key_usage", key_usage(key_cert_sign=True, crl_sign=True))
    return make_cert(issuer, common_name, **kwargs)  # type: ignore[arg-type]


def make_client_cert(issuer: Issued, common_name: str = "alice", **kwargs: object) -> Issued:
    """A typical client certificate: clientAuth EKU, digitalSignature; options as ``make_cert``."""
    kwargs.setdefault("key_usage", key_usage(digital_signature=True))
    kwargs.setdefault("eku", (ExtendedKeyUsageOID.CLIENT_AUTH,))
    return make_cert(issuer, common_name, **kwargs)  # type: ignore[arg-type]


def make_crl(
    issuer: Issued,
    revoked: Iterable[x509.Certificate | int | tuple[int, x509.ReasonFlags | None]] = (),
    *,
    this_update: datetime.datetime | None = None,
    next_update: datetime.datetime | None = None,
    signing_key: PrivateKey | None = None,
    number: int = 1,
    revocation_date: datetime.datetime | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.CertificateRevocationList:
    """A CRL issued by ``issuer`` listing ``revoked`` (certificates, serials, or (serial, reason)).

    Valid from an hour ago for a week by default; ``signing_key`` signs with
    another key (a CRL the issuer did not make). AKI and CRL number are set.
    """
    this_update = this_update or _NOW - datetime.timedelta(hours=1)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(this_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    builder = builder.next_update(next_update or this_update + datetime.timedelta(days=7))
    for item in revoked:
        reason: x509.ReasonFlags | None = None
        if isinstance(item, x509.Certificate):
            serial = item.serial_number
        elif isinstance(item, tuple):
            serial, reason = item
        else:
            serial = item
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(revocation_date or this_update - datetime.timedelta(minutes=1))
        )
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key or issuer.key, hashes.SHA256())


def crl_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def ocsp_responders(*urls: str) -> x509.AuthorityInformationAccess:
    """An Authority Information Access extension naming OCSP responders."""
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
            )
            for url in urls
        ]
    )


def make_ocsp_response(
    cert: x509.Certificate,
    issuer: Issued,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    *,
    signer: Issued | None = None,
    include_signer: bool = True,
    this_update: datetime.datetime | None = None,
    next_update: datetime.datetime | None = None,
    no_next_update: bool = False,
    revocation_reason: x509.ReasonFlags | None = None,
    cert_id_hash: hashes.HashAlgorithm | None = None,
    by_key: bool = False,
) -> bytes:
    """A DER OCSP response about ``cert`` (issued by ``issuer``), signed by ``signer``.

    ``signer`` None: the issuer itself. A delegated signer's certificate is
    included unless ``include_signer=False``. Current from five minutes ago
    for an hour unless told otherwise.
    """
    this_update = this_update or _NOW - datetime.timedelta(minutes=5)
    if not no_next_update:
        next_update = next_update or this_update + datetime.timedelta(hours=1)
    revoked = status is ocsp.OCSPCertStatus.REVOKED
    signing = signer or issuer
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer.cert,
            algorithm=cert_id_hash or hashes.SHA1(),
            cert_status=status,
            this_update=this_update,
            next_update=None if no_next_update else next_update,
            revocation_time=this_update - datetime.timedelta(hours=1) if revoked else None,
            revocation_reason=revocation_reason if revoked else None,
        )
        .responder_id(
            ocsp.OCSPResponderEncoding.HASH if by_key else ocsp.OCSPResponderEncoding.NAME,
            signing.cert,
        )
    )
    if signer is not None and include_signer:
        builder = builder.certificates([signer.cert])
    response = builder.sign(signing.key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")  # OID 1.2.840.113549.1.1.11
_SHA1_RSA = bytes.fromhex("06092a864886f70d010105")  # OID 1.2.840.113549.1.1.5


def resign_sha1(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """``cert`` (signed with SHA-256 and RSA) signed again with SHA-1, by ``issuer_key``.

    cryptography no longer signs certificates with SHA-1, so the DER is put
    together by hand: both OIDs have the same length, so the TBS only needs
    the algorithm swapped before it is signed.
    """
    tbs = cert.tbs_certificate_bytes
    if tbs.count(_SHA256_RSA) != 1:
        raise ValueError("expected one sha256WithRSAEncryption in the TBS certificate")
    from cryptography.hazmat.primitives.asymmetric import padding

    tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA)
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    algorithm = _der(0x30, _SHA1_RSA + b"\x05\x00")
    body = tbs + algorithm + _der(0x03, b"\x00" + signature)
    return x509.load_der_x509_certificate(_der(0x30, body))


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body
