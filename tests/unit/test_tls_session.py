"""Facts about live TLS connections: reuse, fingerprints, and keeping sessions resumable."""

from __future__ import annotations

import gc
import hashlib
from typing import cast

import pytest
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from ftps7.config.model import TlsSettings
from ftps7.tls.contexts import TlsContextFactory
from ftps7.tls.session import (
    certificate_fingerprint,
    preserve_session,
    session_reused,
    verify_results,
)
from ftps7.tls.store import StoredCertificate
from tests.pki import Pki, client_context, connect, make_pki


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
def ctx(pki: Pki) -> SSL.Context:
    certificate = StoredCertificate.build(
        name="ftp", path="/ftp.pem", leaf=pki.server.cert, private_key=pki.server.key
    )
    return TlsContextFactory(TlsSettings()).new_context(
        certificate, ssl128=False, request_client_cert=False
    )


def test_certificate_fingerprint_is_sha256_of_der(pki: Pki) -> None:
    der = pki.client.cert.public_bytes(serialization.Encoding.DER)
    assert certificate_fingerprint(pki.client.cert) == hashlib.sha256(der).digest()
    assert certificate_fingerprint(pki.client.cert) != certificate_fingerprint(pki.server.cert)


def test_session_reused_prefers_a_public_method() -> None:
    class Future:
        def session_reused(self) -> int:
            return 1

    assert session_reused(cast(SSL.Connection, Future())) is True


def test_nothing_recorded_without_a_client_certificate(ctx: SSL.Context) -> None:
    _, server = connect(ctx, client_context())
    assert verify_results(server) == ()


def _end_by_eof(client: SSL.Connection, server: SSL.Connection, *, preserve: bool) -> None:
    """A data connection that ends by plain EOF: the server never sent close_notify.

    (The client side is marked shut down so that only the server's behaviour
    is under test: OpenSSL clients also stop offering such a session.)
    """
    client.set_shutdown(SSL.SENT_SHUTDOWN | SSL.RECEIVED_SHUTDOWN)
    if preserve:
        preserve_session(server)


@pytest.mark.parametrize("preserve", [False, True], ids=["plain", "preserved"])
def test_unclean_data_close_and_tls12_resumption(ctx: SSL.Context, preserve: bool) -> None:
    # OpenSSL evicts a TLS 1.2 session whose connection is freed without
    # close_notify; the data channel calls preserve_session to keep the
    # control session usable for the next transfer.
    client_ctx = client_context(max_version=SSL.TLS1_2_VERSION)
    control, _ = connect(ctx, client_ctx)
    session = control.get_session()

    data_client, data_server = connect(ctx, client_ctx, session=session)
    assert session_reused(data_server)
    _end_by_eof(data_client, data_server, preserve=preserve)
    del data_client, data_server
    gc.collect()

    _, next_data = connect(ctx, client_ctx, session=session)
    assert session_reused(next_data) is preserve
