"""OCSP: reading responses, the answer cache, and OCSP before CRLs in a certificate check.

Responses are built with cryptography's OCSPResponseBuilder for the edge
cases, and produced by OpenSSL's own responder (``openssl ocsp``, behind the
loopback HTTP server of tests/crlserver.py) where the whole check runs over
real HTTP through the reactor.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from twisted.internet import defer, task
from twisted.trial.unittest import TestCase

from ftps7.config.model import ClientCertificateSettings
from ftps7.tls.clientcert import Reason, RevocationState, RevocationStatus
from ftps7.tls.ocsp import (
    HttpOcspPoster,
    OcspCache,
    ocsp_request,
    ocsp_urls,
    response_status,
)
from ftps7.tls.revocation import CrlCache, HttpCrlFetcher, check_client_certificate
from ftps7.tls.store import CertificateStore
from tests.crlserver import CrlServer, OpensslOcsp
from tests.pki import (
    Issued,
    crl_der,
    key_pem,
    make_ca_cert,
    make_cert,
    make_client_cert,
    make_crl,
    make_ocsp_response,
    ocsp_responders,
    pem,
)

NOW = datetime.datetime.now(datetime.UTC)
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
URL = "http://127.0.0.1:9/ocsp"

ROOT = make_ca_cert(None, "OCSP Root")
ISSUING = make_ca_cert(ROOT, "OCSP Issuing CA")
ALICE = make_client_cert(ISSUING, "alice", extensions=[(ocsp_responders(URL), False)])
OTHER_CA = make_ca_cert(None, "Another CA")


def _responder(issuer: Issued = ISSUING, *, eku: bool = True, by: Issued | None = None) -> Issued:
    """A delegated OCSP responder certificate issued by ``by`` (default: ``issuer``)."""
    return make_cert(
        by or issuer,
        "OCSP Responder",
        eku=(ExtendedKeyUsageOID.OCSP_SIGNING,) if eku else (ExtendedKeyUsageOID.CLIENT_AUTH,),
    )


def _status(data: bytes, cert: x509.Certificate = ALICE.cert, now: datetime.datetime = NOW) -> Any:
    return response_status(data, cert, ISSUING.cert, now, "OCSP test")


# ------------------------------------------------------------------ reading


def test_the_responders_are_the_http_ocsp_entries_of_aia() -> None:
    access = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier("http://ca.example/ca.crt"),
            ),
            x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier("ldap://ocsp.example/"),
            ),
            *ocsp_responders("http://ocsp.example/a", "http://ocsp.example/a", "http://b/"),
        ]
    )
    cert = make_client_cert(ISSUING, "x", extensions=[(access, False)])
    assert ocsp_urls(cert.cert) == ("http://ocsp.example/a", "http://b/")
    assert ocsp_urls(make_client_cert(ISSUING, "y").cert) == ()


def test_the_request_names_the_certificate() -> None:
    request = ocsp.load_der_ocsp_request(ocsp_request(ALICE.cert, ISSUING.cert))
    assert request.serial_number == ALICE.cert.serial_number
    assert isinstance(request.hash_algorithm, hashes.SHA1)


def test_good_signed_by_the_issuer_is_current_until_next_update() -> None:
    next_update = NOW + HOUR
    result = _status(make_ocsp_response(ALICE.cert, ISSUING, next_update=next_update))
    status, until = result
    assert status.state is RevocationState.GOOD and status.source == "OCSP test"
    assert until == next_update.replace(microsecond=0)


def test_revoked_carries_reason_and_date() -> None:
    data = make_ocsp_response(
        ALICE.cert,
        ISSUING,
        ocsp.OCSPCertStatus.REVOKED,
        revocation_reason=x509.ReasonFlags.key_compromise,
    )
    status, _ = _status(data)
    assert status.state is RevocationState.REVOKED
    assert status.reason is x509.ReasonFlags.key_compromise
    assert status.revocation_date is not None


def test_a_delegated_responder_with_ocsp_signing_counts() -> None:
    data = make_ocsp_response(ALICE.cert, ISSUING, signer=_responder(), by_key=True)
    assert _status(data)[0].state is RevocationState.GOOD


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: make_ocsp_response(ALICE.cert, ISSUING, ocsp.OCSPCertStatus.UNKNOWN),
         "does not know the certificate"),
        (lambda: make_ocsp_response(ALICE.cert, ISSUING, signer=_responder(eku=False)),
         "not allowed to sign OCSP responses"),
        (lambda: make_ocsp_response(ALICE.cert, ISSUING, signer=_responder(by=OTHER_CA)),
         "was not issued by the certificate's CA"),
        (lambda: make_ocsp_response(
            ALICE.cert, ISSUING, signer=_responder(), include_signer=False),
         "signed neither by the certificate's CA nor by a responder"),
        (lambda: make_ocsp_response(
            make_client_cert(ISSUING, "bob").cert, ISSUING),
         "about another certificate"),
        (lambda: make_ocsp_response(
            ALICE.cert, ISSUING, this_update=NOW - 3 * HOUR, next_update=NOW - HOUR),
         "out of date"),
        (lambda: make_ocsp_response(
            ALICE.cert, ISSUING, this_update=NOW + 10 * MINUTE),
         "dated in the future"),
        (lambda: make_ocsp_response(
            ALICE.cert, ISSUING, this_update=NOW - 10 * MINUTE, no_next_update=True),
         "out of date"),
        (lambda: ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER),
         "the responder answered unauthorized"),
        (lambda: b"<html>not OCSP</html>", "not an OCSP response"),
    ],
)  # fmt: skip
def test_what_is_no_answer(build: Any, problem: str) -> None:
    result = _status(build())
    assert isinstance(result, str) and problem in result, result


def test_a_forged_signature_does_not_verify() -> None:
    data = bytearray(make_ocsp_response(ALICE.cert, ISSUING))
    data[-1] ^= 0x01  # the last byte of the signature's s
    result = _status(bytes(data))
    assert result == "the response's signature does not verify"


def test_an_undated_response_is_current_for_a_few_minutes() -> None:
    data = make_ocsp_response(ALICE.cert, ISSUING, this_update=NOW - MINUTE, no_next_update=True)
    status, until = _status(data)
    assert status.state is RevocationState.GOOD
    assert until == (NOW - MINUTE).replace(microsecond=0) + 5 * MINUTE


def test_a_sha256_cert_id_matches() -> None:
    data = make_ocsp_response(ALICE.cert, ISSUING, cert_id_hash=hashes.SHA256())
    assert _status(data)[0].state is RevocationState.GOOD


# ------------------------------------------------------------------ the cache


class FakePoster:
    """Stands in for the HTTP transport only: records requests, answers from a queue."""

    def __init__(self) -> None:
        self.answers: list[bytes | Exception] = []
        self.calls = 0
        self.pending: defer.Deferred[bytes] | None = None
        self.hold = False

    def __call__(self, url: str, request: bytes) -> defer.Deferred[bytes]:
        self.calls += 1
        assert ocsp.load_der_ocsp_request(request).serial_number == ALICE.cert.serial_number
        if self.hold:
            self.pending = defer.Deferred()
            return self.pending
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            return defer.fail(answer)
        return defer.succeed(answer)


def _ask(cache: OcspCache, freshness: float = 0.0, now: datetime.datetime = NOW) -> Any:
    results: list[RevocationStatus | None] = []
    cache.status(
        ALICE.cert, ISSUING.cert, now, freshness_time=freshness, retrieval_timeout=5
    ).addCallback(results.append)
    return results[0] if results else "pending"


def test_an_answer_is_kept_until_it_stops_being_current() -> None:
    clock, poster = task.Clock(), FakePoster()
    cache = OcspCache(clock, poster)
    poster.answers.append(make_ocsp_response(ALICE.cert, ISSUING, next_update=NOW + HOUR))
    assert _ask(cache).state is RevocationState.GOOD
    assert _ask(cache).state is RevocationState.GOOD
    assert poster.calls == 1
    assert cache.status_cached(ALICE.cert, ISSUING.cert, NOW).state is RevocationState.GOOD
    later = NOW + 2 * HOUR
    assert cache.status_cached(ALICE.cert, ISSUING.cert, later) is None
    poster.answers.append(
        make_ocsp_response(ALICE.cert, ISSUING, ocsp.OCSPCertStatus.REVOKED, this_update=later)
    )
    assert _ask(cache, now=later + MINUTE).state is RevocationState.REVOKED
    assert poster.calls == 2


def test_freshness_asks_again_and_keeps_the_answer_if_the_responder_is_down() -> None:
    clock, poster = task.Clock(), FakePoster()
    cache = OcspCache(clock, poster)
    poster.answers.append(make_ocsp_response(ALICE.cert, ISSUING))
    assert _ask(cache, freshness=60).state is RevocationState.GOOD
    clock.advance(61)
    poster.answers.append(ConnectionRefusedError("down"))
    assert _ask(cache, freshness=60).state is RevocationState.GOOD  # still current
    assert poster.calls == 2


def test_a_responder_that_failed_is_left_alone_for_a_while() -> None:
    clock, poster = task.Clock(), FakePoster()
    cache = OcspCache(clock, poster)
    poster.answers.append(ConnectionRefusedError("down"))
    first = _ask(cache)
    assert first.state is RevocationState.UNKNOWN and "down" in first.detail
    second = _ask(cache)
    assert "did not answer a moment ago" in second.detail
    assert poster.calls == 1
    clock.advance(61)
    poster.answers.append(make_ocsp_response(ALICE.cert, ISSUING))
    assert _ask(cache).state is RevocationState.GOOD


def test_concurrent_checks_share_one_request_and_a_timeout_ends_it() -> None:
    clock, poster = task.Clock(), FakePoster()
    cache = OcspCache(clock, poster)
    poster.hold = True
    results: list[Any] = []
    for _ in range(3):
        cache.status(
            ALICE.cert, ISSUING.cert, NOW, freshness_time=0, retrieval_timeout=5
        ).addCallback(results.append)
    assert poster.calls == 1 and results == []
    clock.advance(5)
    assert len(results) == 3
    assert all(r.state is RevocationState.UNKNOWN and "within 5 s" in r.detail for r in results)


def test_no_responder_named_is_no_ocsp() -> None:
    cache = OcspCache(task.Clock(), FakePoster())
    plain = make_client_cert(ISSUING, "plain")
    results: list[Any] = []
    cache.status(
        plain.cert, ISSUING.cert, NOW, freshness_time=0, retrieval_timeout=5
    ).addCallback(results.append)
    assert results == [None]


# ---------------------------------------- OCSP before CRLs, with OpenSSL's responder


class OcspThenCrlTests(TestCase):
    """check_client_certificate over real loopback HTTP, ``openssl ocsp`` answering."""

    def setUp(self) -> None:
        self.http = CrlServer().start()
        self.addCleanup(self.http.stop)
        url = self.http.url("/ocsp")
        self.root = make_ca_cert(None, "Check Root")
        self.issuing = make_ca_cert(self.root, "Check Issuing CA")
        self.responder = OpensslOcsp(
            pem(self.issuing.cert), pem(self.issuing.cert), key_pem(self.issuing.key)
        )
        self.addCleanup(self.responder.close)
        self.http.answer("/ocsp", self.responder)
        self.alice = make_client_cert(
            self.issuing, "alice", extensions=[(ocsp_responders(url), False)]
        )
        self.base = Path(self.mktemp_dir())
        for folder, issued in (("ROOT", self.root), ("CA", self.issuing)):
            (self.base / folder).mkdir(parents=True)
            (self.base / folder / "ca.pem").write_bytes(pem(issued.cert))
        (self.base / "CRL").mkdir()
        # The issuing CA's own status comes from the root's CRL in the folder.
        (self.base / "CRL" / "root.crl").write_bytes(crl_der(make_crl(self.root)))
        from twisted.internet import reactor

        self.store = CertificateStore(str(self.base))
        self.crls = CrlCache(self.store.crl_dir, reactor, HttpCrlFetcher(reactor))
        self.ocsp = OcspCache(reactor, HttpOcspPoster(reactor))

    def mktemp_dir(self) -> str:
        import shutil
        import tempfile

        path = tempfile.mkdtemp(prefix="ftps7-ocsp-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def _subject(self, issued: Issued) -> str:
        return "/CN=" + issued.cert.subject.rfc4514_string().removeprefix("CN=")

    async def check(self, issued: Issued) -> Any:
        settings = ClientCertificateSettings(revocation_url_retrieval_timeout=5.0)
        return await check_client_certificate(
            issued.cert, [], self.store, settings, self.crls, ocsp_cache=self.ocsp
        )

    async def test_good_from_the_responder_without_any_crl_of_the_issuer(self) -> None:
        self.responder.know(self.alice.cert.serial_number, self._subject(self.alice))
        result = await self.check(self.alice)
        assert result.ok, result.log_text()
        assert self.http.requests("/ocsp") == 1
        assert (await self.check(self.alice)).ok
        assert self.http.requests("/ocsp") == 1  # the answer is held until nextUpdate

    async def test_revoked_by_the_responder(self) -> None:
        self.responder.know(
            self.alice.cert.serial_number, self._subject(self.alice), revoked_at="250101000000Z"
        )
        result = await self.check(self.alice)
        assert not result.ok and result.reason is Reason.REVOKED
        assert "OCSP http://127.0.0.1" in result.log_text()

    async def test_unknown_to_the_responder_and_no_crl_fails_closed_with_both_reasons(
        self,
    ) -> None:
        result = await self.check(self.alice)  # not in the index: "unknown"
        assert not result.ok and result.reason is Reason.REVOCATION_UNKNOWN
        text = result.log_text()
        assert "does not know the certificate" in text and "CRL" in text

    async def test_unknown_to_the_responder_falls_back_to_a_crl(self) -> None:
        url = self.http.url("/issuing.crl")
        self.http.serve(url.removeprefix(self.http.url("")), crl_der(make_crl(self.issuing)))
        both = make_client_cert(
            self.issuing,
            "bob",
            extensions=[(ocsp_responders(self.http.url("/ocsp")), False)],
            crl_urls=[url],
        )
        result = await self.check(both)
        assert result.ok, result.log_text()
        assert self.http.requests("/issuing.crl") == 1

    async def test_a_crl_already_held_that_revokes_wins_over_a_good_answer(self) -> None:
        self.responder.know(self.alice.cert.serial_number, self._subject(self.alice))
        (self.base / "CRL" / "issuing.crl").write_bytes(
            crl_der(make_crl(self.issuing, [self.alice.cert]))
        )
        result = await self.check(self.alice)
        assert not result.ok and result.reason is Reason.REVOKED

    async def test_a_dead_responder_falls_back_to_crls(self) -> None:
        self.http.remove("/ocsp")  # 404
        (self.base / "CRL" / "issuing.crl").write_bytes(crl_der(make_crl(self.issuing)))
        result = await self.check(self.alice)
        assert result.ok, result.log_text()


def test_the_answers_held_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import ftps7.tls.ocsp as module

    monkeypatch.setattr(module, "MAX_ANSWERS", 2)
    clock, poster = task.Clock(), FakePoster()
    cache = OcspCache(clock, poster)
    poster.answers.append(make_ocsp_response(ALICE.cert, ISSUING))
    assert _ask(cache).state is RevocationState.GOOD
    others = [make_client_cert(ISSUING, f"user{n}") for n in range(2)]
    for other in others:
        key = cache._key(other.cert, ISSUING.cert)
        cache._answers[key] = cache._answers[cache._key(ALICE.cert, ISSUING.cert)]
    poster.answers.append(make_ocsp_response(ALICE.cert, ISSUING))
    clock.advance(1)
    assert _ask(cache, freshness=0.5).state is RevocationState.GOOD  # asked again, kept last
    assert len(cache._answers) == 2
    assert cache.status_cached(ALICE.cert, ISSUING.cert, NOW) is not None
    assert cache.status_cached(others[0].cert, ISSUING.cert, NOW) is None  # the oldest went
