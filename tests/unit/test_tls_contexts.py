"""Shared SSL contexts and per-session TLS identities, in memory: resumption, isolation,
versions, client certs, SNI."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface.verify import verifyObject

from ftps7.config.model import TlsSettings
from ftps7.tls.contexts import (
    GENERATION_SIZE,
    SESSION_TIMEOUT,
    ServerConnectionCreator,
    SessionTls,
    TlsContextFactory,
    cipher_string,
)
from ftps7.tls.session import (
    cipher_bits,
    peer_certificate,
    peer_chain,
    protocol_version,
    session_reused,
    verify_results,
)
from ftps7.tls.store import StoredCertificate
from tests.pki import (
    Pki,
    client_context,
    close_quietly,
    connect,
    connect_server,
    make_ca,
    make_leaf,
    make_pki,
)

TLS12 = SSL.TLS1_2_VERSION
TLS13 = SSL.TLS1_3_VERSION


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def server_cert(pki: Pki) -> StoredCertificate:
    return StoredCertificate.build(
        name="ftp",
        path="/nonexistent/ftp.pem",
        leaf=pki.server.cert,
        chain=[pki.intermediate.cert],
        private_key=pki.server.key,
    )


@pytest.fixture
def factory() -> TlsContextFactory:
    return TlsContextFactory(TlsSettings())


def new_context(
    factory: TlsContextFactory,
    certificate: StoredCertificate,
    *,
    request_client_cert: bool = False,
    ssl128: bool = False,
    client_ca_names: tuple[x509.Name | x509.Certificate, ...] = (),
) -> SSL.Context:
    return factory.new_context(
        certificate,
        ssl128=ssl128,
        request_client_cert=request_client_cert,
        client_ca_names=client_ca_names,
    )


def connect_as(
    session_tls: SessionTls,
    client_ctx: SSL.Context,
    *,
    session: SSL.Session | None = None,
    server_name: bytes | None = None,
) -> tuple[SSL.Connection, SSL.Connection]:
    """Like ``connect``, with the server side made by an FTP session's ``SessionTls``."""
    return connect_server(
        session_tls.new_connection(), client_ctx, session=session, server_name=server_name
    )


def test_client_verifies_the_served_chain(
    tmp_path: Path, pki: Pki, factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    # The client trusts only the root: the handshake succeeds only if the
    # server sends the intermediate from the stored chain.
    client_ctx = client_context(trust=[pki.root.cert], tmp_dir=tmp_path)
    client, server = connect(new_context(factory, server_cert), client_ctx)

    assert peer_certificate(client) == pki.server.cert
    assert peer_chain(client)[:2] == [pki.server.cert, pki.intermediate.cert]
    assert protocol_version(server) == "TLSv1.3"
    assert (cipher_bits(server) or 0) >= 128
    assert not session_reused(server)


def test_context_settings(factory: TlsContextFactory, server_cert: StoredCertificate) -> None:
    ctx = new_context(factory, server_cert)
    options = ctx.set_options(0)
    for option in (
        SSL.OP_NO_COMPRESSION,
        SSL.OP_CIPHER_SERVER_PREFERENCE,
        SSL.OP_NO_RENEGOTIATION,
        SSL.OP_NO_TICKET,
    ):
        assert options & option == option
    assert ctx.get_session_cache_mode() == SSL.SESS_CACHE_SERVER
    assert ctx.get_timeout() == SESSION_TIMEOUT
    assert ctx.get_verify_mode() == SSL.VERIFY_NONE


def shared(
    factory: TlsContextFactory, certificate: StoredCertificate, *, new_session: bool = True
) -> SSL.Context:
    return factory.shared_context(
        certificate, ssl128=False, request_client_cert=False, new_session=new_session
    )


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
def test_data_connection_resumes_the_control_session(
    factory: TlsContextFactory, server_cert: StoredCertificate, version: int
) -> None:
    tls = SessionTls(shared(factory, server_cert), b"ftps7-1")
    client_ctx = client_context(max_version=version)
    control_client, control_server = connect_as(tls, client_ctx)
    session = control_client.get_session()

    for _ in range(3):  # several data connections from the same control session
        data_client, data_server = connect_as(tls, client_ctx, session=session)
        assert session_reused(data_server)
        assert protocol_version(data_server) == protocol_version(control_server)
        close_quietly(data_client, data_server)


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
def test_another_session_on_the_same_context_does_not_resume(
    factory: TlsContextFactory, server_cert: StoredCertificate, version: int
) -> None:
    # Client A's session offered on client B's data port (RESEARCH §2.5, E4):
    # the shared cache finds it, but B's connections carry B's session ID context.
    a = SessionTls(shared(factory, server_cert), b"ftps7-1")
    b = SessionTls(shared(factory, server_cert), b"ftps7-2")
    assert a.context is b.context
    client_ctx = client_context(max_version=version)
    # (The server ends stay referenced: OpenSSL evicts the TLS 1.2 session of
    # a connection freed without close_notify.)
    a_client, a_server = connect_as(a, client_ctx)
    b_client, b_server = connect_as(b, client_ctx)

    stolen_client, stolen = connect_as(b, client_ctx, session=a_client.get_session())
    assert not session_reused(stolen)
    close_quietly(stolen_client, stolen)

    # Each still resumes its own, whatever was made in between.
    for tls, client in ((a, a_client), (b, b_client), (a, a_client)):
        data_client, data = connect_as(tls, client_ctx, session=client.get_session())
        assert session_reused(data)
        close_quietly(data_client, data)
    close_quietly(a_client, a_server)
    close_quietly(b_client, b_server)


def test_a_fresh_context_does_not_resume_either(
    factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    # A new generation does not know the sessions of the previous one.
    old = SessionTls(new_context(factory, server_cert), b"s")
    new = SessionTls(new_context(factory, server_cert), b"s")
    client_ctx = client_context()
    client, _ = connect_as(old, client_ctx)
    _, data = connect_as(new, client_ctx, session=client.get_session())
    assert not session_reused(data)


def test_contexts_are_shared_by_a_generation_of_sessions(
    pki: Pki, server_cert: StoredCertificate
) -> None:
    factory = TlsContextFactory(TlsSettings(), generation_size=3)
    first = [shared(factory, server_cert) for _ in range(3)]
    assert first[0] is first[1] is first[2]
    # An SNI switch of a counted session does not count again.
    assert shared(factory, server_cert, new_session=False) is first[0]
    second = shared(factory, server_cert)
    assert second is not first[0]
    assert shared(factory, server_cert) is second
    # Other settings, another context.
    strong = factory.shared_context(server_cert, ssl128=True, request_client_cert=False)
    asking = factory.shared_context(server_cert, ssl128=False, request_client_cert=True)
    named = factory.shared_context(
        server_cert,
        ssl128=False,
        request_client_cert=True,
        client_ca_names=(pki.root.cert.subject,),
    )
    assert len({id(c) for c in (second, strong, asking, named)}) == 4
    assert GENERATION_SIZE > 1


def test_the_advertised_ca_names_are_part_of_the_key(
    pki: Pki, factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    def asking(names: list[x509.Name]) -> SSL.Context:
        return factory.shared_context(
            server_cert, ssl128=False, request_client_cert=True, client_ca_names=names
        )

    roots = [pki.root.cert.subject]
    first = asking(roots)
    assert asking(roots) is first  # the same list again
    assert asking(list(roots)) is first  # an equal list
    other = asking([pki.root.cert.subject, pki.intermediate.cert.subject])
    assert other is not first
    assert asking(roots) is first


def test_a_reread_certificate_gets_a_new_context(
    pki: Pki, factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    # Same thumbprint, new chain (the store re-read the files): new sessions
    # must present the new chain at once, not after a generation.
    first = shared(factory, server_cert)
    reread = StoredCertificate.build(
        name="ftp", path="/nonexistent/ftp.pem", leaf=pki.server.cert, private_key=pki.server.key
    )
    assert reread.thumbprint == server_cert.thumbprint
    again = shared(factory, reread)
    assert again is not first
    client, _ = connect_as(SessionTls(again, b"s"), client_context())
    assert peer_chain(client) == [pki.server.cert]


def test_tls11_refused_with_the_default_minimum(
    factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    old_client = client_context(max_version=SSL.TLS1_1_VERSION, ciphers=b"DEFAULT:@SECLEVEL=0")
    with pytest.raises(SSL.Error):
        connect(new_context(factory, server_cert), old_client)


def test_tls11_allowed_when_configured(server_cert: StoredCertificate) -> None:
    factory = TlsContextFactory(TlsSettings(minimum_version="TLSv1.1"))
    old_client = client_context(max_version=SSL.TLS1_1_VERSION, ciphers=b"DEFAULT:@SECLEVEL=0")
    try:
        _, server = connect(new_context(factory, server_cert), old_client)
    except SSL.Error as error:  # pragma: no cover - depends on the OpenSSL build
        pytest.skip(f"this OpenSSL cannot speak TLS 1.1 at all: {error}")
    assert protocol_version(server) == "TLSv1.1"


def test_tls13_only(server_cert: StoredCertificate) -> None:
    factory = TlsContextFactory(TlsSettings(minimum_version="TLSv1.3"))
    with pytest.raises(SSL.Error):
        connect(new_context(factory, server_cert), client_context(max_version=TLS12))


def test_client_renegotiation_is_refused(
    factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    from tests.pki import pump

    client, server = connect(new_context(factory, server_cert), client_context(max_version=TLS12))
    assert client.renegotiate()
    with pytest.raises(SSL.WantReadError):
        client.do_handshake()
    pump(client, server)
    with pytest.raises(SSL.WantReadError):
        server.recv(16)
    pump(server, client)
    with pytest.raises(SSL.Error, match="no renegotiation"):
        client.do_handshake()
    assert server.total_renegotiations() == 0


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
def test_client_certificate_is_requested_accepted_and_recorded(
    pki: Pki, factory: TlsContextFactory, server_cert: StoredCertificate, version: int
) -> None:
    tls = SessionTls(new_context(factory, server_cert, request_client_cert=True), b"s")
    client_ctx = client_context(
        max_version=version, identity=pki.client, chain=[pki.intermediate.cert]
    )

    client, server = connect_as(tls, client_ctx)

    assert peer_certificate(server) == pki.client.cert
    assert pki.intermediate.cert in peer_chain(server)
    results = verify_results(server)
    # The server trusts nothing, so OpenSSL complained, and we accepted anyway.
    assert results and any(errno != 0 for _, errno in results)
    assert {depth for depth, _ in results} >= {0}

    data_client, data_server = connect_as(tls, client_ctx, session=client.get_session())
    assert session_reused(data_server)
    assert peer_certificate(data_server) == pki.client.cert
    assert verify_results(data_server) == ()
    close_quietly(data_client, data_server)


def test_no_client_certificate_is_fine_when_requested(
    factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    ctx = new_context(factory, server_cert, request_client_cert=True)
    _, server = connect(ctx, client_context())
    assert peer_certificate(server) is None


def test_client_certificate_not_requested_by_default(
    pki: Pki, factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    _, server = connect(new_context(factory, server_cert), client_context(identity=pki.client))
    assert peer_certificate(server) is None


def test_client_ca_names_are_advertised(
    pki: Pki, factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    other = make_ca("Other Client CA")
    ctx = new_context(
        factory,
        server_cert,
        request_client_cert=True,
        client_ca_names=(pki.root.cert.subject, other.cert),
    )
    client, _ = connect(ctx, client_context())
    advertised = client.get_client_ca_list(as_cryptography=True)
    assert advertised == [pki.root.cert.subject, other.cert.subject]


def test_ssl128_cipher_string_and_strength(server_cert: StoredCertificate) -> None:
    settings = TlsSettings(ciphers="ALL")
    plain = cipher_string(settings, ssl128=False)
    strong = cipher_string(settings, ssl128=True)
    assert plain.startswith(b"ALL:") and b"!aNULL" in plain and b"!LOW" in plain
    assert b"!EXP" in plain and b"!3DES" not in plain
    assert b"!3DES" in strong and b"!DES" in strong and b"!RC4" in strong
    factory = TlsContextFactory(settings)
    _, server = connect(
        new_context(factory, server_cert, ssl128=True), client_context(max_version=TLS12)
    )
    assert (cipher_bits(server) or 0) >= 128


def test_legacy_minimum_lowers_the_security_level() -> None:
    assert cipher_string(TlsSettings(minimum_version="TLSv1"), ssl128=False).endswith(
        b"@SECLEVEL=0"
    )
    assert b"SECLEVEL" not in cipher_string(TlsSettings(), ssl128=False)


@pytest.mark.parametrize(
    "settings",
    [
        TlsSettings(minimum_version="SSLv3"),
        TlsSettings(ciphers="eNULL"),
        TlsSettings(ciphers="bogus"),
    ],
)
def test_bad_settings_fail_at_construction(settings: TlsSettings) -> None:
    with pytest.raises(ValueError):
        TlsContextFactory(settings)


def test_certificate_without_key_is_refused(pki: Pki, factory: TlsContextFactory) -> None:
    keyless = StoredCertificate.build(name="x", path="/x.pem", leaf=pki.server.cert)
    with pytest.raises(ValueError, match="no private key"):
        new_context(factory, keyless)


def test_long_session_ids_are_accepted(
    factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    tls = SessionTls(shared(factory, server_cert), b"ftps7:" + b"x" * 100)
    other = SessionTls(tls.context, b"ftps7:" + b"x" * 99 + b"y")
    client_ctx = client_context(max_version=TLS12)
    client, _ = connect_as(tls, client_ctx)
    _, data = connect_as(tls, client_ctx, session=client.get_session())
    assert session_reused(data)
    _, stolen = connect_as(other, client_ctx, session=client.get_session())
    assert not session_reused(stolen)


def test_rsa_certificate(factory: TlsContextFactory, pki: Pki) -> None:
    rsa_leaf = make_leaf(pki.intermediate, key_type="rsa-2048")
    cert = StoredCertificate.build(
        name="rsa", path="/rsa.pem", leaf=rsa_leaf.cert, private_key=rsa_leaf.key
    )
    client, _ = connect(new_context(factory, cert), client_context(max_version=TLS12))
    assert peer_certificate(client) == rsa_leaf.cert


# ----------------------------------------------------------------------- SNI


@pytest.fixture
def other_site(pki: Pki) -> StoredCertificate:
    leaf = make_leaf(pki.intermediate, "other.example.com", dns_names=("other.example.com",))
    return StoredCertificate.build(
        name="other", path="/other.pem", leaf=leaf.cert, private_key=leaf.key
    )


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
def test_sni_switches_the_certificate_and_data_still_resumes(
    pki: Pki,
    factory: TlsContextFactory,
    server_cert: StoredCertificate,
    other_site: StoredCertificate,
    version: int,
) -> None:
    initial = shared(factory, server_cert)
    switched = shared(factory, other_site)
    asked: list[bytes | None] = []

    def choose(name: bytes | None) -> SSL.Context | None:
        asked.append(name)
        return switched if name == b"other.example.com" else None

    client_ctx = client_context(max_version=version)
    plain = SessionTls(initial, b"ftps7-1", choose)
    plain_client, _ = connect_as(plain, client_ctx, server_name=b"ftp.example.com")
    assert peer_certificate(plain_client) == pki.server.cert

    tls = SessionTls(initial, b"ftps7-2", choose)
    client, server = connect_as(tls, client_ctx, server_name=b"other.example.com")
    assert peer_certificate(client) == other_site.leaf
    assert server.get_context() is switched

    # The data connection is made from the *initial* context again (RESEARCH §2.4, E8).
    _, data = connect_as(
        tls, client_ctx, session=client.get_session(), server_name=b"other.example.com"
    )
    assert session_reused(data)
    assert asked == [b"ftp.example.com", b"other.example.com", b"other.example.com"]


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
def test_an_sni_switch_keeps_the_sessions_own_identity(
    factory: TlsContextFactory,
    server_cert: StoredCertificate,
    other_site: StoredCertificate,
    version: int,
) -> None:
    # OpenSSL copies the switched-to context's session ID context into the
    # connection; that context last served session B. A's control session
    # must still be A's alone.
    initial = shared(factory, server_cert)
    switched = shared(factory, other_site)

    def choose(name: bytes | None) -> SSL.Context | None:
        return switched

    a = SessionTls(initial, b"ftps7-a", choose)
    b = SessionTls(initial, b"ftps7-b", choose)
    client_ctx = client_context(max_version=version)
    b_client, b_server = connect_as(b, client_ctx, server_name=b"other.example.com")
    a_client, a_server = connect_as(a, client_ctx, server_name=b"other.example.com")

    _, stolen = connect_as(b, client_ctx, session=a_client.get_session())
    assert not session_reused(stolen)
    _, stolen_back = connect_as(a, client_ctx, session=b_client.get_session())
    assert not session_reused(stolen_back)
    _, data = connect_as(a, client_ctx, session=a_client.get_session())
    assert session_reused(data)
    close_quietly(a_client, a_server)
    close_quietly(b_client, b_server)


def test_sni_carries_the_client_certificate_request(
    pki: Pki,
    factory: TlsContextFactory,
    server_cert: StoredCertificate,
    other_site: StoredCertificate,
) -> None:
    initial = new_context(factory, server_cert)  # does not ask
    asking = new_context(factory, other_site, request_client_cert=True)
    tls = SessionTls(initial, b"s", lambda name: asking if name == b"other.example.com" else None)
    client_ctx = client_context(identity=pki.client)

    _, plain = connect_as(tls, client_ctx)
    _, server = connect_as(tls, client_ctx, server_name=b"other.example.com")

    assert peer_certificate(plain) is None
    assert peer_certificate(server) == pki.client.cert
    assert verify_results(server)


def test_sni_callback_failure_aborts_the_handshake(
    factory: TlsContextFactory, server_cert: StoredCertificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setattr(sys, "excepthook", lambda *args: None)  # pyOpenSSL reports it there

    def choose(name: bytes | None) -> SSL.Context | None:
        raise RuntimeError("boom")

    tls = SessionTls(new_context(factory, server_cert), b"s", choose)
    with pytest.raises(SSL.Error):
        connect_as(tls, client_context(), server_name=b"x.example")


def test_connections_made_elsewhere_ignore_sni(
    factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    # A connection not made by a SessionTls (none in the server) keeps its context.
    ctx = new_context(factory, server_cert)
    _, server = connect(ctx, client_context(), server_name=b"x.example")
    assert server.get_context() is ctx


# -------------------------------------------------------------------- Twisted


def test_server_connection_creator_with_twisted(
    tmp_path: Path, pki: Pki, factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    from twisted.internet.protocol import Factory, Protocol
    from twisted.internet.ssl import Certificate, optionsForClientTLS
    from twisted.internet.task import Clock
    from twisted.protocols.tls import TLSMemoryBIOFactory
    from twisted.test.iosim import connectedServerAndClient

    ctx = new_context(factory, server_cert)
    creator = ServerConnectionCreator(SessionTls(ctx, b"s"))
    assert verifyObject(IOpenSSLServerConnectionCreator, creator)

    received: list[bytes] = []

    def transport(protocol: Protocol) -> Any:  # zope interfaces are opaque to mypy
        return protocol.transport

    class Echo(Protocol):
        def dataReceived(self, data: bytes) -> None:
            received.append(data)
            transport(self).write(data.upper())

    class Hello(Protocol):
        def connectionMade(self) -> None:
            transport(self).write(b"hello")

        def dataReceived(self, data: bytes) -> None:
            received.append(data)

    clock = Clock()
    server_factory = TLSMemoryBIOFactory(
        cast(Any, creator), False, cast(Any, Factory.forProtocol(Echo)), cast(Any, clock)
    )
    trust = Certificate.loadPEM(pki.root.cert_pem())
    client_factory = TLSMemoryBIOFactory(
        optionsForClientTLS("ftp.example.com", trustRoot=trust),
        True,
        cast(Any, Factory.forProtocol(Hello)),
        cast(Any, clock),
    )
    client, server, pump = connectedServerAndClient(
        lambda: server_factory.buildProtocol(None),
        lambda: client_factory.buildProtocol(None),
        clock=clock,
    )
    pump.flush()

    assert received == [b"hello", b"HELLO"]
    connection = server.getHandle()
    assert connection.get_context() is ctx
    assert connection.get_app_data() is server


def test_idle_connections_release_their_record_buffers(
    factory: TlsContextFactory, server_cert: StoredCertificate
) -> None:
    # Without it an idle logged-on session keeps ~34 KiB of read/write record
    # buffers: most of its memory (docs/performance.md).
    mode = new_context(factory, server_cert).set_mode(0)
    assert mode & SSL.MODE_RELEASE_BUFFERS
