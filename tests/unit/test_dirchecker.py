"""The directory checkers over the in-memory directory (no sockets)."""

from __future__ import annotations

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger, formatEvent
from twisted.trial import unittest

from ftps7.auth.credentials import (
    FTPAnonymous,
    FTPCertificateCredentials,
    FTPUsernamePassword,
)
from ftps7.auth.dirchecker import (
    CertificateMappingChecker,
    DirectoryPasswordChecker,
    DirectoryUnavailableLogin,
    DomainRoutingChecker,
    NotDomainLogon,
    identity_for,
)
from ftps7.auth.directory import DirectoryAccount, DirectoryError, InMemoryDirectory
from ftps7.auth.identity import Identity
from ftps7.config.model import CertificateMappingMethod as M
from ftps7.config.model import UserCertificateMatch
from tests.unit.test_directory_conformance import DOMAIN, UPN_SUFFIX, dataset


def directory() -> InMemoryDirectory:
    return InMemoryDirectory(*dataset().accounts, domain=DOMAIN)


def cert(role: str):
    return dataset().certs[role].cert


def capture_log(checker) -> list[dict]:
    events: list[dict] = []
    checker.log = Logger(observer=events.append)
    return events


class StubDirectory:
    """Returns fixed answers, to check what the checkers do with odd ones."""

    def __init__(self, accounts=(), error=None):
        self.accounts = list(accounts)
        self.error = error
        self.calls = []

    def find_by_certificate(self, cert, methods, match):
        self.calls.append((cert, tuple(methods), match))
        if self.error is not None:
            return defer.fail(self.error)
        return defer.succeed(self.accounts)

    def authenticate(self, logon, password):
        self.calls.append(logon)
        if self.error is not None:
            return defer.fail(self.error)
        return defer.succeed(self.accounts[0] if self.accounts else None)


class CertificateMappingCheckerTests(unittest.SynchronousTestCase):
    def login(self, checker, user, role):
        return checker.requestAvatarId(FTPCertificateCredentials(user, cert(role)))

    def test_maps_to_the_account_named_by_user(self):
        checker = CertificateMappingChecker(directory())
        for user in ("Bob", "bob", "EXAMPLE\\bob", "example\\BOB", "Bob@Example.com"):
            identity = self.successResultOf(self.login(checker, user, "ski"))
            self.assertEqual(
                identity,
                Identity(
                    name="Bob", groups=frozenset({"editors"}), domain=DOMAIN,
                    source="certificate",
                ),
            )

    def test_identity_carries_the_isolation_home(self):
        identity = self.successResultOf(
            self.login(CertificateMappingChecker(directory()), "alice", "issuer_serial")
        )
        self.assertEqual((identity.ftp_root, identity.ftp_dir), ("/srv/ftp", "alice"))
        self.assertEqual(identity.groups, {"ftp users", "editors"})

    def test_user_naming_another_account_is_refused(self):
        checker = CertificateMappingChecker(directory())
        events = capture_log(checker)
        for user in ("alice", "OTHER\\bob", "bob@other.test", ""):
            failure = self.failureResultOf(self.login(checker, user, "ski"), UnauthorizedLogin)
            self.assertNotIsInstance(failure.value, DirectoryUnavailableLogin)
        self.assertTrue(any("alice" in formatEvent(event) for event in events))

    def test_unmapped_and_disabled_certificates_are_refused(self):
        checker = CertificateMappingChecker(directory(), methods=tuple(M))
        self.failureResultOf(self.login(checker, "nobody", "unmapped"), UnauthorizedLogin)
        self.failureResultOf(self.login(checker, "mallory", "disabled"), UnauthorizedLogin)

    def test_ambiguous_mapping_is_refused_and_logged(self):
        checker = CertificateMappingChecker(directory())
        events = capture_log(checker)
        self.failureResultOf(self.login(checker, "twin1", "twins"), UnauthorizedLogin)
        logged = " ".join(formatEvent(event) for event in events)
        self.assertIn("cn=twin1", logged)
        self.assertIn("cn=twin2", logged)
        self.assertIn("ambiguous", logged)

    def test_weak_methods_only_when_configured(self):
        self.failureResultOf(
            self.login(CertificateMappingChecker(directory()), "frank", "subject"),
            UnauthorizedLogin,
        )
        checker = CertificateMappingChecker(directory(), methods=(M.SUBJECT,))
        self.assertEqual(self.successResultOf(self.login(checker, "frank", "subject")).name,
                         "frank")

    def test_settings_reach_the_directory(self):
        stub = StubDirectory()
        checker = CertificateMappingChecker(
            stub, methods=(M.USER_CERTIFICATE,), user_certificate_match=UserCertificateMatch.GSER
        )
        self.failureResultOf(self.login(checker, "heidi", "user_certificate"), UnauthorizedLogin)
        self.assertEqual(
            stub.calls,
            [(cert("user_certificate"), (M.USER_CERTIFICATE,), UserCertificateMatch.GSER)],
        )

    def test_a_disabled_account_from_the_directory_is_refused_anyway(self):
        account = DirectoryAccount(dn="cn=x", sam_account_name="x", disabled=True)
        checker = CertificateMappingChecker(StubDirectory([account]))
        self.failureResultOf(self.login(checker, "x", "ski"), UnauthorizedLogin)

    def test_directory_down_is_a_distinct_refusal(self):
        down = directory()
        down.available = False
        checker = CertificateMappingChecker(down)
        events = capture_log(checker)
        failure = self.failureResultOf(self.login(checker, "bob", "ski"), UnauthorizedLogin)
        self.assertIsInstance(failure.value, DirectoryUnavailableLogin)
        self.assertTrue(any("unavailable" in formatEvent(event) for event in events))

    def test_directory_errors_are_refusals_too(self):
        checker = CertificateMappingChecker(StubDirectory(error=DirectoryError("base missing")))
        self.failureResultOf(self.login(checker, "bob", "ski"), DirectoryUnavailableLogin)

    def test_other_credentials_are_refused(self):
        checker = CertificateMappingChecker(directory())
        self.failureResultOf(
            checker.requestAvatarId(FTPUsernamePassword(b"bob", b"bob-pw")), UnauthorizedLogin
        )
        self.failureResultOf(checker.requestAvatarId(FTPAnonymous()), UnauthorizedLogin)


class DirectoryPasswordCheckerTests(unittest.SynchronousTestCase):
    def checker(self, default_logon_domain="", source=None):
        return DirectoryPasswordChecker(
            source if source is not None else directory(), DOMAIN, UPN_SUFFIX,
            default_logon_domain,
        )

    def login(self, checker, user: bytes, password: bytes):
        return checker.requestAvatarId(FTPUsernamePassword(user, password))

    def test_domain_and_upn_logons(self):
        checker = self.checker()
        for user in (b"EXAMPLE\\alice", b"example\\ALICE", b"alice@example.com"):
            identity = self.successResultOf(self.login(checker, user, b"alice-pw"))
            self.assertEqual(
                identity,
                Identity(
                    name="alice", groups=frozenset({"ftp users", "editors"}), domain=DOMAIN,
                    source="directory", ftp_root="/srv/ftp", ftp_dir="alice",
                ),
            )

    def test_bare_names_need_the_default_logon_domain(self):
        failure = self.failureResultOf(self.login(self.checker(), b"alice", b"alice-pw"))
        self.assertIsInstance(failure.value, NotDomainLogon)
        identity = self.successResultOf(
            self.login(self.checker(default_logon_domain="EXAMPLE"), b"alice", b"alice-pw")
        )
        self.assertEqual(identity.name, "alice")

    def test_names_of_other_domains_are_not_domain_logons(self):
        checker = self.checker()
        for user in (b"OTHER\\alice", b"alice@other.test", b".\\alice", b"\xff\xfe"):
            failure = self.failureResultOf(self.login(checker, user, b"alice-pw"))
            self.assertIsInstance(failure.value, NotDomainLogon, user)

    def test_wrong_password_and_disabled_account(self):
        checker = self.checker()
        events = capture_log(checker)
        for user, password in ((b"EXAMPLE\\alice", b"wrong"), (b"EXAMPLE\\mallory", b"mallory-pw"),
                               (b"EXAMPLE\\zed", b"x")):
            failure = self.failureResultOf(self.login(checker, user, password), UnauthorizedLogin)
            self.assertNotIsInstance(failure.value, (NotDomainLogon, DirectoryUnavailableLogin))
        logged = " ".join(formatEvent(event) for event in events)
        self.assertNotIn("wrong", logged)
        self.assertNotIn("mallory-pw", logged)

    def test_empty_password_never_reaches_the_directory(self):
        source = directory()
        self.failureResultOf(
            self.login(self.checker(source=source), b"EXAMPLE\\alice", b""), UnauthorizedLogin
        )
        self.assertEqual(source.authentications, [])

    def test_a_disabled_account_from_the_directory_is_refused_anyway(self):
        account = DirectoryAccount(dn="cn=x", sam_account_name="x", disabled=True)
        checker = self.checker(source=StubDirectory([account]))
        self.failureResultOf(self.login(checker, b"EXAMPLE\\x", b"pw"), UnauthorizedLogin)

    def test_directory_down_is_a_distinct_refusal(self):
        down = directory()
        down.available = False
        failure = self.failureResultOf(
            self.login(self.checker(source=down), b"EXAMPLE\\alice", b"alice-pw"),
            UnauthorizedLogin,
        )
        self.assertIsInstance(failure.value, DirectoryUnavailableLogin)
        self.assertNotIn("alice-pw", str(failure.value))

    def test_stock_credentials_work(self):
        identity = self.successResultOf(
            self.checker().requestAvatarId(UsernamePassword(b"EXAMPLE\\bob", b"bob-pw"))
        )
        self.assertEqual(identity.name, "Bob")

    def test_other_credentials_are_refused(self):
        self.failureResultOf(self.checker().requestAvatarId(FTPAnonymous()), UnauthorizedLogin)


class RecordingLocalChecker:
    credentialInterfaces = ()

    def __init__(self):
        self.calls = []

    def requestAvatarId(self, credentials):
        self.calls.append(credentials.username)
        return defer.succeed(Identity(name=credentials.username.decode(), source="local"))


class DomainRoutingCheckerTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.local = RecordingLocalChecker()
        self.source = directory()
        self.router = DomainRoutingChecker(
            DirectoryPasswordChecker(self.source, DOMAIN, UPN_SUFFIX), self.local
        )

    def login(self, user: bytes, password: bytes):
        return self.router.requestAvatarId(FTPUsernamePassword(user, password))

    def test_domain_names_go_to_the_directory_only(self):
        self.assertEqual(
            self.successResultOf(self.login(b"EXAMPLE\\alice", b"alice-pw")).source, "directory"
        )
        self.failureResultOf(self.login(b"EXAMPLE\\alice", b"local-pw"), UnauthorizedLogin)
        self.assertEqual(self.local.calls, [])

    def test_other_names_go_to_the_local_checker(self):
        identity = self.successResultOf(self.login(b"carol", b"local-pw"))
        self.assertEqual((identity.name, identity.source), ("carol", "local"))
        self.assertEqual(self.local.calls, [b"carol"])
        self.assertEqual(self.source.authentications, [])

    def test_directory_down_does_not_fall_back_to_local_accounts(self):
        self.source.available = False
        self.failureResultOf(self.login(b"EXAMPLE\\alice", b"alice-pw"), DirectoryUnavailableLogin)
        self.assertEqual(self.local.calls, [])

    def test_without_local_checker_other_names_are_refused(self):
        router = DomainRoutingChecker(DirectoryPasswordChecker(self.source, DOMAIN, UPN_SUFFIX),
                                      None)
        self.failureResultOf(
            router.requestAvatarId(FTPUsernamePassword(b"carol", b"x")), NotDomainLogon
        )


def test_identity_for_copies_the_account():
    account = DirectoryAccount(
        dn="cn=a", sam_account_name="Ann", user_principal_name="ann@example.com",
        domain="EXAMPLE", groups=frozenset({"G"}), ftp_root="/r", ftp_dir="d",
    )
    assert identity_for(account, "directory") == Identity(
        name="Ann", groups=frozenset({"g"}), domain="EXAMPLE", source="directory",
        ftp_root="/r", ftp_dir="d",
    )
