"""Small facts about a live TLS connection (a ``SSL.Connection``).

The FTP layer asks these after a handshake: did the data connection resume
the control connection's session (``requireSessionReuse``), how strong is the
cipher (``ssl128``), which client certificate was presented and what did
OpenSSL think of it while we accepted it anyway (validation happens later, in
code). Keeping them here confines the few private pyOpenSSL calls to one
module that tests pin down.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL

__all__ = [
    "certificate_fingerprint",
    "cipher_bits",
    "peer_certificate",
    "peer_chain",
    "preserve_session",
    "protocol_version",
    "record_verify_result",
    "session_reused",
    "verify_results",
]

# (depth, X509_V_ERR code) pairs seen by the accept-everything verify callback
# of ``ftps7.tls.contexts``, per connection; weak so a closed connection's
# entry goes with it.
_verify_log: weakref.WeakKeyDictionary[SSL.Connection, list[tuple[int, int]]] = (
    weakref.WeakKeyDictionary()
)


def session_reused(conn: SSL.Connection) -> bool:
    """Whether the handshake resumed an earlier session (``SSL_session_reused``).

    pyOpenSSL 26 has no public call for this, so the binding is used
    directly; should a ``Connection.session_reused()`` appear, it wins.
    """
    public = getattr(conn, "session_reused", None)
    if callable(public):
        return bool(public())
    from OpenSSL._util import lib as _lib  # private: see RESEARCH §2.5 and §7

    return bool(_lib.SSL_session_reused(conn._ssl))


def cipher_bits(conn: SSL.Connection) -> int | None:
    """Secret bits of the negotiated cipher (None before the handshake)."""
    return conn.get_cipher_bits()


def protocol_version(conn: SSL.Connection) -> str:
    """``TLSv1.3``, ``TLSv1.2``, ... (``unknown`` before the handshake)."""
    return conn.get_protocol_version_name()


def peer_certificate(conn: SSL.Connection) -> x509.Certificate | None:
    """The certificate the peer presented; kept in the session, so also on resumption."""
    return conn.get_peer_certificate(as_cryptography=True)


def peer_chain(conn: SSL.Connection) -> list[x509.Certificate]:
    """The certificates the peer sent.

    On the server side OpenSSL leaves the peer's own certificate out of this
    list (use ``peer_certificate``); it holds the intermediates the client
    sent, which validation needs.
    """
    return conn.get_peer_cert_chain(as_cryptography=True) or []


def certificate_fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 of the DER certificate: how control and data peers are compared."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(cert.public_bytes(serialization.Encoding.DER))
    return digest.finalize()


def record_verify_result(conn: SSL.Connection, depth: int, errno: int) -> None:
    """Remember what OpenSSL's chain check said about one certificate of the peer."""
    _verify_log.setdefault(conn, []).append((depth, errno))


def verify_results(conn: SSL.Connection) -> Sequence[tuple[int, int]]:
    """The ``(depth, errno)`` pairs recorded during this connection's handshake.

    Empty when no certificate was requested or presented, and on a resumed
    connection (the certificate was checked when the session was made).
    """
    return tuple(_verify_log.get(conn, ()))


def preserve_session(conn: SSL.Connection) -> None:
    """Keep this connection's session resumable although it ends without ``close_notify``.

    OpenSSL evicts a session from the server cache when an established
    connection is freed without having sent ``close_notify``. With TLS 1.2
    session-ID resumption a data connection shares the control connection's
    session, so one aborted transfer (client closed first, ABOR) would make
    every later data connection of that FTP session fail to resume
    (measured with pyOpenSSL 26 / OpenSSL 4). TLS 1.1+ no longer requires
    that (RFC 5246 §7.2.1), so the data channel calls this when a connection
    ends by plain EOF; do not call it after a TLS error or a failed handshake.
    """
    conn.set_shutdown(conn.get_shutdown() | SSL.SENT_SHUTDOWN)
