"""Active Directory certificate-mapping strings for a client certificate.

IIS's ``useActiveDirectoryMapping`` finds the account of a validated client
certificate the way the domain controller does for smart-card logon: by
``altSecurityIdentities`` values (``X509:<I>issuer<SR>serial`` and friends)
or by the UPN in the certificate. This module only computes those strings;
the directory checker ORs the enabled ones into one LDAP filter.

Formats (MS-PKCA 3.1.5.2.1.3 "Explicit Mapping", KB5014754):

* DNs are written the way CryptoAPI writes them for AD: most significant RDN
  first (``DC=com,DC=example,CN=Issuing CA`` — the certificate's encoding
  order, the reverse of RFC 4514), ``,`` between RDNs, CryptoAPI attribute
  keys (``E`` for e-mail, ``S`` for state) and CryptoAPI quoting (a value
  with ``,+="<>#;`` or outer spaces is put in double quotes). When RFC 4514
  escaping would spell a DN differently, that spelling is offered as well.
* ``<SR>`` is the serial's DER bytes reversed (CryptoAPI keeps CERT_INFO
  serials little-endian and AD stores them that way); the forward order is
  offered second, as Samba and some tools write it, and for serials with a
  ``00`` sign byte the spellings without it follow.
* ``<SHA1-PUKEY>`` is SHA-1 of the subjectPublicKey bits (what Samba's
  strong-mapping tests use); SHA-1 of the whole SubjectPublicKeyInfo is
  offered second because tools disagree.
* Hex is lower case; AD compares these values case-insensitively.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ftps7.config.model import CertificateMappingMethod

__all__ = [
    "UPN_OID",
    "ad_dn",
    "mapping_strings",
    "public_key_sha1",
    "rfc822_names",
    "serial_bytes",
    "serial_hex_variants",
    "subject_key_identifier",
    "upn",
]

UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")

# CryptoAPI (CertNameToStr, CERT_X500_NAME_STR) spellings of attribute types.
_CRYPTOAPI_KEYS: dict[x509.ObjectIdentifier, str] = {
    NameOID.COMMON_NAME: "CN",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "S",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COUNTRY_NAME: "C",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.EMAIL_ADDRESS: "E",
    NameOID.TITLE: "T",
    NameOID.GIVEN_NAME: "G",
    NameOID.INITIALS: "I",
    NameOID.SURNAME: "SN",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.USER_ID: "UID",
    NameOID.POSTAL_CODE: "PostalCode",
    NameOID.DN_QUALIFIER: "DnQualifier",
}
_CRYPTOAPI_SPECIAL = set(',+="\n\r<>#;')

# Methods whose values are altSecurityIdentities strings (UPN and
# UserCertificate match other attributes and are handled elsewhere).
STRING_METHODS = (
    CertificateMappingMethod.ISSUER_SERIAL,
    CertificateMappingMethod.SKI,
    CertificateMappingMethod.SHA1_PUBLIC_KEY,
    CertificateMappingMethod.ISSUER_SUBJECT,
    CertificateMappingMethod.SUBJECT,
    CertificateMappingMethod.RFC822,
)


def _attribute_value(attribute: x509.NameAttribute[str | bytes]) -> str:
    value = attribute.value
    if isinstance(value, bytes):  # X500UniqueIdentifier and friends: CryptoAPI shows hex
        return "#" + value.hex()
    return value


def _cryptoapi_quote(value: str) -> str:
    if value == "" or value != value.strip() or any(ch in _CRYPTOAPI_SPECIAL for ch in value):
        return '"' + value.replace('"', '""') + '"'
    return value


def _cryptoapi_key(oid: x509.ObjectIdentifier) -> str:
    return _CRYPTOAPI_KEYS.get(oid, "OID." + oid.dotted_string)


def ad_dn(name: x509.Name, *, style: str = "cryptoapi") -> str:
    """``name`` in AD's order (most significant RDN first).

    ``style="cryptoapi"`` quotes values as CertNameToStr does (the form AD
    tools write); ``style="rfc4514"`` escapes each RDN as RFC 4514 does.
    Multi-valued RDNs join their attributes with ``+``.
    """
    parts: list[str] = []
    for rdn in name.rdns:
        if style == "rfc4514":
            parts.append(
                rdn.rfc4514_string(
                    {NameOID.EMAIL_ADDRESS: "E", NameOID.STATE_OR_PROVINCE_NAME: "S"}
                )
            )
            continue
        if style != "cryptoapi":
            raise ValueError(f"unknown DN style {style!r}")
        parts.append(
            "+".join(
                f"{_cryptoapi_key(a.oid)}={_cryptoapi_quote(_attribute_value(a))}" for a in rdn
            )
        )
    return ",".join(parts)


def _dn_variants(name: x509.Name) -> list[str]:
    variants = [ad_dn(name)]
    alternative = ad_dn(name, style="rfc4514")
    if alternative not in variants:
        variants.append(alternative)
    return variants


def serial_bytes(cert: x509.Certificate) -> bytes:
    """The serial's DER INTEGER content: big-endian two's complement, minimal.

    A positive serial whose top bit is set keeps its leading ``00`` byte, as
    CryptoAPI's CERT_INFO blob does.
    """
    serial = cert.serial_number
    return serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)


def serial_hex_variants(cert: x509.Certificate) -> list[str]:
    """``<SR>`` spellings, most likely first: reversed bytes (AD), then forward.

    When the DER content starts with a ``00`` sign byte, the spellings
    without it follow (tools differ on keeping it).
    """
    content = serial_bytes(cert)
    candidates = [content[::-1].hex(), content.hex()]
    if len(content) > 1 and content[0] == 0:
        candidates += [content[1:][::-1].hex(), content[1:].hex()]
    return list(dict.fromkeys(candidates))


def subject_key_identifier(cert: x509.Certificate) -> bytes | None:
    """The SubjectKeyIdentifier extension's value, or None when absent."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def public_key_sha1(cert: x509.Certificate) -> list[str]:
    """``<SHA1-PUKEY>`` candidates: SHA-1 of the key bits, then of the whole SPKI."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_bits = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    spki_hash = hashes.Hash(hashes.SHA1())  # noqa: S303 - the format is defined as SHA-1
    spki_hash.update(spki)
    values = [key_bits.hex(), spki_hash.finalize().hex()]
    return list(dict.fromkeys(values))


def rfc822_names(cert: x509.Certificate) -> list[str]:
    """The e-mail addresses of the SubjectAltName (rfc822Name entries)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.RFC822Name))


def mapping_strings(cert: x509.Certificate) -> dict[CertificateMappingMethod, list[str]]:
    """Every ``altSecurityIdentities`` value this certificate can match, by method.

    Every method of ``STRING_METHODS`` is a key; a method the certificate
    cannot satisfy (no SKI extension, no e-mail SAN) maps to an empty list.
    The preferred spelling of each method comes first.
    """
    serials = serial_hex_variants(cert)
    issuers = _dn_variants(cert.issuer)
    subjects = _dn_variants(cert.subject)
    issuer_serial: list[str] = []
    for issuer in issuers:
        for serial_hex in serials:
            issuer_serial.append(f"X509:<I>{issuer}<SR>{serial_hex}")
    ski = subject_key_identifier(cert)
    return {
        CertificateMappingMethod.ISSUER_SERIAL: issuer_serial,
        CertificateMappingMethod.SKI: [f"X509:<SKI>{ski.hex()}"] if ski is not None else [],
        CertificateMappingMethod.SHA1_PUBLIC_KEY: [
            f"X509:<SHA1-PUKEY>{digest}" for digest in public_key_sha1(cert)
        ],
        CertificateMappingMethod.ISSUER_SUBJECT: [
            f"X509:<I>{issuer}<S>{subject}"
            for issuer, subject in _paired(issuers, subjects)
        ],
        CertificateMappingMethod.SUBJECT: [f"X509:<S>{subject}" for subject in subjects],
        CertificateMappingMethod.RFC822: [f"X509:<RFC822>{mail}" for mail in rfc822_names(cert)],
    }


def _paired(issuers: list[str], subjects: list[str]) -> list[tuple[str, str]]:
    """The preferred spelling of both, then the alternative spelling of both."""
    pairs = [(issuers[0], subjects[0])]
    alternative = (issuers[-1], subjects[-1])
    if alternative not in pairs:
        pairs.append(alternative)
    return pairs


def upn(cert: x509.Certificate) -> str | None:
    """The user principal name in the SAN (otherName 1.3.6.1.4.1.311.20.2.3), if any."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == UPN_OID:
            decoded = _decode_der_string(other.value)
            if decoded:
                return decoded
    return None


# DER string types a UPN has been seen in; UTF8String is what AD CS writes.
_STRING_TAGS = {0x0C: "utf-8", 0x16: "ascii", 0x13: "ascii", 0x1E: "utf-16-be"}


def _decode_der_string(der: bytes) -> str | None:
    """Decode one DER string TLV by hand (no pyasn1); None when it is not one.

    ``OtherName.value`` is the value inside the ``[0] EXPLICIT`` wrapper, but
    a stray wrapper is tolerated.
    """
    tag, content = _der_tlv(der)
    if tag == 0xA0 and content is not None:
        tag, content = _der_tlv(content)
    if tag not in _STRING_TAGS or content is None:
        return None
    try:
        return content.decode(_STRING_TAGS[tag])
    except UnicodeDecodeError:
        return None


def _der_tlv(der: bytes) -> tuple[int | None, bytes | None]:
    """(tag, content) of a single definite-length DER element filling ``der``."""
    if len(der) < 2:
        return None, None
    tag, first = der[0], der[1]
    offset = 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            return None, None
        length = int.from_bytes(der[2 : 2 + count], "big")
        offset += count
    if offset + length != len(der):
        return None, None
    return tag, der[offset:]
