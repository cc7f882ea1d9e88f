"""The Windows certificate store, as folders (CONFIG.md ``<ftps7><certificateStore>``).

IIS names a server certificate by its SHA-1 thumbprint inside a named store
(``serverCertHash`` + ``serverCertStoreName="MY"``). ftps7 keeps that model so
an applicationHost.config carries over unchanged: ``<path>/MY/*.pem`` are the
server certificates (leaf first, then its chain; the private key in the same
file or in ``<stem>.key``), ``<path>/<NAME>/`` any other store,
``<path>/ROOT/`` the CAs trusted for client certificates, ``<path>/CA/``
intermediates and ``<path>/CRL/`` cached CRLs.

The server looks a certificate up at every session, so parsed files are cached
per path and re-read only when their mtime or size changes; a file that does
not parse is skipped and the reason kept for ``problems()`` rather than taking
the server down. Everything here is synchronous file I/O on small folders:
cheap enough for the reactor thread once the cache is warm.
"""

from __future__ import annotations

import builtins
import datetime
import ipaddress
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from OpenSSL import crypto

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "CertificateStore",
    "CertificateStoreError",
    "IPAddress",
    "PrivateKey",
    "StoredCertificate",
    "key_type_of",
    "normalize_store_name",
    "normalize_thumbprint",
    "order_chain",
    "pem_private_key_block",
    "thumbprint_of",
]

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MY = "MY"
# ``describe`` (and so ``cert list`` and ``config check``) warns this long before expiry.
EXPIRY_WARNING_DAYS = 30
ROOT = "ROOT"
CA = "CA"
CRL = "CRL"

# Files that hold server certificates; CA folders also accept Windows exports.
_SERVER_SUFFIXES = (".pem",)
_CA_SUFFIXES = (".pem", ".crt", ".cer", ".der")

# What people paste from the Windows certificate dialog: spaces, and an
# invisible LEFT-TO-RIGHT MARK (U+200E) in front of the first digit.
_THUMBPRINT_NOISE = re.compile(r"[\s:\u200e\u200f\ufeff]+")
_HEX40 = re.compile(r"[0-9A-F]{40}")
_STORE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PEM_KEY = re.compile(
    rb"-----BEGIN ((?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY)-----.+?-----END \1-----",
    re.DOTALL,
)
_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"


class CertificateStoreError(Exception):
    """A store operation that cannot be done (bad name, existing entry, bad file)."""


def normalize_thumbprint(text: str) -> str:
    """The thumbprint as IIS compares it: no spaces (nor U+200E, nor colons), upper case.

    The IIS walkthrough tells you to copy the Thumbprint field (``57 68 6F
    ...``) and remove the spaces; Windows also prefixes an invisible U+200E
    when you copy it, which silently breaks a hand-edited config. Both are
    ignored here so a pasted value just works.
    """
    return _THUMBPRINT_NOISE.sub("", text).upper()


def thumbprint_of(cert: x509.Certificate) -> str:
    """IIS's name for a certificate: SHA-1 of its DER, upper-case hex."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - the IIS format


def is_thumbprint(text: str) -> bool:
    """Whether ``text`` is a SHA-1 thumbprint (40 hex digits) once normalised."""
    return _HEX40.fullmatch(normalize_thumbprint(text)) is not None


def normalize_store_name(store_name: str) -> str:
    """Store names are case-insensitive (``my`` is ``MY``) and a single folder name.

    The name comes from the configuration (``serverCertStoreName``); refusing
    separators and dot-names keeps it from ever pointing outside the store.
    """
    if _STORE_NAME.fullmatch(store_name) is None or store_name in (".", ".."):
        raise CertificateStoreError(
            f"invalid certificate store name {store_name!r}: use letters, digits, '_', '-', '.'"
        )
    return store_name.upper()


def key_type_of(public_key: CertificatePublicKeyTypes) -> str:
    """A short label: ``ecdsa-p256``, ``rsa-2048``, ``ed25519`` ..."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa-{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve.name
        return {
            "secp256r1": "ecdsa-p256",
            "secp384r1": "ecdsa-p384",
            "secp521r1": "ecdsa-p521",
        }.get(curve, f"ecdsa-{curve}")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "ed448"
    if isinstance(public_key, dsa.DSAPublicKey):
        return f"dsa-{public_key.key_size}"
    return type(public_key).__name__.lower()


def _public_der(public_key: object) -> bytes:
    """SubjectPublicKeyInfo DER of a public key (to compare a key with a certificate)."""
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key."""
    return _public_der(cert.public_key()) == _public_der(key.public_key())


def order_chain(
    leaf: x509.Certificate, others: Iterable[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    """Put ``others`` in issuing order from ``leaf`` upwards; unrelated ones go last.

    PKCS#12 files exported from Windows list their certificates in no
    particular order, while TLS wants leaf → intermediate → ... . Self-signed
    roots are kept (the client ignores them) but placed last.
    """
    remaining = [c for c in others if c != leaf]
    ordered: list[x509.Certificate] = []
    current = leaf
    while True:
        parent = next(
            (
                c
                for c in remaining
                if c.subject == current.issuer and c.subject != c.issuer
            ),
            None,
        ) or next((c for c in remaining if c.subject == current.issuer), None)
        if parent is None:
            break
        ordered.append(parent)
        remaining.remove(parent)
        if parent.subject == parent.issuer:
            break
        current = parent
    return tuple(ordered + remaining)


def _san_names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    dns = tuple(san.get_values_for_type(x509.DNSName))
    ips = tuple(
        ip
        for ip in san.get_values_for_type(x509.IPAddress)
        if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
    )
    return dns, ips


@dataclass(frozen=True)
class StoredCertificate:
    """One server certificate as loaded from the store, ready for TLS contexts.

    ``openssl_*`` are the same certificate, chain and key already converted to
    pyOpenSSL objects once, at load, so a per-session ``SSL.Context`` can take
    them without re-encoding DER (see ``ftps7.tls.contexts``).
    """

    thumbprint: str
    name: str
    path: str
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    private_key: PrivateKey | None
    not_before: datetime.datetime
    not_after: datetime.datetime
    subject: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...]
    key_type: str
    openssl_leaf: crypto.X509 = field(repr=False, compare=False)
    openssl_chain: tuple[crypto.X509, ...] = field(repr=False, compare=False)
    openssl_key: crypto.PKey | None = field(repr=False, compare=False)
    key_path: str | None = None  # where the private key was read from

    @classmethod
    def build(
        cls,
        *,
        name: str,
        path: str,
        leaf: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        private_key: PrivateKey | None = None,
        key_path: str | None = None,
    ) -> StoredCertificate:
        """Derive every field from the certificate (and convert for pyOpenSSL once)."""
        dns_names, ip_addresses = _san_names(leaf)
        return cls(
            thumbprint=thumbprint_of(leaf),
            name=name,
            path=path,
            leaf=leaf,
            chain=tuple(chain),
            private_key=private_key,
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            subject=leaf.subject.rfc4514_string(),
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            key_type=key_type_of(leaf.public_key()),
            key_path=key_path,
            openssl_leaf=crypto.X509.from_cryptography(leaf),
            openssl_chain=tuple(crypto.X509.from_cryptography(c) for c in chain),
            openssl_key=(
                crypto.PKey.from_cryptography_key(private_key) if private_key is not None else None
            ),
        )

    @property
    def has_key(self) -> bool:
        return self.private_key is not None

    def is_expired(self, now: datetime.datetime | None = None) -> bool:
        return (now or datetime.datetime.now(datetime.UTC)) >= self.not_after

    def is_not_yet_valid(self, now: datetime.datetime | None = None) -> bool:
        return (now or datetime.datetime.now(datetime.UTC)) < self.not_before

    def days_left(self, now: datetime.datetime | None = None) -> int:
        """Whole days until expiry (negative once expired)."""
        delta = self.not_after - (now or datetime.datetime.now(datetime.UTC))
        return delta.days

    def names(self) -> tuple[str, ...]:
        """The SAN DNS names then IP addresses, as text."""
        return self.dns_names + tuple(str(ip) for ip in self.ip_addresses)

    def describe(self, now: datetime.datetime | None = None) -> str:
        """One line for humans: thumbprint, subject, names, key type, expiry and flags."""
        names = ", ".join(self.names()) or "-"
        flags = []
        if self.is_expired(now):
            flags.append("EXPIRED")
        elif self.is_not_yet_valid(now):
            flags.append("NOT YET VALID")
        elif self.days_left(now) < EXPIRY_WARNING_DAYS:
            days = self.days_left(now)
            flags.append(f"EXPIRES IN {days} DAY{'' if days == 1 else 'S'}")
        if not self.has_key:
            flags.append("NO PRIVATE KEY")
        suffix = f"  [{', '.join(flags)}]" if flags else ""
        expires = self.not_after.strftime("%Y-%m-%d %H:%M:%SZ")
        return (
            f"{self.thumbprint}  {self.subject}  names: {names}  "
            f"key: {self.key_type}  expires: {expires}{suffix}"
        )


@dataclass(frozen=True)
class _Signature:
    """What the cache compares to know that a file is unchanged."""

    mtime_ns: int
    size: int
    key: tuple[int, int] | None


@dataclass(frozen=True)
class _Entry:
    signature: _Signature
    certificate: StoredCertificate | None
    problem: str | None


@dataclass(frozen=True)
class _CaEntry:
    signature: _Signature
    certificates: tuple[x509.Certificate, ...]
    problem: str | None


def _stat_signature(path: Path, key_path: Path | None) -> _Signature | None:
    try:
        st = path.stat()
    except OSError:
        return None
    key_sig = None
    if key_path is not None:
        try:
            kst = key_path.stat()
        except OSError:
            key_sig = None
        else:
            key_sig = (kst.st_mtime_ns, kst.st_size)
    return _Signature(st.st_mtime_ns, st.st_size, key_sig)


def pem_private_key_block(data: bytes) -> bytes | None:
    """The first PEM private-key block (PKCS#8, RSA, EC, DSA or encrypted) in ``data``."""
    match = _PEM_KEY.search(data)
    return match.group(0) if match is not None else None


def _load_private_key(data: bytes, origin: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as error:  # "Password was not given but private key is encrypted"
        raise CertificateStoreError(
            f"{origin}: the private key is encrypted; import it with "
            "'ftps7 cert import --password-stdin' to store it decrypted (mode 0600)"
        ) from error
    except ValueError as error:
        raise CertificateStoreError(f"{origin}: unreadable private key ({error})") from error
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey
        | dsa.DSAPrivateKey,
    ):
        raise CertificateStoreError(f"{origin}: unsupported private key type {type(key).__name__}")
    return key


def _parse_certificates(data: bytes, origin: str) -> list[x509.Certificate]:
    """All certificates in a PEM bundle, or the one certificate of a DER file."""
    try:
        if _CERT_MARKER in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as error:
        raise CertificateStoreError(f"{origin}: unreadable certificate ({error})") from error


def _load_server_file(path: Path, key_path: Path) -> StoredCertificate:
    data = path.read_bytes()
    if _CERT_MARKER not in data:
        raise CertificateStoreError(f"{path}: no certificate in the file")
    certs = _parse_certificates(data, str(path))
    leaf, chain = certs[0], certs[1:]
    key: PrivateKey | None = None
    used_key_path: str | None = None
    block = pem_private_key_block(data)
    if block is not None:
        key = _load_private_key(block, str(path))
        used_key_path = str(path)
    elif key_path.exists():
        key = _load_private_key(key_path.read_bytes(), str(key_path))
        used_key_path = str(key_path)
    if key is not None and not key_matches(leaf, key):
        raise CertificateStoreError(
            f"{used_key_path}: the private key does not belong to the first certificate"
        )
    return StoredCertificate.build(
        name=path.stem,
        path=str(path),
        leaf=leaf,
        chain=chain,
        private_key=key,
        key_path=used_key_path,
    )


class CertificateStore:
    """The folders under ``<certificateStore path>``; see the module docstring."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._server_cache: dict[str, _Entry] = {}
        self._ca_cache: dict[str, _CaEntry] = {}

    # ------------------------------------------------------------------ paths

    def store_dir(self, store_name: str) -> Path:
        """The folder of a store, matching an existing folder case-insensitively."""
        wanted = normalize_store_name(store_name)
        root = Path(self.path)
        exact = root / wanted
        if exact.is_dir():
            return exact
        try:
            with os.scandir(root) as entries:
                for entry in entries:
                    if entry.name.upper() == wanted and entry.is_dir():
                        return Path(entry.path)
        except OSError:
            pass
        return exact

    @property
    def crl_dir(self) -> str:
        """Where cached CRLs live (``<path>/CRL``); it may not exist yet."""
        return str(self.store_dir(CRL))

    # ---------------------------------------------------------------- reading

    def list(self, store_name: str = MY) -> builtins.list[StoredCertificate]:
        """Every loadable certificate of a store, sorted by name."""
        folder = self.store_dir(store_name)
        found: builtins.list[StoredCertificate] = []
        seen: set[str] = set()
        for path in self._files(folder, _SERVER_SUFFIXES):
            seen.add(str(path))
            entry = self._server_entry(path)
            if entry is not None and entry.certificate is not None:
                found.append(entry.certificate)
        self._forget_missing(self._server_cache, folder, seen)
        return sorted(found, key=lambda c: (c.name.lower(), c.thumbprint))

    def find(self, store_name: str, thumbprint: str) -> StoredCertificate | None:
        """The certificate whose SHA-1 thumbprint is ``thumbprint`` (spaces/case ignored)."""
        wanted = normalize_thumbprint(thumbprint)
        for certificate in self.list(store_name):
            if certificate.thumbprint == wanted:
                return certificate
        return None

    def by_name(self, store_name: str, name: str) -> StoredCertificate | None:
        """The certificate stored as ``<name>.pem`` (name compared case-insensitively)."""
        for certificate in self.list(store_name):
            if certificate.name.lower() == name.lower():
                return certificate
        return None

    def trusted_roots(self) -> builtins.list[x509.Certificate]:
        """The CAs trusted for client certificates (``ROOT``)."""
        return self._ca_certificates(ROOT)

    def intermediates(self) -> builtins.list[x509.Certificate]:
        """Intermediate CAs used to complete client chains (``CA``)."""
        return self._ca_certificates(CA)

    def problems(self) -> builtins.list[str]:
        """Why files seen by the latest scans were skipped, one line each."""
        with self._lock:
            lines = [e.problem for e in self._server_cache.values() if e.problem]
            lines += [e.problem for e in self._ca_cache.values() if e.problem]
        return sorted(lines)

    def _files(self, folder: Path, suffixes: tuple[str, ...]) -> builtins.list[Path]:
        try:
            with os.scandir(folder) as entries:
                return sorted(
                    Path(e.path)
                    for e in entries
                    if e.name.lower().endswith(suffixes)
                    and not e.name.startswith(".")
                    and e.is_file()
                )
        except FileNotFoundError:
            return []
        except OSError as error:
            raise CertificateStoreError(f"cannot read {folder}: {error}") from error

    def _forget_missing(
        self, cache: dict[str, _Entry] | dict[str, _CaEntry], folder: Path, seen: set[str]
    ) -> None:
        """Drop cache entries (and their problems) of files no longer in ``folder``."""
        prefix = str(folder) + os.sep
        with self._lock:
            for key in [k for k in cache if k.startswith(prefix) and k not in seen]:
                del cache[key]

    def _server_entry(self, path: Path) -> _Entry | None:
        key_path = path.with_suffix(".key")
        signature = _stat_signature(path, key_path)
        if signature is None:
            return None
        cache_key = str(path)
        with self._lock:
            cached = self._server_cache.get(cache_key)
        if cached is not None and cached.signature == signature:
            return cached
        try:
            entry = _Entry(signature, _load_server_file(path, key_path), None)
        except (CertificateStoreError, OSError, ValueError) as error:
            entry = _Entry(signature, None, f"skipped {path}: {_reason(error, path)}")
        with self._lock:
            self._server_cache[cache_key] = entry
        return entry

    def _ca_certificates(self, store_name: str) -> builtins.list[x509.Certificate]:
        folder = self.store_dir(store_name)
        result: builtins.list[x509.Certificate] = []
        seen: set[str] = set()
        for path in self._files(folder, _CA_SUFFIXES):
            seen.add(str(path))
            signature = _stat_signature(path, None)
            if signature is None:
                continue
            with self._lock:
                cached = self._ca_cache.get(str(path))
            if cached is None or cached.signature != signature:
                try:
                    certs = tuple(_parse_certificates(path.read_bytes(), str(path)))
                    cached = _CaEntry(signature, certs, None)
                except (CertificateStoreError, OSError) as error:
                    cached = _CaEntry(signature, (), f"skipped {path}: {_reason(error, path)}")
                with self._lock:
                    self._ca_cache[str(path)] = cached
            for cert in cached.certificates:
                if cert not in result:
                    result.append(cert)
        self._forget_missing(self._ca_cache, folder, seen)
        return result

    # ---------------------------------------------------------------- writing

    def add(
        self,
        store_name: str,
        leaf: x509.Certificate,
        chain: Sequence[x509.Certificate],
        key: PrivateKey | None,
        name: str,
    ) -> StoredCertificate:
        """Store ``<name>.pem`` (leaf + chain) and ``<name>.key`` (0600), never overwriting.

        The key is written first and each file appears atomically (a
        temporary file linked into place), so a server scanning the folder
        never sees a certificate without its key or half a file.
        """
        _check_entry_name(name)
        if key is not None and not key_matches(leaf, key):
            raise CertificateStoreError("the private key does not belong to the certificate")
        folder = self._ensure_store_dir(store_name)
        pem_path = folder / f"{name}.pem"
        key_path = folder / f"{name}.key"
        for existing in (pem_path, key_path):
            if existing.exists():
                raise CertificateStoreError(
                    f"{existing} already exists; choose another name or delete it first"
                )
        thumbprint = thumbprint_of(leaf)
        duplicate = self.find(store_name, thumbprint)
        if duplicate is not None:
            raise CertificateStoreError(
                f"certificate {thumbprint} is already in store {normalize_store_name(store_name)}"
                f" as {duplicate.name!r} ({duplicate.path})"
            )
        pem_data = b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (leaf, *chain)
        )
        wrote_key = False
        if key is not None:
            key_data = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_new_file(key_path, key_data, 0o600)
            wrote_key = True
        try:
            _write_new_file(pem_path, pem_data, 0o644)
        except BaseException:
            if wrote_key:
                key_path.unlink(missing_ok=True)
            raise
        return StoredCertificate.build(
            name=name,
            path=str(pem_path),
            leaf=leaf,
            chain=chain,
            private_key=key,
            key_path=str(key_path) if key is not None else None,
        )

    def _ensure_store_dir(self, store_name: str) -> Path:
        root = Path(self.path)
        if not root.exists():
            root.mkdir(parents=True, mode=0o700)
        folder = self.store_dir(store_name)
        if not folder.exists():
            folder.mkdir(mode=0o700)
        return folder


def _reason(error: BaseException, path: Path) -> str:
    text = str(error)
    prefix = f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _check_entry_name(name: str) -> None:
    """A certificate name is a file stem: IIS friendly names, but never a path."""
    if (
        not name
        or name.startswith(".")
        or len(name) > 200
        or any(ch in name for ch in "/\\\0")
        or any(not ch.isprintable() for ch in name)
    ):
        raise CertificateStoreError(
            f"invalid certificate name {name!r}: use a plain file name "
            "(no '/', no leading '.')"
        )


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data`` atomically; fail if it already exists."""
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails with FileExistsError instead of replacing
        except FileExistsError as error:
            raise CertificateStoreError(
                f"{path} already exists; choose another name or delete it first"
            ) from error
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_mode(path: str) -> int:
    """Permission bits of ``path`` (for tests and ``config check`` warnings)."""
    return stat.S_IMODE(os.stat(path).st_mode)
