"""Client certificates on the control and data channels (IIS sslClientCertificates).

- Control channel: after the handshake the presented certificate is validated
  in code (chain to ROOT, validity, usage, revocation — ``ftps7.tls``). Until
  the verdict is in, the session reads no command. A presented certificate
  that fails, or a missing one under CertRequire, ends the session with 421
  and a log line naming subject, issuer, serial and reason (fail closed).
- Data channel: IIS forces the certificate of every data connection to be
  the control channel's (seeds/ftp7-ssl-client-certificates.txt); a
  different or missing one is refused with 522.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography import x509
from OpenSSL import SSL
from twisted.internet import defer
from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.config.model import ClientCertificatePolicy
from ftps7.core.replies import R
from ftps7.tls import session as tls_session

if TYPE_CHECKING:
    from ftps7.server.datachannel import DataConnection
    from ftps7.server.protocol import FTPSession
    from ftps7.tls.clientcert import ValidationResult

log = Logger(observer=logfilter.observer)


def validate_control_certificate(
    session: FTPSession, connection: SSL.Connection
) -> defer.Deferred[bool] | None:
    """Start validating the control channel's client certificate.

    Returns None when there is nothing to wait for (CertIgnore), else a
    Deferred firing True if the session may go on. On False the caller has
    already been answered 421 and is being disconnected.
    """
    settings = session.site_settings().client_certificates
    policy = settings.client_certificate_policy
    if policy is ClientCertificatePolicy.CERT_IGNORE:
        return None
    leaf = tls_session.peer_certificate(connection)
    chain = tls_session.peer_chain(connection)
    if leaf is None:
        if policy is ClientCertificatePolicy.CERT_REQUIRE:
            log.warn(
                "session {session}: {peer} presented no client certificate (CertRequire)",
                session=session.session_id,
                peer=session.peer_host,
            )
            session.reply(R.CLIENT_CERT_REQUIRED)
            session.close()
            return defer.succeed(False)
        return None

    def verdict(result: ValidationResult) -> bool:
        if result.ok:
            log.info(
                "session {session}: {text}", session=session.session_id, text=result.log_text()
            )
            session.client_certificate = leaf
            session.client_chain = tuple(chain)
            return True
        log.warn(
            "session {session} from {peer}: {text}",
            session=session.session_id,
            peer=session.peer_host,
            text=result.log_text(),
        )
        if not session._closing:
            session.reply(R.CLIENT_CERT_REFUSED)
            session.close()
        return False

    return session.server.check_client_certificate(leaf, chain, settings).addCallback(verdict)


def data_certificate_refusal(session: FTPSession, connection: DataConnection) -> R | None:
    """The data connection's client certificate must be the control channel's."""
    policy = session.site_settings().client_certificates.client_certificate_policy
    if policy is ClientCertificatePolicy.CERT_IGNORE:
        return None
    presented: x509.Certificate | None = tls_session.peer_certificate(connection.tls_connection())
    expected: Any = session.client_certificate
    if presented is None and expected is None:
        return None
    if (
        presented is not None
        and expected is not None
        and tls_session.certificate_fingerprint(presented)
        == tls_session.certificate_fingerprint(expected)
    ):
        return None
    log.warn(
        "session {session}: data connection from {peer} presented {what} client certificate; "
        "refused",
        session=session.session_id,
        peer=connection.peer_host(),
        what="no" if presented is None else "a different",
    )
    return R.DATA_CLIENT_CERT_MISMATCH
