"""Ldap3Directory against a real slapd on loopback.

* the directory conformance suite (the same cases the in-memory fake passes);
* outages: a stopped server fails fast with DirectoryUnavailable and the
  directory recovers by itself when the server is back on the same port; a
  server that accepts but never answers is given up after the timeout;
* TLS: ldaps:// and StartTLS verify the server certificate (CA and host name);
* the service account, the search base, and the checkers end to end.

The tests are trial TestCases (they run the real reactor and a real thread
pool); pytest fixtures hand them the slapd servers.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

import tests.unit.test_directory_conformance as conformance
from ftps7.auth.credentials import FTPCertificateCredentials, FTPUsernamePassword
from ftps7.auth.dirchecker import (
    CertificateMappingChecker,
    DirectoryPasswordChecker,
    DirectoryUnavailableLogin,
)
from ftps7.auth.directory import DirectoryError, DirectoryUnavailable, LogonName
from ftps7.auth.identity import Identity
from ftps7.auth.ldapdir import Ldap3Directory
from ftps7.config.model import ActiveDirectorySettings, UserCertificateMatch
from tests.pki import make_ca, make_leaf, make_pki, pem
from tests.slapd import SlapdServer, SlapdTls, SlapdUnavailable, slapd_installed, start_slapd

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not slapd_installed(), reason="needs OpenLDAP's slapd (apt-get install slapd)"
    ),
]

SERVICE_DN = f"cn=ftps7 service,{conformance.USERS}"
SERVICE_PASSWORD = "service-pw"
SERVICE_LDIF = f"""\
dn: {SERVICE_DN}
objectClass: inetOrgPerson
cn: ftps7 service
sn: service
userPassword: {SERVICE_PASSWORD}
"""


def _start(tmp: Path, tls: SlapdTls | None = None) -> SlapdServer:
    try:
        return start_slapd(tmp, SERVICE_LDIF + "\n" + conformance.conformance_ldif(), tls=tls)
    except SlapdUnavailable as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def slapd_server(tmp_path_factory):
    server = _start(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory):
    """A server certificate for 127.0.0.1 (and the name ldap.example.test), its CA, another CA."""
    pki = make_pki()
    leaf = make_leaf(
        pki.intermediate, "ldap.example.test", dns_names=("ldap.example.test",),
        ip_addresses=("127.0.0.1",),
    )
    return {
        "tls": SlapdTls(
            cert_pem=pem(leaf.cert, pki.intermediate.cert),
            key_pem=leaf.key_pem(),
            ca_pem=pem(pki.root.cert),
        ),
        "other_ca": pem(make_ca("Somebody Else's CA").cert),
    }


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, tls_material):
    server = _start(tmp_path_factory.mktemp("slapd-tls"), tls=tls_material["tls"])
    yield server
    server.stop()


class DirectoryTestCase(unittest.TestCase):
    """Makes Ldap3Directory instances on a real thread pool, cleaned up after the test."""

    timeout_seconds = 2.0

    @pytest.fixture(autouse=True)
    def _paths(self, tmp_path):
        self.tmp = tmp_path

    def setUp(self):
        self.pool = ThreadPool(minthreads=1, maxthreads=4, name="test-ldap")
        self.pool.start()
        self.addCleanup(self.pool.stop)

    def settings(self, url: str, **overrides) -> ActiveDirectorySettings:
        password_file = self.tmp / "bind-password"
        password_file.write_text(SERVICE_PASSWORD + "\n")
        fields = {
            "url": url,
            "domain": conformance.DOMAIN,
            "upn_suffix": conformance.UPN_SUFFIX,
            "base_dn": conformance.BASE_DN,
            "bind_dn": SERVICE_DN,
            "bind_password_file": str(password_file),
            "timeout": self.timeout_seconds,
        }
        fields.update(overrides)
        return ActiveDirectorySettings(**fields)

    def make_directory(self, url: str, *, run_in_thread=None, **kwargs) -> Ldap3Directory:
        settings_fields = {
            key: kwargs.pop(key)
            for key in list(kwargs)
            if key in ActiveDirectorySettings.__dataclass_fields__
        }
        directory = Ldap3Directory(
            self.settings(url, **settings_fields),
            self.pool,
            reactor,
            run_in_thread=run_in_thread,
            **kwargs,
        )
        self.addCleanup(directory.close)
        return directory


class TestLdap3DirectoryConformance(conformance.DirectoryConformance, DirectoryTestCase):
    # OpenLDAP's userCertificate has certificateExactMatch, not octet equality.
    user_certificate_matches = (UserCertificateMatch.GSER, UserCertificateMatch.FETCH_COMPARE)

    @pytest.fixture(autouse=True)
    def _server(self, slapd_server):
        self.server = slapd_server

    def setUp(self):
        super().setUp()
        self.directory = self.make_directory(self.server.url)


class TestLdap3DirectoryAnonymous(DirectoryTestCase):
    """Without bindDn the service connections bind anonymously."""

    @pytest.fixture(autouse=True)
    def _server(self, slapd_server):
        self.server = slapd_server

    @defer.inlineCallbacks
    def test_anonymous_service_connection(self):
        directory = self.make_directory(self.server.url, bind_dn=None, bind_password_file=None)
        account = yield directory.authenticate(LogonName.sam("alice"), b"alice-pw")
        self.assertEqual(account.sam_account_name, "alice")
        self.assertEqual(account.groups, {"ftp users", "editors"})


class TestLdap3DirectoryConfiguration(DirectoryTestCase):
    @pytest.fixture(autouse=True)
    def _server(self, slapd_server):
        self.server = slapd_server

    @defer.inlineCallbacks
    def test_search_base_from_the_root_dse_when_not_configured(self):
        directory = self.make_directory(self.server.url, base_dn="")
        account = yield directory.lookup(LogonName.sam("alice"))
        self.assertEqual(account.sam_account_name, "alice")

    @defer.inlineCallbacks
    def test_missing_search_base_is_a_directory_error(self):
        directory = self.make_directory(self.server.url, base_dn="ou=Nowhere,dc=example,dc=com")
        failure = yield self.assertFailure(
            directory.lookup(LogonName.sam("alice")), DirectoryError
        )
        self.assertIn("ou=Nowhere", str(failure))
        self.assertNotIsInstance(failure, DirectoryUnavailable)

    @defer.inlineCallbacks
    def test_refused_service_bind_is_unavailable_and_fails_fast(self):
        (self.tmp / "wrong").write_text("not-the-password")
        calls = []

        def counting(function, *args):
            calls.append(function)
            return deferToThreadPool(reactor, self.pool, function, *args)

        directory = self.make_directory(
            self.server.url,
            bind_password_file=str(self.tmp / "wrong"),
            run_in_thread=counting,
            retry_interval=60.0,
        )
        failure = yield self.assertFailure(
            directory.lookup(LogonName.sam("alice")), DirectoryUnavailable
        )
        self.assertIn("invalidCredentials", str(failure))
        self.assertNotIn("not-the-password", str(failure))
        # Within retry_interval nothing is sent: no bind storm to lock the account out.
        self.failureResultOf(directory.lookup(LogonName.sam("alice")), DirectoryUnavailable)
        self.assertEqual(len(calls), 1)

    @defer.inlineCallbacks
    def test_unreadable_password_file(self):
        directory = self.make_directory(
            self.server.url, bind_password_file=str(self.tmp / "missing")
        )
        failure = yield self.assertFailure(
            directory.lookup(LogonName.sam("alice")), DirectoryError
        )
        self.assertIn("bindPasswordFile", str(failure))

    @defer.inlineCallbacks
    def test_service_password_file_is_read_again_for_new_connections(self):
        directory = self.make_directory(self.server.url, max_idle=0)
        self.assertIsNotNone((yield directory.lookup(LogonName.sam("alice"))))
        (self.tmp / "bind-password").write_text("rotated-away\n")
        yield self.assertFailure(directory.lookup(LogonName.sam("alice")), DirectoryUnavailable)

    @defer.inlineCallbacks
    def test_password_is_proved_by_binding_not_by_reading(self):
        # The service account may not read userPassword (slapd ACL): logons still work.
        directory = self.make_directory(self.server.url)
        self.assertIsNotNone(
            (yield directory.authenticate(LogonName.sam("carol"), b"carol-pw"))
        )
        self.assertIsNone((yield directory.authenticate(LogonName.sam("carol"), b"nope")))


class TestLdap3DirectoryOutage(DirectoryTestCase):
    timeout_seconds = 1.0

    @defer.inlineCallbacks
    def test_stopped_server_fails_fast_and_recovery_needs_no_restart(self):
        server = _start(self.tmp / "slapd")
        self.addCleanup(server.stop)
        directory = self.make_directory(server.url, retry_interval=0.0)
        cert = conformance.dataset().certs["ski"].cert
        self.assertIsNotNone((yield directory.lookup(LogonName.sam("alice"))))

        server.stop()
        started = time.monotonic()
        yield self.assertFailure(directory.lookup(LogonName.sam("alice")), DirectoryUnavailable)
        yield self.assertFailure(
            directory.authenticate(LogonName.sam("alice"), b"alice-pw"), DirectoryUnavailable
        )
        yield self.assertFailure(
            directory.find_by_certificate(cert, conformance.DEFAULT_MAPPING,
                                          UserCertificateMatch.GSER),
            DirectoryUnavailable,
        )
        self.assertLess(time.monotonic() - started, self.timeout_seconds)
        self.assertFalse(directory.available)

        server.start()  # same port, same data
        account = yield directory.authenticate(LogonName.sam("alice"), b"alice-pw")
        self.assertEqual(account.sam_account_name, "alice")
        self.assertEqual(sorted(
            a.sam_account_name
            for a in (yield directory.find_by_certificate(
                cert, conformance.DEFAULT_MAPPING, UserCertificateMatch.GSER))
        ), ["Bob"])
        self.assertTrue(directory.available)

    @defer.inlineCallbacks
    def test_server_restart_between_requests_is_invisible(self):
        server = _start(self.tmp / "slapd")
        self.addCleanup(server.stop)
        directory = self.make_directory(server.url, retry_interval=60.0)
        # Several requests at once leave several idle connections in the pool.
        results = yield defer.gatherResults(
            [directory.lookup(LogonName.sam(name)) for name in ("alice", "Bob", "carol", "dave")]
        )
        self.assertEqual([r.sam_account_name for r in results], ["alice", "Bob", "carol", "dave"])
        server.stop()
        server.start()
        # The idle connections are dead; the request still succeeds on a fresh one.
        account = yield directory.authenticate(LogonName.sam("alice"), b"alice-pw")
        self.assertEqual(account.sam_account_name, "alice")
        self.assertTrue(directory.available)

    @defer.inlineCallbacks
    def test_retry_interval_then_a_probe(self):
        server = _start(self.tmp / "slapd")
        self.addCleanup(server.stop)
        now = [1000.0]
        calls = []

        def counting(function, *args):
            calls.append(function)
            return deferToThreadPool(reactor, self.pool, function, *args)

        directory = self.make_directory(
            server.url, run_in_thread=counting, retry_interval=30.0, clock=lambda: now[0]
        )
        server.stop()
        yield self.assertFailure(directory.lookup(LogonName.sam("alice")), DirectoryUnavailable)
        server.start()
        # Still inside retry_interval: refused at once, without a thread.
        self.failureResultOf(directory.lookup(LogonName.sam("alice")), DirectoryUnavailable)
        self.assertEqual(len(calls), 1)
        now[0] += 31.0
        self.assertIsNotNone((yield directory.lookup(LogonName.sam("alice"))))
        self.assertEqual(len(calls), 2)

    @defer.inlineCallbacks
    def test_silent_server_is_given_up_after_the_timeout_with_one_probe_at_a_time(self):
        # Accepts TCP connections (the kernel does) but never answers a byte.
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        self.addCleanup(silent.close)
        port = silent.getsockname()[1]
        directory = self.make_directory(f"ldap://127.0.0.1:{port}", retry_interval=0.0)

        started = time.monotonic()
        yield self.assertFailure(directory.lookup(LogonName.sam("alice")), DirectoryUnavailable)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 3 * self.timeout_seconds + 1.0)

        probe = directory.lookup(LogonName.sam("alice"))  # the probe: waits for the timeout
        # While it runs, other requests are refused at once instead of taking threads.
        self.failureResultOf(
            directory.authenticate(LogonName.sam("bob"), b"bob-pw"), DirectoryUnavailable
        )
        yield self.assertFailure(probe, DirectoryUnavailable)


class TestLdap3DirectoryTls(DirectoryTestCase):
    @pytest.fixture(autouse=True)
    def _server(self, tls_server, tls_material):
        self.server = tls_server
        self.material = tls_material

    def ca_file(self, which: str) -> str:
        path = self.tmp / f"{which}.pem"
        path.write_bytes(
            self.material["tls"].ca_pem if which == "right" else self.material["other_ca"]
        )
        return str(path)

    @defer.inlineCallbacks
    def test_ldaps_with_the_right_ca(self):
        directory = self.make_directory(self.server.ldaps_url, ca_file=self.ca_file("right"))
        account = yield directory.authenticate(LogonName.sam("alice"), b"alice-pw")
        self.assertEqual(account.sam_account_name, "alice")

    @defer.inlineCallbacks
    def test_start_tls_with_the_right_ca(self):
        directory = self.make_directory(
            self.server.url, start_tls=True, ca_file=self.ca_file("right")
        )
        account = yield directory.authenticate(LogonName.sam("alice"), b"alice-pw")
        self.assertEqual(account.sam_account_name, "alice")

    @defer.inlineCallbacks
    def test_ldaps_with_another_ca_is_refused(self):
        directory = self.make_directory(self.server.ldaps_url, ca_file=self.ca_file("wrong"))
        failure = yield self.assertFailure(
            directory.authenticate(LogonName.sam("alice"), b"alice-pw"), DirectoryUnavailable
        )
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(failure))

    @defer.inlineCallbacks
    def test_start_tls_with_another_ca_is_refused(self):
        directory = self.make_directory(
            self.server.url, start_tls=True, ca_file=self.ca_file("wrong")
        )
        failure = yield self.assertFailure(
            directory.lookup(LogonName.sam("alice")), DirectoryUnavailable
        )
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(failure))

    @defer.inlineCallbacks
    def test_host_name_must_match_the_certificate(self):
        # The certificate names 127.0.0.1 and ldap.example.test, not localhost.
        url = f"ldaps://localhost:{self.server.tls_port}"
        directory = self.make_directory(url, ca_file=self.ca_file("right"))
        failure = yield self.assertFailure(
            directory.lookup(LogonName.sam("alice")), DirectoryUnavailable
        )
        self.assertIn("localhost", str(failure))

    def test_unusable_ca_file_fails_at_construction(self):
        bad = self.tmp / "bad.pem"
        bad.write_text("not a certificate\n")
        with self.assertRaises(DirectoryError):
            self.make_directory(self.server.ldaps_url, ca_file=str(bad))


class TestCheckersOverLdap(DirectoryTestCase):
    @pytest.fixture(autouse=True)
    def _server(self, slapd_server):
        self.server = slapd_server

    @defer.inlineCallbacks
    def test_domain_password_logon(self):
        checker = DirectoryPasswordChecker(
            self.make_directory(self.server.url), conformance.DOMAIN, conformance.UPN_SUFFIX
        )
        identity = yield checker.requestAvatarId(
            FTPUsernamePassword(b"example\\ALICE", b"alice-pw")
        )
        self.assertEqual(
            identity,
            Identity(
                name="alice",
                groups=frozenset({"ftp users", "editors"}),
                domain="EXAMPLE",
                source="directory",
                ftp_root="/srv/ftp",
                ftp_dir="alice",
            ),
        )

    @defer.inlineCallbacks
    def test_certificate_logon(self):
        checker = CertificateMappingChecker(self.make_directory(self.server.url))
        cert = conformance.dataset().certs["ski"].cert
        identity = yield checker.requestAvatarId(FTPCertificateCredentials("bob", cert))
        self.assertEqual((identity.name, identity.source), ("Bob", "certificate"))

    @defer.inlineCallbacks
    def test_directory_down_is_a_distinct_refusal(self):
        silent_port = _closed_port()
        checker = DirectoryPasswordChecker(
            self.make_directory(f"ldap://127.0.0.1:{silent_port}"),
            conformance.DOMAIN,
            conformance.UPN_SUFFIX,
        )
        yield self.assertFailure(
            checker.requestAvatarId(FTPUsernamePassword(b"EXAMPLE\\alice", b"alice-pw")),
            DirectoryUnavailableLogin,
        )


def _closed_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
