"""``ftps7 cert new|list|import|mapping``: the IIS Manager "Server Certificates" tasks.

``new`` is "Create Self-Signed Certificate", ``import`` is "Import..." (PEM or
a PFX exported from Windows), ``list`` is the certificate list with the
thumbprints that go into ``serverCertHash``, and ``mapping`` shows the
``altSecurityIdentities`` values an AD administrator puts on an account for
a client certificate. The store path comes from the configuration file.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ftps7.cli import CommandError
from ftps7.tls.certgen import DEFAULT_DAYS, DEFAULT_KEY_TYPE, KEY_TYPES, new_self_signed
from ftps7.tls.mapping import STRING_METHODS, mapping_strings, upn
from ftps7.tls.store import (
    MY,
    CertificateStore,
    CertificateStoreError,
    PrivateKey,
    StoredCertificate,
    key_matches,
    order_chain,
    pem_private_key_block,
)

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["PasswordRequiredError", "load_bundle", "mapping_lines", "register", "store_path_for"]


def register(subparsers: SubParsers) -> None:
    """Add ``cert`` and its sub-commands to the ``ftps7`` parser."""
    parser = subparsers.add_parser(
        "cert",
        help="manage the certificate store (server certificates, trusted CAs)",
        description="Manage the certificate store named by <ftps7><certificateStore>.",
    )
    commands = parser.add_subparsers(dest="cert_command", metavar="SUBCOMMAND")
    commands.required = True

    new = commands.add_parser(
        "new",
        help="create a self-signed server certificate and print its thumbprint",
        description="Create a self-signed certificate (IIS: Create Self-Signed Certificate). "
        "Without --dns/--ip the names are this host's name, localhost, 127.0.0.1 and ::1. "
        "The thumbprint (for serverCertHash) is printed alone on the last line.",
    )
    new.add_argument("--name", required=True, help="friendly name: the CN and the file name")
    new.add_argument("--store", default=MY, help="store name (default: MY)")
    new.add_argument(
        "--dns", action="append", metavar="NAME", help="a DNS name for the SAN (repeatable)"
    )
    new.add_argument(
        "--ip", action="append", metavar="ADDR", help="an IP address for the SAN (repeatable)"
    )
    new.add_argument(
        "--key",
        choices=KEY_TYPES,
        default=DEFAULT_KEY_TYPE,
        help=f"key type (default: {DEFAULT_KEY_TYPE}, the cheapest to sign)",
    )
    new.add_argument(
        "--days", type=int, default=DEFAULT_DAYS, help=f"validity (default: {DEFAULT_DAYS})"
    )
    new.set_defaults(handler=cmd_new)

    show = commands.add_parser(
        "list",
        help="list the certificates of a store",
        description="Print thumbprint, subject, names, key type and expiry of each "
        "certificate; files that cannot be used are reported on stderr.",
    )
    show.add_argument("--store", default=MY, help="store name (default: MY)")
    show.set_defaults(handler=cmd_list)

    imp = commands.add_parser(
        "import",
        help="import a PEM or PKCS#12 (.pfx/.p12) certificate and print its thumbprint",
        description="Import a certificate with its key and chain: PEM (certificates and key "
        "in any order) or PKCS#12 exported from Windows. The key is stored decrypted, "
        "readable by the owner only. The thumbprint is printed alone on the last line.",
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--store", default=MY, help="store name (default: MY)")
    imp.add_argument("--name", help="name in the store (default: the file name without suffix)")
    imp.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the PFX or key password from the first line of standard input",
    )
    imp.set_defaults(handler=cmd_import)

    mapping = commands.add_parser(
        "mapping",
        help="print the AD altSecurityIdentities strings of a client certificate",
        description="Print, one per line as 'METHOD VALUE', the altSecurityIdentities "
        "values (and the UPN) that map this client certificate to an account.",
    )
    mapping.add_argument("file", metavar="FILE", help="the client certificate (PEM or DER)")
    mapping.set_defaults(handler=cmd_mapping)


# --------------------------------------------------------------------- helpers


def store_path_for(config_path: str) -> str:
    """The ``<certificateStore path>`` of the configuration file (a seam for tests)."""
    from ftps7.config import ConfigErrors, load_config

    try:
        config = load_config(config_path)
    except ConfigErrors as error:  # each line already names file, line and element
        raise CommandError(f"cannot use the configuration:\n{error}") from error
    return config.ftps7.certificate_store.path


def _open_store(args: argparse.Namespace) -> CertificateStore:
    return CertificateStore(store_path_for(args.config))


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from error


def _password(args: argparse.Namespace, prompt: str) -> bytes | None:
    """The password from stdin (``--password-stdin``) or a prompt; None if neither is possible."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n").encode("utf-8")
    if sys.stdin.isatty():
        return getpass.getpass(prompt).encode("utf-8")
    return None


class PasswordRequiredError(ValueError):
    """The file is protected and no password was given."""


def load_bundle(
    data: bytes, password: bytes | None, origin: str
) -> tuple[x509.Certificate, tuple[x509.Certificate, ...], PrivateKey | None]:
    """(leaf, chain, key) from PEM (blocks in any order) or PKCS#12 bytes.

    The leaf is the certificate that matches the key (else the first one);
    the others follow in issuing order. Raises ``PasswordRequiredError`` when a
    password is needed and none was given, ``ValueError`` for anything else
    that cannot be read (including a wrong password).
    """
    if b"-----BEGIN" in data:
        return _load_pem_bundle(data, password, origin)
    try:
        key, cert, extra = _load_pkcs12(data, password)
    except ValueError as pkcs12_error:
        if isinstance(pkcs12_error, PasswordRequiredError):
            raise
        if _looks_like_pkcs12(data):
            raise ValueError(
                f"wrong password or damaged PKCS#12 file ({pkcs12_error})"
            ) from None
        try:  # a bare DER certificate (.cer exported from Windows)
            return x509.load_der_x509_certificate(data), (), None
        except ValueError:
            raise ValueError("neither PEM, PKCS#12 nor a DER certificate") from None
    if cert is None:
        raise ValueError(f"{origin}: the PKCS#12 file holds no certificate")
    if key is not None and not isinstance(key, PrivateKey):
        raise ValueError(f"{origin}: unsupported private key type {type(key).__name__}")
    return cert, order_chain(cert, extra), key


def _load_pkcs12(
    data: bytes, password: bytes | None
) -> tuple[object, x509.Certificate | None, list[x509.Certificate]]:
    if password is not None:
        return pkcs12.load_key_and_certificates(data, password)
    try:
        return pkcs12.load_key_and_certificates(data, None)
    except ValueError:
        pass
    try:  # some Windows exports use an empty password rather than none
        return pkcs12.load_key_and_certificates(data, b"")
    except ValueError as error:
        if _looks_like_pkcs12(data):
            raise PasswordRequiredError("a password is needed") from error
        raise


def _looks_like_pkcs12(data: bytes) -> bool:
    """A DER SEQUENCE whose first element is INTEGER 3 (PFX version), roughly."""
    return data[:1] == b"\x30" and b"\x02\x01\x03" in data[:8]


def _load_pem_bundle(
    data: bytes, password: bytes | None, origin: str
) -> tuple[x509.Certificate, tuple[x509.Certificate, ...], PrivateKey | None]:
    certs = x509.load_pem_x509_certificates(data) if b"-----BEGIN CERTIFICATE" in data else []
    if not certs:
        raise ValueError(f"{origin}: no certificate in the file")
    key: PrivateKey | None = None
    block = pem_private_key_block(data)
    if block is not None:
        try:
            loaded = serialization.load_pem_private_key(block, password=password)
        except TypeError as error:
            if password is None:  # an encrypted key and no password
                raise PasswordRequiredError("the private key is encrypted") from error
            # a password was given but this key is not encrypted
            loaded = serialization.load_pem_private_key(block, password=None)
        if not isinstance(loaded, PrivateKey):
            raise ValueError(f"{origin}: unsupported private key type {type(loaded).__name__}")
        key = loaded
    leaf = certs[0]
    if key is not None:
        matching = [c for c in certs if key_matches(c, key)]
        if not matching:
            raise ValueError(f"{origin}: the private key matches none of the certificates")
        leaf = matching[0]
    return leaf, order_chain(leaf, certs), key


def _print_certificate(stored: StoredCertificate) -> None:
    print(stored.describe())
    print(stored.thumbprint)


# -------------------------------------------------------------------- commands


def cmd_new(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        cert, key = new_self_signed(
            args.name,
            dns_names=args.dns,
            ip_addresses=args.ip,
            key_type=args.key,
            days=args.days,
        )
        stored = store.add(args.store, cert, (), key, args.name)
    except (ValueError, CertificateStoreError) as error:
        raise CommandError(str(error)) from error
    except OSError as error:
        raise CommandError(f"cannot write to the store {store.path}: {error}") from error
    _print_certificate(stored)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        certificates = store.list(args.store)
        problems = store.problems()
    except CertificateStoreError as error:
        raise CommandError(str(error)) from error
    for certificate in certificates:
        print(certificate.describe())
    for problem in problems:
        print(f"ftps7: warning: {problem}", file=sys.stderr)
    if not certificates:
        print(f"ftps7: no certificates in {store.store_dir(args.store)}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    store = _open_store(args)
    data = _read_file(args.file)
    password = _password(args, "Password: ") if args.password_stdin else None
    try:
        try:
            leaf, chain, key = load_bundle(data, password, args.file)
        except PasswordRequiredError:
            if password is not None:
                raise
            password = _password(args, f"Password for {args.file}: ")
            if password is None:
                raise CommandError(
                    f"{args.file} is password-protected: give the password on standard "
                    "input with --password-stdin"
                ) from None
            leaf, chain, key = load_bundle(data, password, args.file)
    except ValueError as error:
        raise CommandError(f"cannot import {args.file}: {error}") from error
    name = args.name or Path(args.file).stem
    try:
        stored = store.add(args.store, leaf, chain, key, name)
    except CertificateStoreError as error:
        hint = "" if args.name else " (use --name to choose the name)"
        raise CommandError(f"{error}{hint}") from error
    except OSError as error:
        raise CommandError(f"cannot write to the store {store.path}: {error}") from error
    if key is None:
        print(
            f"ftps7: warning: {args.file} holds no private key: fine for a CA, "
            "but it cannot serve as a server certificate",
            file=sys.stderr,
        )
    _print_certificate(stored)
    return 0


def cmd_mapping(args: argparse.Namespace) -> int:
    data = _read_file(args.file)
    try:
        if b"-----BEGIN CERTIFICATE" in data:
            cert = x509.load_pem_x509_certificates(data)[0]
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise CommandError(f"cannot read a certificate from {args.file}: {error}") from error
    for line in mapping_lines(cert):
        print(line)
    return 0


def mapping_lines(cert: x509.Certificate) -> Sequence[str]:
    """``METHOD VALUE`` lines, strong forms first, then UPN, then the weak forms."""
    strings = mapping_strings(cert)
    lines = []
    for method in STRING_METHODS[:3]:
        lines += [f"{method.value:<14} {value}" for value in strings[method]]
    principal = upn(cert)
    if principal is not None:
        lines.append(f"{'UPN':<14} {principal}")
    for method in STRING_METHODS[3:]:
        lines += [f"{method.value:<14} {value}" for value in strings[method]]
    return lines
