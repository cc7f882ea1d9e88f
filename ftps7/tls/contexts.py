"""One ``SSL.Context`` per FTP session, SNI switching, and the Twisted creator.

Why a context per FTP session (RESEARCH §2.5): OpenSSL's server session cache
lives in the ``SSL_CTX``. If every data connection of a session is created
from that session's own context, a data connection can resume only *that*
session — another client's session (or ticket) offered on our PASV port is
simply not found, which ``session_reused`` then reports. A shared context
would happily resume client A's session on client B's data port.

Measured with pyOpenSSL 26.4 / OpenSSL 4.0 (in-memory handshakes):

* TLS 1.3 resumption works with ``OP_NO_TICKET``: OpenSSL then issues
  *stateful* tickets (a session ID looked up in the server cache), so tickets
  stay off and both TLS 1.2 and 1.3 resume only from the per-session cache;
  a session offered to another session's context does not resume.
* Building one context costs ~0.14 ms with the pre-converted pyOpenSSL
  certificate and key of ``StoredCertificate`` (ECDSA P-256 or RSA-2048, two
  chain certificates), against ~0.24 ms when pyOpenSSL has to convert the
  ``cryptography`` objects itself at every session.

Client certificates are *requested* but never judged here: the verify
callback accepts everything and records ``(depth, errno)`` so that
validation can happen later, in code, with the site's own trust settings.
"""

from __future__ import annotations

import hashlib
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cryptography import x509
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

from ftps7.config.model import TlsSettings
from ftps7.tls.session import record_verify_result
from ftps7.tls.store import StoredCertificate

if TYPE_CHECKING:
    from twisted.protocols.tls import TLSMemoryBIOProtocol

__all__ = [
    "SESSION_TIMEOUT",
    "ServerConnectionCreator",
    "TlsContextFactory",
    "cipher_string",
    "minimum_protocol_version",
    "set_sni_callback",
]

# A session must outlive its FTP session's control connection; the cache dies
# with the context anyway. Seven days is also TLS 1.3's ticket lifetime cap.
SESSION_TIMEOUT = 7 * 24 * 3600

_VERSIONS = {
    "tlsv1": SSL.TLS1_VERSION,
    "tlsv1.0": SSL.TLS1_VERSION,
    "tlsv1.1": SSL.TLS1_1_VERSION,
    "tlsv1.2": SSL.TLS1_2_VERSION,
    "tlsv1.3": SSL.TLS1_3_VERSION,
}

# Never negotiable, whatever the configured string says: anonymous or
# unencrypted suites, and the (long gone) low-grade and export ones.
_ALWAYS_EXCLUDED = "!aNULL:!eNULL:!LOW:!EXP"
# ssl128="true": nothing under 128 secret bits (3DES is 112, DES 56, NULL 0; RC4
# and RC2 also came in 40-bit export forms).
_UNDER_128_BITS = "!3DES:!DES:!RC2:!RC4:!eNULL"

_OPTIONS = (
    SSL.OP_NO_COMPRESSION
    | SSL.OP_CIPHER_SERVER_PREFERENCE
    | SSL.OP_NO_RENEGOTIATION
    | SSL.OP_NO_TICKET
)
# SSL_MAX_SID_CTX_LENGTH
_MAX_SESSION_ID = 32

_VerifyCallback = Callable[[SSL.Connection, Any, int, int, int], bool]
# How each of our contexts verifies peers, so that an SNI switch can carry the
# chosen context's client-certificate request over to the connection (OpenSSL
# keeps the verify mode of the context the connection was created from).
_verify_settings: weakref.WeakKeyDictionary[SSL.Context, tuple[int, _VerifyCallback | None]] = (
    weakref.WeakKeyDictionary()
)


def minimum_protocol_version(name: str) -> int:
    """The OpenSSL constant for ``minimumVersion`` (``TLSv1`` ... ``TLSv1.3``)."""
    try:
        return _VERSIONS[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown TLS version {name!r}; use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3"
        ) from None


def cipher_string(tls: TlsSettings, *, ssl128: bool) -> bytes:
    """The TLS ≤ 1.2 cipher list for a site: the configured one, hardened.

    OpenSSL 3+ refuses TLS 1.0/1.1 at security level 1 and above, so a
    configured minimum below TLS 1.2 (old IIS-era clients) also lowers the
    security level to 0 — the administrator asked for those clients.
    """
    parts = [tls.ciphers.strip() or "HIGH", _ALWAYS_EXCLUDED]
    if ssl128:
        parts.append(_UNDER_128_BITS)
    if minimum_protocol_version(tls.minimum_version) < SSL.TLS1_2_VERSION:
        parts.append("@SECLEVEL=0")
    return ":".join(parts).encode("ascii")


def _accept_and_record(
    conn: SSL.Connection, cert: Any, errno: int, depth: int, preverify_ok: int
) -> bool:
    """Accept every client certificate; remember OpenSSL's opinion for later validation."""
    record_verify_result(conn, depth, errno)
    return True


@contextmanager
def _quiet_pyopenssl_deprecations() -> Iterator[None]:
    """Silence pyOpenSSL's "pass cryptography objects instead" warning here only.

    pyOpenSSL 26 deprecates handing ``crypto.X509``/``PKey`` to a context, but
    the alternative re-encodes certificate and key at every session (see the
    module docstring for the measured cost). Should pyOpenSSL drop support,
    switch ``_use_identity`` to ``certificate.leaf``/``private_key``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _use_identity(ctx: SSL.Context, certificate: StoredCertificate) -> None:
    """Certificate, chain and key from the pre-built pyOpenSSL objects (no file I/O)."""
    if certificate.openssl_key is None:
        raise ValueError(f"certificate {certificate.thumbprint} has no private key")
    with _quiet_pyopenssl_deprecations():
        ctx.use_certificate(certificate.openssl_leaf)
        for extra in certificate.openssl_chain:
            ctx.add_extra_chain_cert(extra)
        ctx.use_privatekey(certificate.openssl_key)


def _set_client_ca_list(
    ctx: SSL.Context, authorities: Sequence[x509.Name | x509.Certificate]
) -> None:
    """Advertise acceptable client-certificate issuers in the CertificateRequest.

    Certificates go through the public ``add_client_ca``. Bare names need
    ``SSL_CTX_set_client_CA_list``, whose pyOpenSSL wrapper only takes the
    deprecated ``X509Name``; the names are decoded with the binding directly.
    """
    names = [a for a in authorities if isinstance(a, x509.Name)]
    certificates = [a for a in authorities if isinstance(a, x509.Certificate)]
    if names:
        from OpenSSL._util import ffi as _ffi
        from OpenSSL._util import lib as _lib

        decoded_names = []
        try:
            for name in names:
                der = name.public_bytes()
                buffer = _ffi.new("unsigned char[]", der)
                cursor = _ffi.new("unsigned char **", buffer)
                decoded = _lib.d2i_X509_NAME(_ffi.NULL, cursor, len(der))
                if decoded == _ffi.NULL:
                    raise ValueError(f"cannot encode CA name {name.rfc4514_string()!r}")
                decoded_names.append(decoded)
            stack = _lib.sk_X509_NAME_new_null()
            if stack == _ffi.NULL:
                raise MemoryError("sk_X509_NAME_new_null")
        except BaseException:
            for decoded in decoded_names:
                _lib.X509_NAME_free(decoded)
            raise
        for index, decoded in enumerate(decoded_names):  # the stack owns pushed names
            if not _lib.sk_X509_NAME_push(stack, decoded):
                for pushed in range(_lib.sk_X509_NAME_num(stack)):
                    _lib.X509_NAME_free(_lib.sk_X509_NAME_value(stack, pushed))
                _lib.sk_X509_NAME_free(stack)
                for rest in decoded_names[index:]:
                    _lib.X509_NAME_free(rest)
                raise MemoryError("sk_X509_NAME_push")
        _lib.SSL_CTX_set_client_CA_list(ctx._context, stack)  # takes ownership
    for certificate in certificates:
        ctx.add_client_ca(certificate)


def _session_id_context(session_id: bytes) -> bytes:
    """OpenSSL's session ID context holds 32 bytes at most; hash anything longer."""
    if not session_id:
        raise ValueError("session_id must not be empty")
    if len(session_id) <= _MAX_SESSION_ID:
        return session_id
    return hashlib.sha256(session_id).digest()


class TlsContextFactory:
    """Builds the per-FTP-session ``SSL.Context`` from ``<ftps7><tls>`` settings.

    The constructor checks the settings once (a bad version or a cipher
    string that selects nothing fails at start-up, not at the first AUTH).
    """

    def __init__(self, tls: TlsSettings, *, session_timeout: int = SESSION_TIMEOUT) -> None:
        self.tls = tls
        self.session_timeout = session_timeout
        self._minimum = minimum_protocol_version(tls.minimum_version)
        self._ciphers = {
            False: cipher_string(tls, ssl128=False),
            True: cipher_string(tls, ssl128=True),
        }
        for strength, ciphers in self._ciphers.items():
            try:
                SSL.Context(SSL.TLS_SERVER_METHOD).set_cipher_list(ciphers)
            except SSL.Error as error:
                raise ValueError(
                    f"the cipher list {tls.ciphers!r} selects no usable TLS 1.2 cipher"
                    + (" of 128 bits or more (ssl128)" if strength else "")
                ) from error

    def session_context(
        self,
        certificate: StoredCertificate,
        *,
        ssl128: bool,
        request_client_cert: bool,
        client_ca_names: Sequence[x509.Name | x509.Certificate] = (),
        session_id: bytes,
    ) -> SSL.Context:
        """A fresh server context for one FTP session (control and all its data connections).

        ``session_id`` becomes the session ID context (any bytes naming the
        FTP session or its site; longer than 32 bytes is hashed): a session
        resumes only on a context with the same one, and the per-context
        cache already isolates FTP sessions. ``client_ca_names``
        are advertised when a client certificate is requested (CA names or
        CA certificates; usually the ROOT store's subjects).
        """
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(self._minimum)
        ctx.set_cipher_list(self._ciphers[ssl128])
        # TLS 1.3 suites: OpenSSL's defaults, all AEAD with >= 128-bit keys.
        ctx.set_options(_OPTIONS)
        # An idle session then holds no 16 KiB read/write record buffers:
        # most of the memory of an idle logged-on TLS session (docs/performance.md).
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
        ctx.set_session_id(_session_id_context(session_id))
        ctx.set_timeout(self.session_timeout)
        # ECDHE groups: OpenSSL >= 1.1 negotiates them automatically ("ECDH auto").
        _use_identity(ctx, certificate)
        if request_client_cert:
            mode = SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE
            ctx.set_verify(mode, _accept_and_record)
            _verify_settings[ctx] = (mode, _accept_and_record)
            if client_ca_names:
                _set_client_ca_list(ctx, client_ca_names)
        else:
            _verify_settings[ctx] = (SSL.VERIFY_NONE, None)
        return ctx


def set_sni_callback(
    ctx: SSL.Context, choose: Callable[[bytes | None], SSL.Context | None]
) -> None:
    """Let the client's SNI name pick another context (another site's certificate).

    ``choose(server_name)`` returns the context to switch to, or None to keep
    ``ctx``. It must return the same context object for the same name within
    one FTP session: data connections are created from ``ctx`` again and
    resume through ``ctx``'s cache (the initial context's), while the
    certificate comes from the switched one.

    OpenSSL keeps the verify mode of the initial context across the switch,
    so the chosen context's client-certificate request is applied to the
    connection here.
    """

    def on_server_name(conn: SSL.Connection) -> None:
        chosen = choose(conn.get_servername())
        if chosen is None or chosen is conn.get_context():
            return
        conn.set_context(chosen)
        settings = _verify_settings.get(chosen)
        if settings is not None:
            conn.set_verify(*settings)
        else:
            conn.set_verify(chosen.get_verify_mode())

    ctx.set_tlsext_servername_callback(on_server_name)


@implementer(IOpenSSLServerConnectionCreator)
class ServerConnectionCreator:
    """Twisted's hook to make the server ``SSL.Connection`` of one TLS connection.

    ``context_provider`` returns the FTP session's own context (made lazily
    at the first TLS connection, e.g. on an implicit-TLS listener), so this
    one object serves ``startTLS`` on the control channel and every data
    connection of the session.
    """

    def __init__(self, context_provider: Callable[[], SSL.Context]) -> None:
        self._context_provider = context_provider

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection = SSL.Connection(self._context_provider(), None)
        connection.set_app_data(tlsProtocol)
        return connection

