"""Server contexts shared by a few FTP sessions, each session's own TLS identity, SNI.

Why sessions cannot resume each other (RESEARCH §2.5): OpenSSL resumes a
session only on a connection whose *session ID context* equals the one the
session was created with. Every FTP session gets its own session ID context
(``SessionTls``), set on each of its connections, control and data, so a data
connection can resume only that FTP session's TLS sessions: another client's
session (or ticket) offered on our PASV port is found in the cache but
refused, which ``session_reused`` then reports.

The contexts themselves are shared: up to ``GENERATION_SIZE`` FTP sessions
use one context (per certificate and settings), then a new one is built.
ftps7 used to give every FTP session a context of its own; that cost
~0.25 ms of CPU per logon (``SSL_CTX_new`` and its set-up) and ~15 KiB per
idle session (docs/performance.md). A generation, not one context for
ever, because OpenSSL's cache cannot be told to forget an ended session
(``SSL_CTX_remove_session`` is not bound by pyOpenSSL): a generation's
cache, with every TLS session its FTP sessions made, is freed with the
context once the last of them has ended.

Measured with pyOpenSSL 26.4 / OpenSSL 4.0 (in-memory handshakes):

* TLS 1.3 resumption works with ``OP_NO_TICKET``: OpenSSL then issues
  *stateful* tickets (a session ID looked up in the server cache), so tickets
  stay off and both TLS 1.2 and 1.3 resume only from the cache, and only
  with the same session ID context (tests/unit/test_tls_contexts.py).
* Building one context costs ~0.14 ms with the pre-converted pyOpenSSL
  certificate and key of ``StoredCertificate`` (ECDSA P-256 or RSA-2048, two
  chain certificates), against ~0.24 ms when pyOpenSSL has to convert the
  ``cryptography`` objects itself.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from OpenSSL import SSL
from OpenSSL._util import lib as _lib
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

from ftps7.config.model import TlsSettings
from ftps7.tls.session import record_verify_result
from ftps7.tls.store import StoredCertificate

if TYPE_CHECKING:
    from twisted.protocols.tls import TLSMemoryBIOProtocol

__all__ = [
    "GENERATION_SIZE",
    "SESSION_TIMEOUT",
    "ServerConnectionCreator",
    "SessionTls",
    "TlsContextFactory",
    "cipher_string",
    "minimum_protocol_version",
]

# A session must outlive its FTP session's control connection; the cache dies
# with the context anyway. Seven days is also TLS 1.3's ticket lifetime cap.
SESSION_TIMEOUT = 7 * 24 * 3600

# FTP sessions per shared context before the next one is built: the context's
# cost (~0.25 ms, ~15 KiB) spread thin, while an ended session's cached TLS
# sessions wait at most for 63 others to end before they are freed.
GENERATION_SIZE = 64

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


def _set_session_id_context(ctx: SSL.Context, session_id_context: bytes) -> None:
    """Set the context's session ID context, which ``SSL_new`` copies into each connection.

    pyOpenSSL 26 refuses ``set_session_id`` once a context has made a
    connection, so the binding is called directly. Safe: connections are
    only made on the reactor thread, and a connection keeps its own copy.
    """
    if not _lib.SSL_CTX_set_session_id_context(
        ctx._context, session_id_context, len(session_id_context)
    ):
        raise SSL.Error("SSL_CTX_set_session_id_context failed")


_ContextKey = tuple[str, bool, bool, tuple[bytes, ...]]


@dataclass
class _Generation:
    """The context one kind of session currently gets, and for whom."""

    context: SSL.Context
    certificate: StoredCertificate  # the stored object it was built from
    sessions: int = 0


class TlsContextFactory:
    """Builds and shares server ``SSL.Context`` objects from ``<ftps7><tls>`` settings.

    The constructor checks the settings once (a bad version or a cipher
    string that selects nothing fails at start-up, not at the first AUTH).
    """

    def __init__(
        self,
        tls: TlsSettings,
        *,
        session_timeout: int = SESSION_TIMEOUT,
        generation_size: int = GENERATION_SIZE,
    ) -> None:
        self.tls = tls
        self.session_timeout = session_timeout
        self.generation_size = generation_size
        self._minimum = minimum_protocol_version(tls.minimum_version)
        self._ciphers = {
            False: cipher_string(tls, ssl128=False),
            True: cipher_string(tls, ssl128=True),
        }
        self._current: dict[_ContextKey, _Generation] = {}
        # The key of the last CA name list seen: the server hands the same list
        # object to every logon for seconds, so it is encoded once, not per logon.
        self._names_seen: tuple[object, tuple[bytes, ...]] = ((), ())
        for strength, ciphers in self._ciphers.items():
            try:
                SSL.Context(SSL.TLS_SERVER_METHOD).set_cipher_list(ciphers)
            except SSL.Error as error:
                raise ValueError(
                    f"the cipher list {tls.ciphers!r} selects no usable TLS 1.2 cipher"
                    + (" of 128 bits or more (ssl128)" if strength else "")
                ) from error

    def shared_context(
        self,
        certificate: StoredCertificate,
        *,
        ssl128: bool,
        request_client_cert: bool,
        client_ca_names: Sequence[x509.Name | x509.Certificate] = (),
        new_session: bool = True,
    ) -> SSL.Context:
        """The context of the current generation for this certificate and these settings.

        ``new_session`` counts one more FTP session against the generation;
        an SNI switch to another certificate of an already counted session
        passes False. ``client_ca_names`` are advertised when a client
        certificate is requested (CA names or CA certificates; usually the
        ROOT store's subjects): a changed list starts a new context, and so
        does a certificate the store has re-read (same thumbprint, say a new
        chain).
        """
        names = self._names_key(client_ca_names) if request_client_cert else ()
        key = (certificate.thumbprint, ssl128, request_client_cert, names)
        current = self._current.get(key)
        if (
            current is None
            or current.certificate is not certificate
            or (new_session and current.sessions >= self.generation_size)
        ):
            ctx = self.new_context(
                certificate,
                ssl128=ssl128,
                request_client_cert=request_client_cert,
                client_ca_names=client_ca_names,
            )
            current = self._current[key] = _Generation(ctx, certificate)
        if new_session:
            current.sessions += 1
        return current.context

    def _names_key(
        self, client_ca_names: Sequence[x509.Name | x509.Certificate]
    ) -> tuple[bytes, ...]:
        seen, key = self._names_seen
        if client_ca_names is not seen:
            key = tuple(_name_bytes(a) for a in client_ca_names)
            self._names_seen = (client_ca_names, key)
        return key

    def new_context(
        self,
        certificate: StoredCertificate,
        *,
        ssl128: bool,
        request_client_cert: bool,
        client_ca_names: Sequence[x509.Name | x509.Certificate] = (),
    ) -> SSL.Context:
        """A fresh server context; ``shared_context`` is what sessions use."""
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(self._minimum)
        ctx.set_cipher_list(self._ciphers[ssl128])
        # TLS 1.3 suites: OpenSSL's defaults, all AEAD with >= 128-bit keys.
        ctx.set_options(_OPTIONS)
        # An idle session then holds no 16 KiB read/write record buffers:
        # most of the memory of an idle logged-on TLS session (docs/performance.md).
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
        # Each connection gets its FTP session's own (SessionTls); this one is
        # only a placeholder that no session uses.
        ctx.set_session_id(b"ftps7-unassigned")
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
        ctx.set_tlsext_servername_callback(_on_server_name)
        return ctx


def _name_bytes(authority: x509.Name | x509.Certificate) -> bytes:
    name = authority.subject if isinstance(authority, x509.Certificate) else authority
    return name.public_bytes()


class SessionTls:
    """One FTP session's TLS identity: its context and its own session ID context.

    Every TLS connection of the session, control and data, is made by
    ``new_connection``, so all of them carry the session's ID context and
    resume only each other's sessions, and all of them look sessions up in
    ``context``'s cache (OpenSSL keeps the cache of the context a connection
    was *made* from, even after an SNI switch).

    ``choose(server_name)``, if given, runs during each handshake (SNI) and
    returns the context whose certificate to present, or None to keep
    ``context``. It must give the same certificate for the same name within
    one FTP session. OpenSSL keeps the verify mode of the initial context
    across the switch, so the chosen context's client-certificate request is
    applied to the connection here.
    """

    __slots__ = ("__weakref__", "choose", "context", "session_id_context")

    def __init__(
        self,
        context: SSL.Context,
        session_id: bytes,
        choose: Callable[[bytes | None], SSL.Context | None] | None = None,
    ) -> None:
        self.context = context
        self.session_id_context = _session_id_context(session_id)
        self.choose = choose

    def new_connection(self, app_data: object = None) -> SSL.Connection:
        _set_session_id_context(self.context, self.session_id_context)
        connection = SSL.Connection(self.context, None)
        connection.set_app_data(app_data)
        _session_of[connection] = self
        return connection

    def switch(self, connection: SSL.Connection, chosen: SSL.Context) -> None:
        """Present ``chosen``'s certificate on ``connection``, keeping this session's identity.

        ``SSL_set_SSL_CTX`` copies the new context's session ID context into
        the connection when the connection's equals the old context's
        current one, which another session may have set meanwhile; giving
        ``chosen`` ours first makes the result ours either way.
        """
        _set_session_id_context(chosen, self.session_id_context)
        connection.set_context(chosen)
        settings = _verify_settings.get(chosen)
        if settings is not None:
            connection.set_verify(*settings)
        else:
            connection.set_verify(chosen.get_verify_mode())


_session_of: weakref.WeakKeyDictionary[SSL.Connection, SessionTls] = weakref.WeakKeyDictionary()


def _on_server_name(connection: SSL.Connection) -> None:
    """The SNI callback of every shared context: the connection's session decides."""
    session = _session_of.get(connection)
    if session is None or session.choose is None:
        return
    chosen = session.choose(connection.get_servername())
    if chosen is None or chosen is connection.get_context():
        return
    session.switch(connection, chosen)


@implementer(IOpenSSLServerConnectionCreator)
class ServerConnectionCreator:
    """Twisted's hook to make the server ``SSL.Connection`` of one TLS connection.

    One object serves ``startTLS`` on the control channel and every data
    connection of the session: each connection is made by the session's
    ``SessionTls``.
    """

    def __init__(self, session_tls: SessionTls) -> None:
        self._session_tls = session_tls

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        return self._session_tls.new_connection(tlsProtocol)
