"""The directory semantics, as one suite both IDirectory implementations pass.

:class:`DirectoryConformance` holds the cases; it runs here against
``InMemoryDirectory`` (no sockets) and in
``tests/integration/test_ldap_directory.py`` against ``Ldap3Directory`` on a
real slapd loaded with :func:`conformance_ldif` - the same accounts, the same
certificates, the same expectations. The pure helpers (logon names, filters,
DN parsing) are tested at the end.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from twisted.internet import defer
from twisted.trial import unittest

from ftps7.auth.directory import (
    DEFAULT_MAPPING,
    DirectoryAccount,
    InMemoryAccount,
    InMemoryDirectory,
    LogonKind,
    LogonName,
    certificate_matches,
)
from ftps7.auth.ldapdir import (
    certificate_filter,
    fetch_compare_filter,
    first_rdn_value,
    group_filter,
    gser_certificate_assertion,
    logon_filter,
)
from ftps7.config.model import CertificateMappingMethod as M
from ftps7.config.model import UserCertificateMatch
from ftps7.tls.mapping import ad_dn, mapping_strings, public_key_sha1
from tests.pki import Issued, make_ca, make_client, name

DOMAIN = "EXAMPLE"
UPN_SUFFIX = "example.com"
BASE_DN = "dc=example,dc=com"
USERS = f"ou=Users,{BASE_DN}"
GROUPS = f"ou=Groups,{BASE_DN}"

# How each group of the data set is written to LDAP: as memberOf values on the
# user (AD's back-link), as an AD ``group`` entry listing members, or as a
# ``groupOfNames`` entry. Both lookups must find them.
MEMBER_OF_GROUPS = {"FTP Users": f"CN=FTP Users,OU=Groups,{BASE_DN.upper()}"}
GROUP_ENTRIES = {"Editors": "group", "Staff": "groupOfNames"}

# A DN with characters that are special in DNs and in filters.
SMITH_DN = f"cn=Smith\\, John (ext)*,{USERS}"


@dataclass(frozen=True)
class Dataset:
    issuing_ca: Issued
    certs: dict[str, Issued]
    accounts: tuple[InMemoryAccount, ...]


def _der(issued: Issued) -> bytes:
    return issued.cert.public_bytes(serialization.Encoding.DER)


@functools.cache
def dataset() -> Dataset:
    """Certificates and the accounts they map to (built once per process)."""
    root = make_ca("Example Root CA")
    ca = make_ca(subject=name("Example Issuing CA", dcs=("com", "example")), issuer=root)

    def cert(cn: str, **kwargs: object) -> Issued:
        fields: dict[str, object] = {"upn": None, "emails": ()}
        fields.update(kwargs)
        return make_client(ca, subject=name(cn, dcs=("com", "example")), **fields)  # type: ignore[arg-type]

    certs = {
        "issuer_serial": cert("alice", serial=0x0A0B0C0D0E),
        "issuer_serial_forward": cert("alice laptop", serial=0x1122334455),
        "ski": cert("bob", ski=bytes.fromhex("c1bc0123456789abcdef0011223344556677aabb")),
        "sha1": cert("carol"),
        "upn": cert("dave", upn="Dave@Example.COM"),
        "issuer_subject": cert("erin"),
        "subject": cert("frank"),
        "rfc822": cert("grace", emails=("grace@example.com",)),
        "user_certificate": cert("heidi"),
        "disabled": cert("mallory", ski=bytes.fromhex("0d15ab1ed0d15ab1ed0d15ab1ed0d15ab1ed0d15")),
        "twins": cert("twin", ski=bytes.fromhex("7e1117e1117e1117e1117e1117e1117e1117e111")),
        "unmapped": cert("nobody", upn="nobody@example.com", emails=("nobody@example.com",)),
    }
    # Same subject, issuer and serial as heidi's, another key: must not pass as heidi's.
    heidi = certs["user_certificate"].cert
    certs["heidi_lookalike"] = cert("heidi", serial=heidi.serial_number)

    def strings(role: str, method: M) -> list[str]:
        return mapping_strings(certs[role].cert)[method]

    issuer = ad_dn(ca.cert.subject)
    forward_serial = "X509:<I>" + issuer + "<SR>1122334455"
    accounts = (
        InMemoryAccount(
            "alice",
            password=b"alice-pw",
            user_principal_name="alice@example.com",
            dn=f"cn=Alice Example,{USERS}",
            alt_security_identities=(
                strings("issuer_serial", M.ISSUER_SERIAL)[0],  # byte-reversed serial
                forward_serial.upper().replace("X509:<I>", "x509:<i>"),  # forward, any case
            ),
            groups=("FTP Users", "Editors"),
            ftp_root="/srv/ftp",
            ftp_dir="alice",
        ),
        InMemoryAccount(
            "Bob",
            password=b"bob-pw",
            user_principal_name="bob@example.com",
            dn=f"cn=Bob,{USERS}",
            alt_security_identities=(strings("ski", M.SKI)[0].upper(),),
            groups=("Editors",),
        ),
        InMemoryAccount(
            "carol",
            password=b"carol-pw",
            dn=f"cn=carol,{USERS}",
            alt_security_identities=(
                "X509:<SHA1-PUKEY>" + public_key_sha1(certs["sha1"].cert)[0],
            ),
        ),
        InMemoryAccount(
            "dave", password=b"dave-pw", user_principal_name="dave@example.com",
            dn=f"cn=dave,{USERS}",
        ),
        InMemoryAccount(
            "erin",
            password=b"erin-pw",
            dn=f"cn=erin,{USERS}",
            alt_security_identities=(strings("issuer_subject", M.ISSUER_SUBJECT)[0],),
        ),
        InMemoryAccount(
            "frank",
            password=b"frank-pw",
            dn=f"cn=frank,{USERS}",
            alt_security_identities=(strings("subject", M.SUBJECT)[0],),
        ),
        InMemoryAccount(
            "grace",
            password=b"grace-pw",
            dn=f"cn=grace,{USERS}",
            alt_security_identities=("X509:<RFC822>grace@example.com",),
        ),
        InMemoryAccount(
            "heidi",
            password=b"heidi-pw",
            dn=f"cn=heidi,{USERS}",
            user_certificates=(_der(certs["user_certificate"]),),
        ),
        InMemoryAccount(
            "mallory",
            password=b"mallory-pw",
            user_principal_name="mallory@example.com",
            dn=f"cn=mallory,{USERS}",
            alt_security_identities=(strings("disabled", M.SKI)[0],),
            disabled=True,
            groups=("Staff",),
        ),
        InMemoryAccount(
            "twin1",
            password=b"twin-pw",
            dn=f"cn=twin1,{USERS}",
            alt_security_identities=(strings("twins", M.SKI)[0],),
        ),
        InMemoryAccount(
            "twin2",
            password=b"twin-pw",
            dn=f"cn=twin2,{USERS}",
            alt_security_identities=(strings("twins", M.SKI)[0],),
        ),
        InMemoryAccount(
            "jsmith",
            password=b"js-pw",
            user_principal_name="john.smith@example.com",
            dn=SMITH_DN,
            groups=("Staff",),
        ),
    )
    return Dataset(ca, certs, accounts)


def _ldif_line(attribute: str, value: str | bytes) -> str:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    safe = (
        isinstance(value, str)
        and value.isascii()
        and value == value.strip()
        and not value.startswith((":", "<"))
        and "\n" not in value
    )
    if safe:
        return f"{attribute}: {value}\n"
    return f"{attribute}:: {base64.b64encode(raw).decode('ascii')}\n"


def conformance_ldif() -> str:
    """The data set as LDIF for slapd (users, then groups), AD attribute names."""
    chunks: list[str] = []
    members: dict[str, list[str]] = {group: [] for group in GROUP_ENTRIES}
    for account in dataset().accounts:
        rdn_value = first_rdn_value(account.dn) or account.sam_account_name
        lines = [
            f"dn: {account.dn}\n",
            "objectClass: inetOrgPerson\n",
            "objectClass: adUserAux\n",
            _ldif_line("cn", rdn_value),
            _ldif_line("sn", account.sam_account_name),
            _ldif_line("sAMAccountName", account.sam_account_name),
            f"userAccountControl: {514 if account.disabled else 512}\n",
        ]
        if account.user_principal_name:
            lines.append(_ldif_line("userPrincipalName", account.user_principal_name))
        if account.password is not None:
            lines.append(_ldif_line("userPassword", account.password))
        lines += [_ldif_line("altSecurityIdentities", v) for v in account.alt_security_identities]
        lines += [_ldif_line("userCertificate;binary", der) for der in account.user_certificates]
        if account.ftp_root:
            lines.append(_ldif_line("msIIS-FTPRoot", account.ftp_root))
        if account.ftp_dir:
            lines.append(_ldif_line("msIIS-FTPDir", account.ftp_dir))
        for group in account.groups:
            if group in MEMBER_OF_GROUPS:
                lines.append(_ldif_line("memberOf", MEMBER_OF_GROUPS[group]))
            else:
                members[group].append(account.dn)
        chunks.append("".join(lines))
    for group, object_class in GROUP_ENTRIES.items():
        lines = [f"dn: cn={group},{GROUPS}\n", f"objectClass: {object_class}\n", f"cn: {group}\n"]
        lines += [_ldif_line("member", dn) for dn in members[group]]
        chunks.append("".join(lines))
    return "\n".join(chunks)


def sams(accounts: list[DirectoryAccount]) -> set[str]:
    return {account.sam_account_name for account in accounts}


class DirectoryConformance:
    """The cases; a subclass (also a trial TestCase) sets ``self.directory`` in setUp.

    ``user_certificate_matches`` lists the userCertificateMatch styles the
    implementation under test supports (OpenLDAP has no octet equality).
    """

    directory: object
    user_certificate_matches: tuple[UserCertificateMatch, ...] = tuple(UserCertificateMatch)

    def find(self, role, methods=DEFAULT_MAPPING, match=UserCertificateMatch.OCTET):
        cert = dataset().certs[role].cert
        return self.directory.find_by_certificate(cert, tuple(methods), match).addCallback(sams)

    # -- certificate mapping -----------------------------------------------------

    @defer.inlineCallbacks
    def test_issuer_serial_with_reversed_serial(self):
        self.assertEqual((yield self.find("issuer_serial")), {"alice"})

    @defer.inlineCallbacks
    def test_issuer_serial_forward_order_any_case(self):
        self.assertEqual((yield self.find("issuer_serial_forward")), {"alice"})

    @defer.inlineCallbacks
    def test_ski_matches_case_insensitively(self):
        self.assertEqual((yield self.find("ski")), {"Bob"})

    @defer.inlineCallbacks
    def test_sha1_public_key(self):
        self.assertEqual((yield self.find("sha1")), {"carol"})

    @defer.inlineCallbacks
    def test_upn_matches_user_principal_name_any_case(self):
        self.assertEqual((yield self.find("upn")), {"dave"})

    @defer.inlineCallbacks
    def test_only_listed_methods_are_used(self):
        self.assertEqual((yield self.find("upn", methods=(M.ISSUER_SERIAL, M.SKI))), set())
        self.assertEqual((yield self.find("ski", methods=(M.ISSUER_SERIAL, M.UPN))), set())
        self.assertEqual((yield self.find("ski", methods=())), set())

    @defer.inlineCallbacks
    def test_weak_forms_are_off_by_default(self):
        for role in ("issuer_subject", "subject", "rfc822", "user_certificate"):
            self.assertEqual((yield self.find(role)), set(), role)

    @defer.inlineCallbacks
    def test_weak_forms_when_listed(self):
        self.assertEqual(
            (yield self.find("issuer_subject", methods=(M.ISSUER_SUBJECT,))), {"erin"}
        )
        self.assertEqual((yield self.find("subject", methods=(M.SUBJECT,))), {"frank"})
        self.assertEqual((yield self.find("rfc822", methods=(M.RFC822,))), {"grace"})

    @defer.inlineCallbacks
    def test_subject_form_does_not_match_issuer_subject_values(self):
        # erin's value is <I>..<S>..; the Subject-only form must not find it.
        self.assertEqual((yield self.find("issuer_subject", methods=(M.SUBJECT,))), set())

    @defer.inlineCallbacks
    def test_user_certificate_when_listed(self):
        for match in self.user_certificate_matches:
            found = yield self.find("user_certificate", methods=(M.USER_CERTIFICATE,), match=match)
            self.assertEqual(found, {"heidi"}, match)

    @defer.inlineCallbacks
    def test_user_certificate_needs_the_exact_certificate(self):
        for match in self.user_certificate_matches:
            for role in ("heidi_lookalike", "unmapped"):
                found = yield self.find(role, methods=(M.USER_CERTIFICATE,), match=match)
                self.assertEqual(found, set(), (match, role))

    @defer.inlineCallbacks
    def test_disabled_accounts_are_never_mapped(self):
        everything = tuple(M)
        self.assertEqual((yield self.find("disabled", methods=everything)), set())

    @defer.inlineCallbacks
    def test_ambiguous_mapping_returns_every_account(self):
        self.assertEqual((yield self.find("twins")), {"twin1", "twin2"})

    @defer.inlineCallbacks
    def test_unmapped_certificate(self):
        found = yield self.find("unmapped", methods=tuple(M))
        self.assertEqual(found, set())

    @defer.inlineCallbacks
    def test_mapped_account_carries_its_attributes(self):
        cert = dataset().certs["issuer_serial"].cert
        (account,) = yield self.directory.find_by_certificate(
            cert, DEFAULT_MAPPING, UserCertificateMatch.OCTET
        )
        self.assertEqual(account.dn.lower(), f"cn=alice example,{USERS}".lower())
        self.assertEqual(account.sam_account_name, "alice")
        self.assertEqual(account.user_principal_name, "alice@example.com")
        self.assertEqual(account.domain, DOMAIN)
        self.assertFalse(account.disabled)
        self.assertEqual(account.groups, {"ftp users", "editors"})
        self.assertEqual((account.ftp_root, account.ftp_dir), ("/srv/ftp", "alice"))

    # -- lookup --------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_lookup_by_sam_account_name_any_case(self):
        account = yield self.directory.lookup(LogonName.sam("ALICE"))
        self.assertEqual(account.sam_account_name, "alice")
        account = yield self.directory.lookup(LogonName.sam("bob"))
        self.assertEqual(account.sam_account_name, "Bob")

    @defer.inlineCallbacks
    def test_lookup_by_upn_any_case(self):
        account = yield self.directory.lookup(LogonName.upn("Alice@Example.COM"))
        self.assertEqual(account.sam_account_name, "alice")

    @defer.inlineCallbacks
    def test_lookup_unknown(self):
        self.assertIsNone((yield self.directory.lookup(LogonName.sam("nobody"))))
        self.assertIsNone((yield self.directory.lookup(LogonName.upn("alice@elsewhere.test"))))

    @defer.inlineCallbacks
    def test_lookup_reports_disabled_accounts(self):
        account = yield self.directory.lookup(LogonName.sam("mallory"))
        self.assertTrue(account.disabled)
        self.assertEqual(account.groups, {"staff"})

    @defer.inlineCallbacks
    def test_groups_from_member_entries_with_special_characters_in_the_dn(self):
        account = yield self.directory.lookup(LogonName.sam("jsmith"))
        self.assertEqual(account.groups, {"staff"})
        self.assertEqual(first_rdn_value(account.dn), "Smith, John (ext)*")

    @defer.inlineCallbacks
    def test_filter_injection_finds_nothing(self):
        attempts = [
            LogonName.sam("*"),
            LogonName.sam("a*"),
            LogonName.sam("alice)(sAMAccountName=*"),
            LogonName.sam("*)(|(sAMAccountName=*"),
            LogonName.sam("al\\69ce"),  # "alice" if the backslash were not escaped
            LogonName.sam("alice\\29"),
            LogonName.upn("*@example.com"),
            LogonName.upn("alice@example.com)(userPrincipalName=*"),
        ]
        for attempt in attempts:
            self.assertIsNone((yield self.directory.lookup(attempt)), attempt)
            self.assertIsNone((yield self.directory.authenticate(attempt, b"alice-pw")), attempt)

    # -- authenticate ------------------------------------------------------------

    @defer.inlineCallbacks
    def test_authenticate_by_sam_and_upn(self):
        account = yield self.directory.authenticate(LogonName.sam("Alice"), b"alice-pw")
        self.assertEqual(account.sam_account_name, "alice")
        self.assertEqual(account.groups, {"ftp users", "editors"})
        account = yield self.directory.authenticate(LogonName.upn("BOB@example.com"), b"bob-pw")
        self.assertEqual(account.sam_account_name, "Bob")

    @defer.inlineCallbacks
    def test_authenticate_refuses_wrong_and_empty_passwords(self):
        for password in (b"wrong", b"ALICE-PW", b"alice-pw ", b""):
            self.assertIsNone(
                (yield self.directory.authenticate(LogonName.sam("alice"), password)), password
            )

    @defer.inlineCallbacks
    def test_authenticate_unknown_user(self):
        self.assertIsNone((yield self.directory.authenticate(LogonName.sam("zed"), b"x")))

    @defer.inlineCallbacks
    def test_authenticate_refuses_disabled_account_with_right_password(self):
        self.assertIsNone(
            (yield self.directory.authenticate(LogonName.sam("mallory"), b"mallory-pw"))
        )

    @defer.inlineCallbacks
    def test_authenticate_with_special_characters_in_the_dn(self):
        account = yield self.directory.authenticate(LogonName.sam("jsmith"), b"js-pw")
        self.assertEqual(account.sam_account_name, "jsmith")


class TestInMemoryDirectory(DirectoryConformance, unittest.TestCase):
    def setUp(self):
        self.directory = InMemoryDirectory(*dataset().accounts, domain=DOMAIN)


class TestInMemoryDirectoryOutage(unittest.SynchronousTestCase):
    def test_unavailable_fails_every_call(self):
        from ftps7.auth.directory import DirectoryUnavailable

        directory = InMemoryDirectory(*dataset().accounts, domain=DOMAIN)
        directory.available = False
        cert = dataset().certs["ski"].cert
        for d in (
            directory.find_by_certificate(cert, DEFAULT_MAPPING, UserCertificateMatch.OCTET),
            directory.authenticate(LogonName.sam("alice"), b"alice-pw"),
            directory.lookup(LogonName.sam("alice")),
        ):
            self.failureResultOf(d, DirectoryUnavailable)


# ---------------------------------------------------------------------------
# Logon names.


@pytest.mark.parametrize(
    ("text", "default_domain", "expected"),
    [
        ("EXAMPLE\\alice", "", (LogonKind.SAM_ACCOUNT_NAME, "alice")),
        ("example\\Alice", "", (LogonKind.SAM_ACCOUNT_NAME, "Alice")),
        ("Example.COM\\alice", "", (LogonKind.SAM_ACCOUNT_NAME, "alice")),
        ("alice@example.com", "", (LogonKind.USER_PRINCIPAL_NAME, "alice@example.com")),
        ("Alice@EXAMPLE.com", "", (LogonKind.USER_PRINCIPAL_NAME, "Alice@EXAMPLE.com")),
        ("alice", "EXAMPLE", (LogonKind.SAM_ACCOUNT_NAME, "alice")),
        ("alice", "example", (LogonKind.SAM_ACCOUNT_NAME, "alice")),
        ("alice", "example.com", (LogonKind.SAM_ACCOUNT_NAME, "alice")),
    ],
)
def test_logon_name_parses_domain_logons(text, default_domain, expected):
    logon = LogonName.parse(text, DOMAIN, UPN_SUFFIX, default_domain)
    assert logon is not None
    assert (logon.kind, logon.value) == expected


@pytest.mark.parametrize(
    ("text", "default_domain"),
    [
        ("alice", ""),  # bare name without defaultLogonDomain: a local account
        ("alice", "OTHER"),  # default domain that is not ours
        ("OTHER\\alice", ""),
        (".\\alice", ""),  # Windows' "this machine"
        ("\\alice", ""),
        ("EXAMPLE\\", ""),
        ("EXAMPLE\\a\\b", ""),
        ("alice@other.test", ""),
        ("@example.com", ""),
        ("alice@example.com ", ""),
        (" EXAMPLE\\alice", ""),
        ("EXAMPLE\\alice\x00", ""),
        ("EXAMPLE\\ali\nce", ""),
        ("", "EXAMPLE"),
        ("x" * 2000, "EXAMPLE"),
    ],
)
def test_logon_name_refuses_what_is_not_a_domain_logon(text, default_domain):
    assert LogonName.parse(text, DOMAIN, UPN_SUFFIX, default_domain) is None


def test_upn_logons_need_a_configured_suffix():
    assert LogonName.parse("alice@example.com", DOMAIN, "", "") is None
    assert LogonName.parse("EXAMPLE\\alice", DOMAIN, "", "") == LogonName.sam("alice")


def test_logon_name_rejects_unusable_values():
    with pytest.raises(ValueError):
        LogonName.sam("")
    with pytest.raises(ValueError):
        LogonName.upn("a\x01@example.com")


def test_account_named_by_sam_domain_and_upn():
    account = DirectoryAccount(
        dn="cn=x", sam_account_name="alice", user_principal_name="alice@example.com",
        domain="EXAMPLE",
    )
    for user in ("alice", "ALICE", "EXAMPLE\\alice", "example\\Alice", "Alice@Example.com"):
        assert account.named_by(user), user
    for user in ("bob", "OTHER\\alice", "alice@other.test", "", "EXAMPLE\\"):
        assert not account.named_by(user), user


def test_account_groups_are_lower_case():
    account = DirectoryAccount(dn="cn=x", sam_account_name="x", groups=frozenset({"FTP Users"}))
    assert account.groups == {"ftp users"}


# ---------------------------------------------------------------------------
# certificate_matches: the one definition both directories apply.


def test_certificate_matches_names_the_methods():
    data = dataset()
    cert = data.certs["issuer_serial"].cert
    alice = data.accounts[0]
    assert certificate_matches(
        cert, tuple(M), alt_security_identities=alice.alt_security_identities
    ) == [M.ISSUER_SERIAL]
    assert certificate_matches(
        cert, (M.SKI,), alt_security_identities=alice.alt_security_identities
    ) == []


def test_certificate_matches_collapses_white_space_and_case():
    cert = dataset().certs["issuer_subject"].cert
    value = mapping_strings(cert)[M.ISSUER_SUBJECT][0]
    spaced = "  " + value.replace("Example Issuing CA", "EXAMPLE   issuing  CA") + " "
    assert certificate_matches(cert, (M.ISSUER_SUBJECT,), alt_security_identities=(spaced,)) == [
        M.ISSUER_SUBJECT
    ]


def test_certificate_matches_user_certificate_is_exact_der():
    data = dataset()
    heidi = data.certs["user_certificate"]
    lookalike = data.certs["heidi_lookalike"].cert
    stored = (_der(heidi),)
    assert certificate_matches(heidi.cert, (M.USER_CERTIFICATE,), user_certificates=stored)
    assert not certificate_matches(lookalike, (M.USER_CERTIFICATE,), user_certificates=stored)


# ---------------------------------------------------------------------------
# LDAP filters (pure functions of ldapdir): every value escaped.


def test_logon_filter_escapes_every_special_character():
    search = logon_filter(LogonName.sam("a*)(uid=\\x"))
    assert search == "(&(sAMAccountName=*)(sAMAccountName=a\\2a\\29\\28uid=\\5cx))"
    assert logon_filter(LogonName.upn("a@example.com")) == (
        "(&(sAMAccountName=*)(userPrincipalName=a@example.com))"
    )


def test_certificate_filter_ors_the_enabled_values():
    cert = dataset().certs["issuer_serial"].cert
    search = certificate_filter(cert, DEFAULT_MAPPING, UserCertificateMatch.OCTET,
                                exclude_disabled=False)
    assert search is not None
    assert search.startswith("(&(sAMAccountName=*)(|(altSecurityIdentities=X509:<I>DC=com,")
    assert "<SR>0e0d0c0b0a)" in search and "<SR>0a0b0c0d0e)" in search
    assert "<SKI>" in search and "<SHA1-PUKEY>" in search
    assert "userPrincipalName" not in search  # this certificate has no UPN
    assert "<S>" not in search and "RFC822" not in search and "userCertificate" not in search


def test_certificate_filter_excludes_disabled_accounts_on_request():
    cert = dataset().certs["ski"].cert
    search = certificate_filter(cert, (M.SKI,), UserCertificateMatch.OCTET, exclude_disabled=True)
    assert search is not None
    assert "(!(userAccountControl:1.2.840.113556.1.4.803:=2))" in search


def test_certificate_filter_escapes_dn_characters():
    ca = make_ca(subject=name("Evil (CA) *", org="x)(uid=*"))
    evil = make_client(ca, upn="e*)(x=1@example.com", emails=())
    search = certificate_filter(evil.cert, (M.ISSUER_SERIAL, M.UPN),
                                UserCertificateMatch.OCTET, exclude_disabled=False)
    assert search is not None
    assert "Evil \\28CA\\29 \\2a" in search
    assert "x\\29\\28uid=\\2a" in search
    assert "(userPrincipalName=e\\2a\\29\\28x=1@example.com)" in search
    inner = search[len("(&(sAMAccountName=*)(|") : -2]
    assert inner.count("(") == inner.count(")")
    for term in inner[1:-1].split(")("):
        assert "(" not in term and ")" not in term


def test_user_certificate_filters():
    heidi = dataset().certs["user_certificate"].cert
    der = heidi.public_bytes(serialization.Encoding.DER)
    octet = certificate_filter(heidi, (M.USER_CERTIFICATE,), UserCertificateMatch.OCTET,
                               exclude_disabled=False)
    assert octet == "(&(sAMAccountName=*)(|(userCertificate=" + "".join(
        f"\\{byte:02x}" for byte in der) + ")))"
    gser = certificate_filter(heidi, (M.USER_CERTIFICATE,), UserCertificateMatch.GSER,
                              exclude_disabled=False)
    assert gser is not None
    serial = heidi.serial_number
    assert f"(userCertificate:certificateExactMatch:={{ serialNumber {serial}, " in gser
    assert certificate_filter(heidi, (M.USER_CERTIFICATE,), UserCertificateMatch.FETCH_COMPARE,
                              exclude_disabled=False) is None
    assert fetch_compare_filter(exclude_disabled=False) == (
        "(&(sAMAccountName=*)(userCertificate=*))"
    )


def test_gser_assertion_quotes_the_issuer():
    ca = make_ca(subject=name('Quote "CA"'))
    cert = make_client(ca, serial=42).cert
    assert gser_certificate_assertion(cert) == (
        '{ serialNumber 42, issuer rdnSequence:"CN=Quote \\""CA\\""" }'
    )


def test_group_filter_escapes_the_member_dn():
    assert group_filter(SMITH_DN, in_chain=False) == (
        "(&(|(objectClass=group)(objectClass=groupOfNames))"
        "(member=cn=Smith\\5c, John \\28ext\\29\\2a,ou=Users,dc=example,dc=com))"
    )
    assert "(member:1.2.840.113556.1.4.1941:=cn=x)" in group_filter("cn=x", in_chain=True)


@pytest.mark.parametrize(
    ("dn", "expected"),
    [
        ("CN=Editors,OU=Groups,DC=example,DC=com", "Editors"),
        ("cn=Smith\\, John (ext)*,ou=Users,dc=example,dc=com", "Smith, John (ext)*"),
        ("cn=J\\C3\\BCrgen,dc=example", "Jürgen"),
        ("cn=a\\2cb,dc=x", "a,b"),
        ("not a dn", None),
    ],
)
def test_first_rdn_value(dn, expected):
    assert first_rdn_value(dn) == expected
