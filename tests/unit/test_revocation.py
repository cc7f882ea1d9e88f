"""CRL-based revocation: the store's CRL folder, HTTP distribution points, freshness.

The HTTP tests talk to a real loopback server (tests/crlserver.py) through
the real reactor, so they are trial ``TestCase``s returning Deferreds; the
cache-only ones are synchronous. Download ages run on a ``task.Clock`` where
a test needs time to pass; certificate and CRL dates use explicit ``now``s.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import time
from pathlib import Path

from cryptography import x509
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ftps7.config.model import ClientCertificateSettings
from ftps7.config.model import ValidationFlags as F
from ftps7.tls.clientcert import Reason, RevocationState, ValidationResult
from ftps7.tls.revocation import (
    CrlCache,
    CrlFetchError,
    HttpCrlFetcher,
    check_client_certificate,
    crl_urls,
)
from ftps7.tls.store import CertificateStore
from tests.crlserver import CrlServer
from tests.pki import (
    Issued,
    crl_der,
    crl_pem,
    make_ca_cert,
    make_client_cert,
    make_crl,
    make_key,
    pem,
)

NOW = datetime.datetime.now(datetime.UTC)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


class Pki:
    """Root → issuing CA → alice and bob, each naming ``root_url``/``issuing_url`` as CRL DPs."""

    def __init__(self, root_url: str | None = None, issuing_url: str | None = None) -> None:
        self.root = make_ca_cert(None, "Revocation Root")
        self.issuing = make_ca_cert(
            self.root, "Revocation Issuing CA", crl_urls=(root_url,) if root_url else ()
        )
        leaf_urls = (issuing_url,) if issuing_url else ()
        self.alice = make_client_cert(self.issuing, "alice", crl_urls=leaf_urls)
        self.bob = make_client_cert(self.issuing, "bob", crl_urls=leaf_urls)


def scratch_dir(test: SynchronousTestCase) -> Path:
    """A temporary folder removed after the test.

    Not trial's ``mktemp``: under pytest it would create folders in the
    current directory (trial itself runs in ``_trial_temp``).
    """
    path = Path(tempfile.mkdtemp(prefix="ftps7-revocation-"))
    test.addCleanup(shutil.rmtree, path, True)
    return path


def make_store(base: Path, pki: Pki) -> CertificateStore:
    for folder, cert in (("ROOT", pki.root), ("CA", pki.issuing)):
        (base / folder).mkdir(parents=True, exist_ok=True)
        (base / folder / "ca.pem").write_bytes(pem(cert.cert))
    (base / "CRL").mkdir(exist_ok=True)
    return CertificateStore(str(base))


def settings(
    flags: F = F.NONE, freshness: float = 0.0, timeout: float = 5.0
) -> ClientCertificateSettings:
    return ClientCertificateSettings(
        validation_flags=flags,
        revocation_freshness_time=freshness,
        revocation_url_retrieval_timeout=timeout,
    )


# --------------------------------------------------------------------------
# The CRL folder, cache only (synchronous)


class CrlFolderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.base = scratch_dir(self)
        self.pki = Pki()
        self.store = make_store(self.base, self.pki)
        self.crl_dir = self.base / "CRL"
        self.clock = task.Clock()
        self.cache = CrlCache(self.store.crl_dir, self.clock)

    def put(self, filename: str, data: bytes) -> None:
        path = self.crl_dir / filename
        path.write_bytes(data)
        # A distinct mtime whatever the file system's timestamp granularity.
        stamp = time.time_ns() + len(list(self.crl_dir.iterdir())) * 10**9
        os.utime(path, ns=(stamp, stamp))

    def put_both(self, revoked_by_issuing: tuple[Issued, ...] = ()) -> None:
        self.put("root.crl", crl_der(make_crl(self.pki.root)))
        self.put(
            "issuing.crl",
            crl_der(make_crl(self.pki.issuing, [c.cert for c in revoked_by_issuing])),
        )

    def check(
        self,
        flags: F = F.CERT_CHAIN_REVOCATION_CHECK_CACHE_ONLY,
        leaf: Issued | None = None,
        now: datetime.datetime = NOW,
    ) -> ValidationResult:
        d = check_client_certificate(
            (leaf or self.pki.alice).cert, [], self.store, settings(flags), self.cache, now
        )
        return self.successResultOf(d)

    def test_good_from_store_crls(self) -> None:
        self.put_both()
        result = self.check()
        assert result.ok, result.text
        assert [s.state for s in result.revocation] == [RevocationState.GOOD] * 2

    def test_revoked_via_store_crl(self) -> None:
        self.put_both(revoked_by_issuing=(self.pki.alice,))
        result = self.check()
        assert result.reason is Reason.REVOKED
        assert "issuing.crl" in result.text
        assert self.check(leaf=self.pki.bob).ok

    def test_pem_crl_file(self) -> None:
        self.put("root.pem", crl_pem(make_crl(self.pki.root)))
        self.put("issuing.pem", crl_pem(make_crl(self.pki.issuing, [self.pki.alice.cert])))
        assert self.check().reason is Reason.REVOKED

    def test_reason_and_date_are_reported(self) -> None:
        self.put("root.crl", crl_der(make_crl(self.pki.root)))
        crl = make_crl(
            self.pki.issuing,
            [(self.pki.alice.cert.serial_number, x509.ReasonFlags.key_compromise)],
        )
        self.put("issuing.crl", crl_der(crl))
        status = self.cache.status_cached(self.pki.alice.cert, self.pki.issuing.cert, NOW)
        assert status.state is RevocationState.REVOKED
        assert status.reason is x509.ReasonFlags.key_compromise
        assert status.revocation_date is not None

    def test_revoked_intermediate(self) -> None:
        self.put("root.crl", crl_der(make_crl(self.pki.root, [self.pki.issuing.cert])))
        self.put("issuing.crl", crl_der(make_crl(self.pki.issuing)))
        result = self.check()
        assert result.reason is Reason.REVOKED
        assert result.subject == self.pki.issuing.cert

    def test_cache_only_with_nothing_cached_is_refused(self) -> None:
        result = self.check()
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert "no CRL" in result.text

    def test_missing_crl_of_the_root_is_refused(self) -> None:
        self.put("issuing.crl", crl_der(make_crl(self.pki.issuing)))
        result = self.check()
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert result.subject == self.pki.issuing.cert

    def test_crl_signed_by_the_wrong_key_is_refused(self) -> None:
        self.put("root.crl", crl_der(make_crl(self.pki.root)))
        forged = make_crl(self.pki.issuing, signing_key=make_key())
        self.put("issuing.crl", crl_der(forged))
        result = self.check()
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert "key" in result.text

    def test_forged_crl_does_not_hide_a_genuine_revocation(self) -> None:
        self.put("root.crl", crl_der(make_crl(self.pki.root)))
        self.put("issuing.crl", crl_der(make_crl(self.pki.issuing, [self.pki.alice.cert])))
        later = NOW + HOUR
        self.put(
            "newer.crl",
            crl_der(
                make_crl(self.pki.issuing, this_update=later - HOUR / 2, signing_key=make_key())
            ),
        )
        assert self.check().reason is Reason.REVOKED

    def test_expired_crl_is_not_used(self) -> None:
        self.put("root.crl", crl_der(make_crl(self.pki.root, next_update=NOW + 30 * DAY)))
        self.put(
            "issuing.crl",
            crl_der(make_crl(self.pki.issuing, this_update=NOW - 2 * DAY, next_update=NOW - DAY)),
        )
        result = self.check()
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert "expired" in result.text

    def test_newest_crl_decides(self) -> None:
        self.put("root.crl", crl_der(make_crl(self.pki.root)))
        self.put("old.crl", crl_der(make_crl(self.pki.issuing, this_update=NOW - 2 * HOUR)))
        self.put(
            "new.crl",
            crl_der(make_crl(self.pki.issuing, [self.pki.alice.cert], this_update=NOW - HOUR)),
        )
        assert self.check().reason is Reason.REVOKED

    def test_folder_changes_are_picked_up(self) -> None:
        self.put_both()
        assert self.check().ok
        self.put_both(revoked_by_issuing=(self.pki.alice,))
        assert self.check().reason is Reason.REVOKED
        (self.crl_dir / "issuing.crl").unlink()
        assert self.check().reason is Reason.REVOCATION_UNKNOWN

    def test_unreadable_file_is_skipped_and_reported(self) -> None:
        self.put_both()
        self.put("junk.crl", b"not a CRL")
        assert self.check().ok
        assert any("junk.crl" in p for p in self.cache.problems())

    def test_delta_crl_is_not_a_complete_crl(self) -> None:
        self.put("root.crl", crl_der(make_crl(self.pki.root)))
        delta = make_crl(self.pki.issuing, extensions=((x509.DeltaCRLIndicator(1), True),))
        self.put("delta.crl", crl_der(delta))
        result = self.check()
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert "delta" in result.text

    def test_ca_only_crl_does_not_cover_a_leaf(self) -> None:
        self.put("root.crl", crl_der(make_crl(self.pki.root)))
        idp = x509.IssuingDistributionPoint(
            full_name=None,
            relative_name=None,
            only_contains_user_certs=False,
            only_contains_ca_certs=True,
            only_some_reasons=None,
            indirect_crl=False,
            only_contains_attribute_certs=False,
        )
        self.put("issuing.crl", crl_der(make_crl(self.pki.issuing, extensions=((idp, True),))))
        assert self.check().reason is Reason.REVOCATION_UNKNOWN

    def test_no_revocation_check_ignores_revocation(self) -> None:
        self.put_both(revoked_by_issuing=(self.pki.alice,))
        assert self.check(flags=F.NO_REVOCATION_CHECK).ok
        both = F.NO_REVOCATION_CHECK | F.CERT_CHAIN_REVOCATION_CHECK_CACHE_ONLY
        assert self.check(flags=both).ok

    def test_chain_problems_come_before_revocation(self) -> None:
        result = self.check(now=NOW + 800 * DAY)
        assert result.reason is Reason.EXPIRED


def test_crl_urls_keep_http_only() -> None:
    root = make_ca_cert(None, "R")
    leaf = make_client_cert(
        root,
        crl_urls=(
            "ldap:///CN=R,CN=CDP,DC=example?certificateRevocationList?base",
            "http://pki.example.com/R.crl",
            "https://pki.example.com/R.crl",
            "HTTP://PKI.EXAMPLE.COM/R2.crl",
            "http://pki.example.com/with space.crl",
        ),
    )
    assert crl_urls(leaf.cert) == ("http://pki.example.com/R.crl", "HTTP://PKI.EXAMPLE.COM/R2.crl")
    assert crl_urls(root.cert) == ()


# --------------------------------------------------------------------------
# Distribution points over HTTP (real reactor, loopback server)


class HttpRevocationTests(TestCase):
    def setUp(self) -> None:
        self.server = CrlServer().start()
        self.addCleanup(self.server.stop)
        self.pki = Pki(self.server.url("/root.crl"), self.server.url("/issuing.crl"))
        self.store = make_store(scratch_dir(self), self.pki)
        self.clock = task.Clock()
        self.fetcher = HttpCrlFetcher(reactor)

    def cache(self, clock: object | None = None) -> CrlCache:
        return CrlCache(self.store.crl_dir, clock or self.clock, self.fetcher)  # type: ignore[arg-type]

    def serve_both(self, revoked: tuple[Issued, ...] = (), **crl_args: object) -> None:
        self.server.serve("/root.crl", crl_der(make_crl(self.pki.root)))
        self.server.serve(
            "/issuing.crl",
            crl_der(make_crl(self.pki.issuing, [c.cert for c in revoked], **crl_args)),  # type: ignore[arg-type]
        )

    def check(
        self,
        cache: CrlCache,
        flags: F = F.NONE,
        *,
        leaf: Issued | None = None,
        freshness: float = 0.0,
        timeout: float = 5.0,
        now: datetime.datetime = NOW,
    ) -> defer.Deferred[ValidationResult]:
        return check_client_certificate(
            (leaf or self.pki.alice).cert,
            [self.pki.issuing.cert],
            self.store,
            settings(flags, freshness, timeout),
            cache,
            now,
        )

    async def test_good_via_http(self) -> None:
        self.serve_both()
        result = await self.check(self.cache())
        assert result.ok, result.text
        assert self.server.requests("/issuing.crl") == 1
        assert self.server.requests("/root.crl") == 1

    async def test_revoked_via_http_crl_distribution_point(self) -> None:
        self.serve_both(revoked=(self.pki.alice,))
        cache = self.cache()
        result = await self.check(cache)
        assert result.reason is Reason.REVOKED
        assert self.server.url("/issuing.crl") in result.text
        # The same download answers for bob, without another request.
        assert (await self.check(cache, leaf=self.pki.bob)).ok
        assert self.server.requests("/issuing.crl") == 1

    async def test_server_timeout_is_unknown_and_refused(self) -> None:
        self.server.serve("/root.crl", crl_der(make_crl(self.pki.root)))
        self.server.hang("/issuing.crl")
        started = time.monotonic()
        result = await self.check(self.cache(reactor), timeout=0.5)
        elapsed = time.monotonic() - started
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert "0.5 s" in result.text
        assert 0.4 < elapsed < 2.0
        assert self.server.requests("/issuing.crl") == 1

    async def test_http_error_is_unknown(self) -> None:
        self.server.serve("/root.crl", crl_der(make_crl(self.pki.root)))
        result = await self.check(self.cache())
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert "404" in result.text

    async def test_no_revocation_check_passes_a_revoked_certificate(self) -> None:
        self.serve_both(revoked=(self.pki.alice,))
        result = await self.check(self.cache(), F.NO_REVOCATION_CHECK)
        assert result.ok
        assert self.server.requests("/issuing.crl") == 0

    async def test_cache_only_with_nothing_cached_does_not_fetch(self) -> None:
        self.serve_both()
        result = await self.check(self.cache(), F.CERT_CHAIN_REVOCATION_CHECK_CACHE_ONLY)
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert self.server.requests("/issuing.crl") == 0
        assert self.server.requests("/root.crl") == 0

    async def test_cache_only_uses_earlier_downloads(self) -> None:
        self.serve_both(revoked=(self.pki.alice,))
        cache = self.cache()
        await self.check(cache)
        result = await self.check(cache, F.CERT_CHAIN_REVOCATION_CHECK_CACHE_ONLY)
        assert result.reason is Reason.REVOKED

    async def test_crl_signed_by_the_wrong_key_is_refused(self) -> None:
        self.server.serve("/root.crl", crl_der(make_crl(self.pki.root)))
        self.server.serve(
            "/issuing.crl", crl_der(make_crl(self.pki.issuing, signing_key=make_key()))
        )
        result = await self.check(self.cache())
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert "does not verify" in result.text

    async def test_crl_of_another_ca_is_refused(self) -> None:
        self.server.serve("/root.crl", crl_der(make_crl(self.pki.root)))
        self.server.serve("/issuing.crl", crl_der(make_crl(make_ca_cert(None, "Someone Else"))))
        assert (await self.check(self.cache())).reason is Reason.REVOCATION_UNKNOWN

    async def test_garbage_body_is_unknown(self) -> None:
        self.server.serve("/root.crl", crl_der(make_crl(self.pki.root)))
        self.server.serve("/issuing.crl", b"<html>captive portal</html>")
        assert (await self.check(self.cache())).reason is Reason.REVOCATION_UNKNOWN

    async def test_freshness_zero_keeps_the_crl_until_next_update(self) -> None:
        self.serve_both()
        cache = self.cache()
        assert (await self.check(cache)).ok
        self.clock.advance(30 * 24 * 3600)
        assert (await self.check(cache, now=NOW + 6 * DAY)).ok
        assert self.server.requests("/issuing.crl") == 1

    async def test_stale_crl_is_fetched_again(self) -> None:
        """nextUpdate passed: the cached CRL is unusable, a new one is downloaded."""
        self.server.serve("/root.crl", crl_der(make_crl(self.pki.root, next_update=NOW + 30 * DAY)))
        self.server.serve(
            "/issuing.crl", crl_der(make_crl(self.pki.issuing, next_update=NOW + HOUR))
        )
        cache = self.cache()
        assert (await self.check(cache)).ok
        later = NOW + 2 * HOUR
        self.server.serve(
            "/issuing.crl",
            crl_der(
                make_crl(self.pki.issuing, [self.pki.alice.cert], this_update=later - HOUR / 2)
            ),
        )
        result = await self.check(cache, now=later)
        assert result.reason is Reason.REVOKED
        assert self.server.requests("/issuing.crl") == 2
        assert self.server.requests("/root.crl") == 1

    async def test_stale_crl_and_no_server_is_refused(self) -> None:
        self.server.serve("/root.crl", crl_der(make_crl(self.pki.root, next_update=NOW + 30 * DAY)))
        self.server.serve(
            "/issuing.crl", crl_der(make_crl(self.pki.issuing, next_update=NOW + HOUR))
        )
        cache = self.cache()
        assert (await self.check(cache)).ok
        self.server.remove("/issuing.crl")
        result = await self.check(cache, now=NOW + 2 * HOUR)
        assert result.reason is Reason.REVOCATION_UNKNOWN
        assert "expired" in result.text

    async def test_freshness_time_is_honoured(self) -> None:
        self.serve_both()
        cache = self.cache()
        assert (await self.check(cache, freshness=3600)).ok
        self.clock.advance(1800)
        assert (await self.check(cache, freshness=3600)).ok
        assert self.server.requests("/issuing.crl") == 1
        # Older than the freshness time: a newer CRL is fetched, and it counts.
        self.serve_both(revoked=(self.pki.alice,))
        self.clock.advance(1801)
        assert (await self.check(cache, freshness=3600)).reason is Reason.REVOKED
        assert self.server.requests("/issuing.crl") == 2

    async def test_failed_refresh_falls_back_to_the_cached_crl(self) -> None:
        self.serve_both()
        cache = self.cache()
        assert (await self.check(cache, freshness=60)).ok
        self.server.remove("/issuing.crl")
        self.server.remove("/root.crl")
        self.clock.advance(61)
        assert (await self.check(cache, freshness=60)).ok
        assert self.server.requests("/issuing.crl") == 2
        # A failed URL is not tried again at once while the cached CRL serves.
        self.clock.advance(10)
        assert (await self.check(cache, freshness=5)).ok
        assert self.server.requests("/issuing.crl") == 2

    async def test_store_crl_is_refreshed_from_the_distribution_point(self) -> None:
        (Path(self.store.crl_dir) / "issuing.crl").write_bytes(crl_der(make_crl(self.pki.issuing)))
        (Path(self.store.crl_dir) / "root.crl").write_bytes(crl_der(make_crl(self.pki.root)))
        self.serve_both(revoked=(self.pki.alice,))
        cache = self.cache()
        assert (await self.check(cache, freshness=3600)).ok
        assert self.server.requests("/issuing.crl") == 0
        self.clock.advance(3601)
        assert (await self.check(cache, freshness=3600)).reason is Reason.REVOKED

    async def test_concurrent_checks_share_one_download(self) -> None:
        self.serve_both()
        cache = self.cache()
        results = await defer.gatherResults(
            [self.check(cache), self.check(cache, leaf=self.pki.bob), self.check(cache)]
        )
        assert all(r.ok for r in results)
        assert self.server.requests("/issuing.crl") == 1
        assert self.server.requests("/root.crl") == 1

    async def test_size_limit(self) -> None:
        self.serve_both()
        small = HttpCrlFetcher(reactor, max_size=64)
        with self.assertRaises(CrlFetchError) as caught:
            await small(self.server.url("/issuing.crl"))
        assert "larger than 64" in str(caught.exception)

    async def test_body_without_content_length(self) -> None:
        """An HTTP/1.0 body ended by the close is taken (the CRL signature checks it)."""
        crl = crl_der(make_crl(self.pki.issuing))
        self.server.serve("/issuing.crl", crl, content_length=False)
        assert await self.fetcher(self.server.url("/issuing.crl")) == crl
        small = HttpCrlFetcher(reactor, max_size=64)
        with self.assertRaises(CrlFetchError) as caught:
            await small(self.server.url("/issuing.crl"))
        assert "larger than 64" in str(caught.exception)

    async def test_older_download_than_the_folder_crl_does_not_refetch_each_time(self) -> None:
        folder = Path(self.store.crl_dir)
        (folder / "root.crl").write_bytes(crl_der(make_crl(self.pki.root)))
        (folder / "issuing.crl").write_bytes(
            crl_der(make_crl(self.pki.issuing, this_update=NOW - HOUR / 4))
        )
        self.server.serve("/root.crl", crl_der(make_crl(self.pki.root)))
        self.server.serve(
            "/issuing.crl", crl_der(make_crl(self.pki.issuing, this_update=NOW - 2 * HOUR))
        )
        cache = self.cache()
        assert (await self.check(cache, freshness=60)).ok
        self.clock.advance(61)
        assert (await self.check(cache, freshness=60)).ok
        assert self.server.requests("/issuing.crl") == 1
        self.clock.advance(30)
        assert (await self.check(cache, freshness=60)).ok
        assert self.server.requests("/issuing.crl") == 1

    async def test_fetcher_refuses_other_schemes(self) -> None:
        with self.assertRaises(CrlFetchError):
            await self.fetcher("ftp://127.0.0.1/x.crl")
